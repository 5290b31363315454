"""Metadata restore throughput and memory: ours vs mwaa-dr's own restore, on PostgreSQL.

Fills a source database at the Airflow 2.11 schema with synthetic history (``--rows`` task
instances and as many log rows, one dag run per 10 task instances; the same SQL as
``metadata_export.py``), backs it up twice (our export as Parquet, mwaa-dr 2.2's ``BaseTable.backup``
as CSV, both to S3 in the emulator's own process), then restores each table into a target database
that holds everything but that table (``TRUNCATE`` before every run):

- **mwaa-dr** 2.2: ``BaseTable.restore`` of its 2.11 factory, i.e. ``COPY table FROM STDIN`` of
  CSV batches read from S3 through smart_open (a batch that hits a duplicate key is skipped);
- **ours**: ``restore_metadata`` as ``mwaaops metadata restore`` runs it: verified manifest and
  checksums, per-row decisions, idempotent writes (on PostgreSQL the bulk path of
  ``metadata/restore/bulk.py``: COPY into a temporary table, one ``INSERT ... SELECT ... ON
  CONFLICT`` per chunk).

Every restore runs in a fresh process that reports its own peak RSS (``VmHWM``) and the time of the
restore call itself; the order rotates from one repeat to the next; the target's row count is
checked after each run. With ``--repeat N`` each figure is the median of N runs with its spread
(min-max); "x mwaa-dr" is the median of the per-repeat ratios. Run with the Airflow 2.11 venv:

    .venv-airflow2/bin/python benchmarks/metadata_restore.py --rows 1000000 --repeat 3   # recorded
    .venv-airflow2/bin/python benchmarks/metadata_restore.py --rows 20000                 # smoke, ~1 min

PostgreSQL: ``MWAAOPS_POSTGRES_URL`` names the server; ``MWAAOPS_BENCH_DB`` (default
``bench_restore``) prefixes the two databases (``_src``, ``_dst``), which are dropped and re-created.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from metadata_export import (  # noqa: E402
    BUCKET,
    DEFAULT_MWAADR_VENV,
    TASKS_PER_RUN,
    _rows_label,
    _spread,
    count,
    ensure_mwaadr_venv,
    fill,
    markdown,
    rotated,
    run_sql,
    s3_client,
    s3_server,
)

CHILD = HERE / "_restore_child.py"
PREFIX = os.environ.get("MWAAOPS_BENCH_DB", "bench_restore")
SOURCE_DB, TARGET_DB = f"{PREFIX}_src", f"{PREFIX}_dst"
IMPLEMENTATIONS = ("mwaa-dr", "ours")
TABLES = ("task_instance", "log")
EXPORT_ID = "bench"


def _recreate(name: str, template: str) -> str:
    from airflow_provider_mwaaops.testing import postgres as pg

    conn = pg._connect(pg.admin_url())
    try:
        with conn.cursor() as cur:
            for db in (name, template):
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db,)
                )
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cur.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        conn.close()
    return pg.with_database(pg.admin_url(), name, driver="psycopg2")


def prepare_databases(scratch: Path, rows: int) -> tuple[str, str]:
    """The filled source and its copy, the target."""
    from airflow_provider_mwaaops.testing import postgres as pg

    pg.check_available()
    source = _recreate(SOURCE_DB, pg.migrated_template(scratch / "template-home"))
    fill(source, rows // TASKS_PER_RUN)
    return source, _recreate(TARGET_DB, SOURCE_DB)


def measure(python: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run([python, str(CHILD), *args], env=env, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args[:2])} failed ({proc.returncode}):\n{proc.stderr.decode()[-4000:]}"
        )
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def backups(source: str, env: dict[str, str], mwaadr_python: str) -> None:
    """Our export (Parquet + manifest) and mwaa-dr's CSV of both tables, in S3."""
    from airflow_provider_mwaaops.metadata.export import run_export
    from airflow_provider_mwaaops.metadata.sinks import open_sink
    from airflow_provider_mwaaops.metadata.sources.database import DatabaseSource

    start = time.perf_counter()
    run_export(DatabaseSource(source), open_sink(f"s3://{BUCKET}/ours"), export_id=EXPORT_ID, tables=TABLES)
    for table in TABLES:
        measure(
            mwaadr_python,
            ["backup", BUCKET, "mwaadr", table],
            {**env, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": source},
        )
    print(f"backed up by both in {time.perf_counter() - start:.0f} s", flush=True)


def restore_once(
    impl: str, table: str, target: str, env: dict[str, str], mwaadr_python: str
) -> dict[str, Any]:
    run_sql(target, f"TRUNCATE {table} CASCADE")
    run_sql(target, f"VACUUM ANALYZE {table}")
    run_env = {**env, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": target}
    if impl == "mwaa-dr":
        return measure(mwaadr_python, ["mwaadr", BUCKET, "mwaadr", table], run_env)
    return measure(sys.executable, ["ours", target, f"s3://{BUCKET}/ours", EXPORT_ID, table], run_env)


def summary(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for table in TABLES:
        runs = {(r["impl"], r["attempt"]): r for r in results if r["table"] == table}
        for impl in IMPLEMENTATIONS:
            mine = [r for (i, _), r in sorted(runs.items()) if i == impl]
            versus = [r["rows_per_s"] / runs[("mwaa-dr", r["attempt"])]["rows_per_s"] for r in mine]
            out.append(
                {
                    "table": f"{table} ({_rows_label(mine[0]['rows'])})",
                    "implementation": impl,
                    "rows/s": _spread([r["rows_per_s"] for r in mine], ",.0f"),
                    "x mwaa-dr": _spread(versus, ".2f") + "x",
                    "seconds": _spread([r["seconds"] for r in mine], ".1f"),
                    "peak RSS MB": _spread([r["peak_rss_mb"] for r in mine], ".0f"),
                    "runs": len(mine),
                }
            )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="task instances, and log rows, to restore"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each measurement (medians of them)")
    parser.add_argument("--mwaadr-venv", type=Path, default=DEFAULT_MWAADR_VENV)
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    args = parser.parse_args()
    if args.repeat < 1 or args.rows < 10 * TASKS_PER_RUN:
        parser.error(f"--repeat must be at least 1 and --rows at least {10 * TASKS_PER_RUN}")
    import airflow

    if not airflow.__version__.startswith("2."):
        parser.error(f"run with the Airflow 2.11 venv, not Airflow {airflow.__version__}")
    mwaadr_python = str(ensure_mwaadr_venv(args.mwaadr_venv))
    scratch = Path(tempfile.mkdtemp(prefix="mwaaops-bench-restore-"))
    source, target = prepare_databases(scratch, args.rows)
    results: list[dict[str, Any]] = []
    with s3_server() as aws:
        os.environ.update(aws)
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(scratch / "airflow-home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PYTHONPATH": str(HERE.parent),
        }
        s3_client(aws).create_bucket(Bucket=BUCKET)
        backups(source, env, mwaadr_python)
        for table in TABLES:
            expected = count(source, table)
            for attempt in range(args.repeat):
                for impl in rotated(IMPLEMENTATIONS, attempt):
                    r = restore_once(impl, table, target, env, mwaadr_python)
                    restored = count(target, table)
                    if restored != expected:
                        raise AssertionError(
                            f"{impl} restored {restored:,} rows of {table}, expected {expected:,}"
                        )
                    r.update(table=table, impl=impl, attempt=attempt, rows=expected)
                    r["rows_per_s"] = expected / r["seconds"]
                    results.append(r)
                    print(
                        f"  [{attempt + 1}/{args.repeat}] {table:<14} {expected:>9,} rows  {impl:<8} "
                        f"{r['rows_per_s']:>9,.0f} rows/s  {r['seconds']:>6.1f} s  "
                        f"peak RSS {r['peak_rss_mb']:>4.0f} MB",
                        flush=True,
                    )
    table = summary(results)
    print()
    print(markdown(table))
    if args.json:
        args.json.write_text(json.dumps({"runs": results, "summary": table}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
