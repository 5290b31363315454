"""Where exports are written and read: a local directory or S3.

:func:`open_sink` is the one place that knows the kinds of sink; :class:`~.base.Sink` (the
interface every reader and the writer share) knows none of them.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mwaaops.metadata.sinks.base import Sink

__all__ = ["Sink", "open_sink", "write_file"]


def open_sink(url: str, aws_conn_id: str | None = None, **options: Any) -> Sink:
    """The sink for ``url``: ``s3://bucket/prefix`` or a local path (``file://`` or plain).

    ``aws_conn_id`` names the Airflow AWS connection for S3 (credentials, region, endpoint); with
    ``None`` the usual boto environment (variables, instance role) is used.
    """
    if url.startswith("s3://") or url.startswith("s3a://"):
        from airflow_provider_mwaaops.metadata.sinks.s3 import S3Sink

        return S3Sink(url, aws_conn_id=aws_conn_id, **options)
    if "://" in url and not url.startswith("file://"):
        raise ValueError(f"unsupported export location {url!r}: use s3://bucket/prefix or a local path")
    from airflow_provider_mwaaops.metadata.sinks.local import LocalSink

    return LocalSink(url.removeprefix("file://"))


def write_file(
    uri: str, data: bytes, *, aws_conn_id: str | None = None, region_name: str | None = None
) -> str:
    """Write one file (a report, DDL) at a local path or ``s3://`` URI, whole or not at all, through
    the sink of its folder; returns its full path. ``aws_conn_id`` and ``region_name`` apply to S3."""
    base, _, name = uri.rstrip("/").rpartition("/")
    if not name:
        raise ValueError(f"{uri!r} names no file")
    sink = (
        open_sink(base, aws_conn_id=aws_conn_id, region_name=region_name)
        if base.startswith("s3://")
        else open_sink(base or ".")
    )
    sink.write_bytes(name, data)
    return sink.full_path(name)
