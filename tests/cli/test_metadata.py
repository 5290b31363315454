"""``mwaaops metadata export|verify`` against the session's migrated Airflow database."""

from __future__ import annotations

import json

from airflow_provider_mwaaops.cli import main


def test_export_then_verify(mwaaops_airflow, tmp_path, capsys):
    url = mwaaops_airflow.sql_alchemy_conn
    base = tmp_path / "exports"
    code = main(
        ["metadata", "export", "--url", url, "--export-uri", str(base), "--export-id", "c1", "--json"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    # In this process Airflow 2's logging config prints INFO records to stdout as well.
    summary = json.loads(out[out.index('{\n  "export_id"') :])
    assert summary["export_id"] == "c1"
    assert summary["manifest"] == str(base / "c1" / "manifest.json")
    assert "log_template" in summary["tables"]

    assert main(["metadata", "verify", str(base)]) == 0
    assert "export c1: OK" in capsys.readouterr().out

    # A second export under the same id is refused, naming the manifest that exists.
    assert main(["metadata", "export", "--url", url, "--export-uri", str(base), "--export-id", "c1"]) == 2
    assert "already complete" in capsys.readouterr().err

    # An altered file fails verification (exit 1) and is named.
    manifest = json.loads((base / "c1" / "manifest.json").read_text())
    first = next(f for t in manifest["tables"].values() for f in t["files"])
    victim = base / "c1" / first["path"]
    victim.write_bytes(victim.read_bytes() + b"x")
    assert main(["metadata", "verify", str(base), "c1"]) == 1
    err = capsys.readouterr().err
    assert first["path"] in err
    assert "checksum" in err


def test_bad_input_is_a_usage_error(mwaaops_airflow, tmp_path, capsys):
    url = mwaaops_airflow.sql_alchemy_conn
    assert main(["metadata", "export", "--url", url, "--export-uri", str(tmp_path), "--tables", "nope"]) == 2
    assert "unknown metadata table 'nope'" in capsys.readouterr().err
    assert main(["metadata", "export", "--url", url, "--export-uri", "ftp://x/y"]) == 2
    assert "unsupported export location" in capsys.readouterr().err
    assert main(["metadata", "verify", str(tmp_path / "empty")]) == 2
    assert "no complete export" in capsys.readouterr().err
    assert main(["metadata", "export", "--url", url, "--export-uri", str(tmp_path), "--secrets", "kms"]) == 2
    assert "kms_key_id" in capsys.readouterr().err
