"""Airflow metadata export and restore: verified, incremental Parquet exports of the metadata DB.

The format (layout, manifest, table schemas) is described in ``docs/components/metadata.rst``;
:mod:`.tables` holds the table catalog and :mod:`.manifest` the reader/verifier API. Nothing here
imports Airflow at module level, so the CLI and analysis tools load fast.
"""

#: Rows per chunk (a chunk is read, sorted and encoded at once; one Parquet file per chunk and
#: day). Memory grows with it: 25k task instances are about 10 MB in Arrow.
DEFAULT_CHUNK_ROWS = 25_000
