"""A whole restore: refuse a bad export or target before any write, then restore table by table.

Order of business, and why:

1. load every manifest of the chain (an incremental export is restored after the exports it
   builds on) and verify every file's sha256, size and row count: a corrupt export is refused
   before the target is even opened for writing;
2. check the target: PostgreSQL or SQLite, migrated to the installed Airflow's schema, not older
   than the export's Airflow, every column the target requires present in the export, and (strict
   mode) no history of its own;
3. restore the tables in dependency order inside one transaction (or one per table), so an error
   leaves nothing half-applied; the id maps of earlier tables rewrite later tables' references;
4. re-activate (unpause) the DAGs that were active when the backup was taken.

A dry run does steps 1-3 without a single write and rolls its read transaction back.
"""

from __future__ import annotations

import io
import logging
import os
import queue
import re
import tempfile
import threading
import time
from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from airflow_provider_mwaaops.metadata.manifest import (
    ExportError,
    FileEntry,
    Manifest,
    load_manifest,
    read_verified,
)
from airflow_provider_mwaaops.metadata.restore.bulk import BULK_ROWS, BulkTableWriter, bulk_eligible
from airflow_provider_mwaaops.metadata.restore.errors import RestoreError
from airflow_provider_mwaaops.metadata.restore.plan import (
    RestoreState,
    TableRestorer,
    TableStats,
    _first_line,
)
from airflow_provider_mwaaops.metadata.restore.rules import STRICT_TABLES, order_tables, rule_for
from airflow_provider_mwaaops.metadata.restore.secrets import SecretCodec
from airflow_provider_mwaaops.metadata.restore.target import TargetSchema, create_target_engine
from airflow_provider_mwaaops.metadata.secrets import SecretCipher, SecretKeyError, cipher_for_manifest
from airflow_provider_mwaaops.metadata.sinks.base import Sink
from airflow_provider_mwaaops.metadata.tables import get_table

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class RestoreOptions:
    """How to restore; every field has the safe default.

    ``export_key``: the export key itself (a Fernet key) when secrets were exported encrypted;
    otherwise ``key_variable`` / ``key_conn_id`` / ``key_secret_id`` say where it lives (default:
    where the manifest says the export took it from; KMS exports need nothing but ``kms:Decrypt``).
    ``target_fernet_key``: the target Airflow's ``[core] fernet_key`` (default: this Airflow's).
    ``source_fernet_key``: the backed-up environment's key, to re-encrypt trigger kwargs.
    """

    tables: list[str] | None = None
    dry_run: bool = False
    strict: bool = False
    transaction: Literal["all", "table"] = "all"
    batch_rows: int = 2000
    reactivate_dags: bool = True
    chain: bool = True
    export_key: str | None = None
    key_variable: str | None = None
    key_conn_id: str | None = None
    key_secret_id: str | None = None
    aws_conn_id: str | None = "aws_default"
    region_name: str | None = None
    target_fernet_key: str | None = None
    source_fernet_key: str | None = None
    check_revision: bool = True
    # On PostgreSQL, COPY chunks in and decide in SQL where the result is the row path's (the
    # module metadata/restore/bulk.py says where); False forces the row path.
    bulk: bool = True


@dataclass
class RestoreReport:
    export_ids: list[str]
    target: str
    dry_run: bool
    tables: dict[str, TableStats] = field(default_factory=dict)
    reactivated_dags: list[str] = field(default_factory=list)
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)
    secrets: dict[str, int] = field(default_factory=dict)
    #: ``table.column`` -> values the export masked (``***``) there; they restore as masked.
    masked: dict[str, int] = field(default_factory=dict)
    verified_files: int = 0
    verified_rows: int = 0
    seconds: float = 0.0

    @property
    def changed_rows(self) -> int:
        return sum(stats.changed for stats in self.tables.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "export_ids": self.export_ids,
            "target": self.target,
            "dry_run": self.dry_run,
            "tables": {name: stats.as_dict() for name, stats in self.tables.items()},
            "reactivated_dags": self.reactivated_dags,
            "ignored_columns": self.ignored_columns,
            "secrets": self.secrets,
            "masked": self.masked,
            "verified_files": self.verified_files,
            "verified_rows": self.verified_rows,
            "changed_rows": self.changed_rows,
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        """A console table: one line per table, then what else happened."""
        verb = "would change" if self.dry_run else "changed"
        lines = [
            f"{'table':<24} {'exported':>9} {'insert':>8} {'update':>8} {'unchanged':>10} {'kept':>6} "
            f"{'skipped':>8} {'remapped':>9}"
        ]
        for name, s in self.tables.items():
            lines.append(
                f"{name:<24} {s.exported:>9} {s.inserted:>8} {s.updated:>8} {s.unchanged:>10} {s.kept:>6} "
                f"{sum(s.skipped.values()):>8} {s.ids_remapped:>9}"
            )
        lines.append(
            f"{'dry run: ' if self.dry_run else ''}{self.changed_rows} rows {verb} in {self.target} from "
            f"export {', '.join(self.export_ids)} ({self.verified_files} files verified)"
        )
        for name, s in self.tables.items():
            for reason, count in s.skipped.items():
                lines.append(f"  {name}: {count} skipped: {reason}")
            for column, count in s.references_cleared.items():
                lines.append(f"  {name}.{column}: {count} references to rows not restored set to NULL")
        for what, count in self.secrets.items():
            lines.append(f"  {what} ({count})")
        for column, count in self.masked.items():
            lines.append(f"  {column}: {count} values hold a secret masked at export (restored as ***)")
        for name, columns in self.ignored_columns.items():
            lines.append(
                f"  {name}: exported columns the target does not have, ignored: {', '.join(columns)}"
            )
        if self.reactivated_dags:
            prefix = "would re-activate" if self.dry_run else "re-activated"
            lines.append(f"  {prefix} {len(self.reactivated_dags)} DAGs: {', '.join(self.reactivated_dags)}")
        return "\n".join(lines)


def redact_url(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<target>"


# -- the export side ----------------------------------------------------------------------------------
def export_chain(sink: Sink, export_id: str, chain: bool = True) -> list[Manifest]:
    """The manifests to apply, oldest first: an incremental export needs the exports before it."""
    manifests: list[Manifest] = []
    seen: set[str] = set()
    current: str | None = export_id
    while current is not None:
        if current in seen:
            raise RestoreError(f"export {current!r}: previous_export_id chain loops back on itself")
        seen.add(current)
        try:
            manifest = load_manifest(sink, current)
        except ExportError as exc:
            raise RestoreError(str(exc)) from exc
        manifests.append(manifest)
        current = manifest.previous_export_id if chain and manifest.mode == "incremental" else None
    return list(reversed(manifests))


def _max_of(data: bytes, column: str) -> int:
    """The largest value of an integer column, from Parquet statistics when present."""
    metadata = pq.read_metadata(io.BytesIO(data))
    schema = metadata.schema.to_arrow_schema()
    if column not in schema.names:
        return 0
    index = schema.get_field_index(column)
    best = 0
    for group in range(metadata.num_row_groups):
        stats = metadata.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max:
            values = pq.read_table(io.BytesIO(data), columns=[column]).column(0).to_pylist()
            return max([v for v in values if v is not None], default=0)
        best = max(best, int(stats.max))
    return best


class VerifiedFiles:
    """The bytes of every export file as they were verified, kept on local disk for the restore.

    Why: verifying every file before the first write means reading each one once (S3 GET and
    sha256), and restoring used to read and hash it a second time. The restore now reads the very
    bytes that were verified, from a private temporary directory (a local read, and Parquet is
    read from the file row group by row group instead of from a whole file held in memory). A file
    that cannot be kept (no space left) is simply read from the export again, and verified again.
    """

    def __init__(self) -> None:
        self._directory: tempfile.TemporaryDirectory[str] | None = None
        self._paths: dict[tuple[str, str], str] = {}

    def keep(self, manifest: Manifest, entry: FileEntry, data: bytes) -> None:
        try:
            if self._directory is None:
                self._directory = tempfile.TemporaryDirectory(prefix="mwaaops-restore-")
            path = os.path.join(self._directory.name, f"{len(self._paths):06d}.parquet")
            with open(path, "wb") as file:
                file.write(data)
        except OSError:
            log.warning("could not keep a verified copy of %s; it will be read again", entry.path)
            return
        self._paths[(manifest.export_id, entry.path)] = path

    def local_path(self, manifest: Manifest, entry: FileEntry) -> str | None:
        return self._paths.get((manifest.export_id, entry.path))

    def close(self) -> None:
        if self._directory is not None:
            self._directory.cleanup()
            self._directory = None
        self._paths.clear()


def verify_chain(
    sink: Sink,
    manifests: list[Manifest],
    tables: list[str],
    report: RestoreReport,
    verified: VerifiedFiles | None = None,
) -> dict[str, int]:
    """Every file's checksum and row count; returns the highest exported id per table.

    With ``verified``, each file's bytes are kept there for the restore to read instead of the export.
    """
    highest: dict[str, int] = {}
    for manifest in manifests:
        for name in tables:
            if name not in manifest.tables:
                continue
            rule = rule_for(name)
            surrogate = rule.surrogate if rule else None
            for entry in manifest.tables[name].files:
                try:
                    data = read_verified(sink, manifest, name, entry)
                    rows = pq.read_metadata(io.BytesIO(data)).num_rows
                except ExportError as exc:
                    raise RestoreError(str(exc), table=name, file=entry.path) from exc
                except (pa.ArrowException, OSError) as exc:
                    raise RestoreError(
                        f"export {manifest.export_id}: not readable Parquet ({exc})",
                        table=name,
                        file=entry.path,
                    ) from exc
                if rows != entry.rows:
                    raise RestoreError(
                        f"export {manifest.export_id}: {entry.path} holds {rows} rows, the manifest says "
                        f"{entry.rows}",
                        table=name,
                        file=entry.path,
                    )
                column = get_table(name).column_index.get(surrogate or "")
                if surrogate and column is not None and column.kind == "int":
                    highest[name] = max(highest.get(name, 0), _max_of(data, surrogate))
                report.verified_files += 1
                report.verified_rows += rows
                if verified is not None:
                    verified.keep(manifest, entry, data)
    return highest


def _batches(
    sink: Sink, manifest: Manifest, table: str, batch_rows: int, verified: VerifiedFiles | None = None
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    for path, batch in _arrow_batches(sink, manifest, table, batch_rows, verified):
        yield path, batch.to_pylist()


def _arrow_batches(
    sink: Sink, manifest: Manifest, table: str, batch_rows: int, verified: VerifiedFiles | None = None
) -> Generator[tuple[str, pa.RecordBatch], None, None]:
    """The exported rows of ``table`` as Arrow batches, file by file (one file open at a time)."""
    spec = get_table(table)
    entry = manifest.tables[table]
    real = [name for name in entry.columns if name in spec.column_index] or spec.column_names
    for file in entry.files:
        local = verified.local_path(manifest, file) if verified is not None else None
        source: Any = local
        if local is None:
            try:
                source = io.BytesIO(read_verified(sink, manifest, table, file))
            except ExportError as exc:  # changed since it was verified
                raise RestoreError(str(exc), table=table, file=file.path) from exc
        # Streamed row group by row group (a whole file in Arrow would double the peak memory), cast
        # to the catalog's types as the file's own may be narrower (an older export, SQLite's ints).
        parquet = pq.ParquetFile(source)
        present = [name for name in real if name in parquet.schema_arrow.names]
        wanted = pa.schema([spec.arrow_schema.field(name) for name in present])
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=present):
            yield file.path, batch.cast(wanted) if batch.schema != wanted else batch


_END = object()


def _read_ahead(items: Iterator[T]) -> Generator[T, None, None]:
    """``items``, each produced by a thread while the consumer still works on the previous one.

    Why: the bulk path waits on the server's COPY of a chunk (its foreign-key checks run at the
    end of the statement); reading and decoding the next chunk's Parquet meanwhile (pyarrow
    releases the GIL) keeps the server from idling between chunks. One item ahead: memory grows
    by one chunk. An error while producing is raised to the consumer at that item.
    """
    slots: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as exc:  # handed to the consumer, raised in its thread
            put((None, exc))

    thread = threading.Thread(target=produce, name="mwaaops-restore-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = slots.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        thread.join()


# -- the target side ------------------------------------------------------------------------------------
_REVISION = re.compile(r"^revision\s*(?::[^=\n]*)?=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=\n]*)?=\s*(\([^)]*\)|[^\n]*)", re.MULTILINE)
_QUOTED = re.compile(r"[\"']([^\"']+)[\"']")


def _head_from_migration_texts(directory: str) -> str | None:
    """The one revision no migration builds on, read from the scripts' text (none is executed).

    Why: alembic's own answer imports all ~150 migration scripts (1-3 s, more than the restore of
    a small table). The graph only needs each script's ``revision`` and ``down_revision`` lines.
    ``None`` when a script does not state them plainly or the graph has not exactly one head;
    the caller then asks alembic.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for name in os.listdir(directory):
        if not name.endswith(".py") or name.startswith("__"):
            continue
        with open(os.path.join(directory, name), encoding="utf-8") as file:
            text = file.read()
        revision, down = _REVISION.search(text), _DOWN_REVISION.search(text)
        if revision is None or down is None:
            return None
        revisions.add(revision.group(1))
        parents.update(_QUOTED.findall(down.group(1)))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


def installed_head_revision() -> str | None:
    """Alembic head of the installed Airflow: what a target migrated by it must be at."""
    try:
        import airflow

        directory = os.path.join(os.path.dirname(airflow.__file__), "migrations", "versions")
        head = _head_from_migration_texts(directory) if os.path.isdir(directory) else None
        if head is not None:
            return head
        from airflow.utils.db import _get_script_object

        return str(_get_script_object().get_current_head())
    except Exception:  # pragma: no cover - Airflow layout changed; the column checks still run
        log.warning("could not read the installed Airflow's migration head", exc_info=True)
        return None


def check_target(
    schema: TargetSchema,
    manifests: list[Manifest],
    tables: list[str],
    options: RestoreOptions,
    report: RestoreReport,
) -> None:
    from airflow_provider_mwaaops.compat import INSTALLED_AIRFLOW_VERSION, can_restore_export_from

    for manifest in manifests:
        if not can_restore_export_from(manifest.airflow_version):
            raise RestoreError(
                f"export {manifest.export_id} comes from Airflow {manifest.airflow_version}, newer than or "
                f"another line than this Airflow {INSTALLED_AIRFLOW_VERSION}: restore it with the same "
                "Airflow version, then run `airflow db migrate` to upgrade"
            )
    revision = schema.alembic_revision()
    if revision is None:
        raise RestoreError(
            "the target database has no alembic_version table: run `airflow db migrate` on it first"
        )
    head = installed_head_revision() if options.check_revision else None
    if head is not None and revision != head:
        raise RestoreError(
            f"the target database is at migration {revision}, this Airflow {INSTALLED_AIRFLOW_VERSION} "
            f"expects {head}: run `airflow db migrate` on it with this Airflow version first"
        )
    for name in tables:
        columns = sorted({c for m in manifests if name in m.tables for c in m.tables[name].columns})
        rows = sum(m.tables[name].rows for m in manifests if name in m.tables)
        if not schema.has_table(name):
            if rows:
                raise RestoreError(
                    f"the target has no table {name!r} but the export has {rows} rows of it", table=name
                )
            continue
        table = schema.table(name)
        ignored = [c for c in columns if c not in table.c]
        if ignored:
            report.ignored_columns[name] = ignored
        required = [
            column.name
            for column in table.columns
            if not column.nullable
            and not column.primary_key
            and column.server_default is None
            and column.name not in columns
        ]
        if required and rows:
            raise RestoreError(
                f"the export lacks column(s) {', '.join(required)} that the target's {name} table requires "
                "(exported from another Airflow schema?)",
                table=name,
            )
    if options.strict:
        for name in STRICT_TABLES:
            if schema.has_table(name):
                count = schema.connection.execute(
                    sa.select(sa.func.count()).select_from(schema.table(name))
                ).scalar()
                if count:
                    raise RestoreError(
                        f"strict restore refused: the target is not empty ({name} has {count} rows)",
                        table=name,
                    )


def _export_cipher(manifests: list[Manifest], options: RestoreOptions) -> SecretCipher | None:
    modes = {m.secrets.get("mode", "exclude") for m in manifests}
    if modes == {"exclude"}:
        return None
    manifest = next(m for m in manifests if m.secrets.get("mode", "exclude") != "exclude")
    try:
        if options.export_key:
            cipher = SecretCipher("fernet", options.export_key.encode(), {"key_ref": "given export key"})
            expected = manifest.secrets.get("key_fingerprint")
            if manifest.secrets.get("mode") == "fernet" and cipher.describe()["key_fingerprint"] != expected:
                raise SecretKeyError(
                    f"the given export key does not match the key of export {manifest.export_id} "
                    f"(fingerprint {expected})"
                )
            return cipher
        return cipher_for_manifest(
            manifest.secrets,
            key_variable=options.key_variable,
            key_conn_id=options.key_conn_id,
            key_secret_id=options.key_secret_id,
            aws_conn_id=options.aws_conn_id,
            region_name=options.region_name,
        )
    except (SecretKeyError, KeyError) as exc:
        raise RestoreError(f"cannot decrypt the secrets of export {manifest.export_id}: {exc}") from exc


def _target_fernet_key(options: RestoreOptions) -> str:
    if options.target_fernet_key is not None:
        return options.target_fernet_key
    from airflow_provider_mwaaops.compat import conf

    return str(conf.get("core", "fernet_key", fallback="") or "")


# -- the restore --------------------------------------------------------------------------------------
def restore_metadata(
    sink: Sink, export_id: str, target_url: str, options: RestoreOptions | None = None
) -> RestoreReport:
    """Restore export ``export_id`` (with the exports it builds on) into the database at ``target_url``.

    Raises :class:`~airflow_provider_mwaaops.metadata.restore.errors.RestoreError` before any write
    for a bad export or target, and after rolling back for a failure while writing.
    """
    options = options or RestoreOptions()
    started = time.monotonic()
    manifests = export_chain(sink, export_id, chain=options.chain)
    exported_tables = {name for m in manifests for name in m.tables}
    wanted = set(options.tables) if options.tables is not None else exported_tables
    unknown = sorted(wanted - exported_tables)
    if unknown:
        raise RestoreError(f"table(s) {', '.join(unknown)} not in export {export_id}")
    tables = order_tables(wanted)
    report = RestoreReport(
        export_ids=[m.export_id for m in manifests], target=redact_url(target_url), dry_run=options.dry_run
    )
    for m in manifests:
        for name in tables:
            for column, count in getattr(m.tables.get(name), "masked", {}).items():
                report.masked[f"{name}.{column}"] = report.masked.get(f"{name}.{column}", 0) + count
    no_rule = sorted(wanted - set(tables))
    if no_rule:
        report.ignored_columns["(tables without a restore rule)"] = no_rule
    verified = VerifiedFiles()
    try:
        highest = verify_chain(sink, manifests, tables, report, verified)
        cipher = _export_cipher(manifests, options)
        codec = SecretCodec(cipher, _target_fernet_key(options), options.source_fernet_key)

        engine = create_target_engine(target_url)
        try:
            with engine.connect() as connection:
                schema = TargetSchema(connection)
                check_target(schema, manifests, tables, options, report)
                connection.rollback()  # reads so far must not pin a snapshot / lock into the writes
                _apply(connection, schema, sink, manifests, tables, highest, codec, options, report, verified)
        finally:
            engine.dispose()
    finally:
        verified.close()
    report.secrets = dict(codec.notes)
    report.seconds = time.monotonic() - started
    # The callers print the summary (operator log, command output); keep stdout clean for --json.
    log.debug("%s", report.summary())
    return report


def _apply(
    connection: Connection,
    schema: TargetSchema,
    sink: Sink,
    manifests: list[Manifest],
    tables: list[str],
    highest: dict[str, int],
    codec: SecretCodec,
    options: RestoreOptions,
    report: RestoreReport,
    verified: VerifiedFiles | None = None,
) -> None:
    transaction = connection.begin()
    state = RestoreState(connection=connection, dry_run=options.dry_run)
    done: list[str] = []
    try:
        for name in tables:
            if not schema.has_table(name):
                continue
            rule = rule_for(name)
            assert rule is not None
            spec = get_table(name)
            restorer = TableRestorer(
                state,
                rule,
                schema.table(name),
                codec,
                {c.name: c.kind for c in spec.columns},
                newer_by=spec.watermark,
            )
            restorer.start(highest.get(name))
            bulk = BulkTableWriter(restorer) if options.bulk and bulk_eligible(restorer) else None
            for manifest in manifests:
                if name not in manifest.tables:
                    continue
                chunk_rows = BULK_ROWS if bulk is not None else options.batch_rows
                if bulk is not None:
                    bulk.begin_manifest()
                batches = _arrow_batches(sink, manifest, name, chunk_rows, verified)
                with closing(_read_ahead(batches) if bulk is not None else batches) as chunks:
                    for path, batch in chunks:
                        with _failures_rolled_back(name, path):
                            if bulk is None or not bulk.process(batch):
                                for start in range(0, batch.num_rows, options.batch_rows):
                                    rows = batch.slice(start, options.batch_rows).to_pylist()
                                    restorer.process(rows)
            restorer.finish()
            state.restored_tables.add(name)
            report.tables[name] = restorer.stats
            if options.transaction == "table" and not options.dry_run:
                transaction.commit()
                done.append(name)
                transaction = connection.begin()
        if options.reactivate_dags and "dag" in tables:
            report.reactivated_dags = _reactivate(
                connection, schema, sink, manifests, options.dry_run, verified
            )
        if options.dry_run:
            transaction.rollback()
        else:
            transaction.commit()
    except BaseException as exc:
        transaction.rollback()
        if done and isinstance(exc, RestoreError):
            raise RestoreError(
                f"{exc}; tables committed before the failure: {', '.join(done)} "
                "(rerunning the restore is safe)",
                table=exc.table,
                file=exc.file,
                rolled_back=True,
            ) from exc
        raise


@contextmanager
def _failures_rolled_back(table: str, path: str) -> Iterator[None]:
    """A failure while writing a chunk, as the RestoreError the caller reports (the caller rolls back)."""
    try:
        yield
    except RestoreError:
        raise
    except (sa.exc.SQLAlchemyError, ValueError, TypeError, SecretKeyError, pa.ArrowException) as exc:
        message = _first_line(exc) if isinstance(exc, sa.exc.SQLAlchemyError) else str(exc)
        raise RestoreError(
            f"restoring rows failed, rolled back: {message}", table=table, file=path, rolled_back=True
        ) from exc


def _reactivate(
    connection: Connection,
    schema: TargetSchema,
    sink: Sink,
    manifests: list[Manifest],
    dry_run: bool,
    verified: VerifiedFiles | None = None,
) -> list[str]:
    """Unpause the DAGs that were active (not paused) in the newest export that has the dag table."""
    latest = next((m for m in reversed(manifests) if "dag" in m.tables), None)
    if latest is None or not schema.has_table("dag"):
        return []
    active: set[str] = set()
    for _path, rows in _batches(sink, latest, "dag", 5000, verified):
        for row in rows:
            stale = row.get("is_stale") is True or row.get("is_active") is False
            if row.get("is_paused") is False and not stale:
                active.add(row["dag_id"])
    if not active:
        return []
    dag = schema.table("dag")
    paused: list[str] = []
    ids = sorted(active)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        query = sa.select(dag.c.dag_id).where(dag.c.dag_id.in_(chunk), dag.c.is_paused.is_(True))
        paused.extend(row[0] for row in connection.execute(query))
    if paused and not dry_run:
        connection.execute(sa.update(dag).where(dag.c.dag_id.in_(paused)).values(is_paused=False))
    return sorted(paused)
