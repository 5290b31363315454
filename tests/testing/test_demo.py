"""The demo runner: its summary and its exit status, run as users run it (a fresh process)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

GOOD_AND_BAD = textwrap.dedent(
    '''
    """Two DAGs, one that writes to the emulator's S3 and one that fails."""
    from datetime import datetime

    from airflow_provider_mwaaops.compat import DAG, task

    with DAG("demo_good", schedule=None, start_date=datetime(2026, 1, 1), doc_md="Writes to S3.") as good:

        @task
        def write():
            import boto3

            s3 = boto3.client("s3")
            s3.create_bucket(Bucket="demo-good")
            s3.put_object(Bucket="demo-good", Key="k", Body=b"v")
            return sorted(o["Key"] for o in s3.list_objects_v2(Bucket="demo-good")["Contents"])

        write()

    with DAG("demo_bad", schedule=None, start_date=datetime(2026, 1, 1)) as bad:

        @task
        def explode():
            raise RuntimeError("expected failure")

        explode()
    '''
)


def _clean_env() -> dict[str, str]:
    # The demo makes its own AIRFLOW_HOME; drop the test session's so it really does.
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_"))}


def test_demo_summarises_each_dag_and_fails_when_one_fails(tmp_path):
    (tmp_path / "two_dags.py").write_text(GOOD_AND_BAD)

    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_mwaaops.testing.demo", str(tmp_path)],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )

    summary = result.stdout[result.stdout.index("Demo summary") :]
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "demo_good: SUCCESS" in summary
    assert "Writes to S3." in summary
    assert "write" in summary
    assert "-> ['k']" in summary
    assert "demo_bad: FAILED" in summary
    assert "1 of 2 DAGs succeeded" in summary


def test_demo_rejects_a_missing_folder(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_mwaaops.testing.demo", str(tmp_path / "nope")],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "is not a directory" in result.stderr
