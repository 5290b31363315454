"""MetadataExportOperator: export id per DAG run, idempotent retries, KMS-encrypted secrets."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import pytest

from airflow_provider_mwaaops.operators.metadata import MetadataExportOperator, export_id_for_run


class _TI(SimpleNamespace):
    def xcom_push(self, key, value):
        self.pushed[key] = value


def _context(run_id: str) -> dict:
    return {"run_id": run_id, "ti": _TI(pushed={})}


def test_export_id_for_run_is_valid_and_stable():
    from airflow_provider_mwaaops.metadata.manifest import validate_export_id

    export_id = export_id_for_run("hourly", "scheduled__2026-01-01T01:00:00+00:00")
    assert export_id == "hourly__scheduled__2026-01-01T01_00_00_00_00"
    assert validate_export_id(export_id_for_run("d" * 300, "r")) == ("d" * 128)


def test_bad_parameters_fail_at_parse_time():
    with pytest.raises(ValueError, match="mode='sometimes'"):
        MetadataExportOperator(task_id="x", export_uri="/tmp", mode="sometimes")
    with pytest.raises(ValueError, match="secrets='plain'"):
        MetadataExportOperator(task_id="x", export_uri="/tmp", secrets="plain")


def test_retry_of_a_completed_export_returns_it(mwaaops_airflow, tmp_path):
    from airflow_provider_mwaaops.compat import DAG

    with DAG("ops", schedule=None):
        op = MetadataExportOperator(
            task_id="export",
            export_uri=str(tmp_path),
            sql_alchemy_url=mwaaops_airflow.sql_alchemy_conn,
            tables=["log_template", "slot_pool"],
        )
    context = _context("manual__1")
    path = op.execute(context)
    assert path == str(tmp_path / "ops__manual__1" / "manifest.json")
    assert context["ti"].pushed == {"export_id": "ops__manual__1"}
    written = (tmp_path / "ops__manual__1" / "manifest.json").read_bytes()
    assert op.execute(_context("manual__1")) == path  # a retry after success: nothing rewritten
    assert (tmp_path / "ops__manual__1" / "manifest.json").read_bytes() == written


def test_kms_encrypted_secrets(mwaaops_airflow, aws_emulator, tmp_path):
    from airflow.models.variable import Variable

    from airflow_provider_mwaaops.compat import DAG
    from airflow_provider_mwaaops.metadata.manifest import load_manifest, read_table
    from airflow_provider_mwaaops.metadata.secrets import cipher_for_manifest
    from airflow_provider_mwaaops.metadata.sinks import open_sink

    Variable.set("kms_canary", "kms-canary-value-91")
    kms = aws_emulator.client("kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    aws_emulator.client("s3").create_bucket(Bucket="dr-exports")
    with DAG("ops_kms", schedule=None):
        op = MetadataExportOperator(
            task_id="export",
            export_uri="s3://dr-exports/meta",
            sql_alchemy_url=mwaaops_airflow.sql_alchemy_conn,
            tables=["variable"],
            secrets="kms",
            kms_key_id=key_id,
        )
    path = op.execute(_context("manual__k"))
    assert path == "s3://dr-exports/meta/ops_kms__manual__k/manifest.json"
    sink = open_sink("s3://dr-exports/meta", aws_conn_id="aws_default")
    manifest = load_manifest(sink, "ops_kms__manual__k")
    assert manifest.secrets["mode"] == "kms"
    assert base64.b64decode(manifest.secrets["encrypted_data_key"])
    raw = b"".join(
        aws_emulator.client("s3").get_object(Bucket="dr-exports", Key=o["Key"])["Body"].read()
        for o in aws_emulator.client("s3").list_objects_v2(Bucket="dr-exports")["Contents"]
    )
    assert b"kms-canary-value-91" not in raw
    values = {r["key"]: r["val"] for r in read_table(sink, manifest, "variable").to_pylist()}
    assert "kms-canary-value-91" not in json.dumps(values)
    cipher = cipher_for_manifest(manifest.secrets, aws_conn_id="aws_default")
    assert cipher is not None
    assert cipher.decrypt(values["kms_canary"]) == "kms-canary-value-91"


@pytest.mark.parametrize(
    "operator",
    [
        "operators.metadata.MetadataExportOperator",
        "operators.metadata_restore.MetadataRestoreOperator",
        "operators.metadata_analysis.MetadataReportOperator",
        "operators.metadata_analysis.MetadataSnowflakeLoadOperator",
    ],
)
def test_every_metadata_operator_templates_its_location_and_aws_settings(operator):
    import importlib

    module, _, name = operator.rpartition(".")
    cls = getattr(importlib.import_module(f"airflow_provider_mwaaops.{module}"), name)
    assert {"export_uri", "aws_conn_id", "region_name"} <= set(cls.template_fields)
