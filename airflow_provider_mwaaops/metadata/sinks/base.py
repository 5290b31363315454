"""Storage for exports: a small byte-level interface that the writer and every reader share.

Why our own interface instead of handing fsspec around: the export's guarantee ("complete exactly
when ``manifest.json`` exists") depends on each file appearing whole or not at all, which a local
filesystem only gives with write-to-temp-then-rename and S3 gives per PUT. Each sink implements
that once; the writer, restore and the report never need to know where the bytes live.

Paths given to a sink are relative to its base (``<base>/<export_id>/<table>/...``) and always use
``/``.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Any


class Sink(metaclass=abc.ABCMeta):
    """A base location (directory or S3 prefix) holding export directories."""

    #: The base as the user gave it, for messages and manifests (never includes credentials).
    url: str

    @abc.abstractmethod
    def write_bytes(self, path: str, data: bytes) -> None:
        """Write ``data`` so that readers see either the whole file or no file."""

    @abc.abstractmethod
    def read_bytes(self, path: str) -> bytes:
        """Whole file; raises ``FileNotFoundError`` when absent."""

    @abc.abstractmethod
    def exists(self, path: str) -> bool: ...

    @abc.abstractmethod
    def list_dirs(self, path: str = "") -> list[str]:
        """Names of the immediate sub-directories (prefixes) of ``path``, sorted."""

    @abc.abstractmethod
    def list_files(self, path: str) -> Iterator[str]:
        """Every file under ``path``, recursively, as paths relative to the base."""

    @abc.abstractmethod
    def delete(self, path: str) -> None:
        """Remove one file (no error if it is already gone)."""

    def full_path(self, path: str) -> str:
        """``path`` as a URL/absolute path DuckDB, pyarrow or a user can open directly."""
        return f"{self.url.rstrip('/')}/{path.lstrip('/')}"

    def storage_options(self) -> dict[str, Any]:
        """fsspec/DuckDB options a reader needs to open :meth:`full_path` (credentials, endpoint)."""
        return {}
