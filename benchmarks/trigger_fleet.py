"""A fleet of N deferred Step Functions waits in one event loop: ours vs the amazon provider's trigger.

For each implementation and each N, a FRESH child process (``_fleet_child.py``; RSS is never given
back, so runs must not share a process) runs N triggers' ``run()`` to their first event as N tasks
of one ``asyncio`` loop, against moto served by ``AwsEmulator`` in a separate, long-lived emulator
process (``_fleet_emulator.py``), so that moto's memory and CPU stay out of the measured process.

Implementations:

* ``ours``: ``airflow_provider_mwaaops.triggers.step_function.StepFunctionExecutionTrigger``;
* ``amazon``: ``airflow.providers.amazon.aws.triggers.step_function.StepFunctionsExecutionCompleteTrigger``;
* ``shared`` (reference, not run by default): a bare loop per execution around ONE aiobotocore
  client (describe, sleep the same jittered delay), no Airflow code: the floor for any
  aiobotocore-based poller on this machine.

Workload: one state machine whose executions wait in a Wait state. The emulator ends each execution
``--wait-seconds`` (W) after its FIRST DescribeExecution, plus a random part of one polling period,
then it succeeds. So every trigger watches its execution for the same time however long its
implementation took to start (API calls per wait are comparable), and completions fall at random
points of the polling cycle (detection latency is a fair average). Both implementations poll with
the same ``--waiter-delay`` (D).

Measured, per (implementation, N):

* peak RSS (VmHWM of the child), and (peak - baseline) / N where the baseline is the RSS after
  importing Airflow and BOTH implementations, before the first trigger is built;
* time from fleet start until every execution has received a DescribeExecution (server side);
* event-loop lag: a sampler sleeps 50 ms and records the overshoot; p50/p99 separately for start-up
  (until all first polls are done) and steady state (from then until the last event);
* DescribeExecution calls (counted by the emulator) per completed wait, and the mean interval
  between one trigger's successive polls;
* detection latency: time the trigger yielded its event minus the execution's stopDate.

Usage::

    python benchmarks/trigger_fleet.py                  # N = 100 500 1000, ours and amazon
    python benchmarks/trigger_fleet.py --quick          # N = 100 only, W = 10 s (smoke run)
    python benchmarks/trigger_fleet.py --n 1000 --impl ours shared --json results.json
    python benchmarks/trigger_fleet.py --service glue --n 1000   # Glue job runs: GetJobRun polls
    python benchmarks/trigger_fleet.py --service glue-logs --n 200 --impl ours amazon ours-nologs --repeat 3

With ``--service glue`` the fleet waits for N Glue job runs of one job (MaxConcurrentRuns N) that
each SUCCEED W + uniform(0, D) s after their first GetJobRun: ours is
``airflow_provider_mwaaops.triggers.glue.GlueJobRunTrigger`` (log forwarding off), the amazon one
``airflow.providers.amazon.aws.triggers.glue.GlueJobCompleteTrigger(verbose=False)``. GetJobRun has
a fast path as DescribeExecution has (``--moto-describe`` turns both off).

With ``--service glue-logs`` the runs also write ``--log-lines-per-second`` output lines (and
``--error-lines`` error lines) while RUNNING, and the triggers forward them: ours with log
forwarding on, the amazon one with ``verbose=True``; ``ours-nologs`` (ours, forwarding off) is the
baseline. The table then shows the child's CPU seconds, API calls per minute per kind, loop lag,
the status poll cadence and whether every line reached the trigger's log exactly once (see
``_fleet_glue_logs.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _fleet_glue_logs

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
IMPLEMENTATIONS = ("ours", "amazon", "shared", "ours-nologs")  # ours-nologs: glue-logs only


# -- small helpers ----------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in [0, 100]); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def stderr(values: list[float]) -> float | None:
    """Standard error of the mean."""
    return statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else None


def read_json_line(stream: IO[str], timeout: float, what: str) -> dict[str, Any]:
    """The next JSON line of ``stream`` (other lines are skipped), waiting at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no answer from {what} within {timeout:.0f}s")
        ready, _, _ = select.select([stream], [], [], remaining)
        if ready:
            line = stream.readline()
            if not line:
                raise RuntimeError(f"{what} closed its output")
            line = line.strip()
            if line.startswith("{"):
                return json.loads(line)


class Emulator:
    """The emulator process (``_fleet_emulator.py``), driven over its stdin/stdout."""

    def __init__(self, python: str, workdir: Path, options: list[str]) -> None:
        self.log = open(workdir / "emulator.log", "w")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            [python, str(HERE / "_fleet_emulator.py"), *options],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        hello = read_json_line(self.proc.stdout, 120, "emulator")  # type: ignore[arg-type]
        self.environ: dict[str, str] = hello["environ"]

    def ask(self, cmd: str, timeout: float = 300, **params: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **params}) + "\n")
        self.proc.stdin.flush()
        return read_json_line(self.proc.stdout, timeout, "emulator")  # type: ignore[arg-type]

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# -- one measurement ----------------------------------------------------------------------------------
def run_one(emulator: Emulator, impl: str, n: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    tag = f"{impl}-{n}-{int(time.time())}"
    rundir = workdir / tag
    (rundir / "airflow").mkdir(parents=True)
    arn_file = rundir / "arns.txt"
    params: dict[str, Any] = {"n": n, "tag": tag, "arn_file": str(arn_file)}
    params.update(hold=args.wait_seconds, spread=args.waiter_delay)
    if args.service == _fleet_glue_logs.SERVICE:  # runs parked in STARTING until first polled
        extra = {"lines_per_second": args.log_lines_per_second, "error_lines": args.error_lines}
        setup = emulator.ask(f"{args.service}-setup", **params, **extra)
        waiting = {"STARTING": n}
    else:
        setup = emulator.ask("setup", **params, service=args.service)
        waiting = {"RUNNING": n}
    if setup["n"] != n or setup["statuses"] != waiting:
        raise RuntimeError(f"emulator setup went wrong: {setup}")

    env = {
        **os.environ,
        **emulator.environ,
        "PYTHONPATH": str(REPO),
        "AIRFLOW_HOME": str(rundir / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{rundir / 'airflow' / 'airflow.db'}",
    }
    out_file = rundir / "result.json"
    with open(rundir / "child.log", "w") as child_log:
        child = subprocess.Popen(
            [
                args.python,
                str(HERE / "_fleet_child.py"),
                f"--impl={impl}",
                f"--service={args.service}",
                f"--arn-file={arn_file}",
                f"--out={out_file}",
                f"--waiter-delay={args.waiter_delay}",
                f"--max-seconds={args.max_seconds}",
                *(
                    [f"--profile={args.profile / f'{impl}-{n}-{int(time.time())}.pstats'}"]
                    if args.profile
                    else []
                ),
            ],
            stdout=subprocess.PIPE,
            stderr=child_log,
            text=True,
            env=env,
            cwd=rundir,
        )
        try:
            read_json_line(child.stdout, 180, f"{impl} child")  # type: ignore[arg-type]  # fleet started
            read_json_line(child.stdout, args.max_seconds + 60, f"{impl} child")  # type: ignore[arg-type]
            child.wait(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    if child.returncode != 0:
        raise RuntimeError(f"{impl} child failed ({child.returncode}); see {rundir / 'child.log'}")
    report = emulator.ask("report")
    if args.service == _fleet_glue_logs.SERVICE:
        report.update(emulator.ask(f"{args.service}-report", written_file=str(rundir / "written.txt")))
    (rundir / "server.json").write_text(json.dumps(report))
    child_result = json.loads(out_file.read_text())
    row = summarise(child_result, report)
    if args.service == _fleet_glue_logs.SERVICE:
        _fleet_glue_logs.summarise(row, child_result, rundir, report)
    # The 1-minute load average when the fleet ends: on a shared machine it says how far the
    # figures of this run are from a quiet machine's.
    return {**row, "load_1m": os.getloadavg()[0]}


def summarise(child: dict[str, Any], server: dict[str, Any]) -> dict[str, Any]:
    n = child["n"]
    start = child["fleet_start"]
    execs = server["executions"]
    events = child["events"]
    first_polls = [rec["polls"][0] - start for rec in execs.values() if rec["polls"]]
    all_first = max(first_polls) if len(first_polls) == n else None
    steady_from = start + all_first if all_first is not None else float("inf")

    lag_startup = [lag * 1000 for t, lag in child["lag_samples"] if t < steady_from]
    lag_steady = [lag * 1000 for t, lag in child["lag_samples"] if t >= steady_from]

    ok = [arn for arn, ev in events.items() if ev["status"] == "success"]
    timed = [arn for arn in ok if arn in execs and execs[arn]["stop_date"] is not None]
    detection = [events[arn]["t"] - execs[arn]["stop_date"] for arn in timed]
    seen = [execs[arn]["first_final_poll"] - execs[arn]["stop_date"] for arn in timed]
    intervals = [
        (rec["polls"][-1] - rec["polls"][0]) / (len(rec["polls"]) - 1)
        for rec in execs.values()
        if len(rec["polls"]) > 1
    ]
    per_wait = [len(execs[arn]["polls"]) for arn in ok if arn in execs]
    # Status reads the emulator recorded per resource (DescribeExecution; GetJobRun; DescribeStep or
    # a ListSteps naming the step).
    describes = sum(len(rec["polls"]) for rec in execs.values())
    peak_kb = child["hwm_kb_peak"]
    base_kb = child["rss_kb_baseline"]
    return {
        "impl": child["impl"],
        "n": n,
        "completed": len(ok),
        "other_events": sorted({ev["status"] for ev in events.values()} - {"success"}),
        "timed_out": child["timed_out"],
        "import_s": child["import_seconds"],
        "baseline_mb": base_kb / 1024,
        "baseline_hwm_mb": child["hwm_kb_baseline"] / 1024,
        "peak_mb": peak_kb / 1024,
        "end_rss_mb": child["rss_kb_end"] / 1024,
        "per_trigger_mb": (peak_kb - base_kb) / 1024 / n,
        "first_poll_min_s": min(first_polls, default=None),
        "first_poll_p50_s": percentile(first_polls, 50),
        "all_first_polls_s": all_first,
        "polled": len(first_polls),
        "lag_startup_p50_ms": percentile(lag_startup, 50),
        "lag_startup_p99_ms": percentile(lag_startup, 99),
        "lag_startup_max_ms": max(lag_startup, default=None),
        "lag_steady_p50_ms": percentile(lag_steady, 50),
        "lag_steady_p99_ms": percentile(lag_steady, 99),
        "lag_steady_max_ms": max(lag_steady, default=None),
        "lag_steady_samples": len(lag_steady),
        "describes": describes,
        "loop_cpu_s": child.get("loop_cpu_seconds"),
        "gc_full_max_ms": max((p[2] * 1000 for p in child.get("gc_pauses", []) if p[1] == 2), default=None),
        "gc_full_count": sum(1 for p in child.get("gc_pauses", []) if p[1] == 2),
        "loop_cpu_ms_per_call": (
            child["loop_cpu_seconds"] * 1000 / sum(server["actions"].values())
            if child.get("loop_cpu_seconds") is not None and sum(server["actions"].values())
            else None
        ),
        "actions": server["actions"],
        "calls_per_wait": describes / len(ok) if ok else None,
        "calls_per_wait_se": stderr(per_wait),
        "requests_per_wait": sum(server["actions"].values()) / len(ok) if ok else None,
        "poll_interval_s": statistics.fmean(intervals) if intervals else None,
        "detect_p50_s": percentile(detection, 50),
        "detect_p99_s": percentile(detection, 99),
        "detect_mean_s": statistics.fmean(detection) if detection else None,
        "detect_mean_se": stderr(detection),
        "seen_by_server_mean_s": statistics.fmean(seen) if seen else None,
        "run_s": child["all_events"] - start,
    }


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from repeated runs: the median of every number (its min and max in ``spread``),
    the first run's other values."""
    row: dict[str, Any] = {**runs[0], "runs": len(runs), "spread": {}}
    for key, value in runs[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            values = [run[key] for run in runs if isinstance(run.get(key), int | float)]
            row[key] = statistics.median(values) if values else None
            if len(values) > 1:
                row["spread"][key] = (min(values), max(values))
    row["n"] = runs[0]["n"]
    return row


# -- report ---------------------------------------------------------------------------------------
def fmt(value: Any, spec: str = ".2f") -> str:
    if value is None:
        return "-"
    return format(round(value) if spec == "d" else value, spec)


COLUMNS: list[tuple[str, str | tuple[str, str], str]] = [
    ("impl", "impl", "s"),
    ("N", "n", "d"),
    ("ok", "completed", "d"),
    ("peak RSS MB", "peak_mb", ".0f"),
    ("RSS/trigger MB", "per_trigger_mb", ".3f"),
    ("first poll p50 s", "first_poll_p50_s", ".1f"),
    ("all first polls s", "all_first_polls_s", ".1f"),
    ("lag p50/p99 start-up ms", ("lag_startup_p50_ms", "lag_startup_p99_ms"), ".0f"),
    ("lag p50/p99 steady ms", ("lag_steady_p50_ms", "lag_steady_p99_ms"), ".0f"),
    ("calls/wait", "calls_per_wait", ".2f"),
    ("load", "load_1m", ".1f"),
    ("loop CPU ms/call", "loop_cpu_ms_per_call", ".2f"),
    ("poll every s", "poll_interval_s", ".2f"),
    ("detect mean/p99 s", ("detect_mean_s", "detect_p99_s"), ".2f"),
]


def table(
    rows: list[dict[str, Any]],
    columns: list[tuple[str, str | tuple[str, str], str]] = COLUMNS,
    spreads: bool = False,
) -> str:
    """A markdown table; ``spreads``: each number as ``median (min-max)`` over the repeats."""

    def cell(row: dict[str, Any], key: str, spec: str) -> str:
        text = fmt(row.get(key), spec)
        low_high = row.get("spread", {}).get(key) if spreads else None
        if not low_high or fmt(low_high[0], spec) == fmt(low_high[1], spec):
            return text
        return f"{text} ({fmt(low_high[0], spec)}-{fmt(low_high[1], spec)})"

    lines = [
        "| " + " | ".join(name for name, _, _ in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for row in rows:
        cells = []
        for _, key, spec in columns:
            if isinstance(key, tuple):
                cells.append(" / ".join(cell(row, k, spec) for k in key))
            else:
                cells.append(cell(row, key, spec))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def marginal(rows: list[dict[str, Any]]) -> list[str]:
    """RSS growth per extra trigger between the smallest and the largest N of each implementation."""
    lines = []
    for impl in IMPLEMENTATIONS:
        mine = sorted((row for row in rows if row["impl"] == impl), key=lambda row: row["n"])
        if len(mine) >= 2 and mine[-1]["n"] > mine[0]["n"]:
            small, large = mine[0], mine[-1]
            per_kb = (large["peak_mb"] - small["peak_mb"]) * 1024 / (large["n"] - small["n"])
            lines.append(f"{impl}: marginal RSS {per_kb:.0f} KB per trigger (N {small['n']} -> {large['n']})")
    return lines


def targets(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's targets, checked on the largest N measured for ``ours``."""
    ours = [row for row in rows if row["impl"] == "ours"]
    if not ours:
        return []
    row = max(ours, key=lambda r: r["n"])

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "NOT met")

    first, lag, stall = row["all_first_polls_s"], row["lag_steady_p99_ms"], row["lag_startup_p99_ms"]
    checks = [
        f"RSS per trigger {row['per_trigger_mb']:.3f} MB <= 0.05 MB: "
        f"{verdict(row['per_trigger_mb'] <= 0.05)}",
        f"all first polls {fmt(first, '.1f')} s <= 3 s: {verdict(None if first is None else first <= 3)}",
        f"steady loop lag p99 {fmt(lag, '.0f')} ms <= 25 ms: {verdict(None if lag is None else lag <= 25)}",
        f"start-up loop stall (lag p99) {fmt(stall, '.0f')} ms <= 300 ms: "
        f"{verdict(None if stall is None else stall <= 300)}",
    ]
    checks.append(calls_verdict(rows, verdict))
    return [f"Targets at N={row['n']} (ours):"] + ["  " + check for check in checks]


def calls_verdict(rows: list[dict[str, Any]], verdict: Callable[[bool | None], str]) -> str:
    """API calls per wait, ours vs amazon, at the largest N where both kept the polling schedule.

    Calls per wait only compare at equal detection latency, i.e. equal poll intervals: when the
    amazon trigger falls behind its schedule (a saturated loop) it makes fewer calls because it
    detects later. "Kept the schedule": mean poll interval within 5% of each other. Equal within
    two standard errors counts as met.
    """
    pairs = []
    for ours in (row for row in rows if row["impl"] == "ours"):
        amazon = next((r for r in rows if r["impl"] == "amazon" and r["n"] == ours["n"]), None)
        if (
            amazon
            and ours["poll_interval_s"]
            and amazon["poll_interval_s"]
            and ours["calls_per_wait"]
            and abs(ours["poll_interval_s"] / amazon["poll_interval_s"] - 1) <= 0.05
        ):
            pairs.append((ours, amazon))
    if not pairs:
        return "calls/wait at equal detection latency: n/a (no N where both kept the polling schedule)"
    ours, amazon = max(pairs, key=lambda pair: pair[0]["n"])
    noise = 2 * ((ours["calls_per_wait_se"] or 0) ** 2 + (amazon["calls_per_wait_se"] or 0) ** 2) ** 0.5
    return (
        f"calls/wait at equal detection latency (N={ours['n']}, poll every {ours['poll_interval_s']:.2f} vs "
        f"{amazon['poll_interval_s']:.2f} s, detection mean {fmt(ours['detect_mean_s'])} vs "
        f"{fmt(amazon['detect_mean_s'])} s): {ours['calls_per_wait']:.2f} vs amazon "
        f"{amazon['calls_per_wait']:.2f} (+/- {noise:.2f}): "
        f"{verdict(ours['calls_per_wait'] <= amazon['calls_per_wait'] + noise)}"
    )


# -- main ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 500, 1000], help="fleet sizes")
    parser.add_argument("--impl", nargs="+", default=["ours", "amazon"], choices=IMPLEMENTATIONS)
    parser.add_argument("--waiter-delay", type=float, default=5.0, help="polling delay D, all impls (s)")
    parser.add_argument(
        "--wait-seconds",
        type=float,
        default=25.0,
        help="W: an execution stays RUNNING W + uniform(0, D) s after its first DescribeExecution",
    )
    parser.add_argument("--max-seconds", type=float, default=400.0, help="give up on a fleet after (s)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per (impl, N); the table shows medians")
    parser.add_argument("--quick", action="store_true", help="smoke run: N=100 only (unless --n), W=10 s")
    parser.add_argument(
        "--moto-describe",
        action="store_true",
        help="serve the status reads (DescribeExecution, GetJobRun, ...) through moto's full request path "
        "(slower; see README)",
    )
    parser.add_argument(
        "--service",
        default="stepfunctions",
        choices=["stepfunctions", "glue", _fleet_glue_logs.SERVICE, "emr-serverless", "emr-steps"],
        help="what the triggers wait for: Step Functions executions, Glue job runs (vs the amazon "
        "provider's GlueJobCompleteTrigger, status polls only), Glue job runs that write log lines "
        "(glue-logs: log forwarding on, vs GlueJobCompleteTrigger(verbose=True)) or EMR (vs "
        "EmrServerlessStartJobTrigger / EmrStepSensorTrigger)",
    )
    parser.add_argument(
        "--log-lines-per-second",
        type=float,
        default=5.0,
        help="glue-logs: output lines each run writes per second while RUNNING",
    )
    parser.add_argument(
        "--error-lines", type=int, default=3, help="glue-logs: lines each run writes to its error stream"
    )
    parser.add_argument("--python", default=sys.executable, help="interpreter for the child processes")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, raw data)")
    parser.add_argument(
        "--profile",
        type=Path,
        help="cProfile each child's event loop and the emulator's request handling (per run) into this "
        "directory (slows both down)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.n = [100] if "--n" not in (argv if argv is not None else sys.argv) else args.n
        args.wait_seconds = min(args.wait_seconds, 10.0)

    if args.service in ("glue", _fleet_glue_logs.SERVICE) and "shared" in args.impl:
        parser.error("--impl shared is a Step Functions reference only")
    if args.service != _fleet_glue_logs.SERVICE and "ours-nologs" in args.impl:
        parser.error("--impl ours-nologs is a glue-logs baseline only")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="trigger-fleet-"))
    print(f"work directory: {workdir}", flush=True)
    emulator = Emulator(
        args.python,
        workdir,
        [
            *(["--moto-describe"] if args.moto_describe else []),
            *([f"--profile-dir={args.profile}"] if args.profile else []),
            f"--service={args.service}",
        ],
    )
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    began = time.time()
    try:
        for n in args.n:
            for repeat in range(args.repeat):
                for impl in args.impl:
                    run_began = time.time()
                    row = run_one(emulator, impl, n, args, workdir)
                    runs.setdefault((impl, n), []).append(row)
                    print(
                        f"{impl:>6} N={n:<5} #{repeat + 1} {time.time() - run_began:5.1f}s: "
                        f"ok {row['completed']}/{n}, peak {row['peak_mb']:.0f} MB, "
                        f"all first polls {fmt(row['all_first_polls_s'], '.1f')} s, "
                        f"steady lag p99 {fmt(row['lag_steady_p99_ms'], '.0f')} ms, "
                        f"calls/wait {fmt(row['calls_per_wait'])}, "
                        f"loop CPU {fmt(row['loop_cpu_ms_per_call'])} ms/call, load {row['load_1m']:.1f}"
                        + (
                            f", child CPU {fmt(row['child_cpu_s'], '.1f')} s, lines once "
                            f"{row['lines_once']}/{row['lines_written']} (repeated {row['lines_repeated']})"
                            if "lines_once" in row
                            else ""
                        ),
                        flush=True,
                    )
    finally:
        emulator.close()
    rows = [median_row(group) for group in runs.values()]

    via = f"DescribeExecution via {'moto' if args.moto_describe else 'fast path'}; "
    via = via if args.service == "stepfunctions" else ""
    print()
    print(
        f"service {args.service}; D (waiter_delay) {args.waiter_delay:g} s; "
        f"waits RUNNING {args.wait_seconds:g} s + U(0, D) "
        f"after their first poll; {'medians of ' + str(args.repeat) + ' runs; ' if args.repeat > 1 else ''}"
        f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}; "
        f"{via}total {time.time() - began:.0f} s"
    )
    if args.service == _fleet_glue_logs.SERVICE:
        print(
            f"glue-logs: {args.log_lines_per_second:g} output lines/s and {args.error_lines} error "
            "line(s) per run while RUNNING; cells are median (min-max) over the repeats"
        )
        print(table(rows, _fleet_glue_logs.COLUMNS, spreads=args.repeat > 1))
        for line in _fleet_glue_logs.verdicts(rows, args.waiter_delay):
            print(line)
    else:
        print(table(rows))
        for line in marginal(rows) + targets(rows):
            print(line)
    every_run = [run for group in runs.values() for run in group]
    for row in every_run:
        if row["other_events"] or row["timed_out"] or row["completed"] != row["n"]:
            print(
                f"WARNING {row['impl']} N={row['n']}: {row['completed']} ok, "
                f"other events {row['other_events']}, {row['timed_out']} timed out"
            )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "runs": every_run}, indent=2))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
