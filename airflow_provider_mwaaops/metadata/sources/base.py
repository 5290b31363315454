"""The contract between a source of metadata rows and the export writer.

A source yields each table as Arrow chunks already in the catalog schema
(:attr:`~airflow_provider_mwaaops.metadata.tables.TableSpec.arrow_schema`), in a deterministic
order (the keyset), so that the same data always produces the same files and checksums. The
writer owns everything else: partitioning, Parquet encoding, secret encryption, checksums and the
manifest.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from airflow_provider_mwaaops.metadata.tables import TableSpec


@dataclass(frozen=True)
class ReadWindow:
    """Which rows of an incremental table to read: ``low < watermark <= high``.

    ``low is None`` means from the beginning, and then rows whose watermark is null are included
    too (a full export has every row). ``high is None`` means no upper bound (table empty when
    the export started, or a whole-copy table).
    """

    low: datetime | None = None
    high: datetime | None = None


class MetadataSource(metaclass=abc.ABCMeta):
    """Rows of Airflow's metadata tables, chunk by chunk."""

    #: ``"database"`` or ``"rest"``; recorded in the manifest.
    kind: str = ""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """What the manifest records about the source (kind, dialect...; never credentials)."""

    @abc.abstractmethod
    def airflow_version(self) -> str:
        """Version of the Airflow whose metadata this is."""

    @abc.abstractmethod
    def columns(self, spec: TableSpec) -> list[str] | None:
        """Catalog columns the source has for this table, or ``None`` if it has no such table."""

    @abc.abstractmethod
    def keyset(self, spec: TableSpec) -> list[str]:
        """Columns that order (and paginate) the table's rows."""

    def watermark_column(self, spec: TableSpec, columns: list[str]) -> str | None:
        """The column bounding this table's incremental reads, or ``None`` (copied whole).

        The catalog's watermark when the source has that column. A source may also filter on a
        column it cannot return (the REST API filters on ``updated_at`` but does not send it).
        """
        return spec.watermark if spec.watermark is not None and spec.watermark in columns else None

    @abc.abstractmethod
    def watermark_high(self, spec: TableSpec) -> datetime | None:
        """The current maximum of the table's watermark column (captured before reading)."""

    @abc.abstractmethod
    def read(
        self,
        spec: TableSpec,
        window: ReadWindow,
        chunk_rows: int,
        include_secrets: bool = False,
    ) -> Iterator[pa.Table]:
        """Chunks of at most ``chunk_rows`` rows, in keyset order, in ``spec.arrow_schema``.

        Secret columns are null unless ``include_secrets``; then they hold the *plain text* (the
        writer encrypts it before anything is written), so a source must decrypt what the
        database stores encrypted with Airflow's own Fernet key.
        """

    def secret_rows(self, spec: TableSpec, chunk_rows: int) -> Iterator[dict[str, Any]]:
        """Each row's secret columns in plain text: what the export's masker must find elsewhere.

        Any source can answer through :meth:`read`; a source may answer more cheaply (the
        masker asks before the first table is read, so every export pays for this).
        """
        if self.columns(spec) is None:
            return
        for chunk in self.read(spec, ReadWindow(), chunk_rows, include_secrets=True):
            yield from chunk.select(list(spec.secret_columns)).to_pylist()

    @contextlib.contextmanager
    def consistent_read(self) -> Iterator[None]:
        """Reads inside the block see one moment of the source where the source can do that.

        The default cannot (the REST API answers each page at its own moment); the database
        source reads under one snapshot. ``describe()`` inside the block says which applies.
        """
        yield

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release connections."""
