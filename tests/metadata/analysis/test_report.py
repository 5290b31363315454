"""The analysis report over real exports of a real Airflow's history, on Airflow 2.11 and 3.x.

One DAG runs for real under dag.test() (a task that always succeeds, one that fails on its first
try and then succeeds, one that fails when the run's conf says so). Its dag runs are then moved to
known months with known durations in the metadata database, exported with the exporter, and the
report's figures are checked against numbers worked out by hand (and, for task durations, against
the database itself).
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

DAG_ID = "mwaaops_report_probe"

#: (month shift key, start, duration seconds, final state) of the four runs, in run order.
RUN_SHAPES = [
    (datetime(2025, 12, 30, 23, 0, tzinfo=UTC), 50, "success"),
    (datetime(2026, 1, 10, 10, 0, tzinfo=UTC), 100, "success"),
    (datetime(2026, 1, 20, 10, 0, tzinfo=UTC), 300, "failed"),
    (datetime(2026, 2, 5, 8, 0, tzinfo=UTC), 400, "success"),
]


def build_probe_dag():
    from airflow_provider_mwaaops.compat import DAG, task

    with DAG(DAG_ID, schedule=None, start_date=datetime(2025, 1, 1), catchup=False) as dag:

        @task
        def steady() -> int:
            return 1

        @task(retries=1, retry_delay=timedelta(seconds=0))
        def flaky() -> int:
            from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS

            if AIRFLOW_V_3_0_PLUS:
                from airflow.sdk import get_current_context
            else:
                from airflow.operators.python import get_current_context
            if get_current_context()["ti"].try_number == 1:
                raise RuntimeError("first try fails on purpose")
            return 2

        @task
        def maybe_fail(**context) -> None:
            if (context["dag_run"].conf or {}).get("fail"):
                raise ValueError("this run was asked to fail")

        steady()
        flaky()
        maybe_fail()
    return dag


#: Seconds each task of run ``i`` (0-based) takes: ``TASK_SECONDS[task] * (i + 1)``.
TASK_SECONDS = {"steady": 2, "flaky": 30, "maybe_fail": 5}


def _shape_tasks(run_id: str, start: datetime, factor: int) -> None:
    """Give the run's task instances known durations.

    Needed on both lines for exact figures, and on Airflow 2.11 at all: its dag.test() never
    writes a task instance's start_date.
    """
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        for task_id, seconds in TASK_SECONDS.items():
            session.execute(
                update(TaskInstance)
                .where(
                    TaskInstance.dag_id == DAG_ID,
                    TaskInstance.run_id == run_id,
                    TaskInstance.task_id == task_id,
                )
                .values(start_date=start, end_date=start + timedelta(seconds=seconds * factor))
                .execution_options(synchronize_session=False)
            )


TABLES = ["dag_run", "task_instance"]


@dataclass
class History:
    full_only: Path
    with_incremental: Path
    run_ids: list[str]
    late_run_id: str


@pytest.fixture(scope="module")
def history(mwaaops_airflow, tmp_path_factory, update_run, export_history) -> History:
    """Runs of the probe DAG, a full export, then one changed and one new run and an incremental."""
    from airflow_provider_mwaaops.testing.dag_runner import run_dag

    def _shape_run(run_id: str, start: datetime, seconds: int, state: str, touched: datetime) -> None:
        """Move a finished run to a known time and length, as months of history would have left it."""
        end = start + timedelta(seconds=seconds)
        update_run(
            DAG_ID, run_id, start_date=start, end_date=end, queued_at=start, state=state, updated_at=touched
        )

    dag = build_probe_dag()
    base = tmp_path_factory.mktemp("exports")
    run_ids = []
    for _, _, state in RUN_SHAPES:
        result = run_dag(dag, conf={"fail": state == "failed"})
        assert result.state == state, result
        assert result.task_states["flaky"] == "success", result
        run_ids.append(result.run_id)
    touched = datetime.now(UTC) - timedelta(minutes=5)
    for i, (run_id, (start, seconds, state)) in enumerate(zip(run_ids, RUN_SHAPES, strict=True)):
        _shape_run(run_id, start, seconds, state, touched)
        _shape_tasks(run_id, start, i + 1)

    export_history(base / "full_only", "e1-full", "full", TABLES)
    export_history(base / "with_incremental", "e1-full", "full", TABLES)

    # After the full export: the failed January run is repaired (cleared and rerun to success,
    # 500 s long) and a new run lands in April. Both reach only the incremental export.
    now = datetime.now(UTC)
    _shape_run(run_ids[2], RUN_SHAPES[2][0], 500, "success", now)
    late = run_dag(dag, conf={})
    _shape_run(late.run_id, datetime(2026, 4, 2, 12, 0, tzinfo=UTC), 1000, "success", now)
    export_history(base / "with_incremental", "e2-incremental", "incremental", TABLES)
    return History(base / "full_only", base / "with_incremental", run_ids, late.run_id)


def _probe_months(report) -> dict[date, object]:
    return {row.month: row for row in report.monthly if row.dag_id == DAG_ID}


def test_monthly_figures_from_a_full_export(history):
    from airflow_provider_mwaaops.metadata.analysis.report import build_report

    report = build_report(str(history.full_only), top=1000)
    months = _probe_months(report)

    assert sorted(months) == [date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)]
    dec, jan, feb = (months[m] for m in sorted(months))
    assert (dec.runs, dec.succeeded, dec.failed, dec.success_rate) == (1, 1, 0, 1.0)
    assert dec.avg_duration_s == pytest.approx(50)
    assert dec.prev_avg_duration_s is None
    assert dec.avg_duration_change is None
    assert (jan.runs, jan.succeeded, jan.failed, jan.success_rate) == (2, 1, 1, 0.5)
    assert (jan.min_duration_s, jan.max_duration_s, jan.avg_duration_s) == pytest.approx((100, 300, 200))
    # Across the year boundary: January against December's 50 s average.
    assert jan.prev_avg_duration_s == pytest.approx(50)
    assert jan.avg_duration_change == pytest.approx(3.0)
    assert (feb.runs, feb.success_rate, feb.avg_duration_s) == (1, 1.0, pytest.approx(400))
    assert feb.avg_duration_change == pytest.approx(1.0)  # 400 s against January's 200 s
    assert report.export_ids == ["e1-full"]


def test_retry_hot_spots_and_slowest_tasks(history):
    from airflow_provider_mwaaops.metadata.analysis.report import build_report

    report = build_report(str(history.full_only), top=1000)

    hot = {r.task_id: r for r in report.retry_hot_spots if r.dag_id == DAG_ID}
    assert set(hot) == {"flaky"}, hot
    assert (hot["flaky"].instances, hot["flaky"].retried_instances, hot["flaky"].retries) == (4, 4, 4)
    assert hot["flaky"].max_try_number == 2
    assert hot["flaky"].retry_rate == 1.0
    assert hot["flaky"].failed_instances == 0

    slowest = [t for t in report.slowest_tasks if t.dag_id == DAG_ID]
    assert [t.task_id for t in slowest] == ["flaky", "maybe_fail", "steady"]
    flaky = slowest[0]
    # 30, 60, 90 and 120 seconds over the four runs.
    assert (flaky.instances, flaky.avg_duration_s, flaky.max_duration_s) == (4, 75.0, 120.0)
    assert flaky.p95_duration_s == pytest.approx(90 + 0.85 * 30)
    assert slowest[2].avg_duration_s == pytest.approx(5.0)  # steady: 2, 4, 6, 8 seconds
    ordered = [t.avg_duration_s for t in report.slowest_tasks]
    assert ordered == sorted(ordered, reverse=True)


def test_rows_repeated_by_an_incremental_export_count_once_latest_wins(history):
    from airflow_provider_mwaaops.metadata.analysis.report import build_report
    from airflow_provider_mwaaops.metadata.manifest import load_manifest, read_table
    from airflow_provider_mwaaops.metadata.sinks import open_sink

    sink = open_sink(str(history.with_incremental))
    incremental = read_table(sink, load_manifest(sink, "e2-incremental"), "dag_run").to_pylist()
    probe_rows = {r["run_id"]: r["state"] for r in incremental if r["dag_id"] == DAG_ID}
    # The repaired run really is in both exports: the report has to merge it.
    assert probe_rows == {history.run_ids[2]: "success", history.late_run_id: "success"}

    report = build_report(str(history.with_incremental), top=1000)
    months = _probe_months(report)

    assert report.export_ids == ["e1-full", "e2-incremental"]
    assert report.rows_read["dag_run"] - report.rows_unique["dag_run"] == 1
    jan = months[date(2026, 1, 1)]
    assert (jan.runs, jan.succeeded, jan.failed, jan.success_rate) == (2, 2, 0, 1.0)
    assert jan.avg_duration_s == pytest.approx(300)  # (100 + 500) / 2: the later copy's duration
    assert months[date(2026, 2, 1)].avg_duration_change == pytest.approx(400 / 300 - 1)
    april = months[date(2026, 4, 1)]
    assert april.runs == 1
    assert april.prev_avg_duration_s is None  # no run in March: no month to compare with
    total_probe_runs = sum(row.runs for row in months.values())
    assert total_probe_runs == 5
    hot = {r.task_id: r for r in report.retry_hot_spots if r.dag_id == DAG_ID}
    assert hot["flaky"].instances == 5


def test_an_interrupted_export_is_ignored(history, tmp_path):
    import shutil

    from airflow_provider_mwaaops.metadata.analysis.report import build_report

    base = tmp_path / "exports"
    shutil.copytree(history.full_only, base)
    killed = base / "e9-killed"
    shutil.copytree(base / "e1-full", killed)
    (killed / "manifest.json").unlink()

    report = build_report(str(base), top=5)
    assert report.export_ids == ["e1-full"]

    one = build_report(str(base / "e1-full"), top=5)
    assert [(m.dag_id, m.month, m.runs) for m in one.monthly] == [
        (m.dag_id, m.month, m.runs) for m in report.monthly
    ]


def test_no_complete_export_is_a_clear_error(tmp_path):
    from airflow_provider_mwaaops.metadata.analysis.reader import ExportReadError
    from airflow_provider_mwaaops.metadata.analysis.report import build_report

    (tmp_path / "e1" / "dag_run").mkdir(parents=True)
    with pytest.raises(ExportReadError, match=r"no complete export at .*manifest\.json"):
        build_report(str(tmp_path))


def test_html_is_self_contained_with_charts(history, tmp_path):
    from airflow_provider_mwaaops.metadata.analysis.html import write_html
    from airflow_provider_mwaaops.metadata.analysis.report import build_report

    report = build_report(str(history.with_incremental), top=5)
    out = tmp_path / "report.html"
    write_html(report, str(out))
    html = out.read_text()

    assert html.startswith("<!DOCTYPE html>")
    probe_dag_charts = re.findall(rf'<svg [^>]*aria-label="{DAG_ID}: ([^"]+)"', html)
    assert probe_dag_charts == ["runs per month", "run duration per month"]
    assert 'aria-label="Average duration of the slowest tasks (marker: p95)"' in html
    assert 'aria-label="Retries per task"' in html
    # One bar segment per outcome and month: January has 2 succeeded runs after the merge.
    assert "2026-01: 2 succeeded" in html
    assert "<script" not in html.lower()
    assert re.findall(r"(?:src|href)=", html) == []
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}


def test_console_table_lists_every_month(history):
    from airflow_provider_mwaaops.metadata.analysis.report import build_report

    text = build_report(str(history.with_incremental), top=5).console_table()
    lines = [line for line in text.splitlines() if line.startswith(DAG_ID)]
    months = [line.split()[1] for line in lines[:4]]
    assert months == ["2025-12", "2026-01", "2026-02", "2026-04"]
    assert lines[1].split()[-1] == "+500.0%"  # January's 300 s against December's 50 s
    assert "Retry hot spots" in text


def test_report_reads_an_export_in_the_emulators_s3(history, aws_emulator, export_history):
    from airflow_provider_mwaaops.metadata.analysis.report import build_report

    aws_emulator.client("s3").create_bucket(Bucket="mwaaops-exports")
    export_history("s3://mwaaops-exports/airflow", "s3-full", "full", TABLES, aws_conn_id="aws_default")

    report = build_report("s3://mwaaops-exports/airflow", aws_conn_id="aws_default", top=1000)
    local = build_report(str(history.with_incremental), top=1000)

    assert report.export_ids == ["s3-full"]
    assert _probe_months(report) == _probe_months(local)


def test_cli_report_writes_html_and_prints_the_table(history, tmp_path):
    out = tmp_path / "cli.html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow_provider_mwaaops.cli",
            "metadata",
            "report",
            str(history.with_incremental),
            "--html",
            str(out),
            "--top",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Runs per DAG and month" in result.stdout
    assert DAG_ID in result.stdout
    assert out.read_text().count("<svg") >= 4
    assert f"wrote {out}" in result.stdout


def test_cli_report_names_a_missing_export(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_mwaaops.cli", "metadata", "report", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "no complete export" in result.stderr
