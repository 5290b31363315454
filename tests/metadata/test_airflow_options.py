"""The masking options read without Airflow agree with Airflow's own configuration parser."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_mwaaops.metadata.airflow_options import option_without_airflow

OPTIONS = [("core", "sensitive_var_conn_names", ""), ("logging", "min_length_masked_secret", "5")]


def _airflow_reads(cfg: Path, section: str, key: str, fallback: str) -> str:
    """What a fresh Airflow parser answers for ``cfg`` and the current environment."""
    from airflow.configuration import AirflowConfigParser

    parser = AirflowConfigParser()
    parser.read(str(cfg))
    return str(parser.get(section, key, fallback=fallback))


def _light_reads(section: str, key: str, fallback: str) -> str | None:
    found = option_without_airflow(section, key)
    if found is None:
        return None
    return found[0] if found[0] is not None else fallback


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for section, key, _ in OPTIONS:
        monkeypatch.delenv(f"AIRFLOW__{section.upper()}__{key.upper()}", raising=False)
    monkeypatch.delenv("AIRFLOW__ADMIN__SENSITIVE_VARIABLE_FIELDS", raising=False)
    monkeypatch.delenv("AIRFLOW__CORE__UNIT_TEST_MODE", raising=False)
    path = tmp_path / "airflow.cfg"
    path.write_text("[core]\nload_examples = False\n")
    monkeypatch.setenv("AIRFLOW_CONFIG", str(path))
    return path


@pytest.mark.parametrize(("section", "key", "fallback"), OPTIONS)
def test_unset_gives_airflows_default(cfg: Path, section: str, key: str, fallback: str) -> None:
    assert _light_reads(section, key, fallback) == _airflow_reads(cfg, section, key, fallback)


@pytest.mark.parametrize(("section", "key", "fallback"), OPTIONS)
def test_file_value(cfg: Path, section: str, key: str, fallback: str) -> None:
    value = "7,client_token" if key.startswith("sensitive") else "7"
    cfg.write_text(f"[{section}]\n{key} = {value}\n")
    light = _light_reads(section, key, fallback)
    assert light == value
    assert light == _airflow_reads(cfg, section, key, fallback)


def test_environment_wins_over_file(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg.write_text("[core]\nsensitive_var_conn_names = from_file\n")
    monkeypatch.setenv("HOOK_NAME", "hook_secret")
    monkeypatch.setenv("AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES", "from_env,$HOOK_NAME")
    light = _light_reads("core", "sensitive_var_conn_names", "")
    assert light == "from_env,hook_secret"
    assert light == _airflow_reads(cfg, "core", "sensitive_var_conn_names", "")


def test_deprecated_name_or_unit_test_mode_defer_to_airflow(cfg: Path) -> None:
    cfg.write_text("[admin]\nsensitive_variable_fields = old_name\n")
    assert option_without_airflow("core", "sensitive_var_conn_names") is None
    cfg.write_text("[core]\nunit_test_mode = True\n")
    assert option_without_airflow("core", "sensitive_var_conn_names") is None


def test_masking_options_do_not_import_airflow(cfg: Path) -> None:
    code = (
        "import sys\n"
        "from airflow_provider_mwaaops.metadata.masking import min_secret_length, sensitive_fields\n"
        "assert 'client_token' in sensitive_fields() and min_secret_length() == 5\n"
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))\n"
    )
    cfg.write_text("[core]\nsensitive_var_conn_names = client_token\n")
    command = [sys.executable, "-c", code]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
