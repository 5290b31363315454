"""The recovery drill end to end on the emulator, step by step: what the RTO is made of.

backup (GetEnvironment snapshot to S3 + metadata export of ``--rows`` task instances, as many log
rows and one dag run per 10 task instances) -> recreate (CreateEnvironment from the snapshot,
wait until AVAILABLE) -> restore (every exported table into a fresh, migrated PostgreSQL database
at the Airflow 2.11 schema) -> callback (SendTaskSuccess to a Step Functions execution waiting on
``.waitForTaskToken``, until the execution SUCCEEDED). Each step is timed on its own; the emulator
runs in this process (its CPU counts against the steps that call it: snapshot, create, callback).

What the emulator cannot tell: how long AWS takes to create an environment (the emulator's
CREATING -> AVAILABLE transition is scripted to 1 s) and how long the scheduler-health sensor
waits before it calls a scheduler dead (its window, 5 minutes by default). docs/components/
mwaa-recovery.rst adds those to the measured steps and says which figures are which.

    .venv-airflow2/bin/python benchmarks/recovery_drill.py --rows 1000000
    .venv-airflow2/bin/python benchmarks/recovery_drill.py --rows 20000      # smoke, ~1 min
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from metadata_export import TASKS_PER_RUN, fill  # noqa: E402
from metadata_restore import _recreate  # noqa: E402

PREFIX = os.environ.get("MWAAOPS_BENCH_DB", "bench_restore")
SOURCE_DB, TARGET_DB = f"{PREFIX}_drill_src", f"{PREFIX}_drill_dst"
SECONDARY = "mwaaops-drill-secondary"


def timed(steps: dict[str, float], name: str, action: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = action()
    steps[name] = time.perf_counter() - start
    print(f"  {name:<10} {steps[name]:>8.1f} s", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="task instances (and log rows) to restore"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from airflow_provider_mwaaops.testing import postgres as pg

    scratch = Path(tempfile.mkdtemp(prefix="mwaaops-drill-"))
    template = pg.migrated_template(scratch / "template-home")
    source = _recreate(SOURCE_DB, template)
    fill(source, args.rows // TASKS_PER_RUN)
    target = _recreate(TARGET_DB, template)  # the new environment's empty, migrated database

    from airflow_provider_mwaaops.aws.task_token import TaskTokenReporter
    from airflow_provider_mwaaops.hooks.mwaa import EnvironmentSnapshot, MwaaEnvironmentHook
    from airflow_provider_mwaaops.metadata.export import run_export
    from airflow_provider_mwaaops.metadata.restore import RestoreOptions, restore_metadata
    from airflow_provider_mwaaops.metadata.sinks import open_sink
    from airflow_provider_mwaaops.metadata.sources.database import DatabaseSource
    from airflow_provider_mwaaops.testing.emulator import AwsEmulator
    from airflow_provider_mwaaops.testing.mwaa_recovery import DR_BUCKET, PRIMARY, create_primary
    from airflow_provider_mwaaops.testing.task_tokens import start_waiting_execution

    steps: dict[str, float] = {}
    with AwsEmulator() as emulator:
        os.environ.update(emulator.environ())
        create_primary(emulator)
        hook = MwaaEnvironmentHook(aws_conn_id=emulator.conn_id)
        sink = open_sink(f"s3://{DR_BUCKET}/airflow-metadata", aws_conn_id=emulator.conn_id)
        s3 = emulator.client("s3")

        def backup() -> tuple[str, str]:
            snapshot = hook.snapshot(PRIMARY)
            key = snapshot.key("mwaa-snapshots")
            s3.put_object(Bucket=DR_BUCKET, Key=key, Body=snapshot.to_json().encode())
            exporter = DatabaseSource(source)
            try:
                manifest = run_export(exporter, sink, export_id="drill")
            finally:
                exporter.close()
            return key, manifest.export_id

        def recreate(key: str) -> None:
            snapshot = EnvironmentSnapshot.from_json(s3.get_object(Bucket=DR_BUCKET, Key=key)["Body"].read())
            hook.create_environment(snapshot.create_request(SECONDARY, allow_missing_secrets=True))
            while (hook.get_environment(SECONDARY) or {}).get("Status") != "AVAILABLE":
                time.sleep(0.2)

        def restore(export_id: str) -> Any:
            return restore_metadata(sink, export_id, target, RestoreOptions())

        waiting = start_waiting_execution(emulator, name="drill")
        sfn = emulator.client("stepfunctions")

        def callback(report: Any) -> None:
            TaskTokenReporter(waiting.task_token, client=sfn).succeed({"restored_rows": report.changed_rows})
            while sfn.describe_execution(executionArn=waiting.execution_arn)["status"] != "SUCCEEDED":
                time.sleep(0.1)

        print(f"drill with {args.rows:,} task instances and {args.rows:,} log rows:", flush=True)
        key, export_id = timed(steps, "backup", backup)
        timed(steps, "recreate", lambda: recreate(key))
        report = timed(steps, "restore", lambda: restore(export_id))
        timed(steps, "callback", lambda: callback(report))
    print(f"  {'total':<10} {sum(steps.values()):>8.1f} s (restore: {report.changed_rows:,} rows written)")
    print(report.summary())
    if args.json:
        args.json.write_text(
            json.dumps({"rows": args.rows, "steps": steps, "report": report.as_dict()}, indent=2)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
