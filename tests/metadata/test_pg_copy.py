"""COPY streamed into Arrow chunks, on a real PostgreSQL server (per-test database)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from airflow_provider_mwaaops.metadata.sources.pg_copy import CopyFailed, RowTooLong, stream_copy

INT_TEXT = {"g": pa.int64(), "t": pa.string()}


def _connect(url: str):  # type: ignore[no-untyped-def]
    import psycopg2

    return psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://"))


def _stream(url: str, sql: str, types=INT_TEXT, **kwargs):  # type: ignore[no-untyped-def]
    options = {"chunk_rows": 1000, "block_size": 1 << 20, "timeout_s": 60.0, "name": "t"} | kwargs
    return stream_copy(_connect(url), sql, {}, types, **options)


def test_chunks_are_cut_every_chunk_rows_across_blocks(postgres_url):
    # 4 KB blocks: each Arrow batch holds ~200 rows, so chunks are assembled from many batches.
    sql = "SELECT g, repeat('x', mod(g, 7)) FROM generate_series(1, 5500) AS g ORDER BY g"
    chunks = list(_stream(postgres_url, sql, block_size=4096))
    assert [c.num_rows for c in chunks] == [1000] * 5 + [500]
    assert pa.concat_tables(chunks).column("g").to_pylist() == list(range(1, 5501))
    assert chunks[0].schema == pa.schema(list(INT_TEXT.items()))


def test_an_empty_result_yields_nothing(postgres_url):
    assert list(_stream(postgres_url, "SELECT 1, 'a' WHERE false")) == []


def test_a_statement_failing_midway_never_ends_like_a_short_table(postgres_url):
    # Rows 1..5500 are sent, then row 5501 divides by zero: five full chunks pass, the 500-row
    # remainder must not be passed on as if the result had ended there.
    sql = "SELECT g, (1 / (5501 - g))::text FROM generate_series(1, 9000) AS g"
    seen: list[int] = []

    def consume() -> None:
        for chunk in _stream(postgres_url, sql):
            seen.append(chunk.num_rows)

    with pytest.raises(CopyFailed, match="division by zero"):
        consume()
    assert seen == [1000] * 5


def test_a_row_larger_than_a_block_is_reported_for_a_retry(postgres_url):
    sql = "SELECT g, repeat('y', 10000) FROM generate_series(1, 10) AS g"
    with pytest.raises(RowTooLong):
        list(_stream(postgres_url, sql, block_size=4096))
    assert sum(c.num_rows for c in _stream(postgres_url, sql, block_size=1 << 16)) == 10


def test_the_statement_timeout_applies(postgres_url):
    sql = "SELECT g, pg_sleep(0.05)::text FROM generate_series(1, 100) AS g"
    with pytest.raises(CopyFailed, match="statement timeout"):
        list(_stream(postgres_url, sql, timeout_s=0.2))


def test_the_consumer_may_stop_early(postgres_url):
    sql = "SELECT g, 'z' FROM generate_series(1, 200000) AS g"
    stream = _stream(postgres_url, sql)
    assert next(stream).num_rows == 1000
    stream.close()  # closes the pipe and the connection; the COPY thread ends
