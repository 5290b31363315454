"""No secret leaves in an export: canaries planted where Airflow keeps them, searched everywhere.

A throw-away Airflow (SQLite, and PostgreSQL for the COPY fast path) gets a distinct canary in
each place Airflow holds a secret: a connection's password and extra and a variable, each through
the real ``airflow`` CLI and through the real REST API (Airflow 3's ``airflow api-server``;
Airflow 2's API v1 in its webserver app), a ``dag_run.conf`` with a sensitive key, a template
field rendered from the conf and a variable (and returned as an XCom), and an audit ``log`` row.
The CLI and the API record their own commands and requests in ``log.extra``: those records are
where the plain-text copies are.

Each secret mode (exclude, fernet, kms) exports every table, XComs included, from the database
(both read strategies on PostgreSQL) and, on Airflow 3, from the REST API; then no canary may
appear in any byte written, in any value of any Parquet column once read (decompressed; binary
columns inflated too), in the manifest, in the report, in the Athena DDL or in what the Snowflake
load (fakesnow) put in its tables.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from airflow_provider_mwaaops.compat import HAS_API_SERVER

PLANT = Path(__file__).with_name("plant_canaries.py")
#: One distinct canary per place; the names say where each was planted.
CANARIES = {
    "cli_password": "cnry-cli-password-71f0a2",
    "cli_extra": "cnry-cli-extra-apikey-5c9e1b",
    "cli_variable": "cnry-cli-variable-2d7f3e",
    "api_password": "cnry-api-password-9a4c6d",
    "api_extra": "cnry-api-extra-apikey-3e8b0f",
    "api_variable": "cnry-api-variable-6f1d9a",
    "conf_password": "cnry-conf-password-8b2e4c",
    "rendered": "cnry-rendered-field-4d6a7e",
    "log_password": "cnry-log-password-0c3f5b",
}
MODES = ("exclude", "fernet", "kms")
#: Planting runs real Airflow processes (CLI commands, an api-server, a DAG run): minutes on a
#: busy machine, charged to the first test of each backend.
pytestmark = pytest.mark.timeout(1500)


def _all_tables() -> list[str]:
    from airflow_provider_mwaaops.metadata.tables import TABLES

    return list(TABLES)


@dataclass
class Planted:
    airflow: Any
    backend: str
    api: Any  # Airflow 3's api-server on this installation, else None


@contextlib.contextmanager
def _installation(backend: str, home: Path) -> Iterator[Any]:
    from airflow_provider_mwaaops.testing.airflow_env import IsolatedAirflow

    if backend == "sqlite":
        yield IsolatedAirflow(home).migrate()
        return
    from airflow_provider_mwaaops.testing import postgres

    try:
        postgres.check_available()
    except postgres.PostgresUnavailable as err:
        if postgres.postgres_required():
            pytest.fail(f"{postgres.REQUIRE_ENV}=1 but {err}")
        pytest.skip(str(err))
    template = postgres.migrated_template(home / "scratch")
    url = postgres.create_database(prefix="secrets_", template=template)
    try:
        yield IsolatedAirflow(home, sql_alchemy_conn=url)
    finally:
        postgres.drop_database(url)


def _plant_cli(airflow: Any) -> None:
    airflow.run_airflow(
        "connections",
        "add",
        "canary_cli_conn",
        "--conn-type",
        "postgres",
        "--conn-host",
        "db.example",
        "--conn-login",
        "etl",
        "--conn-password",
        CANARIES["cli_password"],
        "--conn-extra",
        json.dumps({"api_key": CANARIES["cli_extra"], "sslmode": "require"}),
    )
    airflow.run_airflow("variables", "set", "canary_cli_var", CANARIES["cli_variable"])


def _plant_rest3(server: Any) -> None:
    server.request(
        "POST",
        "/api/v2/connections",
        json={
            "connection_id": "canary_api_conn",
            "conn_type": "postgres",
            "host": "db.example",
            "login": "etl",
            "password": CANARIES["api_password"],
            "extra": json.dumps({"api_key": CANARIES["api_extra"]}),
        },
    )
    server.request(
        "POST", "/api/v2/variables", json={"key": "canary_api_var", "value": CANARIES["api_variable"]}
    )


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def planted(request: Any, tmp_path_factory: Any) -> Iterator[Planted]:
    """An Airflow with every canary planted (and, on Airflow 3, its api-server still running)."""
    home = tmp_path_factory.mktemp(f"secrets-{request.param}")
    with _installation(request.param, home) as airflow:
        # The exporter decrypts what this Airflow encrypted (to know the secrets it must mask).
        airflow.environ["AIRFLOW__CORE__FERNET_KEY"] = os.environ["AIRFLOW__CORE__FERNET_KEY"]
        _plant_cli(airflow)
        with contextlib.ExitStack() as stack:
            api = None
            if HAS_API_SERVER:
                from airflow_provider_mwaaops.testing.api_server import AirflowApiServer

                api = stack.enter_context(AirflowApiServer(airflow))
                _plant_rest3(api)
            else:
                # The API v1 of the webserver app, its callers granted Admin (FAB reads that
                # from webserver_config.py); requests go through its real views and audit log.
                (airflow.home / "webserver_config.py").write_text('AUTH_ROLE_PUBLIC = "Admin"\n')
                airflow.environ["AIRFLOW__API__AUTH_BACKENDS"] = "airflow.api.auth.backend.default"
                airflow.run_python(str(PLANT), "rest2", json.dumps(CANARIES), python=sys.executable)
            airflow.run_python(str(PLANT), "run", json.dumps(CANARIES), python=sys.executable, timeout=900)
            yield Planted(airflow, request.param, api)


def _db_text(airflow: Any, sql: str) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(airflow.sql_alchemy_conn, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return json.dumps([list(map(_text, row)) for row in conn.execute(sa.text(sql))])
    finally:
        engine.dispose()


def _text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        with contextlib.suppress(zlib.error):
            raw = zlib.decompress(raw)
        return raw.decode("utf-8", "replace")
    return str(value)


def test_the_canaries_are_where_airflow_keeps_them(planted: Planted) -> None:
    """The test can fail: the plain-text copies really are in Airflow's own tables."""
    logs = _db_text(planted.airflow, "SELECT extra FROM log")
    assert CANARIES["cli_extra"] in logs  # `connections add --conn-extra` recorded as typed
    assert CANARIES["cli_variable"] in logs  # `variables set` recorded as typed
    assert CANARIES["log_password"] in logs
    assert CANARIES["conf_password"] in _db_text(planted.airflow, "SELECT conf FROM dag_run")
    assert CANARIES["rendered"] in _db_text(planted.airflow, "SELECT value FROM xcom")
    rendered = _db_text(planted.airflow, "SELECT rendered_fields FROM rendered_task_instance_fields")
    assert CANARIES["rendered"] in rendered or "***" in rendered


# -- exporting and searching ---------------------------------------------------------------------
@pytest.fixture
def cipher_for(aws_emulator: Any) -> Any:
    from cryptography.fernet import Fernet

    from airflow_provider_mwaaops.metadata.secrets import SecretCipher, make_cipher

    def make(mode: str) -> Any:
        if mode == "exclude":
            return None
        if mode == "fernet":
            return SecretCipher("fernet", Fernet.generate_key(), {"key_ref": "variable:export_key"})
        key_id = aws_emulator.client("kms").create_key()["KeyMetadata"]["KeyId"]
        return make_cipher("kms", kms_key_id=key_id, aws_conn_id=aws_emulator.conn_id)

    return make


def _sources(planted: Planted) -> Iterator[tuple[str, Any]]:
    from airflow_provider_mwaaops.metadata.sources.database import DatabaseSource

    yield "database", DatabaseSource(planted.airflow.sql_alchemy_conn)
    if planted.backend == "postgres":
        yield "database-cursor", DatabaseSource(planted.airflow.sql_alchemy_conn, fast_path=False)
    if planted.api is not None:
        from airflow_provider_mwaaops.airflow_api import AirflowApiClient
        from airflow_provider_mwaaops.metadata.sources.rest import RestSource

        client = AirflowApiClient.from_url(planted.api.url, username="admin", password=planted.api.password)
        yield "rest", RestSource(client)


def _exported_text(base: Path) -> str:
    """Every file as bytes and every Parquet value as read (zstd undone; binaries inflated)."""
    parts = []
    for file in sorted(base.rglob("*")):
        if not file.is_file():
            continue
        data = file.read_bytes()
        parts.append(data.decode("utf-8", "replace"))
        if file.suffix == ".parquet":
            table = pq.read_table(io.BytesIO(data))
            for column in table.columns:
                parts.append(json.dumps([_text(v) for v in column.to_pylist()]))
    return "\n".join(parts)


def _analysis_text(base: Path, export_id: str, tables: list[str]) -> str:
    """The report (HTML), the Athena DDL and every row the Snowflake load wrote."""
    from airflow_provider_mwaaops.metadata.analysis.athena import athena_ddl, format_statements
    from airflow_provider_mwaaops.metadata.analysis.html import render
    from airflow_provider_mwaaops.metadata.analysis.reader import ExportReader
    from airflow_provider_mwaaops.metadata.analysis.report import report_from_reader
    from airflow_provider_mwaaops.metadata.analysis.snowflake import SnowflakeMetadataLoader
    from airflow_provider_mwaaops.testing.snowflake import SNOWFLAKE_CONN_ID, fake_snowflake

    reader = ExportReader.open(str(base / export_id), verify_checksums=True)
    report = report_from_reader(reader)
    parts = [render(report), report.console_table()]
    parts.append(format_statements(athena_ddl(reader, "mwaaops_canary", location="s3://bucket/exports")))
    with fake_snowflake():
        loader = SnowflakeMetadataLoader(SNOWFLAKE_CONN_ID)
        results = loader.load_export(reader, tables=tables)
        connection = loader.hook.get_conn()
        try:
            cursor = connection.cursor()
            for result in results:
                cursor.execute(f'SELECT * FROM "{result.target}"')
                parts.append(json.dumps([list(map(_text, row)) for row in cursor.fetchall()]))
        finally:
            connection.close()
    assert {r.table for r in results} == set(tables)
    return "\n".join(parts)


def _leaked(text: str) -> list[str]:
    return sorted(name for name, canary in CANARIES.items() if canary in text)


@pytest.mark.parametrize("mode", MODES)
def test_no_canary_in_any_export_file_report_ddl_or_snowflake(
    planted: Planted, cipher_for: Any, tmp_path: Path, mode: str
) -> None:
    from airflow_provider_mwaaops.metadata.export import run_export
    from airflow_provider_mwaaops.metadata.sinks.local import LocalSink

    for kind, source in _sources(planted):
        base = tmp_path / kind
        try:
            manifest = run_export(
                source, LocalSink(base), export_id="e1", tables=_all_tables(), cipher=cipher_for(mode)
            )
        finally:
            source.close()
        assert manifest.secrets["mode"] == mode
        if kind == "database":  # on PostgreSQL the COPY fast path read it
            assert manifest.source["fast_path"] is (planted.backend == "postgres")
        exported = _exported_text(base)
        assert _leaked(exported) == [], f"{kind} export ({mode}) leaks"
        # Masked copies are counted per table and column; the counts are in the manifest.
        masked = {name: entry.masked for name, entry in manifest.tables.items() if entry.masked}
        assert masked.get("log", {}).get("extra", 0) >= 2, (kind, masked)
        if kind != "rest":  # the API does not return a run's conf nor XComs in these tables
            assert masked["dag_run"]["conf"] >= 1, (kind, masked)
            assert masked["xcom"]["value"] >= 1, (kind, masked)
        manifest_text = (base / "e1" / "manifest.json").read_text()
        assert '"masked"' in manifest_text
        # What is not a secret is left as it was.
        assert '"day": 1' in exported
        analysed = ["dag_run", "task_instance", "log", "variable", "connection"]
        analysis = _analysis_text(base, "e1", analysed)
        assert _leaked(analysis) == [], f"{kind} analysis ({mode}) leaks"
        assert "canary_cli_var" in analysis  # the rows are there, their secrets are not
        if kind == "database" and mode == "exclude":
            _check_restore_report(planted, base)


def _check_restore_report(planted: Planted, base: Path) -> None:
    """Restore (dry run, into the source itself) counts the masked values, and shows none."""
    from airflow_provider_mwaaops.metadata.restore import RestoreOptions, restore_metadata
    from airflow_provider_mwaaops.metadata.sinks.local import LocalSink

    options = RestoreOptions(tables=["dag_run", "log"], dry_run=True)
    report = restore_metadata(LocalSink(base), "e1", planted.airflow.sql_alchemy_conn, options)
    assert report.masked["log.extra"] >= 2
    assert report.masked["dag_run.conf"] >= 1
    assert "log.extra:" in report.summary()
    assert _leaked(report.summary() + json.dumps(report.as_dict())) == []
