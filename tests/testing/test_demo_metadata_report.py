"""The demo exports the metadata of its own runs and reports on it (run as users run it)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

DAGS = textwrap.dedent(
    '''
    """Two runs' worth of history for the demo's own metadata report."""
    from datetime import datetime, timedelta

    from airflow_provider_mwaaops.compat import DAG, task

    with DAG("demo_report_retrying", schedule=None, start_date=datetime(2026, 1, 1)) as dag:

        @task(retries=1, retry_delay=timedelta(seconds=0))
        def flaky(**context):
            if context["ti"].try_number == 1:
                raise RuntimeError("first try fails on purpose")
            return "second try"

        flaky()

    with DAG("demo_report_plain", schedule=None, start_date=datetime(2026, 1, 1)) as plain:

        @task
        def hello():
            return "hello"

        hello()
    '''
)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_"))}


def test_demo_exports_its_own_metadata_and_writes_the_report(tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "report_dags.py").write_text(DAGS)
    html = tmp_path / "out" / "report.html"

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow_provider_mwaaops.testing.demo",
            str(dags),
            "--report-html",
            str(html),
        ],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )

    output = result.stdout
    assert result.returncode == 0, output[-4000:] + result.stderr[-4000:]
    section = output[output.index("The demo's own metadata") :]
    assert re.search(r"Metadata export \d{8}T\d{6}Z: s3://mwaaops-demo-metadata/airflow-metadata/", section)
    assert re.search(r"rows: .*dag_run 2\b", section)
    # The console table: one line per DAG and month, the retry hot spot, and the Athena DDL.
    month_lines = [line for line in section.splitlines() if line.startswith("demo_report_")]
    assert {line.split()[0] for line in month_lines} >= {"demo_report_plain", "demo_report_retrying"}
    retry_section = section[section.index("Retry hot spots") :]
    assert re.search(r"demo_report_retrying\s+flaky\s+1\s+1\s+1\s+2\s+0\s+100\.0%", retry_section)
    assert "CREATE EXTERNAL TABLE IF NOT EXISTS `airflow_metadata`.`dag_run_exported`" in section
    assert "'storage.location.template'='s3://mwaaops-demo-metadata/airflow-metadata/${export_id}/" in section
    assert 'CREATE OR REPLACE VIEW "airflow_metadata"."dag_run_monthly"' in section
    assert "Snowflake load (fakesnow): AIRFLOW_DAG_RUN 2, AIRFLOW_TASK_INSTANCE 2" in section
    page = html.read_text()
    assert f"HTML report: {html}" in section
    assert 'aria-label="demo_report_retrying: runs per month"' in page
    assert "<script" not in page
