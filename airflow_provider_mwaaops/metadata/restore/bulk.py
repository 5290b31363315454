"""The PostgreSQL bulk path of a restore: COPY a chunk into a staging table, decide and write in SQL.

Why: the row path (:mod:`.plan`) turns every value into a Python object, asks the target about
each batch and writes with ``executemany``; that costs ~500 us a row, 20x slower than mwaa-dr's
plain ``COPY`` (see ``benchmarks/metadata_restore.py``). Here a chunk of the export goes from
Arrow straight into ``COPY ... FROM STDIN`` in PostgreSQL's binary format (:mod:`.pgbinary`; CSV
from pyarrow's C++ writer for a chunk with a column the encoder has no certain binary form for),
into a temporary table, and the row path's decisions are taken by a handful of set-based statements:

* references to other tables' ids are resolved once per **distinct** value, with the row path's
  own rule (:meth:`.TableRestorer.resolve_reference`);
* a row is matched to the target's by the table's natural key (a ``LEFT JOIN``); matched rows are
  unchanged when every exported column is ``IS NOT DISTINCT FROM`` the target's (JSON compared as
  ``jsonb``), kept when older than the target's (``newer_by``), updated otherwise;
* an inserted row keeps its id when free, else takes ``nextval`` of the column's sequence (which
  the row path's :class:`.IdAllocator` already moved past every exported id); the changed ids are
  remembered for later tables, as the row path does;
* one ``INSERT ... SELECT ... ON CONFLICT (natural key) DO UPDATE`` writes the chunk, so the
  restore stays idempotent: a second run finds every row unchanged and writes nothing.

A table that is empty when the restore reaches it (a freshly created environment: the drill's
case) skips the staging table for the chunks of the first export: the row path would insert every
row with its own id there, so COPY goes straight into the table (behind a savepoint: a chunk that
collides anyway goes through the staging table). The second restore finds the table full and
decides through the staging table, so it still writes nothing.

Tables identified by a fingerprint (``log``) take the staging path only for a chunk none of whose
fingerprints can match a target row not yet claimed by this run; any other chunk goes through the
row path, which matches duplicates one by one.

Every statement is built from the target's reflected column names, quoted by the dialect (no
value ever goes into SQL text: values travel by COPY). Not here (the row path does them): SQLite,
dry runs, secret tables (variable, connection, trigger), tables resolved through another table's
natural key (xcom), insert-only tables (the small DAG tables), integer ids without a sequence.
"""

from __future__ import annotations

import functools
import io
import queue
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import sqlalchemy as sa

from airflow_provider_mwaaops.metadata.arrays import int_array, string_array
from airflow_provider_mwaaops.metadata.restore import pgbinary
from airflow_provider_mwaaops.metadata.restore.plan import TableRestorer
from airflow_provider_mwaaops.metadata.restore.secrets import INSERT_DEFAULTS, REQUIRED_FOR_INSERT
from airflow_provider_mwaaops.metadata.restore.values import _is_binary, _is_json, coerce

#: Rows per COPY: large enough that a statement's fixed cost vanishes, small enough that the
#: CSV text of one chunk (~0.5 KB a task instance) stays a few ten MB.
BULK_ROWS = 50_000

_CSV = pa_csv.WriteOptions(include_header=False, batch_size=4096)


def bulk_eligible(restorer: TableRestorer) -> bool:
    """Whether the bulk path gives exactly the row path's result for this table."""
    rule = restorer.rule
    if restorer.state.dialect != "postgresql" or restorer.state.dry_run:
        return False
    if rule.mode != "upsert" or rule.natural_references:
        return False
    if restorer.secrets is not None and rule.name in {"variable", "connection", "trigger"}:
        return False
    if rule.name in REQUIRED_FOR_INSERT or rule.name in INSERT_DEFAULTS:
        return False
    if restorer.integer_surrogate:
        allocator = restorer.allocator
        if allocator is None or getattr(allocator, "_sequence", None) is None:
            return False
    return True


class _EncodedStream:
    """A chunk encoded slice by slice by a thread while COPY reads it (CSV or binary rows).

    pyarrow's CSV writer and compute kernels release the GIL and psycopg2 releases it while
    sending, so the next slices are encoded while the server parses the previous ones (two
    processes, two cores), and the encoded chunk never sits in memory at once (at most ``AHEAD``
    slices). ``head`` and ``tail`` frame the data (the binary format's header and trailer).
    """

    AHEAD = 8

    def __init__(
        self,
        batch: pa.RecordBatch,
        encode: Callable[[pa.RecordBatch], bytes],
        slice_rows: int,
        head: bytes = b"",
        tail: bytes = b"",
        order: pa.Array | None = None,
    ) -> None:
        self._slices: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=self.AHEAD)
        self._done = False
        self._writer = threading.Thread(
            target=self._write_all, args=(batch, encode, slice_rows, head, tail, order), daemon=True
        )
        self._writer.start()

    def _write_all(
        self,
        batch: pa.RecordBatch,
        encode: Callable[[pa.RecordBatch], bytes],
        slice_rows: int,
        head: bytes,
        tail: bytes,
        order: pa.Array | None,
    ) -> None:
        try:
            pending = head
            for offset in range(0, batch.num_rows, slice_rows):
                # In ``order``: each slice's rows gathered by the writer thread (no sorted copy of
                # the whole chunk is ever held).
                rows = (
                    batch.slice(offset, slice_rows)
                    if order is None
                    else batch.take(order.slice(offset, slice_rows))
                )
                self._slices.put(pending + encode(rows))
                pending = b""
            if pending + tail:
                self._slices.put(pending + tail)
            self._slices.put(b"")
        except BaseException as exc:  # handed to the reader, which raises it in the COPY's thread
            self._slices.put(exc)

    def read(self, _size: int = -1) -> bytes:
        if self._done:
            return b""
        item = self._slices.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        self._done = item == b""
        return item

    def readline(self, _size: int = -1) -> bytes:  # part of the file protocol psycopg2 checks
        return self.read()

    def close(self) -> None:
        """Let a writer blocked on a full queue finish after an aborted COPY."""
        while self._writer.is_alive():
            try:
                self._slices.get(timeout=0.1)
            except queue.Empty:
                continue
        self._writer.join()


def _csv_rows(batch: pa.RecordBatch) -> bytes:
    sink = io.BytesIO()
    pa_csv.write_csv(batch, sink, _CSV)
    return sink.getvalue()


def _python_array(values: list[Any], arrow_type: pa.DataType) -> pa.Array:
    """Resolved ids back into Arrow, from buffers for the usual types (``pa.array`` imports pandas)."""
    if pa.types.is_int64(arrow_type):
        return int_array(values)
    if pa.types.is_string(arrow_type):
        return string_array(values)
    return pa.array(values, arrow_type)


def _as_text(value: Any) -> Any:
    """An id back into an Arrow value: UUIDs as their text (COPY reads both spellings)."""
    return str(value) if isinstance(value, uuid.UUID) else value


class BulkTableWriter:
    """Restores the chunks of one table through a staging table; ``process`` returns ``False`` for a
    chunk the row path must take instead (then nothing of it was written)."""

    CSV_SLICE_ROWS = 2048
    BINARY_SLICE_ROWS = 8192
    #: COPY in PostgreSQL's binary format where every column allows it (False: always CSV).
    binary = True
    #: COPY straight into the target in the order of its natural key (:meth:`_key_order`).
    sort_by_key = True

    def __init__(self, restorer: TableRestorer) -> None:
        self.restorer = restorer
        self.connection = restorer.state.connection
        self.quote = self.connection.dialect.identifier_preparer.quote
        self.target = self.quote(restorer.table.name)
        self.stage = self.quote(f"mwaaops_stage_{restorer.table.name}")
        self._staged_columns: tuple[str, ...] | None = None
        self._manifests = 0
        dialect = self.connection.dialect
        driver: Any = getattr(dialect, "loaded_dbapi", None) or dialect.dbapi
        self._driver_error: type[Exception] = driver.Error
        self._column_types: dict[str, str] | None = None
        #: The table was empty when this restore reached it and the chunks come from the first
        #: export of the chain: every row is an insert with its own id, COPY goes straight in.
        self.direct = False

    # -- public -------------------------------------------------------------------------------------
    def begin_manifest(self) -> None:
        """Before each export's chunks: only the first export can go straight into an empty table."""
        self._manifests += 1
        self.direct = self._manifests == 1 and bool(
            self._sql(f"SELECT NOT EXISTS (SELECT 1 FROM {self.target})").scalar()  # noqa: S608
        )

    def process(self, batch: pa.RecordBatch) -> bool:
        restorer = self.restorer
        columns = [name for name in batch.schema.names if name in restorer.columns]
        batch = batch.select(columns)
        if self.direct and self._process_direct(batch):
            return True
        if restorer.fingerprint is not None and not self._fingerprints_free(batch):
            return False
        batch = self._resolve_references(batch)
        self._ensure_stage(columns)
        self._copy(batch, self.stage)
        if restorer.fingerprint is None:
            self._count_matches(columns)
        else:
            restorer.stats.inserted += batch.num_rows
        fresh = self._fresh_ids(columns)
        self._write(columns)
        restorer.stats.exported += batch.num_rows
        self._remember_ids(batch, fresh)
        return True

    def _process_direct(self, batch: pa.RecordBatch) -> bool:
        """COPY into the target itself: what the row path would do to an empty table (insert every
        row, keep every id), at the speed of a plain COPY. A chunk that collides anyway (an export
        with duplicate keys) is rolled back to its savepoint and goes through the staging table."""
        restorer = self.restorer
        surrogate = restorer.surrogate
        names = batch.schema.names
        if surrogate in names and batch.column(names.index(surrogate)).null_count:
            return False
        resolved = self._resolve_references(batch)
        savepoint = self.connection.begin_nested()
        try:
            self._copy(resolved, self.target, self._key_order(resolved))
        except sa.exc.DBAPIError as exc:
            savepoint.rollback()
            if getattr(getattr(exc, "orig", None), "pgcode", None) != "23505":  # unique_violation
                raise
            self.direct = False
            return False
        savepoint.commit()
        restorer.stats.exported += batch.num_rows
        restorer.stats.inserted += batch.num_rows
        self._remember_ids(resolved, {})
        return True

    # -- staging ------------------------------------------------------------------------------------
    def _ensure_stage(self, columns: Sequence[str]) -> None:
        if self._staged_columns == tuple(columns):
            self._sql(f"TRUNCATE {self.stage}")
            return
        listed = ", ".join(self.quote(c) for c in columns)
        self._sql(f"DROP TABLE IF EXISTS {self.stage}")
        # The target's column types, none of its constraints; gone at the end of the session.
        self._sql(f"CREATE TEMPORARY TABLE {self.stage} AS SELECT {listed} FROM {self.target} WITH NO DATA")  # noqa: S608
        self._staged_columns = tuple(columns)

    def _key_order(self, batch: pa.RecordBatch) -> pa.Array | None:
        """The chunk's row positions in the order of the table's natural key (None: keep its order).

        Why: the target's unique index on that key (task_instance's primary key on Airflow 2), and
        the index that starts with the same columns (``ti_state_lkp``), then take
        the chunk's rows as runs of neighbouring keys: each leaf page is found, changed and logged
        once per run instead of once per row (an export chunk is in run, i.e. time, order: one
        insertion point per task). Measured in ``benchmarks/README.md`` (``metadata_restore.py``).
        The rows and their values are the same either way; only the order they reach COPY in
        changes. Arrow sorts text by its UTF-8 bytes (PostgreSQL's ``C`` collation); under another
        collation the runs are still mostly ascending.
        """
        if not self.sort_by_key:
            return None
        names = batch.schema.names
        key = [name for name in self.restorer.conflict_key if name in names]
        if not key or batch.num_rows < 2:
            return None
        return pc.sort_indices(batch, sort_keys=[(name, "ascending") for name in key])

    def _copy(self, batch: pa.RecordBatch, table: str, order: pa.Array | None = None) -> None:
        """The chunk into ``table`` (its rows in ``order`` when given): in binary when every column
        has a binary encoding for its target type (:mod:`.pgbinary`), else as CSV (NULL
        unquoted-empty, empty text quoted)."""
        columns = batch.schema.names
        listed = ", ".join(self.quote(c) for c in columns)
        pg_types = [self._pg_types().get(c, "") for c in columns]
        if self.binary and pgbinary.supported(batch.schema.types, pg_types):
            buffer = _EncodedStream(
                batch,
                functools.partial(pgbinary.encode_rows, pg_types=pg_types),
                self.BINARY_SLICE_ROWS,
                pgbinary.HEADER,
                pgbinary.TRAILER,
                order,
            )
            statement = f"COPY {table} ({listed}) FROM STDIN WITH (FORMAT binary)"
        else:
            buffer = _EncodedStream(self._csv_ready(batch), _csv_rows, self.CSV_SLICE_ROWS, order=order)
            statement = f"COPY {table} ({listed}) FROM STDIN WITH (FORMAT csv)"
        cursor = self.connection.connection.cursor()
        try:
            if hasattr(cursor, "copy_expert"):  # psycopg2
                cursor.copy_expert(statement, buffer)
            else:  # psycopg 3
                with cursor.copy(statement) as copy:
                    while data := buffer.read():
                        copy.write(data)
        except self._driver_error as exc:  # as SQLAlchemy itself would have raised it
            raise sa.exc.DBAPIError(statement, None, exc) from exc
        finally:
            buffer.close()
            cursor.close()

    def _pg_types(self) -> dict[str, str]:
        """The target's column types as PostgreSQL names them (the staging table has the same)."""
        if self._column_types is None:
            rows = self.connection.execute(
                sa.text(
                    "SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a "
                    "WHERE a.attrelid = to_regclass(:name) AND a.attnum > 0 AND NOT a.attisdropped"
                ),
                {"name": self.target},
            )
            self._column_types = {name: pgbinary.pg_type_name(kind) for name, kind in rows}
        return self._column_types

    def _csv_ready(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Columns CSV cannot carry as they are, turned into the text PostgreSQL reads back.

        Binary values become ``\\x`` hex (bytea's input form); JSON exported for a binary column
        (Airflow 2's pickled ``dag_run.conf``, ``xcom.value``) goes through the row path's own
        :func:`coerce`, value by value: only those columns pay for Python objects.
        """
        restorer = self.restorer
        arrays = list(batch.columns)
        for index, name in enumerate(batch.schema.names):
            column = restorer.columns[name]
            kind = restorer.kinds.get(name)
            binary_target = _is_binary(column.type)
            if not binary_target and not pa.types.is_binary(arrays[index].type):
                continue
            values = arrays[index].to_pylist()
            if kind != "json" and pa.types.is_binary(arrays[index].type):  # bytes as they are
                hexed = [None if v is None else "\\x" + v.hex() for v in values]
                arrays[index] = pa.array(hexed, pa.string())
                continue
            out: list[str | None] = []
            for value in values:
                if value is None:
                    out.append(None)
                    continue
                value = coerce(value, column, "postgresql", kind, restorer.rule.name)
                if isinstance(value, (bytes, bytearray, memoryview)):
                    out.append("\\x" + bytes(value).hex())
                else:
                    out.append(str(value))
            arrays[index] = pa.array(out, pa.string())
        return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)

    # -- references -----------------------------------------------------------------------------------
    def _resolve_references(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Each reference column's distinct values resolved once; the column is rebuilt (with Arrow
        kernels, no Python value per row) only when some value changes."""
        restorer = self.restorer
        for column, reference in restorer.rule.references.items():
            if column not in batch.schema.names:
                continue
            index = batch.schema.get_field_index(column)
            values = batch.column(index)
            if values.null_count == len(values):
                continue
            unique = pc.unique(values.drop_null())
            distinct = unique.to_pylist()
            resolved = [
                _as_text(restorer.resolve_reference(reference, self._as_source(column, v))) for v in distinct
            ]
            if resolved == distinct:
                continue
            positions = pc.index_in(values, value_set=unique)
            array = _python_array(resolved, values.type).take(positions)
            cleared = array.null_count - values.null_count
            if cleared:
                counts = restorer.stats.references_cleared
                counts[column] = counts.get(column, 0) + cleared
            batch = batch.set_column(index, batch.schema.field(index), array)
        return batch

    def _as_source(self, name: str, value: Any) -> Any:
        """A value as the row path holds it in its id maps (``uuid.UUID`` for UUID columns)."""
        if value is None or isinstance(value, int):
            return value
        column = self.restorer.columns[name]
        return coerce(value, column, "postgresql", self.restorer.kinds.get(name), self.restorer.rule.name)

    # -- decisions ------------------------------------------------------------------------------------
    def _key_join(self) -> str:
        return " AND ".join(f"t.{self.quote(k)} = s.{self.quote(k)}" for k in self.restorer.conflict_key)

    def _same(self, columns: Sequence[str]) -> str:
        restorer = self.restorer
        parts = []
        for name in columns:
            if name in restorer.primary_key or name == restorer.surrogate:
                continue
            q = self.quote(name)
            if _is_json(restorer.columns[name].type):
                # JSON has no equality; JSON null and SQL NULL compare equal, as in the row path.
                null = "'null'::jsonb"
                parts.append(
                    f"NULLIF(s.{q}::jsonb, {null}) IS NOT DISTINCT FROM NULLIF(t.{q}::jsonb, {null})"
                )
            else:
                parts.append(f"s.{q} IS NOT DISTINCT FROM t.{q}")
        return " AND ".join(parts) or "TRUE"

    def _older(self) -> str:
        newer = self.restorer.newer_by
        if newer is None or newer not in (self._staged_columns or ()):
            return "FALSE"
        q = self.quote(newer)
        return f"COALESCE(s.{q} < t.{q}, FALSE)"

    def _count_matches(self, columns: Sequence[str]) -> None:
        """The row path's four outcomes, counted in one pass; matched ids that differ are remembered."""
        restorer = self.restorer
        same, older = self._same(columns), self._older()
        counts = self._sql(
            f"SELECT count(*), count(*) FILTER (WHERE t.ctid IS NULL), "  # noqa: S608
            f"count(*) FILTER (WHERE t.ctid IS NOT NULL AND ({same})), "
            f"count(*) FILTER (WHERE t.ctid IS NOT NULL AND NOT ({same}) AND {older}) "
            f"FROM {self.stage} s LEFT JOIN {self.target} t ON {self._key_join()}"
        ).one()
        total, inserted, unchanged, kept = (int(v or 0) for v in counts)
        restorer.stats.inserted += inserted
        restorer.stats.unchanged += unchanged
        restorer.stats.kept += kept
        restorer.stats.updated += total - inserted - unchanged - kept
        surrogate = restorer.surrogate
        if surrogate is not None and surrogate in columns:
            q = self.quote(surrogate)
            for source, target in self._sql(
                f"SELECT s.{q}, t.{q} FROM {self.stage} s JOIN {self.target} t ON {self._key_join()} "  # noqa: S608
                f"WHERE s.{q} IS DISTINCT FROM t.{q}"
            ):
                restorer._remember(self._as_source(surrogate, source), self._as_source(surrogate, target))

    def _fingerprints_free(self, batch: pa.RecordBatch) -> bool:
        """No row of the chunk can match a target row this run has not claimed, nor was placed by
        an earlier export of the chain: then every row is an insert, as the row path would find."""
        restorer = self.restorer
        assert restorer.fingerprint is not None
        surrogate = restorer.surrogate
        if surrogate is not None and surrogate in batch.schema.names:
            id_map = restorer.state.id_maps[restorer.rule.name]
            known = restorer.state.known_ids[restorer.rule.name]
            for value in batch.column(batch.schema.get_field_index(surrogate)).to_pylist():
                if value in id_map or value in known:
                    return False
        lookup = restorer.fingerprint[0]
        if lookup not in batch.schema.names:
            return False
        values = batch.column(batch.schema.get_field_index(lookup))
        column = restorer.table.c[lookup]
        key = restorer.table.c[restorer.primary_key[0]]
        conditions = []
        non_null = values.drop_null() if hasattr(values, "drop_null") else values.filter(values.is_valid())
        if len(non_null):
            # The range first: one index range scan, and a fresh target answers "nothing" at once.
            bounds = pc.min_max(non_null).as_py()
            conditions.append(column.between(bounds["min"], bounds["max"]))
        if values.null_count:
            conditions.append(column.is_(None))
        for condition in conditions:
            for (target_id,) in self.connection.execute(sa.select(key).where(condition)):
                if target_id not in restorer.claimed:
                    return False
        return True

    # -- ids and the write ----------------------------------------------------------------------------
    def _fresh_ids(self, columns: Sequence[str]) -> dict[Any, Any]:
        """New ids for inserted rows whose id another target row holds (or that have none)."""
        restorer = self.restorer
        surrogate = restorer.surrogate
        if surrogate is None or surrogate not in columns:
            return {}
        q = self.quote(surrogate)
        unmatched = (
            f"NOT EXISTS (SELECT 1 FROM {self.target} t WHERE {self._key_join()})"  # noqa: S608
            if restorer.fingerprint is None
            else "TRUE"
        )
        if restorer.integer_surrogate:
            assert restorer.allocator is not None
            sequence = restorer.allocator._sequence
            fresh = f"nextval('{sequence}')"
        else:  # UUID ids: a collision means another row owns it; a new UUID is the only answer
            fresh = f"CAST(replace(gen_random_uuid()::text, '-', '') AS {self._type_of(surrogate)})"
        rows = self._sql(
            f"WITH moved AS (SELECT s.ctid AS at, s.{q} AS old FROM {self.stage} s WHERE {unmatched} "  # noqa: S608
            f"AND (s.{q} IS NULL OR EXISTS (SELECT 1 FROM {self.target} t WHERE t.{q} = s.{q}))) "
            f"UPDATE {self.stage} AS s SET {q} = {fresh} FROM moved WHERE s.ctid = moved.at "
            f"RETURNING moved.old, s.{q}"
        ).all()
        moved = {self._as_source(surrogate, old): self._as_source(surrogate, new) for old, new in rows}
        for old, new in moved.items():
            restorer._remember(old, new)
        return moved

    def _type_of(self, name: str) -> str:
        return str(self.restorer.columns[name].type.compile(dialect=self.connection.dialect))

    def _write(self, columns: Sequence[str]) -> None:
        restorer = self.restorer
        fixed = {*restorer.primary_key, *restorer.conflict_key}
        if restorer.surrogate:
            fixed.add(restorer.surrogate)
        updates = [name for name in columns if name not in fixed]
        listed = ", ".join(self.quote(c) for c in columns)
        selected = ", ".join(f"s.{self.quote(c)}" for c in columns)
        if restorer.fingerprint is None:
            source = (
                f"SELECT {selected} FROM {self.stage} s LEFT JOIN {self.target} t ON {self._key_join()} "  # noqa: S608
                f"WHERE t.ctid IS NULL OR (NOT ({self._same(columns)}) AND NOT {self._older()})"
            )
        else:
            source = f"SELECT {selected} FROM {self.stage} s"  # noqa: S608
        conflict = ", ".join(self.quote(k) for k in restorer.conflict_key)
        if updates:
            action = "DO UPDATE SET " + ", ".join(
                f"{self.quote(c)} = EXCLUDED.{self.quote(c)}" for c in updates
            )
        else:
            action = "DO NOTHING"
        self._sql(f"INSERT INTO {self.target} ({listed}) {source} ON CONFLICT ({conflict}) {action}")

    def _remember_ids(self, batch: pa.RecordBatch, fresh: dict[Any, Any]) -> None:
        """Source ids that kept their value, for later tables' references (and claimed fingerprints)."""
        restorer = self.restorer
        surrogate = restorer.surrogate
        if surrogate is None or surrogate not in batch.schema.names:
            return
        remapped = restorer.state.id_maps[restorer.rule.name]
        values = batch.column(batch.schema.get_field_index(surrogate)).to_pylist()
        if not restorer.integer_surrogate:
            values = [self._as_source(surrogate, v) for v in values]
        kept = [v for v in values if v not in remapped] if remapped else values
        restorer.state.known_ids[restorer.rule.name].update(kept)
        if restorer.fingerprint is not None:
            restorer.claimed.update([fresh.get(v, v) for v in values] if fresh else values)

    def _sql(self, statement: str) -> Any:
        return self.connection.execute(sa.text(statement))
