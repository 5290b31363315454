"""The pytest plugin: no side effects at import, and a clear error when isolation is impossible."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_"))}


def test_importing_the_plugin_imports_neither_airflow_nor_moto():
    code = (
        "import sys, airflow_provider_mwaaops.testing.pytest_plugin, airflow_provider_mwaaops.testing\n"
        "print(sorted(m for m in ('airflow', 'moto', 'boto3', 'aiobotocore') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_clean_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _run_pytest(tmp_path, conftest: str, test: str, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text(textwrap.dedent(conftest))
    (tmp_path / "test_user.py").write_text(textwrap.dedent(test))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        # HOME moves so that a stray ~/airflow would show; the migrated-DB cache stays shared.
        env={**_clean_env(), "HOME": str(tmp_path), "MWAAOPS_CACHE_DIR": str(Path.home() / ".cache")},
        timeout=300,
    )


def test_isolation_refuses_an_airflow_imported_too_early(tmp_path):
    conftest, test = "import airflow\n", "def test_x():\n    pass\n"
    result = _run_pytest(tmp_path, conftest, test, "--mwaaops-isolated-airflow")
    assert result.returncode != 0
    assert "airflow was imported before pytest configured" in result.stdout + result.stderr


def test_a_users_test_gets_an_isolated_airflow_and_the_emulator(tmp_path):
    test = """
    import os

    def test_uses_fixtures(mwaaops_airflow, aws_emulator):
        from airflow import settings

        assert settings.AIRFLOW_HOME == str(mwaaops_airflow.home)
        assert os.environ["AWS_ENDPOINT_URL"] == aws_emulator.endpoint_url
        assert aws_emulator.client("sqs").list_queues().get("QueueUrls", []) == []
    """
    result = _run_pytest(tmp_path, "", test, "--mwaaops-isolated-airflow")
    assert result.returncode == 0, result.stdout[-3000:]
    assert not (tmp_path / "airflow").exists(), "the user's ~/airflow must stay untouched"
