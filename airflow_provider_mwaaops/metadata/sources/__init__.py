"""Where exported rows come from: the metadata database (:mod:`.database`) or the REST API
(:mod:`.rest`). :func:`open_source` is the one place that knows both."""

from __future__ import annotations

from airflow_provider_mwaaops.metadata.sources.base import MetadataSource, ReadWindow

__all__ = ["READ_FROM", "MetadataSource", "ReadWindow", "open_source"]

#: The places an export can read from (the metadata database, or Airflow 3's REST API).
READ_FROM = ("database", "rest")


def open_source(
    read_from: str = "database",
    *,
    sql_alchemy_url: str | None = None,
    db_conn_id: str | None = None,
    chunk_timeout: float = 300.0,
    fast_path: bool = True,
) -> MetadataSource:
    """The source to export from.

    ``"database"``: the metadata database at ``sql_alchemy_url``, else of the Airflow connection
    ``db_conn_id``, else this Airflow's (``chunk_timeout`` and ``fast_path`` as for
    :class:`~airflow_provider_mwaaops.metadata.sources.database.DatabaseSource`). ``"rest"``:
    Airflow 3's REST API that ``[mwaaops]`` names (see
    :class:`~airflow_provider_mwaaops.metadata.sources.rest.RestSource`); the database
    settings do not apply to it.
    """
    if read_from == "rest":
        from airflow_provider_mwaaops.metadata.sources.rest import RestSource

        return RestSource()
    if read_from != "database":
        raise ValueError(f"read_from={read_from!r}: use one of {', '.join(READ_FROM)}")
    from airflow_provider_mwaaops.metadata.sources.database import DatabaseSource

    return DatabaseSource(sql_alchemy_url, db_conn_id, chunk_timeout=chunk_timeout, fast_path=fast_path)
