"""What both read strategies of the database source share: the reflected tables and the keyset SQL.

Tables and columns are reflected from the database (SQLAlchemy Core, never Airflow's models), so
one code path serves both Airflow lines. Rows are read in keyset order (``WHERE key > last ORDER
BY key LIMIT n``), never with ``OFFSET``; a :class:`ReadRequest` says what one read is about and
goes, unchanged, to whichever strategy reads it (:mod:`.pg_copy_reader` or :mod:`.cursor_reader`).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from airflow_provider_mwaaops.metadata.tables import Column, ParentOrder, TableSpec


class DatabaseSourceError(Exception):
    """The database cannot be read as an Airflow metadata database; the message says why."""


@dataclass(frozen=True)
class ReadRequest:
    """One read of a table (or of a keyset segment of it), as a strategy receives it.

    ``columns``: the catalog columns the database has (the others are read as typed NULLs).
    ``filters``: SQL conditions on top of the keyset (the incremental window, a segment's).
    ``keys``: the keyset columns, ``name`` or ``parent.name`` (see ``ParentOrder``).
    ``include_secrets``: read secret columns (in plain text) instead of NULLs.
    """

    spec: TableSpec
    columns: list[str]
    filters: list[Any]
    keys: list[str]
    chunk_rows: int
    include_secrets: bool

    def reads(self, column: Column) -> bool:
        """Whether ``column`` is read from the database rather than written as NULL."""
        if column.name not in self.columns:
            return False
        return self.include_secrets or column.name not in self.spec.secret_columns

    @property
    def has_secrets(self) -> bool:
        """Whether a chunk of this read holds stored secrets to decrypt."""
        return self.include_secrets and any(name in self.columns for name in self.spec.secret_columns)


#: How a strategy selects a column it reads: (catalog column, table column, stored as binary).
ColumnExpression = Callable[[Column, sa.Column, bool], Any]


class DatabaseSchema:
    """The metadata database's tables as reflected, and the keyset queries over them."""

    def __init__(self, engine: sa.engine.Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._inspector = sa.inspect(engine)
        self.table_names = set(self._inspector.get_table_names())
        self._tables: dict[str, sa.Table] = {}
        self._parent_orders: dict[str, ParentOrder | None] = {}

    def table(self, name: str) -> sa.Table:
        if name not in self._tables:
            self._tables[name] = sa.Table(name, sa.MetaData(), autoload_with=self.engine, resolve_fks=False)
        return self._tables[name]

    def is_binary(self, spec: TableSpec, name: str) -> bool:
        """Whether the database stores the column as bytes (Airflow 2's pickled ``conf`` too)."""
        return isinstance(self.table(spec.name).c[name].type, sa.LargeBinary)

    def parent_order(self, spec: TableSpec) -> ParentOrder | None:
        """``spec.parent_order`` where it applies: no ``id`` key of its own, and a foreign key to
        the parent, so that the join loses no row."""
        if spec.name not in self._parent_orders:
            self._parent_orders[spec.name] = self._find_parent_order(spec)
        return self._parent_orders[spec.name]

    def _find_parent_order(self, spec: TableSpec) -> ParentOrder | None:
        order = spec.parent_order
        if order is None or "id" in self.table(spec.name).c or order.parent not in self.table_names:
            return None
        for fk in self._inspector.get_foreign_keys(spec.name):
            if fk["referred_table"] == order.parent and set(fk["constrained_columns"]) == set(order.join_on):
                return order
        return None

    def key_column(self, spec: TableSpec, key: str) -> sa.Column:
        """A keyset column: ``name`` of the table itself, or ``parent.name`` (see ParentOrder)."""
        table_name, _, column = key.rpartition(".")
        return self.table(table_name or spec.name).c[column]

    def from_clause(self, spec: TableSpec) -> sa.FromClause:
        table = self.table(spec.name)
        order = self.parent_order(spec)
        if order is None:
            return table
        parent = self.table(order.parent)
        return table.join(parent, sa.and_(*[table.c[c] == parent.c[c] for c in order.join_on]))

    @staticmethod
    def hidden_keys(spec: TableSpec, keys: list[str]) -> dict[str, str]:
        """Keyset columns that are not exported columns (a parent's key) -> their result label."""
        return {k: f"__key_{i}" for i, k in enumerate(keys) if k not in spec.column_index}

    def select_list(self, request: ReadRequest, expression: ColumnExpression) -> list[Any]:
        """SELECT list in catalog order; absent columns and excluded secrets are typed NULLs."""
        table = self.table(request.spec.name)
        out: list[Any] = []
        for col in request.spec.columns:
            if not request.reads(col):
                out.append(sa.null().label(col.name))
                continue
            binary = self.is_binary(request.spec, col.name)
            out.append(expression(col, table.c[col.name], binary).label(col.name))
        return out

    def chunk_query(
        self, request: ReadRequest, selected: list[Any], last: Sequence[Any] | None, limit: int
    ) -> sa.Select:
        """The next ``limit`` rows after keyset value ``last`` (from the start when ``None``)."""
        spec, keys = request.spec, request.keys
        return (
            sa.select(*selected)
            .select_from(self.from_clause(spec))
            .where(*request.filters, *self._keyset_clause(spec, keys, last))
            .order_by(*[self.key_column(spec, k) for k in keys])
            .limit(limit)
        )

    def _keyset_clause(self, spec: TableSpec, keys: list[str], last: Sequence[Any] | None) -> list[Any]:
        if last is None:
            return []
        cols = [self.key_column(spec, k) for k in keys]
        values = [self.bind_ts(v) if isinstance(v, datetime) else v for v in last]
        if len(cols) == 1:
            return [cols[0] > values[0]]
        # The row comparison is the keyset; the redundant bound on its first column lets the
        # planner start an index scan there when the columns span a join (ParentOrder).
        return [
            cols[0] >= sa.literal(values[0], type_=cols[0].type),
            sa.tuple_(*cols)
            > sa.tuple_(*[sa.literal(v, type_=c.type) for c, v in zip(cols, values, strict=True)]),
        ]

    def bind_ts(self, value: datetime) -> datetime:
        value = value.astimezone(UTC)
        # SQLite keeps naive UTC text; binding an aware value would compare with "+00:00" appended.
        return value.replace(tzinfo=None) if self.dialect == "sqlite" else value

    @staticmethod
    def as_datetime(value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_from_bytes(value: bytes) -> str:
    """Airflow 2 keeps ``dag_run.conf`` pickled and ``xcom.value`` as JSON bytes: JSON text out."""
    if value[:1] == b"\x80":  # pickle protocol >= 2
        try:
            return json.dumps(pickle.loads(value), default=str)  # noqa: S301  (Airflow's own column)
        except Exception as err:  # a pickled class that is not importable here
            return json.dumps({"__mwaaops_undecodable__": f"{type(err).__name__}: {err}"})
    try:
        text = value.decode()
        json.loads(text)
        return text
    except (UnicodeDecodeError, json.JSONDecodeError):
        return json.dumps(value.decode("utf-8", "replace"))
