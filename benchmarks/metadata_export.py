"""Metadata export throughput and memory: ours vs mwaa-dr and the physical limit, on PostgreSQL.

Fills a dedicated PostgreSQL database (``mwaaops_bench``) at the Airflow 2.11 schema with
schema-valid synthetic history (by default 100k dag runs, 1M task instances, 1M log rows;
generate_series in SQL, so filling takes seconds), then exports each table to S3 with:

- **limit**: ``COPY (SELECT * FROM table) TO STDOUT`` into ``/dev/null``, the fastest any client
  can read the rows out of this server (the physical limit of the run);
- **mwaa-dr** 2.2 (``BaseTable.backup`` of its 2.11 factory: rows -> csv.writer -> smart_open),
  installed from PyPI into a scratch virtualenv layered on the Airflow 2.11 venv;
- **ours** as the ``mwaaops metadata export`` command runs it (no Airflow import), and
- **ours in a task**: the same with Airflow and its models imported first, as in a worker.

Fair conditions: S3 is moto's server in **its own process** (not the driver's: mwaa-dr writes 5-10x
more bytes than ours, and an S3 in the driver would charge that CPU to the driver, not to the
implementation), every export runs in a fresh process that reports its own peak RSS (``VmHWM``),
the order of the implementations rotates from one repeat to the next, and every implementation's
row count is checked (mwaa-dr's by reading back its CSV). With ``--repeat N`` each figure is the
median of N runs, printed with its spread (min-max); "x mwaa-dr" and "% of the limit" are medians
of the per-repeat ratios.

With ``--masking`` it measures what secret masking (issue 17) did to the export instead, three
ways rotated in each repeat, as the command runs it and in a task: the export **before issue 17**
(the package as it was at ``--before-rev``, extracted from git into the scratch directory and put
first on the child's ``PYTHONPATH``: no masking, no chunk pipeline), and today's export with
masking **off** (``mask_secrets=False``: what masking alone costs) and **on** (the default). The
database also holds 100 variables and 20 connections (password and an ``api_key`` extra, stored
unencrypted) and 1 % of its ``log`` rows are ``variables set`` audit records carrying a variable's
value. Ratios are medians of the per-repeat ratios:

    .venv-airflow2/bin/python benchmarks/metadata_export.py --masking --repeat 3

Then the task_instance table is doubled and measured again, and finally 10k new task instances
are added and an incremental export of every default table is timed (once). Run it with the
Airflow 2.11 venv, on a quiet machine for figures worth recording:

    .venv-airflow2/bin/python benchmarks/metadata_export.py --repeat 3           # the recorded run
    .venv-airflow2/bin/python benchmarks/metadata_export.py --dag-runs 2000 --repeat 2   # smoke, ~2 min

PostgreSQL: ``MWAAOPS_POSTGRES_URL`` (default postgresql://postgres@127.0.0.1:5432/test) names
the server; the benchmark database is dropped and re-created.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CHILD = HERE / "_metadata_child.py"
#: The benchmark database; ``MWAAOPS_BENCH_DB`` names another (one per engineer on a shared server).
BENCH_DB = os.environ.get("MWAAOPS_BENCH_DB", "mwaaops_bench")
BUCKET = "bench"
IMPLEMENTATIONS = ("limit", "mwaa-dr", "ours", "ours in a task")
#: ``--masking``: the export before issue 17 (older code), and today's with masking off and on, as
#: the command runs it and in a task (Airflow already imported).
LEGACY, OFF, ON = "before issue 17", "masking off", "masking on"
#: ``--masking``: the exports measured ("default": every default table, the whole environment).
MASKING_TABLES = ("task_instance", "log", "dag_run", "default")
LEGACY_TASK, OFF_TASK, ON_TASK = (f"in a task, {impl}" for impl in (LEGACY, OFF, ON))
MASKING_IMPLEMENTATIONS = (LEGACY, OFF, ON, LEGACY_TASK, OFF_TASK, ON_TASK)
#: The last commit before issue 17's first (``fe81406``, masking in the export).
BEFORE_ISSUE_17 = "fe81406^"
#: Runs the embedded AWS in a process of its own and prints its environment; stops when stdin closes.
S3_SERVER = (
    "import json, sys\n"
    "from airflow_provider_mwaaops.testing.emulator import AwsEmulator\n"
    "with AwsEmulator() as aws:\n"
    "    print(json.dumps(aws.environ()), flush=True)\n"
    "    sys.stdin.read()\n"
)
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


FILL_SECRETS = """
INSERT INTO variable (key, val, is_encrypted)
SELECT 'bench_var_' || g, 'bench-secret-value-' || md5(g::text), false FROM generate_series(1, 100) AS g
ON CONFLICT DO NOTHING;
INSERT INTO connection (conn_id, conn_type, host, login, password, extra, is_encrypted, is_extra_encrypted)
SELECT 'bench_conn_' || g, 'postgres', 'db' || g || '.example', 'etl', 'bench-pw-' || md5(g::text),
    '{"api_key": "bench-key-' || md5(g::text) || '", "sslmode": "require"}', false, false
FROM generate_series(1, 20) AS g
ON CONFLICT DO NOTHING;
UPDATE log SET event = 'cli_variables_set', extra = json_build_object(
    'host_name', 'worker-1',
    'full_command', format('[%%L, %%L, %%L, %%L, %%L]', 'airflow', 'variables', 'set',
        'bench_var_' || (1 + mod(id, 100)), 'bench-secret-value-' || md5((1 + mod(id, 100))::text))
)::text
WHERE mod(id, 100) = 0;
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


TASKS_PER_RUN = 10  # task instances per dag run, and log rows per dag run


def fresh_counts(dag_runs: int) -> dict[str, int]:
    return {"dag_run": dag_runs, "task_instance": TASKS_PER_RUN * dag_runs, "log": TASKS_PER_RUN * dag_runs}


def reusable_bench_db(dag_runs: int) -> str | None:
    """The benchmark DB's URL if it is exactly as :func:`fill` left it, else ``None``."""
    pg = _admin()
    url = pg.with_database(pg.admin_url(), BENCH_DB, driver="psycopg2")
    try:
        counts = {t: count(url, t) for t in fresh_counts(dag_runs)}
    except Exception:
        return None
    return url if counts == fresh_counts(dag_runs) else None


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


def fill(url: str, dag_runs: int) -> None:
    start = time.perf_counter()
    run_sql(
        url,
        FILL_DAG_RUNS.replace("{updated}", "ts + interval '5 minutes'"),
        {"first": 0, "last": dag_runs - 1},
    )
    add_task_instances(url, 0, TASKS_PER_RUN - 1, 1, 10**9, updated="dr.end_date")
    run_sql(url, FILL_LOG, {"first": 0, "last": TASKS_PER_RUN * dag_runs - 1})
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


# -- the S3 server ----------------------------------------------------------------------------------
@contextmanager
def s3_server() -> Iterator[dict[str, str]]:
    """The embedded AWS in a process of its own; yields the environment that points clients at it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", S3_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the S3 server did not start (exit {proc.wait()})")
        yield json.loads(line)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def s3_client(environ: dict[str, str]) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=environ["AWS_ENDPOINT_URL"],
        region_name=environ["AWS_DEFAULT_REGION"],
        aws_access_key_id=environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environ["AWS_SECRET_ACCESS_KEY"],
    )


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


def legacy_tree(rev: str, scratch: Path) -> Path:
    """The package as it was at ``rev``, extracted from this checkout's git history."""
    repo = HERE.parent
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if commit.returncode != 0:
        raise SystemExit(f"--masking compares with {rev} of git history, not found: {commit.stderr.strip()}")
    tree = scratch / f"package-{commit.stdout.strip()[:10]}"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", commit.stdout.strip(), "airflow_provider_mwaaops"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    print(f"before issue 17: the package at {rev} ({commit.stdout.strip()[:10]}) in {tree}")
    return tree


def rotated(items: tuple[str, ...], by: int) -> list[str]:
    """The implementations in the order of repeat ``by``: each one goes first as often as the others."""
    shift = by % len(items)
    return list(items[shift:] + items[:shift])


class Bench:
    def __init__(
        self,
        url: str,
        env: dict[str, str],
        mwaadr_python: str,
        repeat: int,
        dag_runs: int,
        legacy_tree: Path | None = None,
    ) -> None:
        self.url = url
        self.legacy_tree = legacy_tree
        self.dag_runs = dag_runs
        self.env = env
        self.mwaadr_python = mwaadr_python
        self.repeat = repeat
        self.s3 = s3_client(env)
        self.results: list[dict[str, Any]] = []

    def _clear_bucket(self) -> None:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys})

    def _export(self, impl: str, table: str, label: str, attempt: int) -> dict[str, Any]:
        if impl == "limit":
            return measure(sys.executable, ["limit", self.url, table], self.env)
        if impl == "mwaa-dr":
            prefix = f"mwaadr/{label}-{attempt}"
            return measure(self.mwaadr_python, ["mwaadr", BUCKET, prefix, table], self.env)
        export_id = f"{label}-{''.join(c if c.isalnum() else '-' for c in impl)}-{attempt}"
        args = ["ours", self.url, f"s3://{BUCKET}/ours", export_id, "full", table]
        if impl in ("ours in a task", LEGACY_TASK, OFF_TASK, ON_TASK):
            args.append("--import-airflow")
        if impl in (OFF, OFF_TASK):
            args.append("--no-masking")
        if impl not in (LEGACY, LEGACY_TASK):
            return measure(sys.executable, args, self.env)
        assert self.legacy_tree is not None
        legacy_env = {**self.env, "PYTHONPATH": str(self.legacy_tree)}
        result = measure(sys.executable, [*args, "--legacy"], legacy_env)
        if not result["package"].startswith(str(self.legacy_tree)):
            raise AssertionError(f"the export before issue 17 ran today's package: {result['package']}")
        return result

    def _check_rows(self, impl: str, table: str, result: dict[str, Any]) -> None:
        """Every table the implementation wrote holds exactly the rows it should."""
        if table == "default":
            written_by_table = dict(result["rows"])
        else:
            written = result["rows"] if isinstance(result["rows"], int) else result["rows"].get(table, 0)
            written_by_table = {table: written}
        for name, written in written_by_table.items():
            expected = self._expected_rows(name, result)
            if written != expected:
                raise AssertionError(f"{impl} wrote {written:,} rows of {name}, expected {expected:,}")

    def _expected_rows(self, table: str, result: dict[str, Any]) -> int:
        """Rows the implementation should have written: mwaa-dr may filter a table (its export_filter)."""
        export_filter = result.get("export_filter")
        where = f" WHERE {export_filter}" if export_filter else ""
        return int(run_sql(self.url, f"SELECT count(*) FROM {table}{where}")[0][0])

    def run(self, table: str, label: str, implementations: tuple[str, ...] = IMPLEMENTATIONS) -> None:
        """Each implementation exports ``table`` (``"default"``: every default table, one export)."""
        rows = count(self.url, table) if table != "default" else None
        if rows is not None:
            run_sql(self.url, f"SELECT count(*) FROM {table}")  # warm the cache alike for everyone
        for attempt in range(self.repeat):
            for impl in rotated(implementations, attempt):
                self._clear_bucket()
                r = self._export(impl, table, label, attempt)
                self._check_rows(impl, table, r)
                total = rows if rows is not None else sum(r["rows"].values())
                r.update(table=table, rows=total, impl=impl, label=label, attempt=attempt)
                r["rows_per_s"] = total / r["seconds"]
                self.results.append(r)
                print(
                    f"  [{attempt + 1}/{self.repeat}] {table:<14} {total:>9,} rows  {impl:<15} "
                    f"{r['rows_per_s']:>10,.0f} rows/s  peak RSS {r['peak_rss_mb']:>5.0f} MB  "
                    f"{r['seconds']:>6.1f} s  out {r['bytes'] / 1e6:>7.1f} MB",
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
            # 1,000 new runs, on dates after the filled ones, updated now
            {"first": 2 * self.dag_runs, "last": 2 * self.dag_runs + 999},
        )
        # 10,000 task instances
        add_task_instances(self.url, 0, TASKS_PER_RUN - 1, last_run + 1, 10**9, updated="now()")
        inc = measure(sys.executable, ["ours", self.url, base, "chain-1", "incremental", "default"], self.env)
        print(
            f"  incremental after 10k new task instances: {inc['rows']} in {inc['seconds']:.2f} s "
            f"(process wall {inc['wall_seconds']:.2f} s, peak RSS {inc['peak_rss_mb']:.0f} MB)"
        )
        return {"full": full, "incremental": inc}


# -- the table ----------------------------------------------------------------------------------------
def _spread(values: list[float], fmt: str) -> str:
    """``median (min-max)``; the median alone for a single run."""
    median = format(statistics.median(values), fmt)
    if len(values) == 1:
        return median
    return f"{median} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def summary(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (label, table, implementation): medians and spreads over the repeats."""
    rows = []
    groups = sorted({(r["label"], r["table"]) for r in results}, key=lambda g: (g[0], g[1]))
    for label, table in groups:
        runs = [r for r in results if (r["label"], r["table"]) == (label, table)]
        per_attempt = {(r["impl"], r["attempt"]): r for r in runs}
        attempts = sorted({r["attempt"] for r in runs})
        for impl in IMPLEMENTATIONS:
            mine = [per_attempt[(impl, a)] for a in attempts if (impl, a) in per_attempt]
            if not mine:
                continue
            speed = [r["rows_per_s"] for r in mine]
            versus = [
                r["rows_per_s"] / per_attempt[("mwaa-dr", r["attempt"])]["rows_per_s"]
                for r in mine
                if ("mwaa-dr", r["attempt"]) in per_attempt
            ]
            of_limit = [
                100 * r["rows_per_s"] / per_attempt[("limit", r["attempt"])]["rows_per_s"]
                for r in mine
                if ("limit", r["attempt"]) in per_attempt
            ]
            rows.append(
                {
                    "table": f"{table} ({_rows_label(mine[0]['rows'])})",
                    "implementation": impl,
                    "rows/s": _spread(speed, ",.0f"),
                    "x mwaa-dr": _spread(versus, ".1f") + "x" if versus and impl != "limit" else "",
                    "% of the limit": _spread(of_limit, ".0f") + " %" if of_limit else "",
                    "peak RSS MB": _spread([r["peak_rss_mb"] for r in mine], ".0f"),
                    "output MB": f"{statistics.median(r['bytes'] for r in mine) / 1e6:.1f}",
                    "runs": len(mine),
                }
            )
    return rows


def masking_summary(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per table and way of running: before issue 17, masking off and on side by side."""
    rows = []
    ways = (("command", LEGACY, OFF, ON), ("in a task", LEGACY_TASK, OFF_TASK, ON_TASK))
    tables = dict.fromkeys(r["table"] for r in results)
    for table, (how, legacy, off, on) in [(t, w) for t in tables for w in ways]:
        runs = {(r["impl"], r["attempt"]): r for r in results if r["table"] == table}
        attempts = sorted({a for _, a in runs})
        was, bare, now = ([runs[(impl, a)] for a in attempts] for impl in (legacy, off, on))

        def ratio(over: list[dict[str, Any]], under: list[dict[str, Any]]) -> str:
            pairs = zip(over, under, strict=True)
            return _spread([100 * a["rows_per_s"] / b["rows_per_s"] for a, b in pairs], ".1f")

        rows.append(
            {
                "table": f"{_table_label(table)} ({_rows_label(was[0]['rows'])})",
                "run as": how,
                "before issue 17: rows/s": _spread([r["rows_per_s"] for r in was], ",.0f"),
                "masking off: rows/s": _spread([r["rows_per_s"] for r in bare], ",.0f"),
                "masking on: rows/s": _spread([r["rows_per_s"] for r in now], ",.0f"),
                "on / before issue 17": ratio(now, was) + " %",
                "on / off": ratio(now, bare) + " %",
                "peak RSS MB (before, off, on)": " / ".join(
                    f"{statistics.median(r['peak_rss_mb'] for r in group):.0f}" for group in (was, bare, now)
                ),
                "runs": len(attempts),
            }
        )
    return rows


def _table_label(table: str) -> str:
    return "every default table" if table == "default" else table


def _rows_label(rows: int) -> str:
    return f"{rows / 1e6:.3g}M" if rows >= 1_000_000 else f"{rows / 1e3:.3g}k" if rows >= 1000 else str(rows)


def markdown(rows: list[dict[str, Any]]) -> str:
    columns = list(rows[0]) if rows else []
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mwaadr-venv", type=Path, default=DEFAULT_MWAADR_VENV)
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each measurement (medians of them)")
    parser.add_argument(
        "--dag-runs",
        type=int,
        default=100_000,
        help=f"dag runs to fill ({TASKS_PER_RUN} task instances and {TASKS_PER_RUN} log rows each)",
    )
    parser.add_argument(
        "--masking",
        action="store_true",
        help="measure secret masking: the export without it (before) and with it (after), side by side",
    )
    parser.add_argument(
        "--reuse-db",
        action="store_true",
        help=f"keep {BENCH_DB} if it holds exactly the freshly filled rows (skips the fill)",
    )
    parser.add_argument(
        "--before-rev",
        default=BEFORE_ISSUE_17,
        help=f"with --masking: the git revision of the export before issue 17 (default {BEFORE_ISSUE_17})",
    )
    parser.add_argument(
        "--tables",
        default=",".join(MASKING_TABLES),
        help="with --masking: which exports to measure, comma-separated (default: all of them; "
        "'default' is the whole environment)",
    )
    args = parser.parse_args()
    if args.masking and not set(args.tables.split(",")) <= set(MASKING_TABLES):
        parser.error(f"--tables takes {', '.join(MASKING_TABLES)}")
    if args.repeat < 1 or args.dag_runs < 10:
        parser.error("--repeat must be at least 1 and --dag-runs at least 10")

    import airflow  # the venv must be Airflow 2.11's: mwaa-dr supports Airflow 2 only

    if not airflow.__version__.startswith("2."):
        parser.error(
            f"run with the Airflow 2.11 venv (.venv-airflow2/bin/python), not Airflow {airflow.__version__}"
        )
    mwaadr_python = "" if args.masking else str(ensure_mwaadr_venv(args.mwaadr_venv))
    scratch = Path(tempfile.mkdtemp(prefix="mwaaops-bench-"))
    url = reusable_bench_db(args.dag_runs) if args.reuse_db else None
    if url is None:
        url = create_bench_db(scratch)
        print(f"benchmark database {BENCH_DB} (Airflow {airflow.__version__} schema)")
        fill(url, args.dag_runs)
    else:
        print(f"benchmark database {BENCH_DB} reused")
    with s3_server() as aws:
        env = {
            **os.environ,
            **aws,
            "AIRFLOW_HOME": str(scratch / "airflow-home"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PYTHONPATH": str(HERE.parent),
        }
        legacy = legacy_tree(args.before_rev, scratch) if args.masking else None
        bench = Bench(url, env, mwaadr_python, args.repeat, args.dag_runs, legacy)
        bench.s3.create_bucket(Bucket=BUCKET)
        if args.masking:
            return _masking_run(bench, url, args.json, args.tables.split(","))
        counts = fresh_counts(args.dag_runs)
        print(", ".join(f"{_rows_label(n)} {table}" for table, n in counts.items()) + ":")
        for table in ("task_instance", "log", "dag_run"):
            bench.run(table, "a")
        add_task_instances(url, TASKS_PER_RUN, 2 * TASKS_PER_RUN - 1, 1, 10**9, updated="dr.end_date")
        run_sql(url, "VACUUM ANALYZE task_instance")
        print(f"{_rows_label(2 * counts['task_instance'])} task instances:")
        bench.run("task_instance", "b")
        print("incremental:")
        chain = bench.incremental()
    table = summary(bench.results)
    print()
    print(markdown(table))
    if args.json:
        args.json.write_text(
            json.dumps({"runs": bench.results, "summary": table, "chain": chain}, indent=2, default=str)
        )
    return 0


def _masking_run(bench: Bench, url: str, json_path: Path | None, tables: list[str]) -> int:
    run_sql(url, FILL_SECRETS)
    run_sql(url, "VACUUM ANALYZE")
    secrets = run_sql(url, "SELECT (SELECT count(*) FROM variable), (SELECT count(*) FROM connection)")[0]
    print(
        f"secrets: {secrets[0]} variables, {secrets[1]} connections; 1 % of log rows hold a variable's value"
    )
    for table in tables:
        bench.run(table, "m", MASKING_IMPLEMENTATIONS)
    table = masking_summary(bench.results)
    print()
    print(markdown(table))
    if json_path:
        json_path.write_text(json.dumps({"runs": bench.results, "summary": table}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
