"""Metadata export throughput and memory: ours vs mwaa-dr, side by side, on PostgreSQL.

Fills a dedicated PostgreSQL database (``mwaaops_bench``) at the Airflow 2.11 schema with
schema-valid synthetic history (100k dag runs, 1M task instances, 1M log rows; generate_series
in SQL, so filling takes seconds), then exports to the embedded AWS's S3 with:

- **mwaa-dr** 2.2 (``BaseTable.backup`` of its 2.11 factory: rows -> csv.writer -> smart_open),
  installed from PyPI into a scratch virtualenv layered on the Airflow 2.11 venv;
- **ours** as the ``mwaaops metadata export`` command runs it (no Airflow import), and
- **ours in a task**: the same with Airflow and its models imported first, as in a worker.

Each export runs in a fresh process, which reports its own peak RSS (``VmHWM``). Then the task_instance
table is doubled to 2M rows and measured again, and finally 10k new task instances are added and
an incremental export of every default table is timed. Run it with the Airflow 2.11 venv:

    .venv-airflow2/bin/python benchmarks/metadata_export.py            # ~8 min on 2 cores
    .venv-airflow2/bin/python benchmarks/metadata_export.py --json out.json

PostgreSQL: ``MWAAOPS_POSTGRES_URL`` (default postgresql://postgres@127.0.0.1:5432/test) names
the server; the benchmark database is dropped and re-created.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CHILD = HERE / "_metadata_child.py"
BENCH_DB = "mwaaops_bench"
BUCKET = "bench"
MWAADR_VERSION = "2.2.0"
DEFAULT_MWAADR_VENV = Path.home() / ".cache" / "airflow-provider-mwaaops" / f"mwaadr-{MWAADR_VERSION}-venv"

PICKLED_EMPTY_DICT = "decode('80057d942e', 'hex')"  # pickle.dumps({}, protocol=5): executor_config, conf

FILL_DAG_RUNS = f"""
INSERT INTO dag_run (dag_id, queued_at, execution_date, start_date, end_date, state, run_id, run_type,
    external_trigger, conf, data_interval_start, data_interval_end, last_scheduling_decision, dag_hash,
    log_template_id, updated_at, clear_number)
SELECT 'bench_dag_' || mod(g, 10), ts - interval '1 minute', ts, ts, ts + interval '4 minutes',
    CASE WHEN mod(g, 17) = 0 THEN 'failed' ELSE 'success' END,
    'scheduled__' || to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || '+00:00', 'scheduled',
    false, {PICKLED_EMPTY_DICT}, ts - interval '5 minutes', ts, ts + interval '4 minutes', md5(g::text),
    (SELECT max(id) FROM log_template), {{updated}}, 0
FROM (SELECT g, timestamptz '2024-01-01 00:00:00+00' + (g / 10) * interval '5 minutes' AS ts
      FROM generate_series(%(first)s, %(last)s) AS g) AS s
"""

FILL_TASK_INSTANCES = f"""
INSERT INTO task_instance (task_id, dag_id, run_id, map_index, start_date, end_date, duration, state,
    try_number, max_tries, hostname, unixname, job_id, pool, pool_slots, queue, priority_weight, operator,
    queued_dttm, queued_by_job_id, pid, executor, executor_config, updated_at, external_executor_id,
    task_display_name)
SELECT 'task_' || t, dr.dag_id, dr.run_id, -1, dr.start_date + t * interval '20 seconds',
    dr.start_date + t * interval '20 seconds' + (10 + mod(dr.id + t, 50)) * interval '1 second',
    10 + mod(dr.id + t, 50) + 0.125, CASE WHEN mod(dr.id + t, 23) = 0 THEN 'failed' ELSE 'success' END,
    1 + mod(dr.id + t, 2), 1, 'worker-' || mod(t, 4) || '.ip-10-0-0-1.ec2.internal', 'airflow', NULL,
    'default_pool', 1, 'default', 1, 'PythonOperator', dr.start_date, 1, 1000 + t, NULL,
    {PICKLED_EMPTY_DICT}, {{updated}}, 'celery-' || md5(dr.id::text || t::text), 'task_' || t
FROM dag_run dr CROSS JOIN generate_series(%(first)s, %(last)s) AS t
WHERE dr.id BETWEEN %(run_from)s AND %(run_to)s
"""

FILL_LOG = """
INSERT INTO log (dttm, dag_id, task_id, map_index, event, execution_date, run_id, owner, extra, try_number)
SELECT timestamptz '2024-01-01 00:00:00+00' + g * interval '3 seconds', 'bench_dag_' || mod(g, 10),
    'task_' || mod(g, 10), -1, (ARRAY['running', 'success', 'failed', 'cli_task_run'])[1 + mod(g, 4)],
    timestamptz '2024-01-01 00:00:00+00' + (g / 100) * interval '5 minutes', 'scheduled__x', 'airflow',
    '{"host_name": "worker-1.ip-10-0-0-1.ec2.internal", "full_command": "[''airflow'', ''tasks'', ''run'']"}',
    1
FROM generate_series(%(first)s, %(last)s) AS g
"""


# -- database ---------------------------------------------------------------------------------------
def _admin():
    from airflow_provider_mwaaops.testing import postgres

    return postgres


def create_bench_db(scratch: Path) -> str:
    pg = _admin()
    pg.check_available()
    template = pg.migrated_template(scratch / "template-home")
    conn = pg._connect(pg.admin_url())
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (BENCH_DB,)
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
            cur.execute(f'CREATE DATABASE "{BENCH_DB}" TEMPLATE "{template}"')
    finally:
        conn.close()
    return pg.with_database(pg.admin_url(), BENCH_DB, driver="psycopg2")


FRESH_COUNTS = {"dag_run": 100_000, "task_instance": 1_000_000, "log": 1_000_000}


def reusable_bench_db() -> str | None:
    """The benchmark DB's URL if it is exactly as :func:`fill` left it, else ``None``."""
    pg = _admin()
    url = pg.with_database(pg.admin_url(), BENCH_DB, driver="psycopg2")
    try:
        counts = {t: count(url, t) for t in FRESH_COUNTS}
    except Exception:
        return None
    return url if counts == FRESH_COUNTS else None


def run_sql(url: str, sql: str, params: dict[str, Any] | None = None) -> Any:
    import psycopg2

    conn = psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params or {})
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def count(url: str, table: str) -> int:
    return int(run_sql(url, f"SELECT count(*) FROM {table}")[0][0])


def fill(url: str) -> None:
    start = time.perf_counter()
    run_sql(
        url, FILL_DAG_RUNS.replace("{updated}", "ts + interval '5 minutes'"), {"first": 0, "last": 99_999}
    )
    add_task_instances(url, 0, 9, 1, 10**9, updated="dr.end_date")
    run_sql(url, FILL_LOG, {"first": 0, "last": 999_999})
    run_sql(url, "VACUUM ANALYZE")
    print(
        f"filled in {time.perf_counter() - start:.0f} s: "
        + ", ".join(f"{t} {count(url, t):,}" for t in ("dag_run", "task_instance", "log"))
    )


def add_task_instances(url: str, first: int, last: int, run_from: int, run_to: int, updated: str) -> None:
    run_sql(
        url,
        FILL_TASK_INSTANCES.replace("{updated}", updated),
        {"first": first, "last": last, "run_from": run_from, "run_to": run_to},
    )


# -- mwaa-dr's environment -------------------------------------------------------------------------
def ensure_mwaadr_venv(path: Path) -> Path:
    """A venv with mwaa-dr (and smart_open) whose other packages are the Airflow 2.11 venv's."""
    python = path / "bin" / "python"
    if python.exists():
        probe = subprocess.run(
            [str(python), "-c", "import mwaa_dr, smart_open, airflow"], capture_output=True
        )
        if probe.returncode == 0:
            return python
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    target = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # Layer on this (Airflow 2.11) venv: mwaa-dr runs against exactly the Airflow we benchmark.
    Path(target, "_airflow211_base.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", f"mwaa-dr=={MWAADR_VERSION}", "smart_open"],
        check=True,
    )
    return python


# -- measured runs ----------------------------------------------------------------------------------
def measure(python: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [python, str(CHILD), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed ({proc.returncode}):\n{err.decode()[-4000:]}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["wall_seconds"] = wall
    return result


class Bench:
    def __init__(self, url: str, env: dict[str, str], mwaadr_python: str, emulator: Any) -> None:
        self.url = url
        self.env = env
        self.mwaadr_python = mwaadr_python
        self.emulator = emulator
        self.results: list[dict[str, Any]] = []

    def _clear_bucket(self) -> None:
        s3 = self.emulator.client("s3")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys})

    def run(self, table: str, label: str) -> None:
        rows = count(self.url, table)
        run_sql(self.url, f"SELECT count(*) FROM {table}")  # warm the cache alike for everyone
        for impl in ("mwaa-dr", "ours", "ours in a task"):
            self._clear_bucket()
            if impl == "mwaa-dr":
                r = measure(self.mwaadr_python, ["mwaadr", BUCKET, f"mwaadr/{label}", table], self.env)
            else:
                args = [
                    "ours",
                    self.url,
                    f"s3://{BUCKET}/ours",
                    f"{label}-{impl.replace(' ', '-')}",
                    "full",
                    table,
                ]
                if impl == "ours in a task":
                    args.append("--import-airflow")
                r = measure(sys.executable, args, self.env)
                assert r["rows"].get(table) == rows, (r, rows)
            r.update(table=table, rows=rows, impl=impl, label=label, rows_per_s=rows / r["seconds"])
            self.results.append(r)
            print(
                f"  {table:<14} {rows:>9,} rows  {impl:<15} {r['rows_per_s']:>9,.0f} rows/s  "
                f"peak RSS {r['peak_rss_mb']:>5.0f} MB  {r['seconds']:>6.1f} s  "
                f"out {r['bytes'] / 1e6:>6.1f} MB",
                flush=True,
            )

    def incremental(self) -> dict[str, Any]:
        self._clear_bucket()
        base = f"s3://{BUCKET}/chain"
        full = measure(sys.executable, ["ours", self.url, base, "chain-0", "full", "default"], self.env)
        print(
            f"  full export of every default table: {sum(full['rows'].values()):,} rows "
            f"in {full['seconds']:.1f} s "
            f"(peak RSS {full['peak_rss_mb']:.0f} MB)"
        )
        last_run = int(run_sql(self.url, "SELECT max(id) FROM dag_run")[0][0])
        run_sql(
            self.url,
            FILL_DAG_RUNS.replace("{updated}", "now()"),
            {"first": 200_000, "last": 200_999},  # 1,000 new runs (new dates), updated now
        )
        add_task_instances(self.url, 0, 9, last_run + 1, 10**9, updated="now()")  # 10,000 task instances
        inc = measure(sys.executable, ["ours", self.url, base, "chain-1", "incremental", "default"], self.env)
        print(
            f"  incremental after 10k new task instances: {inc['rows']} in {inc['seconds']:.2f} s "
            f"(process wall {inc['wall_seconds']:.2f} s, peak RSS {inc['peak_rss_mb']:.0f} MB)"
        )
        return {"full": full, "incremental": inc}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mwaadr-venv", type=Path, default=DEFAULT_MWAADR_VENV)
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument(
        "--reuse-db",
        action="store_true",
        help=f"keep {BENCH_DB} if it holds exactly the freshly filled rows (skips the fill)",
    )
    args = parser.parse_args()

    import airflow  # the venv must be Airflow 2.11's: mwaa-dr supports Airflow 2 only

    from airflow_provider_mwaaops.testing.emulator import AwsEmulator

    if not airflow.__version__.startswith("2."):
        parser.error(
            f"run with the Airflow 2.11 venv (.venv-airflow2/bin/python), not Airflow {airflow.__version__}"
        )
    mwaadr_python = str(ensure_mwaadr_venv(args.mwaadr_venv))
    scratch = Path(tempfile.mkdtemp(prefix="mwaaops-bench-"))
    url = reusable_bench_db() if args.reuse_db else None
    if url is None:
        url = create_bench_db(scratch)
        print(f"benchmark database {BENCH_DB} (Airflow {airflow.__version__} schema)")
        fill(url)
    else:
        print(f"benchmark database {BENCH_DB} reused")
    with AwsEmulator() as emulator:
        emulator.client("s3").create_bucket(Bucket=BUCKET)
        env = {
            **os.environ,
            **emulator.environ(),
            "AIRFLOW_HOME": str(scratch / "airflow-home"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PYTHONPATH": str(HERE.parent),
        }
        bench = Bench(url, env, mwaadr_python, emulator)
        print("1M task instances, 1M log rows, 100k dag runs:")
        for table in ("task_instance", "log", "dag_run"):
            bench.run(table, "1m")
        add_task_instances(url, 10, 19, 1, 10**9, updated="dr.end_date")
        run_sql(url, "VACUUM ANALYZE task_instance")
        print("2M task instances:")
        bench.run("task_instance", "2m")
        print("incremental:")
        chain = bench.incremental()
    if args.json:
        args.json.write_text(json.dumps({"runs": bench.results, "chain": chain}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
