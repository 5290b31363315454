"""``mwaaops metadata report`` and ``mwaaops metadata athena-ddl``: read exports, never the database.

Both take an export location: one export's folder or the base folder of many (a full export and
its incremental followers), local or ``s3://``. Neither needs Airflow to be running.
"""

from __future__ import annotations

import argparse
from typing import Any

from airflow_provider_mwaaops.cli import CliError


def register(subparsers: Any) -> None:
    from airflow_provider_mwaaops.cli.metadata import add_location_arguments

    report = subparsers.add_parser(
        "report",
        help="per-DAG monthly runs, success rate and durations; slowest tasks; retry hot spots",
        description=(
            "Analyse the complete exports at EXPORT_URI with DuckDB (each row counted once, latest "
            "export winning): print a table and optionally write a self-contained HTML report."
        ),
    )
    report.add_argument(
        "export_uri", help="an export folder or the base of several: s3://bucket/prefix or a path"
    )
    report.add_argument("--html", help="write the HTML report here (a path or s3:// URI)")
    report.add_argument("--top", type=int, default=10, help="tasks listed as slowest / retrying (default 10)")
    report.add_argument(
        "--verify-checksums", action="store_true", help="check every file's sha256 before reading"
    )
    report.add_argument("--quiet", action="store_true", help="do not print the console table")
    add_location_arguments(report)
    report.set_defaults(handler=run_report_command)

    ddl = subparsers.add_parser(
        "athena-ddl",
        help="print Athena DDL (partition projection) and views for the exported files",
        description=(
            "Print CREATE EXTERNAL TABLE statements with partition projection over every complete "
            "export at EXPORT_URI, a latest-copy view per table and the monthly report as a view."
        ),
    )
    ddl.add_argument(
        "export_uri", help="the base of the exports (or one export): s3://bucket/prefix or a path"
    )
    ddl.add_argument("--database", required=True, help="Athena (Glue catalog) database")
    ddl.add_argument("--tables", help="comma-separated tables (default: every exported table)")
    ddl.add_argument("--table-prefix", default="", help="prefix for table and view names")
    ddl.add_argument("--location", help="S3 base the tables point at, if not EXPORT_URI (local exports)")
    add_location_arguments(ddl)
    ddl.set_defaults(handler=run_athena_ddl_command)


def run_report_command(args: argparse.Namespace) -> int:
    from airflow_provider_mwaaops.metadata.analysis.html import write_html
    from airflow_provider_mwaaops.metadata.analysis.reader import ExportReadError
    from airflow_provider_mwaaops.metadata.analysis.report import build_report

    if args.top < 1:
        raise CliError("--top must be at least 1")
    try:
        report = build_report(
            args.export_uri,
            aws_conn_id=args.aws_conn_id,
            region_name=args.region,
            top=args.top,
            verify_checksums=args.verify_checksums,
        )
    except ExportReadError as err:
        raise CliError(str(err)) from err
    if not args.quiet:
        print(report.console_table())
    if args.html:
        written = write_html(report, args.html, aws_conn_id=args.aws_conn_id, region_name=args.region)
        print(f"\nwrote {written}")
    return 0


def run_athena_ddl_command(args: argparse.Namespace) -> int:
    from airflow_provider_mwaaops.metadata.analysis.athena import (
        AthenaDdlError,
        athena_ddl,
        format_statements,
    )
    from airflow_provider_mwaaops.metadata.analysis.reader import ExportReader, ExportReadError

    try:
        reader = ExportReader.open(args.export_uri, aws_conn_id=args.aws_conn_id, region_name=args.region)
        statements = athena_ddl(
            reader,
            args.database,
            tables=args.tables.split(",") if args.tables else None,
            location=args.location,
            table_prefix=args.table_prefix,
        )
    except (ExportReadError, AthenaDdlError) as err:
        raise CliError(str(err)) from err
    print(format_statements(statements), end="")
    return 0
