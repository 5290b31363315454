"""Exports in a local directory (tests, self-managed Airflow with a shared volume, staging)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from airflow_provider_mwaaops.metadata.sinks.base import Sink


class LocalSink(Sink):
    def __init__(self, base: str | os.PathLike[str]) -> None:
        self.root = Path(base).expanduser().resolve()
        self.url = str(self.root)

    def _path(self, path: str) -> Path:
        full = (self.root / path).resolve()
        if full != self.root and self.root not in full.parents:
            raise ValueError(f"path {path!r} escapes the export base {self.root}")
        return full

    def write_bytes(self, path: str, data: bytes) -> None:
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Temp file in the same directory, then rename: a reader (or a killed writer) never
        # leaves a half-written file under the final name.
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read_bytes(self, path: str) -> bytes:
        return self._path(path).read_bytes()

    def exists(self, path: str) -> bool:
        return self._path(path).exists()

    def list_dirs(self, path: str = "") -> list[str]:
        base = self._path(path)
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir())

    def list_files(self, path: str) -> Iterator[str]:
        base = self._path(path)
        if not base.is_dir():
            return
        for file in sorted(base.rglob("*")):
            if file.is_file():
                yield file.relative_to(self.root).as_posix()

    def delete(self, path: str) -> None:
        self._path(path).unlink(missing_ok=True)
