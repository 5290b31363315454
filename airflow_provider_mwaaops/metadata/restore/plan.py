"""Restore one table batch by batch: find each row in the target, decide, remap ids, write.

For every exported row the target is asked whether it already has that row (by the unique natural
key, or by the fingerprint for tables that have none). The answer decides the row's fate:

* **insert**: unknown to the target. Its surrogate id is kept when free, else a fresh one is taken
  and remembered, so later tables' references follow it;
* **update**: known, and some exported column differs (``upsert`` tables only);
* **unchanged**: known and equal, so a second restore writes nothing;
* **kept**: known, differs, but the table is ``insert_only`` (the target's own DAG processor owns it);
* **skipped**: cannot be restored (a secret that was excluded from the export, an xcom whose dag run
  is nowhere), reported with the reason.

A dry run goes through exactly the same decisions and simply does not write.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from airflow_provider_mwaaops.metadata.restore.errors import RestoreError
from airflow_provider_mwaaops.metadata.restore.rules import Reference, TableRule
from airflow_provider_mwaaops.metadata.restore.secrets import (
    INSERT_DEFAULTS,
    REQUIRED_FOR_INSERT,
    SecretCodec,
)
from airflow_provider_mwaaops.metadata.restore.target import IdAllocator, is_integer_column, upsert
from airflow_provider_mwaaops.metadata.restore.values import coerce, comparable


@dataclass
class TableStats:
    """What a restore did (or, in a dry run, would do) to one table."""

    table: str
    exported: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    ids_remapped: int = 0
    references_cleared: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "exported": self.exported,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "kept": self.kept,
            "skipped": dict(self.skipped),
            "ids_remapped": self.ids_remapped,
            "references_cleared": dict(self.references_cleared),
        }

    @property
    def changed(self) -> int:
        return self.inserted + self.updated


class ClaimedIds:
    """Target ids this run has already matched or written, so a fingerprint matches each row once.

    Exact duplicates are legal in ``log`` (two identical events in one microsecond); without this,
    the second copy would match the row the first copy just inserted. A bitmap keeps 10^8 integer
    ids in 12.5 MB; other ids (UUIDs) go to a set.
    """

    def __init__(self) -> None:
        self._bits = bytearray()
        self._others: set[Any] = set()

    def add(self, value: Any) -> None:
        if isinstance(value, int) and value >= 0:
            index, bit = divmod(value, 8)
            if index >= len(self._bits):
                self._bits.extend(b"\0" * (index - len(self._bits) + 1 + len(self._bits) // 2))
            self._bits[index] |= 1 << bit
        else:
            self._others.add(value)

    def update(self, values: Any) -> None:
        values = [value for value in values if value is not None]
        if values and all(type(value) is int for value in values) and min(values) >= 0:
            self._update_ints(values)
            return
        for value in values:
            self.add(value)

    def _update_ints(self, values: list[int]) -> None:
        """The bitmap set for a whole chunk at once (the bulk path adds a million ids per table)."""
        needed = max(values) // 8 + 1
        if needed > len(self._bits):
            self._bits.extend(b"\0" * (needed - len(self._bits) + len(self._bits) // 2))
        bits = self._bits
        for value in values:
            bits[value >> 3] |= 1 << (value & 7)

    def __contains__(self, value: Any) -> bool:
        if isinstance(value, int) and value >= 0:
            index, bit = divmod(value, 8)
            return index < len(self._bits) and bool(self._bits[index] & (1 << bit))
        return value in self._others


def _id_maps() -> dict[str, dict[Any, Any]]:
    return defaultdict(dict)


def _known_ids() -> dict[str, ClaimedIds]:
    return defaultdict(ClaimedIds)


@dataclass
class RestoreState:
    """What tables restored earlier in the same run tell the later ones."""

    connection: Connection
    dry_run: bool
    #: Per table, source id -> target id, only for ids that changed.
    id_maps: dict[str, dict[Any, Any]] = field(default_factory=_id_maps)
    #: tables whose exported rows this run restores (references into them are never guessed).
    restored_tables: set[str] = field(default_factory=set)
    #: table -> source ids the export carried (to tell "kept id" from "dangling reference").
    known_ids: dict[str, ClaimedIds] = field(default_factory=_known_ids)

    @property
    def dialect(self) -> str:
        return self.connection.dialect.name


def _chunks(values: Sequence[Any], size: int = 500) -> list[Sequence[Any]]:
    return [values[start : start + size] for start in range(0, len(values), size)]


class TableRestorer:
    """Restores the batches of one table in order; ``finish()`` after the last batch."""

    def __init__(
        self,
        state: RestoreState,
        rule: TableRule,
        table: sa.Table,
        secrets: SecretCodec | None = None,
        kinds: dict[str, str] | None = None,
        newer_by: str | None = None,
    ) -> None:
        self.state = state
        self.rule = rule
        self.table = table
        self.secrets = secrets
        self.kinds = kinds or {}
        self.stats = TableStats(rule.name)
        self.columns = {column.name: column for column in table.columns}
        self.primary_key = tuple(column.name for column in table.primary_key.columns)
        self.surrogate = rule.surrogate if rule.surrogate in self.columns else None
        self.integer_surrogate = self.surrogate is not None and is_integer_column(
            self.columns[self.surrogate]
        )
        newer = rule.newer_by or newer_by
        self.newer_by = newer if newer in self.columns else None
        self.fingerprint: tuple[str, ...] | None = None
        candidates = [key for key in rule.conflict_keys if all(name in self.columns for name in key)]
        if candidates:
            self.conflict_key = candidates[0]
        elif rule.fingerprint:
            self.conflict_key = self.primary_key
            self.fingerprint = tuple(name for name in rule.fingerprint if name in self.columns)
        else:
            raise RestoreError(
                f"the target's {rule.name} table has none of the natural keys restore knows "
                f"({', '.join('(' + ', '.join(key) + ')' for key in rule.conflict_keys)})",
                table=rule.name,
            )
        self.allocator: IdAllocator | None = None
        self.claimed = ClaimedIds()
        #: Natural keys of rows this run inserted into an insert-only table, which a later export
        #: of the same chain may update (they are the backup's rows, not the target's own).
        self.inserted_keys: set[tuple[Any, ...]] = set()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, highest_source_id: int | None) -> None:
        if self.integer_surrogate and self.surrogate is not None:
            self.allocator = IdAllocator(
                self.state.connection, self.table, self.surrogate, self.state.dry_run
            )
            self.allocator.start(int(highest_source_id or 0))

    def finish(self) -> None:
        if self.allocator is not None and not self.state.dry_run:
            self.allocator.finish()

    # -- one batch ------------------------------------------------------------------------------
    def process(self, rows: list[dict[str, Any]]) -> None:
        self.stats.exported += len(rows)
        prepared = [row for row in (self._prepare(row) for row in rows) if row is not None]
        if not prepared:
            return
        matches = self._existing(prepared)
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        need_ids: list[dict[str, Any]] = []
        placed: list[tuple[dict[str, Any], Any]] = []
        for row, existing in zip(prepared, matches, strict=True):
            source_id = row.get(self.surrogate) if self.surrogate else None
            if existing is None:
                missing = [
                    name for name in REQUIRED_FOR_INSERT.get(self.rule.name, ()) if row.get(name) is None
                ]
                if missing:
                    self._skip(f"{', '.join(missing)} not in the export (secrets excluded)")
                    continue
                inserts.append({**INSERT_DEFAULTS.get(self.rule.name, {}), **row})
                placed.append((inserts[-1], source_id))
                continue
            placed.append((row, source_id))
            if self.secrets is not None:
                existing = self.secrets.reveal(self.rule.name, existing)
            if self.surrogate is not None and existing.get(self.surrogate) != source_id:
                self._remember(source_id, existing[self.surrogate])
                row[self.surrogate] = existing[self.surrogate]
            compared = [name for name in row if name not in self.primary_key and name != self.surrogate]
            if all(comparable(row[name]) == comparable(existing.get(name)) for name in compared):
                self.stats.unchanged += 1
            elif self._keeps_target_row(row, existing):
                self.stats.kept += 1
            else:
                updates.append(row)
        if self.surrogate is not None and inserts:
            taken = self._taken_ids([row[self.surrogate] for row in inserts])
            for row in inserts:
                if row[self.surrogate] is None or row[self.surrogate] in taken:
                    need_ids.append(row)
            self._assign_fresh_ids(need_ids)
        if self.fingerprint is not None:
            for row in inserts:
                self.claimed.add(row[self.primary_key[0]])
        if self.rule.mode == "insert_only":
            self.inserted_keys.update(self._key_of(row) for row in inserts)
        if self.surrogate is not None:
            known = self.state.known_ids[self.rule.name]
            known.update(source for row, source in placed if row[self.surrogate] == source)
        self.stats.inserted += len(inserts)
        self.stats.updated += len(updates)
        if not self.state.dry_run:
            if self.secrets is not None:
                inserts = [self.secrets.seal(self.rule.name, row) for row in inserts]
                updates = [self.secrets.seal(self.rule.name, row) for row in updates]
            self._write(inserts, updates)

    def _keeps_target_row(self, row: dict[str, Any], existing: dict[str, Any]) -> bool:
        """A differing row the target keeps: it is newer, or the table is the target's own."""
        if self._older(row, existing):
            return True
        return self.rule.mode == "insert_only" and self._key_of(row) not in self.inserted_keys

    def _older(self, row: dict[str, Any], existing: dict[str, Any]) -> bool:
        """Whether the target already holds a newer version of this row."""
        if self.newer_by is None:
            return False
        ours, theirs = row.get(self.newer_by), existing.get(self.newer_by)
        if ours is None or theirs is None:
            return False
        return bool(comparable(ours) < comparable(theirs))

    def _key_of(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(comparable(row.get(name)) for name in (self.fingerprint or self.conflict_key))

    def _remember(self, source_id: Any, target_id: Any) -> None:
        if source_id != target_id:
            self.state.id_maps[self.rule.name][source_id] = target_id
            self.stats.ids_remapped += 1

    def _assign_fresh_ids(self, rows: list[dict[str, Any]]) -> None:
        if not rows or self.surrogate is None:
            return
        if self.integer_surrogate and self.allocator is not None:
            fresh: list[Any] = self.allocator.allocate(len(rows))
        else:  # UUID ids: a collision means another row owns it; a new UUID is the only answer
            fresh = [uuid.uuid4().hex for _ in rows]
        for row, new_id in zip(rows, fresh, strict=True):
            self._remember(row[self.surrogate], new_id)
            row[self.surrogate] = new_id

    def _write(self, inserts: list[dict[str, Any]], updates: list[dict[str, Any]]) -> None:
        fixed = {*self.primary_key, *self.conflict_key}
        if self.surrogate:
            fixed.add(self.surrogate)
        update_columns = [name for name in self.columns if name not in fixed]
        connection, table, key = self.state.connection, self.table, self.conflict_key
        try:
            if self.rule.mode == "insert_only":
                # DO NOTHING for new rows (never overwrite what the target wrote meanwhile); updates
                # are only ever rows an earlier export of this chain inserted.
                upsert(connection, table, inserts, key, [])
                upsert(connection, table, updates, key, update_columns)
            else:
                upsert(connection, table, inserts + updates, key, update_columns)
        except sa.exc.SQLAlchemyError as exc:
            raise RestoreError(
                f"writing {len(inserts) + len(updates)} rows failed, rolled back: {_first_line(exc)}",
                table=self.rule.name,
                rolled_back=True,
            ) from exc

    # -- per row ----------------------------------------------------------------------------------
    def _prepare(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        dialect = self.state.dialect
        table = self.rule.name
        row = {
            name: coerce(value, self.columns[name], dialect, self.kinds.get(name), table)
            for name, value in raw.items()
            if name in self.columns
        }
        if self.secrets is not None:
            handled = self.secrets.incoming(table, row)
            if isinstance(handled, str):
                self._skip(handled)
                return None
            row = handled
        if not self._resolve_references(row):
            return None
        return row

    def _skip(self, reason: str) -> None:
        self.stats.skipped[reason] = self.stats.skipped.get(reason, 0) + 1

    def _resolve_references(self, row: dict[str, Any]) -> bool:
        for column, reference in self.rule.references.items():
            value = row.get(column)
            if column not in row or value is None:
                continue
            resolved = self.resolve_reference(reference, value)
            if resolved is None:
                self._clear(row, column)
            else:
                row[column] = resolved
        for column, natural in self.rule.natural_references.items():
            if column not in row:
                continue
            mapped = self.state.id_maps[natural.table].get(row[column])
            if mapped is not None:
                row[column] = mapped
                continue
            if (
                natural.table in self.state.restored_tables
                and row[column] in self.state.known_ids[natural.table]
            ):
                continue  # restored with its own id in this run (maybe not written yet: dry run)
            found = self._natural_lookup(natural.table, natural.target_column, natural.on, row)
            if found is None:
                self._skip(f"no {natural.table} row for {column}")
                return False
            row[column] = found
        return True

    def resolve_reference(self, reference: Reference, value: Any) -> Any:
        """The target's id for a non-NULL reference ``value``, or ``None`` when it must be cleared.

        Shared by the row path and the bulk path (which asks once per distinct value of a chunk).
        """
        mapped = self.state.id_maps[reference.table].get(value)
        if mapped is not None:
            return mapped
        if reference.table in self.state.restored_tables:
            return value if value in self.state.known_ids[reference.table] else None
        if reference.trust_target_ids and self._target_has(reference.table, value):
            return value
        return None

    def _clear(self, row: dict[str, Any], column: str) -> None:
        row[column] = None
        self.stats.references_cleared[column] = self.stats.references_cleared.get(column, 0) + 1

    def _target_has(self, table_name: str, value: Any) -> bool:
        table = self._other_table(table_name)
        if table is None:
            return True  # no such table in the target: nothing for the value to break
        key = next(iter(table.primary_key.columns))
        return self.state.connection.execute(sa.select(key).where(key == value)).first() is not None

    def _natural_lookup(
        self, table_name: str, target_column: str, on: tuple[tuple[str, str], ...], row: dict[str, Any]
    ) -> Any:
        table = self._other_table(table_name)
        if table is None:
            return None
        clauses = [table.c[theirs] == row.get(ours) for theirs, ours in on]
        return self.state.connection.execute(sa.select(table.c[target_column]).where(*clauses)).scalar()

    def _other_table(self, name: str) -> sa.Table | None:
        metadata = self.table.metadata
        if name in metadata.tables:
            return metadata.tables[name]
        if not sa.inspect(self.state.connection).has_table(name):
            return None
        return sa.Table(name, metadata, autoload_with=self.state.connection)

    # -- what the target has ------------------------------------------------------------------------
    def _taken_ids(self, ids: list[Any]) -> set[Any]:
        assert self.surrogate is not None
        column = self.table.c[self.surrogate]
        taken: set[Any] = set()
        wanted = [value for value in ids if value is not None]
        for chunk in _chunks(wanted):
            taken.update(
                r[0] for r in self.state.connection.execute(sa.select(column).where(column.in_(chunk)))
            )
        return taken

    def _existing(self, rows: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        if self.fingerprint is not None:
            return self._existing_by_fingerprint(rows)
        key = self.conflict_key
        columns = [self.table.c[name] for name in key]
        found: dict[tuple[Any, ...], dict[str, Any]] = {}
        keys = list(
            {
                tuple(comparable(row.get(name)) for name in key): tuple(row.get(name) for name in key)
                for row in rows
            }.values()
        )
        for chunk in _chunks(keys):
            if len(columns) == 1:
                condition = columns[0].in_([k[0] for k in chunk])
            else:
                condition = sa.tuple_(*columns).in_(list(chunk))
            for record in self.state.connection.execute(sa.select(self.table).where(condition)).mappings():
                found[tuple(comparable(record[name]) for name in key)] = dict(record)
        return [found.get(tuple(comparable(row.get(name)) for name in key)) for row in rows]

    def _existing_by_fingerprint(self, rows: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        """Match rows on their fingerprint, each target row at most once (duplicates are legal)."""
        assert self.fingerprint is not None
        key = self.primary_key[0]
        # A row this run already placed (an updated job in both a full and an incremental export
        # of the chain) is the row it was placed as, whatever its fingerprint candidates say.
        placed: dict[int, Any] = {}
        if self.surrogate is not None:
            id_map = self.state.id_maps[self.rule.name]
            known = self.state.known_ids[self.rule.name]
            for index, row in enumerate(rows):
                source = row.get(self.surrogate)
                if source in id_map:
                    placed[index] = id_map[source]
                elif source in known:
                    placed[index] = source
        by_id: dict[Any, dict[str, Any]] = {}
        for chunk in _chunks(list(set(placed.values()))):
            query = sa.select(self.table).where(self.table.c[key].in_(chunk))
            by_id.update((r[key], dict(r)) for r in self.state.connection.execute(query).mappings())
        lookup = self.fingerprint[0]
        column = self.table.c[lookup]
        values = list(
            {row.get(lookup) for i, row in enumerate(rows) if i not in placed and row.get(lookup) is not None}
        )
        candidates: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
        conditions = [column.in_(chunk) for chunk in _chunks(values)]
        if any(row.get(lookup) is None for i, row in enumerate(rows) if i not in placed):
            conditions.append(column.is_(None))
        for condition in conditions:
            for record in self.state.connection.execute(sa.select(self.table).where(condition)).mappings():
                if record[key] not in self.claimed:
                    candidates[self._fingerprint_of(record)].append(dict(record))
        matches: list[dict[str, Any] | None] = []
        for index, row in enumerate(rows):
            if index in placed:
                matches.append(by_id.get(placed[index]))  # None in a dry run: "inserted" earlier
                continue
            pool = candidates.get(self._fingerprint_of(row), [])
            match = None
            if pool:
                # Prefer the target row that kept this row's id (the common case after a restore).
                same_id = [
                    c for c in pool if self.surrogate and c.get(self.surrogate) == row.get(self.surrogate)
                ]
                match = (same_id or pool)[0]
                pool.remove(match)
                self.claimed.add(match[key])
            matches.append(match)
        return matches

    def _fingerprint_of(self, row: Any) -> tuple[Any, ...]:
        assert self.fingerprint is not None
        return tuple(
            comparable(row.get(name) if isinstance(row, dict) else row[name]) for name in self.fingerprint
        )


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
