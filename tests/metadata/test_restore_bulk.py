"""The PostgreSQL bulk restore path (COPY into a staging table, decide and write in SQL).

Values that break a naive COPY (tabs, newlines, backslashes, quotes, the CSV delimiter, empty text
next to NULL), JSON (including JSON null), timestamps written with other offsets than UTC, pickled
bytea, and duplicate log rows: restored equal value by value, a second restore changes nothing
(no duplicates), a drifted target is repaired, and the row path decides exactly the same.

Skips without a PostgreSQL server, fails instead under MWAAOPS_REQUIRE_POSTGRES=1 (CI).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from airflow_provider_mwaaops.metadata.export import run_export
from airflow_provider_mwaaops.metadata.restore import RestoreOptions, pgbinary, restore_metadata
from airflow_provider_mwaaops.metadata.restore import bulk as bulk_module
from airflow_provider_mwaaops.metadata.sinks import open_sink
from airflow_provider_mwaaops.metadata.sources.database import DatabaseSource

TABLES = ["task_instance", "log"]
NASTY = [
    "tab\there",
    "new\nline and\r\nwindows",
    "back\\slash \\N \\. end\\",
    'quote " and "" doubled',
    "comma, pipe | semicolon ;",
    "",
    "ünïcødé ✓",
]


def _columns(conn: sa.engine.Connection, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(conn).get_columns(table)}


def _insert(conn: sa.engine.Connection, table: str, values: dict[str, Any]) -> None:
    """Insert the values whose columns this Airflow line has (2.11 and 3.x differ)."""
    present = _columns(conn, table)
    row = {k: v for k, v in values.items() if k in present}
    reflected = sa.Table(table, sa.MetaData(), autoload_with=conn)
    conn.execute(sa.insert(reflected).values(**row))


def populate(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        _insert(
            conn,
            "dag_run",
            {
                "dag_id": "bulk_dag",
                "run_id": "manual__1",
                "run_type": "manual",
                "run_after": sa.text("now()"),
                "execution_date": sa.text("timestamptz '2024-03-01 12:00:00+00'"),
                "logical_date": sa.text("timestamptz '2024-03-01 12:00:00+00'"),
                "clear_number": 0,
            },
        )
        table = sa.Table("task_instance", sa.MetaData(), autoload_with=conn)
        json_column = "next_kwargs" if "next_kwargs" in table.c else None
        for index in range(40):
            text = NASTY[index % len(NASTY)]
            values: dict[str, Any] = {
                "id": uuid.uuid4().hex,
                "dag_id": "bulk_dag",
                "task_id": f"task_{index}",
                "run_id": "manual__1",
                "map_index": -1 if index % 3 else index,
                "try_number": 1,
                "pool": "default_pool",
                "pool_slots": 1,
                "state": None if index % 5 == 0 else "success",
                # an offset other than UTC: stored as the same instant, restored as the same instant
                "start_date": sa.text(f"timestamptz '2024-03-01 12:{index:02d}:00.123456+05:30'"),
                "end_date": None if index % 4 == 0 else sa.text("timestamptz '2024-03-01 13:00:00.5-07:00'"),
                "duration": None if index % 4 == 0 else index + 0.125,
                "hostname": text,
                "unixname": "" if index % 2 else None,
                "operator": text,
                "queue": "default",
                "priority_weight": 1,
                "max_tries": 0,
                "executor_config": pickle.dumps({"text": text, "raw": b"\x00,\t\n\\|"}),
            }
            if json_column:
                values[json_column] = (
                    None
                    if index % 6 == 0
                    else sa.JSON.NULL
                    if index % 6 == 1
                    else {"text": text, "nested": {"list": [1, None, "\\t"]}}
                )
            _insert(conn, "task_instance", values)
        for index in range(30):
            text = NASTY[index % len(NASTY)]
            values = {
                "dttm": sa.text(f"timestamptz '2024-03-01 12:00:{index % 10:02d}.000001+02:00'"),
                "event": "cli_task_run" if index % 2 else text,
                "dag_id": "bulk_dag",
                "task_id": None if index % 7 == 0 else f"task_{index % 3}",
                "run_id": "manual__1",
                "map_index": -1,
                "try_number": 1,
                "owner": "airflow",
                # index and index + 10 are exact duplicates: legal in log, both must come back
                "extra": f'{{"full_command": "{text.encode("unicode_escape").decode()}"}}',
            }
            values["extra"] = None if index % 10 == 9 else text if index % 10 == 8 else values["extra"]
            _insert(conn, "log", values)
    engine.dispose()


def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = sa.create_engine(url)
    out = {}
    with engine.connect() as conn:
        for name in TABLES:
            rows = conn.execute(sa.text(f"SELECT * FROM {name}")).fetchall()
            out[name] = sorted(
                tuple(repr(bytes(v) if isinstance(v, memoryview) else v) for v in row) for row in rows
            )
    engine.dispose()
    return out


def execute(url: str, sql: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(sql))
    engine.dispose()


@pytest.fixture
def exported(postgres_airflow, tmp_path: Path) -> tuple[str, Any, dict[str, list[tuple[Any, ...]]]]:
    url = postgres_airflow.sql_alchemy_conn
    populate(url)
    sink = open_sink(str(tmp_path / "exports"))
    run_export(DatabaseSource(url), sink, export_id="bulk", tables=TABLES)
    before = dump(url)
    execute(url, "DELETE FROM log; DELETE FROM task_instance")
    return url, sink, before


@pytest.fixture
def chunks_taken(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """(table, whether the bulk path took the chunk), for every chunk the bulk writer saw."""
    seen: list[tuple[str, bool]] = []
    original = bulk_module.BulkTableWriter.process

    def spy(self: bulk_module.BulkTableWriter, batch: Any) -> bool:
        taken = original(self, batch)
        seen.append((self.restorer.rule.name, taken))
        return taken

    monkeypatch.setattr(bulk_module.BulkTableWriter, "process", spy)
    return seen


@pytest.fixture(params=["binary", "csv"])
def copy_format(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[int]]:
    """COPY in binary (the default) or forced CSV; the list collects the rows encoded as binary."""
    monkeypatch.setattr(bulk_module.BulkTableWriter, "binary", request.param == "binary")
    encoded: list[int] = []
    original = pgbinary.encode_rows

    def spy(batch: Any, pg_types: Any) -> bytes:
        encoded.append(batch.num_rows)
        return original(batch, pg_types)

    monkeypatch.setattr(pgbinary, "encode_rows", spy)
    return request.param, encoded


@pytest.mark.timeout(600)
def test_bulk_restore_is_exact_and_idempotent(exported, chunks_taken, copy_format):
    url, sink, before = exported
    options = RestoreOptions(tables=TABLES, reactivate_dags=False)

    first = restore_metadata(sink, "bulk", url, options)
    assert ("task_instance", True) in chunks_taken
    assert ("log", True) in chunks_taken
    fmt, encoded = copy_format
    assert (sum(encoded) >= 70) if fmt == "binary" else not encoded  # 40 task instances + 30 logs
    assert first.tables["task_instance"].inserted == 40
    assert first.tables["log"].inserted == 30
    assert dump(url) == before  # every value back, ids included, duplicates included

    second = restore_metadata(sink, "bulk", url, options)
    assert second.changed_rows == 0, second.summary()
    assert second.tables["task_instance"].unchanged == 40
    assert second.tables["log"].unchanged == 30
    assert dump(url) == before  # no duplicates

    # A drifted target: one task instance changed, one gone; the bulk path repairs exactly those.
    execute(url, "UPDATE task_instance SET state = 'failed', hostname = 'x' WHERE task_id = 'task_1'")
    execute(url, "DELETE FROM task_instance WHERE task_id = 'task_2'")
    third = restore_metadata(sink, "bulk", url, options)
    stats = third.tables["task_instance"]
    assert (stats.inserted, stats.updated, stats.unchanged) == (1, 1, 38)
    assert dump(url) == before


@pytest.mark.timeout(600)
def test_bulk_and_row_paths_decide_the_same(exported):
    url, sink, before = exported
    reports = {}
    for bulk in (True, False):
        execute(url, "DELETE FROM log; DELETE FROM task_instance")
        first = restore_metadata(sink, "bulk", url, RestoreOptions(tables=TABLES, bulk=bulk))
        assert dump(url) == before, f"bulk={bulk}"
        execute(url, "UPDATE task_instance SET state = 'failed' WHERE task_id IN ('task_3', 'task_4')")
        again = restore_metadata(sink, "bulk", url, RestoreOptions(tables=TABLES, bulk=bulk))
        reports[bulk] = (first.as_dict()["tables"], again.as_dict()["tables"])
    assert reports[True] == reports[False]


@pytest.mark.timeout(600)
def test_bulk_into_a_target_with_history_of_its_own(exported, chunks_taken):
    """Not empty: the staging table decides; the target's own rows stay, the backup's come back."""
    url, sink, before = exported
    own_log = "INSERT INTO log (dttm, event, extra) VALUES (timestamptz '2030-01-01 00:00:00+00', 'own', 'x')"
    execute(url, own_log)
    report = restore_metadata(sink, "bulk", url, RestoreOptions(tables=TABLES, reactivate_dags=False))
    assert ("log", True) in chunks_taken
    assert report.tables["log"].inserted == 30
    after = dump(url)
    assert after["task_instance"] == before["task_instance"]
    assert len(after["log"]) == 31
    assert set(before["log"]) <= set(after["log"])
    again = restore_metadata(sink, "bulk", url, RestoreOptions(tables=TABLES, reactivate_dags=False))
    assert again.changed_rows == 0
    assert dump(url) == after


@pytest.mark.timeout(600)
def test_each_export_file_is_read_once_and_restored_from_the_verified_bytes(exported, monkeypatch):
    """Verification keeps the bytes it checked; the restore reads those, not the export again."""
    url, sink, before = exported
    reads: Counter[str] = Counter()
    original = sink.read_bytes

    def counting(path: str) -> bytes:
        reads[path] += 1
        return original(path)

    monkeypatch.setattr(sink, "read_bytes", counting)
    restore_metadata(sink, "bulk", url, RestoreOptions(tables=TABLES, reactivate_dags=False))
    parquet = {path: count for path, count in reads.items() if path.endswith(".parquet")}
    assert parquet
    assert set(parquet.values()) == {1}, parquet
    assert dump(url) == before


@pytest.mark.timeout(600)
def test_a_bulk_restore_never_imports_pandas(exported):
    """pyarrow imports pandas (~1 s, ~40 MB) for pa.array/pa.scalar of Python values or to_numpy;
    the bulk path and the binary encoder build their arrays from buffers instead."""
    url, sink, before = exported
    code = (
        "import sys\n"
        "from airflow_provider_mwaaops.metadata.restore import RestoreOptions, restore_metadata\n"
        "from airflow_provider_mwaaops.metadata.sinks import open_sink\n"
        f"r = restore_metadata(open_sink({sink.url!r}), 'bulk', {url!r},"
        f" RestoreOptions(tables={TABLES!r}, reactivate_dags=False, check_revision=False))\n"
        "assert r.tables['task_instance'].inserted == 40, r.summary()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pandas'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
    assert dump(url) == before


@pytest.mark.timeout(600)
def test_copy_takes_each_chunk_in_key_order_and_restores_the_same_rows(
    postgres_airflow, tmp_path, monkeypatch
):
    """COPY into an empty task_instance gets each chunk's rows sorted by the natural key; sorted or
    not, the restored table is the same, and a second restore changes nothing."""
    url = postgres_airflow.sql_alchemy_conn
    populate(url)
    # A second dag run, created after the first but whose run_id sorts before it: the export keeps
    # its rows after the first run's, the key (dag_id, task_id, run_id, map_index) interleaves them.
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        run = {"dag_id": "bulk_dag", "run_id": "a_manual__0", "run_type": "manual", "clear_number": 0}
        stamp = sa.text("timestamptz '2024-03-02 12:00:00+00'")
        _insert(conn, "dag_run", {**run, "run_after": stamp, "execution_date": stamp, "logical_date": stamp})
        for index in range(0, 40, 3):
            _insert(
                conn,
                "task_instance",
                {
                    "id": uuid.uuid4().hex,
                    "dag_id": "bulk_dag",
                    "task_id": f"task_{index}",
                    "run_id": "a_manual__0",
                    "map_index": -1,
                    "try_number": 1,
                    "pool": "default_pool",
                    "pool_slots": 1,
                    "state": "success",
                    "max_tries": 0,
                    "start_date": sa.text("timestamptz '2024-03-01 07:00:00+00'"),  # the same day's file
                },
            )
    engine.dispose()
    sink = open_sink(str(tmp_path / "exports"))
    run_export(DatabaseSource(url), sink, export_id="bulk", tables=["task_instance"])
    before = dump(url)["task_instance"]
    key = ("dag_id", "task_id", "run_id", "map_index")
    copied: list[list[tuple[Any, ...]]] = []  # the keys each COPY received, in its order
    original_copy, original_encode = bulk_module.BulkTableWriter._copy, pgbinary.encode_rows

    def copy_spy(self: Any, *args: Any, **kwargs: Any) -> None:
        copied.append([])
        original_copy(self, *args, **kwargs)

    def encode_spy(batch: Any, pg_types: Any) -> bytes:
        columns = [batch.column(batch.schema.get_field_index(name)).to_pylist() for name in key]
        copied[-1].extend(zip(*columns, strict=True))
        return original_encode(batch, pg_types)

    monkeypatch.setattr(bulk_module.BulkTableWriter, "_copy", copy_spy)
    monkeypatch.setattr(pgbinary, "encode_rows", encode_spy)
    options = RestoreOptions(tables=["task_instance"], reactivate_dags=False)
    orders = {}
    for sort_by_key in (True, False):
        monkeypatch.setattr(bulk_module.BulkTableWriter, "sort_by_key", sort_by_key)
        execute(url, "DELETE FROM task_instance")
        copied.clear()
        report = restore_metadata(sink, "bulk", url, options)
        assert report.tables["task_instance"].inserted == 54
        assert dump(url)["task_instance"] == before
        orders[sort_by_key] = list(copied)
        again = restore_metadata(sink, "bulk", url, options)
        assert again.changed_rows == 0, again.summary()
        assert dump(url)["task_instance"] == before
    assert sum(len(chunk) for chunk in orders[True]) == 54
    assert all(chunk == sorted(chunk) for chunk in orders[True])  # each chunk sorted by the key
    assert orders[False] != orders[True]  # the export's own order is another one
    assert [sorted(chunk) for chunk in orders[False]] == orders[True]  # same chunks, same rows
