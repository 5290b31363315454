"""The export engine: source chunks -> deterministic Parquet files -> checksums -> manifest last.

Determinism is what makes an interrupted export safe to rerun: chunk boundaries come from the
keyset and ``chunk_rows`` only, rows keep the source's order, and the Parquet writer gets fixed
options and no timestamps, so the same rows always produce byte-identical files. A rerun simply
rewrites the same paths; the manifest, written last, lists exactly the files of the completed run.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from airflow_provider_mwaaops.metadata import DEFAULT_CHUNK_ROWS
from airflow_provider_mwaaops.metadata.manifest import (
    ExportError,
    FileEntry,
    Manifest,
    ManifestMissing,
    TableEntry,
    latest_export,
    load_manifest,
    manifest_path,
    part_path,
    sha256_hex,
    validate_export_id,
)
from airflow_provider_mwaaops.metadata.masking import SecretMasker, masker_for_source
from airflow_provider_mwaaops.metadata.secrets import SecretCipher
from airflow_provider_mwaaops.metadata.sinks.base import Sink
from airflow_provider_mwaaops.metadata.sources.base import MetadataSource, ReadWindow
from airflow_provider_mwaaops.metadata.tables import (
    NULL_PARTITION,
    PARTITION_COLUMN,
    TableSpec,
    resolve_tables,
)

log = logging.getLogger(__name__)

#: Threads encoding and writing one chunk's files while the next chunk is read.
WRITE_WORKERS = 2
MODES = ("full", "incremental")


def new_export_id(now: datetime | None = None) -> str:
    """Sortable, unique-per-second export id: ``20260101T120000Z``."""
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _parse_iso(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def parquet_bytes(table: pa.Table) -> bytes:
    """One chunk as Parquet, with options fixed so equal rows give equal bytes."""
    buf = io.BytesIO()
    pq.write_table(
        table,
        buf,
        compression="zstd",
        compression_level=1,
        row_group_size=max(table.num_rows, 1),
        use_dictionary=True,
        write_statistics=True,
        store_schema=True,
    )
    return buf.getvalue()


def partition_days(spec: TableSpec, chunk: pa.Table) -> pa.Array:
    """The UTC date (``date32``, null where every ``spec.partition_by`` column is null) of each row.

    A cast, not ``strftime``: formatting every row's timestamp as text costs more than parsing the
    whole chunk; only the few distinct days of a chunk are ever formatted (``_partition_name``).
    """
    arrays = [chunk.column(name) for name in spec.partition_by]
    stamp = pc.coalesce(*arrays) if len(arrays) > 1 else arrays[0]
    days = pc.cast(stamp, pa.date32())
    return days.combine_chunks() if isinstance(days, pa.ChunkedArray) else days


def _partition_name(day: date | None) -> str:
    """Hive's ``dt`` value: ``YYYY-MM-DD``, or Hive's default partition for rows without a date."""
    return NULL_PARTITION if day is None else day.isoformat()


def split_partitions(spec: TableSpec, chunk: pa.Table) -> list[tuple[str | None, pa.Table]]:
    """The chunk as (partition, rows) pieces, partitions ascending, source order kept within.

    Pieces are zero-copy: a chunk is cut into runs of rows of one day (in a time-ordered keyset
    a day is usually one run) and each day's runs are joined as a chunked table, never copied.
    """
    if not spec.partitioned:
        return [(None, chunk)]
    runs = pc.run_end_encode(partition_days(spec, chunk))
    values, ends = runs.values.to_pylist(), runs.run_ends.to_pylist()
    by_day: dict[str, list[pa.Table]] = {}
    for day, start, end in zip(values, [0, *ends[:-1]], ends, strict=True):
        by_day.setdefault(_partition_name(day), []).append(chunk.slice(start, end - start))
    return [
        (day, pieces[0] if len(pieces) == 1 else pa.concat_tables(pieces))
        for day, pieces in sorted(by_day.items())
    ]


def _encrypt_secrets(spec: TableSpec, chunk: pa.Table, cipher: SecretCipher) -> pa.Table:
    for name in spec.secret_columns:
        idx = chunk.schema.get_field_index(name)
        values = chunk.column(idx).to_pylist()
        encrypted = pa.array([None if v is None else cipher.encrypt(v) for v in values], pa.string())
        chunk = chunk.set_column(idx, name, encrypted)
    return chunk


def _blank_secrets(spec: TableSpec, chunk: pa.Table) -> pa.Table:
    """Defence in depth: whatever a source returned, excluded secrets are written as nulls."""
    for name in spec.secret_columns:
        idx = chunk.schema.get_field_index(name)
        chunk = chunk.set_column(idx, name, pa.nulls(chunk.num_rows, pa.string()))
    return chunk


def _write_file(sink: Sink, export_id: str, path: str, piece: pa.Table, partition: str | None) -> FileEntry:
    data = parquet_bytes(piece)
    # The encoder's buffers were allocated on this thread: hand them back now (the allocator
    # keeps freed memory per thread, and this one may sit idle until the next chunk).
    pa.default_memory_pool().release_unused()
    sink.write_bytes(f"{export_id}/{path}", data)
    return FileEntry(path, piece.num_rows, len(data), sha256_hex(data), partition)


@dataclass
class ExportPlan:
    """What one export will do; resolved before any file is written."""

    export_id: str
    mode: str
    previous: Manifest | None
    tables: list[TableSpec]


def plan_export(
    sink: Sink,
    export_id: str | None,
    mode: str,
    tables: Iterable[str] | None,
    previous_export_id: str | None,
) -> ExportPlan:
    if mode not in MODES:
        raise ValueError(f"export mode {mode!r}: use one of {', '.join(MODES)}")
    export_id = validate_export_id(export_id or new_export_id())
    if sink.exists(manifest_path(export_id)):
        raise ExportError(
            f"{sink.full_path(manifest_path(export_id))} exists: export {export_id!r} is already complete"
        )
    previous: Manifest | None = None
    if mode == "incremental":
        if previous_export_id:
            previous = load_manifest(sink, previous_export_id)
        else:
            previous = latest_export(sink, exclude=[export_id])
        if previous is None:
            log.info(
                "No complete export under %s: the incremental export %s is a full one", sink.url, export_id
            )
            mode = "full"
    return ExportPlan(export_id, mode, previous, resolve_tables(tables))


def run_export(
    source: MetadataSource,
    sink: Sink,
    *,
    export_id: str | None = None,
    mode: str = "full",
    tables: Iterable[str] | None = None,
    previous_export_id: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    cipher: SecretCipher | None = None,
    provider_version: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    mask_secrets: bool = True,
) -> Manifest:
    """Export the selected tables from ``source`` into ``sink`` and return the written manifest.

    ``mode="incremental"`` reads only rows whose watermark is above the previous complete export's
    (``previous_export_id``, or the latest under the sink); whole-copy tables are copied again.
    ``progress(table, chunk, rows)`` is called after each chunk is written. Copies of secrets in
    other columns are masked (:mod:`~airflow_provider_mwaaops.metadata.masking`);
    ``mask_secrets=False`` is only for measuring what that costs (the benchmark's anchor).
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be positive")
    plan = plan_export(sink, export_id, mode, tables, previous_export_id)
    if provider_version is None:
        from airflow_provider_mwaaops import __version__ as provider_version
    # Every table is read at one moment, so that rows agree with each other (see sources.snapshot).
    with source.consistent_read():
        masker = masker_for_source(source, chunk_rows) if mask_secrets else None
        manifest = Manifest(
            export_id=plan.export_id,
            mode=plan.mode,
            airflow_version=source.airflow_version(),
            source=source.describe(),
            started_at=_iso(datetime.now(UTC)) or "",
            previous_export_id=plan.previous.export_id if plan.previous else None,
            secrets=cipher.describe() if cipher else {"mode": "exclude"},
            provider_version=provider_version or "",
        )
        for spec in plan.tables:
            entry = _export_table(source, sink, plan, spec, chunk_rows, cipher, progress, masker)
            if entry is not None:
                manifest.tables[spec.name] = entry
                if entry.masked:
                    log.info("Table %s: values with a secret masked, per column: %s", spec.name, entry.masked)
    manifest.finished_at = _iso(datetime.now(UTC))
    sink.write_bytes(manifest_path(plan.export_id), manifest.to_json())
    log.info(
        "Export %s complete: %d rows in %d tables at %s",
        plan.export_id,
        manifest.total_rows,
        len(manifest.tables),
        sink.full_path(plan.export_id),
    )
    return manifest


def _window(source: MetadataSource, plan: ExportPlan, spec: TableSpec, columns: list[str]) -> ReadWindow:
    if source.watermark_column(spec, columns) is None:
        return ReadWindow()
    high = source.watermark_high(spec)
    low: datetime | None = None
    if plan.mode == "incremental" and plan.previous is not None:
        previous = plan.previous.tables.get(spec.name)
        if previous is not None and previous.watermark_column == spec.watermark:
            low = _parse_iso(previous.watermark_high)
            if low is not None and (high is None or high < low):
                high = low  # nothing newer: an empty window, and the watermark carries over
    return ReadWindow(low=low, high=high)


def _export_table(
    source: MetadataSource,
    sink: Sink,
    plan: ExportPlan,
    spec: TableSpec,
    chunk_rows: int,
    cipher: SecretCipher | None,
    progress: Callable[[str, int, int], None] | None,
    masker: SecretMasker | None = None,
) -> TableEntry | None:
    columns = source.columns(spec)
    if columns is None:
        log.debug("Table %s does not exist in this source: skipped", spec.name)
        return None
    window = _window(source, plan, spec, columns)
    has_watermark = source.watermark_column(spec, columns) is not None
    entry = TableEntry(
        name=spec.name,
        columns=columns,
        keyset=source.keyset(spec),
        natural_key=list(key) if (key := spec.natural_key(columns)) else None,
        watermark_column=spec.watermark if has_watermark else None,
        watermark_low=_iso(window.low),
        watermark_high=_iso(window.high),
        partition_column=PARTITION_COLUMN if spec.partitioned else None,
        partition_by=list(spec.partition_by),
        secret_columns=[c for c in spec.secret_columns if c in columns],
    )
    secrets = bool(cipher) and bool(entry.secret_columns)

    def secure(chunk: pa.Table) -> pa.Table:
        """The chunk as it may leave: catalog types, secrets masked elsewhere, secret columns
        encrypted or blank."""
        if chunk.schema != spec.arrow_schema:
            chunk = chunk.cast(spec.arrow_schema)
        if masker is not None:
            chunk = masker.mask(spec, chunk)
        if spec.secret_columns:
            chunk = (
                _encrypt_secrets(spec, chunk, cipher) if (cipher and secrets) else _blank_secrets(spec, chunk)
            )
        return chunk

    def handle(chunk_no: int, chunk: pa.Table) -> list[FileEntry]:
        pieces = split_partitions(spec, secure(chunk))
        files = [
            pool.submit(
                _write_file, sink, plan.export_id, part_path(spec.name, chunk_no, partition), piece, partition
            )
            for partition, piece in pieces
        ]
        return [future.result() for future in files]

    # Chunk k is secured (masking is Arrow compute, which releases the GIL), encoded and
    # uploaded (one file per day, on the writer threads: Parquet encoding and S3 PUTs release
    # the GIL too) while the source reads chunk k+1 and mostly waits for the database. At most
    # one chunk is in flight, so memory stays bounded, and entries are recorded in chunk order,
    # so the manifest does not depend on timing.
    in_flight: Future[list[FileEntry]] | None = None

    def drain() -> None:
        if in_flight is not None:
            entry.files.extend(in_flight.result())
        # The chunk's buffers are free now: hand them back rather than let the allocator keep
        # them, so peak memory is a chunk or two whatever the table size.
        pa.default_memory_pool().release_unused()

    chunk_no, last_rows = -1, 0
    with (
        ThreadPoolExecutor(max_workers=WRITE_WORKERS, thread_name_prefix="mwaaops-export") as pool,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="mwaaops-export-chunk") as chunks,
    ):
        try:
            for chunk_no, chunk in enumerate(source.read(spec, window, chunk_rows, include_secrets=secrets)):
                drain()
                if progress and chunk_no > 0:
                    progress(spec.name, chunk_no - 1, last_rows)
                in_flight = chunks.submit(handle, chunk_no, chunk)
                entry.rows += chunk.num_rows
                last_rows = chunk.num_rows
            drain()
            in_flight = None
            if progress and chunk_no >= 0:
                progress(spec.name, chunk_no, last_rows)
        finally:
            if in_flight is not None:
                in_flight.cancel()
    if masker is not None:
        entry.masked = dict(masker.counts.get(spec.name, {}))
    return entry


@dataclass(frozen=True)
class ExportSettings:
    """Everything an export is asked for, as the operator and ``mwaaops metadata export`` take it.

    Where to read (``read_from``: ``"database"`` at ``sql_alchemy_url`` / ``db_conn_id`` / this
    Airflow's, or ``"rest"``), what to write (``mode``, ``tables``, ``chunk_rows``...), and the
    export key for secrets (``secrets`` with ``key_variable`` / ``key_conn_id`` /
    ``key_secret_id`` / ``kms_key_id``; AWS through ``aws_conn_id`` and ``region_name``).
    """

    export_id: str | None = None
    mode: str = "full"
    previous_export_id: str | None = None
    tables: Sequence[str] | None = None
    read_from: str = "database"
    db_conn_id: str | None = None
    sql_alchemy_url: str | None = None
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    chunk_timeout: float = 300.0
    fast_path: bool = True
    secrets: str = "exclude"
    key_variable: str | None = None
    key_conn_id: str | None = None
    key_secret_id: str | None = None
    kms_key_id: str | None = None
    aws_conn_id: str | None = "aws_default"
    region_name: str | None = None


def export_metadata(
    sink: Sink, settings: ExportSettings, progress: Callable[[str, int, int], None] | None = None
) -> Manifest:
    """Open the export key and the source ``settings`` name, export into ``sink``, close the source.

    The one wiring of an export: the operator and the command both call it.
    """
    from airflow_provider_mwaaops.metadata.secrets import make_cipher
    from airflow_provider_mwaaops.metadata.sources import open_source

    cipher = make_cipher(
        settings.secrets,
        key_variable=settings.key_variable,
        key_conn_id=settings.key_conn_id,
        key_secret_id=settings.key_secret_id,
        kms_key_id=settings.kms_key_id,
        aws_conn_id=settings.aws_conn_id,
        region_name=settings.region_name,
    )
    source = open_source(
        settings.read_from,
        sql_alchemy_url=settings.sql_alchemy_url,
        db_conn_id=settings.db_conn_id,
        chunk_timeout=settings.chunk_timeout,
        fast_path=settings.fast_path,
    )
    try:
        return run_export(
            source,
            sink,
            export_id=settings.export_id,
            mode=settings.mode,
            tables=settings.tables,
            previous_export_id=settings.previous_export_id,
            chunk_rows=settings.chunk_rows,
            cipher=cipher,
            progress=progress,
        )
    finally:
        source.close()


__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "ExportError",
    "ExportSettings",
    "ManifestMissing",
    "export_metadata",
    "new_export_id",
    "parquet_bytes",
    "plan_export",
    "run_export",
    "split_partitions",
]
