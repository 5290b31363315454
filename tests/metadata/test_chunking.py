"""Chunk cutting: boundaries depend on the rows only, never on how they arrived."""

from __future__ import annotations

import pyarrow as pa
import pytest

from airflow_provider_mwaaops.metadata.sources.chunking import cut_groups, cut_rows, sort_table

SCHEMA = pa.schema([("run", pa.int64()), ("task", pa.string()), ("n", pa.int64())])


def rows(group_sizes: list[int]) -> list[dict]:
    """Runs 1..k with the given numbers of tasks, tasks in reverse (unsorted) order."""
    out = []
    for run, size in enumerate(group_sizes, start=1):
        out += [{"run": run, "task": f"t{i}", "n": len(out) + j} for j, i in enumerate(reversed(range(size)))]
    return out


def batches(data: list[dict], size: int) -> list[pa.RecordBatch]:
    table = pa.Table.from_pylist(data, schema=SCHEMA)
    return table.to_batches(max_chunksize=size)


@pytest.mark.parametrize("batch_size", [1, 2, 5, 1000])
def test_groups_are_never_split_and_the_cut_does_not_depend_on_batches(batch_size):
    data = rows([3, 1, 4, 2, 2, 7, 1])
    chunks = list(cut_groups(batches(data, batch_size), SCHEMA, 5, "run", ["run", "task"]))
    assert [sorted(set(c.column("run").to_pylist())) for c in chunks] == [[1, 2], [3], [4, 5], [6], [7]]
    assert [c.num_rows for c in chunks] == [4, 4, 4, 7, 1]  # run 6 alone is larger than a chunk
    merged = pa.concat_tables(chunks).to_pylist()
    assert [(r["run"], r["task"]) for r in merged] == sorted((r["run"], r["task"]) for r in data)


def test_a_group_larger_than_a_chunk_is_read_to_its_end():
    data = rows([12])
    chunks = list(cut_groups(batches(data, 2), SCHEMA, 5, "run", ["run", "task"]))
    assert [c.num_rows for c in chunks] == [12]


def test_sort_table_sorts_strings_by_bytes_and_copies_nothing_when_sorted():
    table = pa.table({"k": ["b", "B", "a", "é", "A"], "v": [1, 2, 3, 4, 5]})
    assert sort_table([table], ["k"]).column("k").to_pylist() == ["A", "B", "a", "b", "é"]
    ordered = pa.table({"k": ["A", "B", "a"], "v": [1, 2, 3]})
    assert sort_table([ordered], ["k"]) is ordered


def test_cut_rows_cuts_exact_chunks_then_the_remainder():
    data = rows([10, 3])
    chunks = list(cut_rows(batches(data, 4), SCHEMA, 5))
    assert [c.num_rows for c in chunks] == [5, 5, 3]
    assert pa.concat_tables(chunks).column("n").to_pylist() == [r["n"] for r in data]
