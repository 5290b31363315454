"""The database a restore writes into: reflection, the dialect's upsert, id allocation, checks.

Everything goes through SQLAlchemy Core on tables reflected from the target itself, never through
Airflow's ORM models: the target may be another database than the one the running Airflow uses (a
standby, a freshly migrated file in a drill), and Core works on both SQLAlchemy 1.4 (Airflow 2.11)
and 2.0 (Airflow 3). Only PostgreSQL (MWAA's backend) and SQLite are supported writers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from airflow_provider_mwaaops.metadata.restore.errors import RestoreError

SUPPORTED_DIALECTS = ("postgresql", "sqlite")


def create_target_engine(url: str) -> Engine:
    """An engine for ``url`` with SQLite's foreign keys enforced, as Airflow's own engine does."""
    engine = sa.create_engine(url, future=True) if sa.__version__.startswith("1.") else sa.create_engine(url)
    if engine.dialect.name not in SUPPORTED_DIALECTS:
        raise RestoreError(
            f"restore supports PostgreSQL and SQLite targets, not {engine.dialect.name} ({engine.url!r})"
        )
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _foreign_keys(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


class TargetSchema:
    """Reflected tables of the target, loaded lazily and cached for one restore."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.dialect = connection.dialect.name
        self._inspector = sa.inspect(connection)
        self._names = set(self._inspector.get_table_names())
        self._metadata = sa.MetaData()
        self._tables: dict[str, sa.Table] = {}

    def has_table(self, name: str) -> bool:
        return name in self._names

    def table(self, name: str) -> sa.Table:
        if name not in self._tables:
            if name not in self._names:
                raise RestoreError(f"the target database has no table {name!r}", table=name)
            table = sa.Table(name, self._metadata, autoload_with=self.connection)
            for column in table.columns:
                if isinstance(column.type, sa.JSON):
                    # SQL NULL stays NULL: by default SQLAlchemy would write the JSON text 'null'.
                    column.type.none_as_null = True
            self._tables[name] = table
        return self._tables[name]

    def alembic_revision(self) -> str | None:
        if "alembic_version" not in self._names:
            return None
        return self.connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def primary_key(self, name: str) -> tuple[str, ...]:
        return tuple(column.name for column in self.table(name).primary_key.columns)


def is_integer_column(column: sa.Column) -> bool:
    try:
        return issubclass(column.type.python_type, int) and not issubclass(column.type.python_type, bool)
    except NotImplementedError:
        return False


def upsert(
    connection: Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    conflict_key: Sequence[str],
    update_columns: Sequence[str],
) -> None:
    """INSERT ... ON CONFLICT (natural key) DO UPDATE, the same statement on PostgreSQL and SQLite.

    ``update_columns`` empty means DO NOTHING (insert-only tables).
    """
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    # Rows of one batch may carry different column sets (a NULL-ed reference is still present), so
    # statements are grouped by column set: executemany needs one shape.
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        by_shape.setdefault(tuple(sorted(row)), []).append(row)
    for shape, group in by_shape.items():
        statement = insert(table)
        updates = [name for name in update_columns if name in shape]
        if updates:
            statement = statement.on_conflict_do_update(
                index_elements=list(conflict_key),
                set_={name: statement.excluded[name] for name in updates},
            )
        else:
            statement = statement.on_conflict_do_nothing(index_elements=list(conflict_key))
        connection.execute(statement, group)


class IdAllocator:
    """Fresh integer ids for rows whose own id is taken in the target.

    ``start(highest_source_id)`` runs before the table's first row is written: every id the restore
    may keep is at most that, so fresh ids are handed out above it and above the target's maximum.
    PostgreSQL: the column's sequence is moved there first (``setval``) and fresh ids come from
    ``nextval``, so Airflow's own next insert can never collide with a restored row. SQLite hands out
    ``max(id) + 1`` itself. A dry run never touches a sequence: it counts above both maxima.
    """

    def __init__(self, connection: Connection, table: sa.Table, column: str, dry_run: bool) -> None:
        self.connection = connection
        self.table = table
        self.column = column
        self.dry_run = dry_run
        self._next = 1
        self._sequence: str | None = None
        if connection.dialect.name == "postgresql" and not dry_run:
            self._sequence = connection.execute(
                sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column}
            ).scalar()

    def _max_id(self) -> int:
        return int(self.connection.execute(sa.select(sa.func.max(self.table.c[self.column]))).scalar() or 0)

    def _raise_sequence(self, highest: int) -> None:
        if self._sequence is not None and highest > 0:
            self.connection.execute(
                sa.text(
                    f"SELECT setval(:s, GREATEST(:m, (SELECT last_value FROM {self._sequence})))"  # noqa: S608
                ),
                {"s": self._sequence, "m": highest},
            )

    def start(self, highest_source_id: int) -> None:
        self._next = max(self._max_id(), highest_source_id) + 1
        self._raise_sequence(highest_source_id)

    def allocate(self, count: int) -> list[int]:
        if count <= 0:
            return []
        if self._sequence is not None:
            result = self.connection.execute(
                sa.text("SELECT nextval(:s) FROM generate_series(1, :n)"), {"s": self._sequence, "n": count}
            )
            return [int(row[0]) for row in result]
        ids = list(range(self._next, self._next + count))
        self._next += count
        return ids

    def finish(self) -> None:
        """Move a PostgreSQL sequence past the table's maximum (covers every id the restore kept)."""
        self._raise_sequence(self._max_id())
