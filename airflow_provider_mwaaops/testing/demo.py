"""Run every DAG in a folder on the embedded AWS and an embedded Airflow, then summarise.

``python -m airflow_provider_mwaaops.testing.demo [DAGS_FOLDER]`` is the project's demo (on
``example_dags/``) and doubles as a smoke test for a team's own dags folder: nothing reaches AWS,
each DAG runs once under ``dag.test()`` against moto, and the summary says per DAG its final
state, how long it took, each task's state and what each task returned.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from airflow_provider_mwaaops.testing.airflow_env import IsolatedAirflow
from airflow_provider_mwaaops.testing.emulator import AwsEmulator

SUMMARY_VALUE_WIDTH = 200


def _format_value(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_VALUE_WIDTH else text[: SUMMARY_VALUE_WIDTH - 3] + "..."


def _describe(dag: Any) -> str:
    doc = (dag.doc_md or dag.description or "").strip()
    return doc.split("\n\n", 1)[0].replace("\n", " ")


def run_folder(dags_folder: Path, only: list[str] | None = None, report_html: Path | None = None) -> int:
    """Run the folder's DAGs (or only the given ids); returns the number of DAGs that did not succeed.

    With ``report_html``, the run's own metadata is then exported and reported on (one more
    failure if that does not work).
    """
    from airflow_provider_mwaaops import compat
    from airflow_provider_mwaaops.testing.asset_events import prepare_example
    from airflow_provider_mwaaops.testing.dag_runner import load_dags, run_dag, task_return_values
    from airflow_provider_mwaaops.testing.emr_examples import prepare_emr_example
    from airflow_provider_mwaaops.testing.glue_examples import prepare_glue_example
    from airflow_provider_mwaaops.testing.mwaa_recovery import prepare_mwaa_example
    from airflow_provider_mwaaops.testing.snowflake import fake_snowflake

    dags, import_errors = load_dags(str(dags_folder))
    for path, error in import_errors.items():
        print(f"IMPORT ERROR {path}:\n{textwrap.indent(error, '    ')}")
    selected = sorted(dag_id for dag_id in dags if not only or dag_id in only)
    if not selected:
        print(f"no DAGs to run in {dags_folder}")
        return 1 + len(import_errors)

    failures = len(import_errors)
    emulator = AwsEmulator().start()
    try:
        results = []
        for dag_id in selected:
            emulator.reset()
            # Snowflake DAGs run on fakesnow (a fresh in-memory database per DAG).
            with emulator.activated(), fake_snowflake():
                prepare_example(dags[dag_id], emulator)  # the asset-events consumer needs an event
                conf = prepare_mwaa_example(dags[dag_id], emulator)  # a primary, a disaster, a workflow
                conf = prepare_glue_example(dags[dag_id], emulator) or conf  # what Glue jobs do
                os.environ.update(prepare_emr_example(dag_id, emulator))  # a cluster, an application
                result = run_dag(dags[dag_id], conf=conf)
                returned = task_return_values(dag_id, result.run_id)
            results.append((dags[dag_id], result, returned))
            failures += 0 if result.succeeded else 1
        if report_html is not None:  # metadata export of the demo's own runs, then its report
            from airflow_provider_mwaaops.testing.metadata_demo import run_for_demo

            report_text, report_ok = run_for_demo(emulator, report_html)
    finally:
        emulator.stop()

    print("\n" + "=" * 100)
    airflow = f"Airflow {compat.INSTALLED_AIRFLOW_VERSION}"
    print(f"Demo summary ({len(results)} DAGs, {airflow}, AWS: moto on loopback)")
    print("=" * 100)
    for dag, result, returned in results:
        print(f"\n{dag.dag_id}: {result.state.upper()} in {result.duration_seconds:.1f}s")
        if description := _describe(dag):
            print(textwrap.fill(description, 98, initial_indent="  ", subsequent_indent="  "))
        for task_id, state in sorted(result.task_states.items()):
            line = f"  - {task_id:<38} {state}"
            if task_id in returned and returned[task_id] is not None:
                line += f"  -> {_format_value(returned[task_id])}"
            print(line)
    print(f"\n{len(results) - failures} of {len(results)} DAGs succeeded")
    if report_html is not None:
        print("\n" + "=" * 100 + "\nThe demo's own metadata: export, report, Athena DDL\n" + "=" * 100)
        print(report_text)
        failures += 0 if report_ok else 1
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("dags_folder", nargs="?", default="example_dags", type=Path)
    parser.add_argument("--dag-id", action="append", help="run only this DAG (repeatable)")
    parser.add_argument("--keep-home", action="store_true", help="keep the temporary AIRFLOW_HOME")
    parser.add_argument("--verbose", action="store_true", help="show Airflow's and moto's INFO logs")
    parser.add_argument(
        "--report-html",
        type=Path,
        default=Path(tempfile.gettempdir()) / "mwaaops-demo-report.html",
        help="where the metadata report of the demo's own runs is written",
    )
    args = parser.parse_args(argv)
    if "airflow" in sys.modules:
        parser.error("the demo must set up AIRFLOW_HOME before Airflow is imported")
    dags_folder = args.dags_folder.resolve()
    if not dags_folder.is_dir():
        parser.error(f"{dags_folder} is not a directory")

    home = Path(tempfile.mkdtemp(prefix="mwaaops-demo-"))
    airflow = IsolatedAirflow(home, dags_folder=dags_folder)
    os.environ.update(airflow.environ)
    if not args.verbose:
        # Task logs at WARNING keep expected failures (the first try of a redrive example) visible
        # without burying the summary; moto's engine logs every failed state at ERROR.
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
        logging.getLogger("moto").setLevel(logging.CRITICAL)
    print(f"Embedded Airflow home: {home} (SQLite); migrating the metadata database...")
    airflow.migrate()
    try:
        return min(run_folder(dags_folder, args.dag_id, report_html=args.report_html.resolve()), 100)
    finally:
        if not args.keep_home:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
