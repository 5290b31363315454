"""Export layout and ``manifest.json``: what makes an export complete, verifiable and readable.

Layout under a base location (local directory or ``s3://bucket/prefix``)::

    <base>/<export_id>/manifest.json                          written LAST
    <base>/<export_id>/<table>/part-00000.parquet             whole-copy tables
    <base>/<export_id>/<table>/dt=YYYY-MM-DD/part-00000.parquet   analysis tables (Hive style)

An export is complete exactly when its manifest exists: files are listed in it with their row
count, byte size and sha256, and a reader goes through the manifest only, so stray files of a
killed run are never read. Everything a reader needs (restore, the report, Athena/Snowflake
loads) is in this module: :func:`load_manifest`, :func:`verify_export`, :func:`read_table`,
:func:`list_exports`, :func:`latest_export`.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from airflow_provider_mwaaops.metadata.sinks.base import Sink
from airflow_provider_mwaaops.metadata.tables import PARTITION_COLUMN, SCHEMA_VERSION, get_table

FORMAT_NAME = "mwaaops-metadata-export"
MANIFEST_NAME = "manifest.json"
_EXPORT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=-]{0,127}$")


class ExportError(Exception):
    """An export cannot be used; the message names the export, table and file at fault."""


class ManifestMissing(ExportError):
    """No manifest: the export does not exist or never completed (a killed run)."""


class ManifestCorrupt(ExportError):
    """The manifest is not valid JSON, or not an export manifest of this format."""


class SchemaTooNew(ExportError):
    """The export was written by a newer format version than this provider can read."""


class ChecksumMismatch(ExportError):
    """A listed file is missing, or its bytes, size or row count differ from the manifest."""


def validate_export_id(export_id: str) -> str:
    if not _EXPORT_ID.match(export_id):
        raise ValueError(
            f"invalid export id {export_id!r}: use letters, digits and _ . = - (at most 128 characters)"
        )
    return export_id


def part_path(table: str, chunk: int, partition: str | None = None) -> str:
    """Path of one chunk file inside an export directory."""
    name = f"part-{chunk:05d}.parquet"
    if partition is None:
        return f"{table}/{name}"
    return f"{table}/{PARTITION_COLUMN}={partition}/{name}"


@dataclass
class FileEntry:
    path: str
    rows: int
    bytes: int
    sha256: str
    partition: str | None = None


@dataclass
class TableEntry:
    """One table in an export.

    ``columns`` are the columns the source really had (the Parquet schema always has all of the
    catalog's columns; the others are null). ``watermark_low``/``watermark_high`` bound the
    ``watermark_column`` values of this export's rows (``low`` exclusive, ``null`` = from the
    beginning); an incremental export starts at the previous export's ``watermark_high``.
    ``masked``: per column, how many values had a secret masked (``***``) in them
    (:mod:`~airflow_provider_mwaaops.metadata.masking`); counts only, never values.
    """

    name: str
    rows: int = 0
    columns: list[str] = field(default_factory=list)
    keyset: list[str] = field(default_factory=list)
    natural_key: list[str] | None = None
    watermark_column: str | None = None
    watermark_low: str | None = None
    watermark_high: str | None = None
    partition_column: str | None = None
    partition_by: list[str] = field(default_factory=list)
    secret_columns: list[str] = field(default_factory=list)
    files: list[FileEntry] = field(default_factory=list)
    masked: dict[str, int] = field(default_factory=dict)


def excluded_secrets() -> dict[str, Any]:
    """The manifest's ``secrets`` entry of an export without secret values."""
    return {"mode": "exclude"}


@dataclass
class Manifest:
    export_id: str
    mode: str  # "full" or "incremental"
    airflow_version: str
    source: dict[str, Any]
    started_at: str
    finished_at: str | None = None
    previous_export_id: str | None = None
    secrets: dict[str, Any] = field(default_factory=excluded_secrets)
    tables: dict[str, TableEntry] = field(default_factory=dict)
    provider_version: str = ""
    format: str = FORMAT_NAME
    schema_version: int = SCHEMA_VERSION

    # -- serialisation -----------------------------------------------------------------------
    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=False) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, where: str = MANIFEST_NAME) -> Manifest:
        try:
            raw = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ManifestCorrupt(f"{where}: not valid JSON ({err})") from err
        if not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
            raise ManifestCorrupt(
                f"{where}: not a {FORMAT_NAME} manifest (format={raw.get('format')!r})"
                if isinstance(raw, dict)
                else f"{where}: not a {FORMAT_NAME} manifest"
            )
        version = raw.get("schema_version")
        if not isinstance(version, int):
            raise ManifestCorrupt(f"{where}: schema_version missing or not an integer")
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{where}: written with export schema version {version}, this provider reads up to "
                f"{SCHEMA_VERSION}; upgrade airflow-provider-mwaaops to read it"
            )
        try:
            tables = {
                name: TableEntry(**{**entry, "files": [FileEntry(**f) for f in entry.get("files", [])]})
                for name, entry in raw.get("tables", {}).items()
            }
            return cls(**{**raw, "tables": tables})
        except (TypeError, AttributeError) as err:
            raise ManifestCorrupt(f"{where}: unexpected manifest structure ({err})") from err

    # -- helpers ----------------------------------------------------------------------------
    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables.values())

    def table(self, name: str) -> TableEntry:
        try:
            return self.tables[name]
        except KeyError:
            raise ExportError(
                f"export {self.export_id}: table {name!r} is not in it (has: {', '.join(self.tables)})"
            ) from None

    def file_paths(self, table: str) -> list[str]:
        """Paths of the table's files relative to the export directory."""
        return [f.path for f in self.table(table).files]


def manifest_path(export_id: str) -> str:
    return f"{validate_export_id(export_id)}/{MANIFEST_NAME}"


def load_manifest(sink: Sink, export_id: str) -> Manifest:
    """The manifest of ``export_id`` under ``sink``; :class:`ManifestMissing` if not complete."""
    path = manifest_path(export_id)
    try:
        data = sink.read_bytes(path)
    except FileNotFoundError:
        raise ManifestMissing(
            f"{sink.full_path(path)}: no manifest; export {export_id!r} does not exist or never "
            "completed (an interrupted export leaves no manifest: run it again)"
        ) from None
    manifest = Manifest.from_json(data, where=sink.full_path(path))
    if manifest.export_id != export_id:
        raise ManifestCorrupt(
            f"{sink.full_path(path)}: names export {manifest.export_id!r}, found under {export_id!r}"
        )
    return manifest


def list_exports(sink: Sink) -> list[str]:
    """Ids of the complete exports under the sink (those with a manifest), oldest name first."""
    return [d for d in sink.list_dirs() if _EXPORT_ID.match(d) and sink.exists(f"{d}/{MANIFEST_NAME}")]


def latest_export(sink: Sink, exclude: Iterable[str] = ()) -> Manifest | None:
    """The most recently finished complete export under the sink, or ``None``."""
    skip = set(exclude)
    best: Manifest | None = None
    for export_id in list_exports(sink):
        if export_id in skip:
            continue
        manifest = load_manifest(sink, export_id)
        if best is None or (manifest.finished_at or "", manifest.export_id) > (
            best.finished_at or "",
            best.export_id,
        ):
            best = manifest
    return best


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_verified(sink: Sink, manifest: Manifest, table: str, entry: FileEntry) -> bytes:
    """The bytes of one listed file, refused unless size and sha256 match the manifest."""
    path = f"{manifest.export_id}/{entry.path}"
    try:
        data = sink.read_bytes(path)
    except FileNotFoundError:
        raise ChecksumMismatch(
            f"export {manifest.export_id}, table {table}: file {sink.full_path(path)} is missing"
        ) from None
    if len(data) != entry.bytes or sha256_hex(data) != entry.sha256:
        raise ChecksumMismatch(
            f"export {manifest.export_id}, table {table}: file {sink.full_path(path)} does not match "
            f"its manifest checksum (expected {entry.bytes} bytes sha256 {entry.sha256[:12]}..., got "
            f"{len(data)} bytes sha256 {sha256_hex(data)[:12]}...); the export is corrupt"
        )
    return data


def verify_export(sink: Sink, manifest: Manifest, tables: Iterable[str] | None = None) -> int:
    """Check every listed file's size, sha256 and Parquet row count; return the rows checked.

    Raises :class:`ChecksumMismatch` naming the first bad file. Reads each file once, one at a
    time, so memory stays at one file's size.
    """
    rows = 0
    names = list(manifest.tables) if tables is None else list(tables)
    for name in names:
        table = manifest.table(name)
        for entry in table.files:
            data = read_verified(sink, manifest, name, entry)
            try:
                found = pq.read_metadata(io.BytesIO(data)).num_rows
            except (pa.ArrowException, OSError) as err:
                raise ChecksumMismatch(
                    f"export {manifest.export_id}, table {name}: {entry.path} is not readable Parquet ({err})"
                ) from err
            if found != entry.rows:
                raise ChecksumMismatch(
                    f"export {manifest.export_id}, table {name}: {entry.path} holds {found} rows, "
                    f"manifest says {entry.rows}"
                )
            rows += found
    return rows


def iter_table(
    sink: Sink,
    manifest: Manifest,
    table: str,
    verify_checksums: bool = True,
    with_partition: bool = False,
) -> Iterator[pa.Table]:
    """The table's files one by one as Arrow tables in the catalog schema (checksummed unless
    ``verify_checksums`` is false).

    ``with_partition`` appends the ``dt`` partition value as a string column, as Hive readers
    would see it.
    """
    spec = get_table(table)
    for entry in manifest.table(table).files:
        path = f"{manifest.export_id}/{entry.path}"
        data = read_verified(sink, manifest, table, entry) if verify_checksums else sink.read_bytes(path)
        part = pq.read_table(io.BytesIO(data), schema=spec.arrow_schema)
        if with_partition:
            part = part.append_column(
                PARTITION_COLUMN, pa.array([entry.partition] * part.num_rows, pa.string())
            )
        yield part


def read_table(sink: Sink, manifest: Manifest, table: str, verify_checksums: bool = True) -> pa.Table:
    """The whole table of one export (small tables, tests); use :func:`iter_table` for big ones."""
    parts = list(iter_table(sink, manifest, table, verify_checksums=verify_checksums))
    if not parts:
        return get_table(table).arrow_schema.empty_table()
    return pa.concat_tables(parts)
