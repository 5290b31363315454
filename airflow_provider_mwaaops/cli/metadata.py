"""``mwaaops metadata ...``: export, verify (and, from sibling modules, restore and report).

Each ``metadata`` sub-command is registered by a function ``register(subparsers)`` in a module
listed in :data:`SUBCOMMAND_MODULES` (this module registers ``export`` and ``verify`` itself), so
restore and report live in their own modules and only add their name here.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

from airflow_provider_mwaaops.cli import CliError
from airflow_provider_mwaaops.metadata import DEFAULT_CHUNK_ROWS

#: Extra modules (in this package) that add ``metadata`` sub-commands via ``register(subparsers)``.
SUBCOMMAND_MODULES: tuple[str, ...] = ("metadata_report", "metadata_restore")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "metadata",
        help="export, verify, restore and analyse Airflow metadata exports",
        description="Airflow metadata exports: typed Parquet with a checksummed manifest.",
    )
    sub = parser.add_subparsers(title="metadata commands", metavar="COMMAND")
    _register_export(sub)
    _register_verify(sub)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"airflow_provider_mwaaops.cli.{name}").register(sub)
    parser.set_defaults(handler=lambda args: (parser.print_help(sys.stderr), 2)[1])


def add_location_arguments(parser: argparse.ArgumentParser) -> None:
    """``--aws-conn-id`` / ``--region``: how to reach an ``s3://`` export base."""
    parser.add_argument(
        "--aws-conn-id",
        default=None,
        help="Airflow AWS connection for S3/KMS/Secrets Manager (default: the boto environment)",
    )
    parser.add_argument("--region", default=None, help="AWS region")


def _register_export(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="export the metadata database to S3 or a local directory",
        description="Export Airflow's metadata DB as Parquet + manifest.json to EXPORT_URI/<export-id>/.",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--url", help="SQLAlchemy URL of the metadata DB (default: this Airflow's)")
    src.add_argument("--conn-id", help="Airflow connection id of the metadata DB")
    p.add_argument("--export-uri", required=True, help="base location: s3://bucket/prefix or a path")
    p.add_argument("--export-id", help="id of the export (default: UTC time, e.g. 20260101T120000Z)")
    p.add_argument("--mode", choices=("full", "incremental"), default="full")
    p.add_argument("--previous", dest="previous_export_id", help="export an incremental one continues")
    p.add_argument("--tables", help="comma-separated table names (default: all but xcom)")
    p.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    p.add_argument("--chunk-timeout", type=float, default=300.0, help="seconds per chunk query")
    p.add_argument("--no-fast-path", action="store_true", help="PostgreSQL: use the cursor path, not COPY")
    p.add_argument("--secrets", choices=("exclude", "fernet", "kms"), default="exclude")
    p.add_argument("--key-variable", help="Variable holding the Fernet export key")
    p.add_argument("--key-conn-id", help="connection whose password is the Fernet export key")
    p.add_argument("--key-secret-id", help="Secrets Manager secret holding the Fernet export key")
    p.add_argument("--kms-key-id", help="KMS key for the export's data key")
    p.add_argument("--json", action="store_true", help="print the manifest summary as JSON")
    add_location_arguments(p)
    p.set_defaults(handler=run_export_command)


def _register_verify(sub: Any) -> None:
    p = sub.add_parser(
        "verify",
        help="check an export's manifest and every file's checksum",
        description="Verify EXPORT_URI/<export-id>: manifest, sizes, sha256 and row counts of every file.",
    )
    p.add_argument("export_uri", help="base location: s3://bucket/prefix or a path")
    p.add_argument("export_id", nargs="?", help="export id (default: the latest complete one)")
    add_location_arguments(p)
    p.set_defaults(handler=run_verify_command)


def _summary(manifest: Any, sink: Any) -> dict[str, Any]:
    from airflow_provider_mwaaops.metadata.manifest import manifest_path

    return {
        "export_id": manifest.export_id,
        "mode": manifest.mode,
        "manifest": sink.full_path(manifest_path(manifest.export_id)),
        "rows": manifest.total_rows,
        "tables": {name: t.rows for name, t in manifest.tables.items()},
    }


def run_export_command(args: argparse.Namespace) -> int:
    from airflow_provider_mwaaops.metadata.export import ExportSettings, export_metadata
    from airflow_provider_mwaaops.metadata.manifest import ExportError
    from airflow_provider_mwaaops.metadata.secrets import SecretKeyError
    from airflow_provider_mwaaops.metadata.sinks import open_sink
    from airflow_provider_mwaaops.metadata.sources.database import DatabaseSourceError

    settings = ExportSettings(
        export_id=args.export_id,
        mode=args.mode,
        previous_export_id=args.previous_export_id,
        tables=args.tables.split(",") if args.tables else None,
        db_conn_id=args.conn_id,
        sql_alchemy_url=args.url,
        chunk_rows=args.chunk_rows,
        chunk_timeout=args.chunk_timeout,
        fast_path=not args.no_fast_path,
        secrets=args.secrets,
        key_variable=args.key_variable,
        key_conn_id=args.key_conn_id,
        key_secret_id=args.key_secret_id,
        kms_key_id=args.kms_key_id,
        aws_conn_id=args.aws_conn_id,
        region_name=args.region,
    )
    try:
        sink = open_sink(args.export_uri, aws_conn_id=args.aws_conn_id, region_name=args.region)
        manifest = export_metadata(sink, settings)
    except (ExportError, SecretKeyError, DatabaseSourceError, ValueError) as err:
        raise CliError(str(err)) from err
    _print(_summary(manifest, sink), args.json)
    return 0


def run_verify_command(args: argparse.Namespace) -> int:
    from airflow_provider_mwaaops.metadata.manifest import (
        ExportError,
        latest_export,
        load_manifest,
        verify_export,
    )
    from airflow_provider_mwaaops.metadata.sinks import open_sink

    try:
        sink = open_sink(args.export_uri, aws_conn_id=args.aws_conn_id, region_name=args.region)
        if args.export_id:
            manifest = load_manifest(sink, args.export_id)
        else:
            found = latest_export(sink)
            if found is None:
                raise CliError(f"no complete export under {sink.url}")
            manifest = found
        rows = verify_export(sink, manifest)
    except (ExportError, ValueError) as err:
        raise CliError(str(err), exit_code=1) from err
    files = sum(len(t.files) for t in manifest.tables.values())
    print(f"export {manifest.export_id}: OK, {files} files, {rows} rows verified")
    return 0


def _print(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    print(f"export {summary['export_id']} ({summary['mode']}): {summary['rows']} rows")
    for name, rows in summary["tables"].items():
        print(f"  {name:<24} {rows:>10}")
    print(f"manifest: {summary['manifest']}")
