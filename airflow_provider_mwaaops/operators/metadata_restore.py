"""Restore a metadata export into an Airflow metadata database, and tell a waiting Step Functions task.

The disaster-recovery story ends here: a state machine recreated the environment and waits on a
``.waitForTaskToken`` task; a DAG in the new environment runs this operator with the token in its
run conf; the operator restores, re-activates the DAGs that were active at backup, and answers the
token with SendTaskSuccess (the restore report as output) or, once no retry is left, SendTaskFailure.

Where it writes:

* ``target="database"`` (default): a metadata database reached through ``target_conn_id`` /
  ``target_sql_alchemy_url``. On Airflow 2.11 the default is this Airflow's own database. Airflow 3
  forbids database access from tasks, so there a target must be named explicitly (a self-managed
  deployment's database, a standby): the operator does not quietly fall back to the ORM.
* ``target="api"``: Airflow 3's REST API (``[mwaaops]`` API settings, or ``mwaa_environment_name``
  for MWAA's InvokeRestApi), which restores variables, pools and connections and re-activates DAGs;
  everything else needs the database path (``mwaaops metadata restore``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS, AirflowException, BaseOperator, conf

if TYPE_CHECKING:
    from airflow_provider_mwaaops.compat import Context
    from airflow_provider_mwaaops.metadata.restore import RestoreOptions, RestoreReport


class MetadataRestoreOperator(BaseOperator):
    """Restore export ``export_id`` from ``export_uri`` (``s3://bucket/prefix`` or a path).

    :param export_uri: base location of the exports. (templated)
    :param export_id: export to restore, with the exports an incremental one builds on; default:
        the most recently finished complete export under ``export_uri``. (templated)
    :param target: ``"database"`` or ``"api"`` (Airflow 3's REST API; see the module docstring).
    :param target_conn_id: Airflow connection to the target metadata database.
    :param target_sql_alchemy_url: the target as a SQLAlchemy URL instead. (templated)
    :param mwaa_environment_name: ``target="api"`` through MWAA InvokeRestApi for this environment;
        default: the ``[mwaaops]`` API settings. (templated)
    :param tables: tables to restore (default: all in the export).
    :param dry_run_only: report what would change per table, write nothing (``dry_run`` is taken:
        BaseOperator has a ``dry_run()`` method).
    :param strict: refuse a target that already has dag runs, task instances, variables...
    :param transaction: ``"all"`` (one transaction: all or nothing) or ``"table"``.
    :param reactivate_dags: unpause the DAGs that were active at backup.
    :param key_variable: Variable holding the Fernet export key (secrets exported with ``fernet``).
    :param key_conn_id: connection whose password is the Fernet export key.
    :param key_secret_id: Secrets Manager secret holding the Fernet export key.
    :param source_fernet_key_conn_id: connection whose password is the backed-up environment's
        ``[core] fernet_key``, to re-encrypt trigger kwargs for the target (else deferred tasks'
        triggers are skipped and reported).
    :param target_fernet_key_conn_id: connection whose password is the target's Fernet key; default:
        this Airflow's ``[core] fernet_key``.
    :param task_token: Step Functions task token to answer (e.g. ``"{{ dag_run.conf['task_token'] }}"``);
        empty: nobody to tell. (templated)
    :param aws_conn_id: AWS connection for S3, Secrets Manager, KMS and Step Functions. (templated)
    :param region_name: AWS region (default: the connection's). (templated)

    Returns (XCom) the restore report as a dict (tables, counts, re-activated DAGs).
    """

    template_fields: Sequence[str] = (
        "export_uri",
        "export_id",
        "target_sql_alchemy_url",
        "mwaa_environment_name",
        "task_token",
        "tables",
        "aws_conn_id",
        "region_name",
    )
    ui_color = "#f7e3d7"

    def __init__(
        self,
        *,
        export_uri: str,
        export_id: str | None = None,
        target: str = "database",
        target_conn_id: str | None = None,
        target_sql_alchemy_url: str | None = None,
        mwaa_environment_name: str | None = None,
        tables: list[str] | None = None,
        dry_run_only: bool = False,
        strict: bool = False,
        transaction: str = "all",
        reactivate_dags: bool = True,
        key_variable: str | None = None,
        key_conn_id: str | None = None,
        key_secret_id: str | None = None,
        source_fernet_key_conn_id: str | None = None,
        target_fernet_key_conn_id: str | None = None,
        task_token: str | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if target not in ("database", "api"):
            raise ValueError(f"target={target!r}: use 'database' or 'api'")
        if transaction not in ("all", "table"):
            raise ValueError(f"transaction={transaction!r}: use 'all' or 'table'")
        if target_conn_id and target_sql_alchemy_url:
            raise ValueError("give target_conn_id or target_sql_alchemy_url, not both")
        self.export_uri = export_uri
        self.export_id = export_id
        self.target = target
        self.target_conn_id = target_conn_id
        self.target_sql_alchemy_url = target_sql_alchemy_url
        self.mwaa_environment_name = mwaa_environment_name
        self.tables = tables
        self.dry_run_only = dry_run_only
        self.strict = strict
        self.transaction = transaction
        self.reactivate_dags = reactivate_dags
        self.key_variable = key_variable
        self.key_conn_id = key_conn_id
        self.key_secret_id = key_secret_id
        self.source_fernet_key_conn_id = source_fernet_key_conn_id
        self.target_fernet_key_conn_id = target_fernet_key_conn_id
        self.task_token = task_token
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    # -- pieces -----------------------------------------------------------------------------------
    def target_url(self) -> str:
        from airflow_provider_mwaaops.metadata.sources.database import normalize_url, url_from_conn_id

        if self.target_sql_alchemy_url:
            return normalize_url(self.target_sql_alchemy_url)
        if self.target_conn_id:
            return url_from_conn_id(self.target_conn_id)
        if AIRFLOW_V_3_0_PLUS:
            raise AirflowException(
                "Airflow 3 tasks may not write the metadata database: give target_conn_id (or "
                "target_sql_alchemy_url) of the database to restore into, use target='api' for "
                "variables, pools and connections, or run `mwaaops metadata restore` where the "
                "database is reachable"
            )
        return str(conf.get("database", "sql_alchemy_conn"))

    @staticmethod
    def _password(conn_id: str | None) -> str | None:
        if not conn_id:
            return None
        from airflow_provider_mwaaops.compat import BaseHook

        return BaseHook.get_connection(conn_id).password or ""

    def options(self) -> RestoreOptions:
        from airflow_provider_mwaaops.metadata.restore import RestoreOptions

        return RestoreOptions(
            tables=self.tables,
            dry_run=self.dry_run_only,
            strict=self.strict,
            transaction=self.transaction,  # type: ignore[arg-type]
            reactivate_dags=self.reactivate_dags,
            key_variable=self.key_variable,
            key_conn_id=self.key_conn_id,
            key_secret_id=self.key_secret_id,
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            source_fernet_key=self._password(self.source_fernet_key_conn_id),
            target_fernet_key=self._password(self.target_fernet_key_conn_id),
        )

    def run_restore(self) -> RestoreReport:
        from airflow_provider_mwaaops.metadata.manifest import latest_export
        from airflow_provider_mwaaops.metadata.restore import RestoreError, restore_metadata
        from airflow_provider_mwaaops.metadata.sinks import open_sink

        sink = open_sink(self.export_uri, aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        export_id = self.export_id
        if not export_id:
            latest = latest_export(sink)
            if latest is None:
                raise RestoreError(f"no complete export under {sink.url}")
            export_id = latest.export_id
        self.log.info("Restoring export %s from %s", export_id, sink.full_path(export_id))
        if self.target == "api":
            from airflow_provider_mwaaops.airflow_api import AirflowApiClient
            from airflow_provider_mwaaops.metadata.restore.rest import restore_through_api

            client = (
                AirflowApiClient.from_mwaa(self.mwaa_environment_name, self.aws_conn_id, self.region_name)
                if self.mwaa_environment_name
                else AirflowApiClient.from_config()
            )
            return restore_through_api(sink, export_id, client, self.options())
        return restore_metadata(sink, export_id, self.target_url(), self.options())

    def _last_try(self, context: Context) -> bool:
        ti = context["ti"]
        max_tries = getattr(ti, "max_tries", None)
        if max_tries is None:
            max_tries = self.retries or 0
        return not (self.retries and ti.try_number <= max_tries)

    # -- execute ------------------------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_mwaaops.aws.task_token import TaskTokenReporter

        reporter = (
            TaskTokenReporter(self.task_token, aws_conn_id=self.aws_conn_id, region_name=self.region_name)
            if self.task_token
            else None
        )
        try:
            report = self.run_restore()
        except Exception as exc:
            if reporter is not None:
                if self._last_try(context):
                    reporter.fail("MetadataRestoreFailed", f"{type(exc).__name__}: {exc}")
                else:
                    self.log.info("Restore failed; a retry follows, so the task token is not answered yet")
            raise
        for line in report.summary().splitlines():
            self.log.info("%s", line)
        result = report.as_dict()
        if reporter is not None:
            reporter.succeed(result)
        return result
