"""``mwaaops metadata restore``: the supported restore path for self-managed deployments.

Runs where the target metadata database is reachable (an admin host, a CI job, the scheduler's
machine), on any Airflow line: Airflow 3's rule against database access applies to tasks, not to
administration commands. ``--api`` restores what Airflow 3's REST API allows instead (variables,
pools, connections, DAG re-activation). Exit codes: 0 restored (or dry run), 1 the restore failed
and was rolled back, 2 refused (bad export, bad target, strict mode).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from airflow_provider_mwaaops.cli import CliError


def register(subparsers: Any) -> None:
    from airflow_provider_mwaaops.cli.metadata import add_location_arguments

    p = subparsers.add_parser(
        "restore",
        help="restore an export into a metadata database (or, with --api, through Airflow 3's API)",
        description=(
            "Verify every checksum of export EXPORT_ID under EXPORT_URI, then restore it (with the "
            "exports an incremental one builds on) into the target metadata database: upserts on natural "
            "keys, surrogate ids remapped, DAGs active at backup re-activated. Safe to run twice."
        ),
    )
    p.add_argument("export_uri", help="base location of the exports: s3://bucket/prefix or a path")
    p.add_argument("export_id", nargs="?", help="export id (default: the latest complete one)")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--url", help="SQLAlchemy URL of the target DB (default: this Airflow's)")
    target.add_argument("--conn-id", help="Airflow connection id of the target DB")
    target.add_argument("--api", help="Airflow 3 API server URL: restore variables, pools, connections only")
    target.add_argument(
        "--mwaa-environment", help="as --api, through MWAA InvokeRestApi for this environment"
    )
    p.add_argument("--api-user", help="--api: user for the token endpoint")
    p.add_argument(
        "--api-password-env", default="AIRFLOW_API_PASSWORD", help="--api: variable with its password"
    )
    p.add_argument("--tables", help="comma-separated tables (default: every table in the export)")
    p.add_argument("--dry-run", action="store_true", help="report what would change per table; write nothing")
    p.add_argument("--strict", action="store_true", help="refuse a target that already has history")
    p.add_argument("--transaction", choices=("all", "table"), default="all")
    p.add_argument("--no-reactivate", action="store_true", help="leave DAGs paused as they are")
    p.add_argument("--key-variable", help="Variable holding the Fernet export key")
    p.add_argument("--key-conn-id", help="connection whose password is the Fernet export key")
    p.add_argument("--key-secret-id", help="Secrets Manager secret holding the Fernet export key")
    p.add_argument(
        "--export-key-env", default="MWAAOPS_EXPORT_KEY", help="variable holding the export key itself"
    )
    p.add_argument(
        "--source-fernet-key-env",
        default="MWAAOPS_SOURCE_FERNET_KEY",
        help="variable holding the backed-up environment's [core] fernet_key (for trigger kwargs)",
    )
    p.add_argument(
        "--target-fernet-key-env",
        default="MWAAOPS_TARGET_FERNET_KEY",
        help="variable holding the target's [core] fernet_key (default: this Airflow's)",
    )
    p.add_argument("--task-token", help="Step Functions task token to answer with the outcome")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_location_arguments(p)
    p.set_defaults(handler=run_restore_command)


def _options(args: argparse.Namespace) -> Any:
    from airflow_provider_mwaaops.metadata.restore import RestoreOptions

    return RestoreOptions(
        tables=args.tables.split(",") if args.tables else None,
        dry_run=args.dry_run,
        strict=args.strict,
        transaction=args.transaction,
        reactivate_dags=not args.no_reactivate,
        export_key=os.environ.get(args.export_key_env) or None,
        key_variable=args.key_variable,
        key_conn_id=args.key_conn_id,
        key_secret_id=args.key_secret_id,
        aws_conn_id=args.aws_conn_id,
        region_name=args.region,
        source_fernet_key=os.environ.get(args.source_fernet_key_env) or None,
        target_fernet_key=os.environ.get(args.target_fernet_key_env),
    )


def _restore(args: argparse.Namespace) -> Any:
    from airflow_provider_mwaaops.metadata.manifest import latest_export
    from airflow_provider_mwaaops.metadata.restore import restore_metadata
    from airflow_provider_mwaaops.metadata.sinks import open_sink

    sink = open_sink(args.export_uri, aws_conn_id=args.aws_conn_id, region_name=args.region)
    export_id = args.export_id
    if not export_id:
        latest = latest_export(sink)
        if latest is None:
            raise CliError(f"no complete export under {sink.url}")
        export_id = latest.export_id
    if args.api or args.mwaa_environment:
        from airflow_provider_mwaaops.airflow_api import AirflowApiClient
        from airflow_provider_mwaaops.metadata.restore.rest import restore_through_api

        if args.mwaa_environment:
            client = AirflowApiClient.from_mwaa(args.mwaa_environment, args.aws_conn_id, args.region)
        else:
            password = os.environ.get(args.api_password_env) or None
            client = AirflowApiClient.from_url(args.api, username=args.api_user, password=password)
        return restore_through_api(sink, export_id, client, _options(args))
    from airflow_provider_mwaaops.metadata.sources.database import normalize_url, url_from_conn_id

    if args.url:
        url = normalize_url(args.url)
    elif args.conn_id:
        url = url_from_conn_id(args.conn_id)
    else:
        from airflow_provider_mwaaops.compat import conf

        url = str(conf.get("database", "sql_alchemy_conn"))
    return restore_metadata(sink, export_id, url, _options(args))


def run_restore_command(args: argparse.Namespace) -> int:
    from airflow_provider_mwaaops.aws.task_token import TaskTokenError, TaskTokenReporter
    from airflow_provider_mwaaops.metadata.restore import RestoreError

    reporter = (
        TaskTokenReporter(args.task_token, aws_conn_id=args.aws_conn_id, region_name=args.region)
        if (args.task_token)
        else None
    )
    try:
        report = _restore(args)
    except (RestoreError, CliError, ValueError) as err:
        if reporter is not None:
            reporter.fail("MetadataRestoreFailed", str(err))
        refused = not (isinstance(err, RestoreError) and err.rolled_back)
        raise CliError(str(err), exit_code=2 if refused else 1) from err
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        print(report.summary())
    if reporter is not None:
        try:
            reporter.succeed(report.as_dict())
        except TaskTokenError as err:
            raise CliError(str(err), exit_code=1) from err
    return 0
