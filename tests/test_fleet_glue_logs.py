"""The pure helpers of the glue-logs benchmark workload (``benchmarks/_fleet_glue_logs.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
glue_logs = pytest.importorskip("_fleet_glue_logs")


def output_line(run_id: str, n: int) -> str:
    return glue_logs.OUTPUT_TEMPLATE.format(run_id=run_id, n=n, job_name=glue_logs.JOB)


def test_every_written_line_has_a_unique_key() -> None:
    lines = [output_line("jr_1", n) for n in range(3)] + [output_line("jr_2", 0)]
    lines += [glue_logs.ERROR_TEMPLATE.format(index=7, k=k) for k in range(2)]
    assert len(glue_logs.line_keys(lines)) == len(lines)


def test_compare_counts_repeats_misses_and_unknown_lines() -> None:
    written = [output_line("jr_1", n) for n in range(4)]
    # The amazon trigger logs many lines in one message; ours one line per message, prefixed.
    delivered = [
        "Glue Job Run /aws-glue/jobs/output Logs:\n\t" + "\t".join(line + "\n" for line in written[:2]),
        f"[glue output] {written[1]}",
        f"[glue output] {output_line('jr_9', 0)}",
    ]
    assert glue_logs.compare(written, delivered) == {
        "lines_written": 4,
        "lines_delivered": 4,
        "lines_once": 1,
        "lines_missing": 2,
        "lines_repeated": 1,
        "lines_unknown": 1,
    }


def test_poll_gaps_pool_the_intervals_of_each_run() -> None:
    assert glue_logs.poll_gaps([[0.0, 5.0, 10.5], [1.0], [2.0, 2.1]]) == pytest.approx([5.0, 5.5, 0.1])


def test_calls_per_minute() -> None:
    assert glue_logs.per_minute({"GetJobRun": 30, "GetLogEvents": 90}, 30.0) == {
        "GetJobRun": 60.0,
        "GetLogEvents": 180.0,
    }
