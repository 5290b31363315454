"""Export Airflow's metadata to S3 (or a local path) as verified, incremental Parquet.

The hourly incremental export is the disaster-recovery RPO: each run writes the rows changed
since the previous complete export, and a retry of the same task instance rewrites the same
export (same id, byte-identical files) instead of starting another one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from airflow_provider_mwaaops.compat import BaseOperator
from airflow_provider_mwaaops.metadata import DEFAULT_CHUNK_ROWS

if TYPE_CHECKING:
    from airflow_provider_mwaaops.compat import Context
    from airflow_provider_mwaaops.metadata.export import ExportSettings

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.=-]+")


def export_id_for_run(dag_id: str, run_id: str) -> str:
    """A valid export id derived from the DAG run, so every try of a run shares one export."""
    raw = _ID_UNSAFE.sub("_", f"{dag_id}__{run_id}").strip("_.-=") or "export"
    return raw[:128]


class MetadataExportOperator(BaseOperator):
    """Export the Airflow metadata database to ``export_uri`` (``s3://bucket/prefix`` or a path).

    :param export_uri: base location; each export goes to ``<export_uri>/<export_id>/``.
        (templated)
    :param export_id: id of this export; defaults to one derived from ``dag_id`` and ``run_id`` so
        that retries complete the same export. (templated)
    :param mode: ``"full"`` or ``"incremental"`` (rows changed since the previous complete export
        under ``export_uri``; the first one is full).
    :param previous_export_id: the export an incremental one continues from; default: the most
        recently finished under ``export_uri``. (templated)
    :param tables: table names to export; default: every table but ``xcom``. (templated)
    :param read_from: ``"database"`` (SQLAlchemy reads of the metadata DB) or ``"rest"`` (Airflow 3's
        public REST API, for where tasks cannot reach the database: the API that ``[mwaaops]``
        names, ``mwaa_environment_name`` through MWAA's InvokeRestApi or ``api_url`` with
        ``api_username`` / ``api_password``; see the metadata docs for what it cannot capture).
    :param db_conn_id: Airflow connection to the metadata database (needed on Airflow 3, whose
        tasks may not use the ORM); default: this Airflow's ``[database] sql_alchemy_conn``.
    :param sql_alchemy_url: the database as a SQLAlchemy URL instead of a connection. (templated)
    :param chunk_rows: rows per chunk (one Parquet file per chunk and day).
    :param chunk_timeout: seconds one chunk may take to read (PostgreSQL ``statement_timeout``).
    :param secrets: ``"exclude"`` (default: connection passwords/extras and variable values are not
        exported), ``"fernet"`` or ``"kms"`` (exported encrypted with an export key).
    :param key_variable: Variable holding the Fernet export key (``secrets="fernet"``).
    :param key_conn_id: connection whose password is the Fernet export key.
    :param key_secret_id: AWS Secrets Manager secret holding the Fernet export key.
    :param kms_key_id: KMS key for per-export data keys (``secrets="kms"``).
    :param aws_conn_id: AWS connection for S3, Secrets Manager and KMS. (templated)
    :param region_name: AWS region (default: the connection's). (templated)

    Returns (XCom) the full path of the export's ``manifest.json``; the export id is also pushed
    under the key ``export_id``.
    """

    template_fields: Sequence[str] = (
        "export_uri",
        "export_id",
        "previous_export_id",
        "tables",
        "sql_alchemy_url",
        "aws_conn_id",
        "region_name",
    )
    ui_color = "#d7e9f7"

    def __init__(
        self,
        *,
        export_uri: str,
        export_id: str | None = None,
        mode: str = "full",
        previous_export_id: str | None = None,
        tables: list[str] | None = None,
        read_from: str = "database",
        db_conn_id: str | None = None,
        sql_alchemy_url: str | None = None,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        chunk_timeout: float = 300.0,
        secrets: str = "exclude",
        key_variable: str | None = None,
        key_conn_id: str | None = None,
        key_secret_id: str | None = None,
        kms_key_id: str | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from airflow_provider_mwaaops.metadata.export import MODES
        from airflow_provider_mwaaops.metadata.secrets import MODES as SECRET_MODES
        from airflow_provider_mwaaops.metadata.sources import READ_FROM

        if mode not in MODES:
            raise ValueError(f"mode={mode!r}: use one of {', '.join(MODES)}")
        if secrets not in SECRET_MODES:
            raise ValueError(f"secrets={secrets!r}: use one of {', '.join(SECRET_MODES)}")
        if read_from not in READ_FROM:
            raise ValueError(f"read_from={read_from!r}: use one of {', '.join(READ_FROM)}")
        if read_from == "rest":
            from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS

            if not AIRFLOW_V_3_0_PLUS:
                raise ValueError(
                    "read_from='rest' reads Airflow 3's REST API v2; on Airflow 2 tasks may read the "
                    "metadata database: use read_from='database'"
                )
        self.export_uri = export_uri
        self.export_id = export_id
        self.mode = mode
        self.previous_export_id = previous_export_id
        self.tables = tables
        self.read_from = read_from
        self.db_conn_id = db_conn_id
        self.sql_alchemy_url = sql_alchemy_url
        self.chunk_rows = chunk_rows
        self.chunk_timeout = chunk_timeout
        self.secrets = secrets
        self.key_variable = key_variable
        self.key_conn_id = key_conn_id
        self.key_secret_id = key_secret_id
        self.kms_key_id = kms_key_id
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    def settings(self, export_id: str) -> ExportSettings:
        """This task's export: the operator's arguments (rendered) are the settings' fields, all but
        ``fast_path``, which a task leaves on (the command's ``--no-fast-path`` is for comparisons)."""
        from airflow_provider_mwaaops.metadata.export import ExportSettings

        given = {f.name: getattr(self, f.name) for f in fields(ExportSettings) if f.name != "fast_path"}
        return ExportSettings(**{**given, "export_id": export_id})

    def _log_progress(self, table: str, chunk: int, rows: int) -> None:
        self.log.info("%s: chunk %d, %d rows", table, chunk, rows)

    def execute(self, context: Context) -> str:
        from airflow_provider_mwaaops.metadata.export import export_metadata
        from airflow_provider_mwaaops.metadata.manifest import load_manifest, manifest_path
        from airflow_provider_mwaaops.metadata.sinks import open_sink

        export_id = self.export_id or export_id_for_run(self.dag_id, context["run_id"])
        sink = open_sink(self.export_uri, aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        path = sink.full_path(manifest_path(export_id))
        if sink.exists(manifest_path(export_id)):
            # An earlier try completed it: the export is immutable, so this try is done too.
            manifest = load_manifest(sink, export_id)
            self.log.info("Export %s is already complete (%d rows): %s", export_id, manifest.total_rows, path)
        else:
            manifest = export_metadata(sink, self.settings(export_id), progress=self._log_progress)
            for name, table in manifest.tables.items():
                if table.rows:
                    self.log.info("%-24s %9d rows in %d files", name, table.rows, len(table.files))
            self.log.info("Export %s (%s) complete: %s", export_id, manifest.mode, path)
        context["ti"].xcom_push(key="export_id", value=export_id)
        return path
