"""Exports of real Airflow metadata (SQLite and PostgreSQL) through the database source.

The source installation is a throw-away Airflow, populated by real ``dag.test()`` runs in a
subprocess (``populate_airflow.py``), sharing this process's Fernet key so that the export can
decrypt its secrets. Tests run per backend in file order; the incremental test, which adds runs,
comes last.
"""

from __future__ import annotations

import io
import json
import os
import random
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from airflow_provider_mwaaops.metadata.export import run_export
from airflow_provider_mwaaops.metadata.manifest import (
    MANIFEST_NAME,
    ChecksumMismatch,
    ExportError,
    ManifestCorrupt,
    ManifestMissing,
    SchemaTooNew,
    iter_table,
    latest_export,
    list_exports,
    load_manifest,
    read_table,
    verify_export,
)
from airflow_provider_mwaaops.metadata.sinks import open_sink
from airflow_provider_mwaaops.metadata.sinks.local import LocalSink

from .live_writes import LiveWrites

POPULATE = Path(__file__).with_name("populate_airflow.py")
CANARY_PASSWORD = "canary-pw-7Q2x9ZpKvB"
CANARY_VALUE = "canary-var-Hs81LmQ0tR"
PROBE_DAG = "mwaaops_export_probe"


def populate(airflow, days: list[int], secrets: bool = False) -> None:
    args = [str(POPULATE), ",".join(str(d) for d in days)]
    if secrets:
        args += [CANARY_PASSWORD, CANARY_VALUE]
    airflow.run_python(*args, python=sys.executable, timeout=900)


@contextmanager
def _source_airflow(backend: str, home: Path) -> Iterator:
    from airflow_provider_mwaaops.testing.airflow_env import IsolatedAirflow

    if backend == "sqlite":
        yield IsolatedAirflow(home)
        return
    from airflow_provider_mwaaops.testing import postgres

    try:
        postgres.check_available()
    except postgres.PostgresUnavailable as err:
        if postgres.postgres_required():
            pytest.fail(f"{postgres.REQUIRE_ENV}=1 but {err}")
        pytest.skip(str(err))
    with postgres.migrated_postgres_airflow(home) as airflow:
        yield airflow


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def source_airflow(request, tmp_path_factory):
    """A migrated Airflow with three real DAG runs (Jan 1-3 2024), log rows and canary secrets."""
    with _source_airflow(request.param, tmp_path_factory.mktemp(f"src-{request.param}")) as airflow:
        # Same Fernet key as this process: the exporter decrypts what this Airflow encrypted.
        airflow.environ["AIRFLOW__CORE__FERNET_KEY"] = os.environ["AIRFLOW__CORE__FERNET_KEY"]
        if request.param == "sqlite":
            airflow.migrate()
        populate(airflow, [1, 2, 3], secrets=True)
        airflow.backend = request.param
        yield airflow


def make_source(airflow, **kwargs):
    from airflow_provider_mwaaops.metadata.sources.database import DatabaseSource

    return DatabaseSource(airflow.sql_alchemy_conn, **kwargs)


def db_rows(airflow, sql: str) -> list[tuple]:
    import sqlalchemy as sa

    engine = sa.create_engine(airflow.sql_alchemy_conn, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def checksums(manifest) -> dict[str, str]:
    return {f.path: f.sha256 for t in manifest.tables.values() for f in t.files}


def export(airflow, base: Path, **kwargs):
    source = make_source(airflow, **{k: kwargs.pop(k) for k in ("fast_path",) if k in kwargs})
    try:
        return run_export(source, LocalSink(base), **kwargs)
    finally:
        source.close()


# -- a full export is complete, typed, and equal to the database ---------------------------------
def test_full_export_matches_the_database(source_airflow, tmp_path):
    manifest = export(source_airflow, tmp_path, export_id="full", chunk_rows=4)
    sink = LocalSink(tmp_path)
    assert (tmp_path / "full" / MANIFEST_NAME).exists()
    assert load_manifest(sink, "full").to_json() == manifest.to_json()
    assert verify_export(sink, manifest) == manifest.total_rows

    for name, table in manifest.tables.items():
        (count,) = db_rows(source_airflow, f'SELECT count(*) FROM "{name}"')[0]
        assert table.rows == count, name
        assert sum(f.rows for f in table.files) == count, name

    ti = read_table(sink, manifest, "task_instance")
    exported = {(r["run_id"], r["task_id"], r["state"]) for r in ti.to_pylist()}
    expected = set(db_rows(source_airflow, "SELECT run_id, task_id, state FROM task_instance"))
    assert exported == expected
    assert len(exported) == 9
    assert {s for _, t, s in exported if t == "broken"} == {"failed"}

    runs = read_table(sink, manifest, "dag_run").to_pylist()
    assert sorted(json.loads(r["conf"])["day"] for r in runs) == [1, 2, 3]  # JSON text on both lines
    assert all(json.loads(r["conf"])["text"] == 'a,b "c"' for r in runs)
    assert {r["start_date"].tzinfo is not None for r in runs} == {True}

    # Analysis tables are partitioned by day; dag runs by their logical date.
    run_parts = {f.partition for f in manifest.tables["dag_run"].files}
    assert run_parts == {"2024-01-01", "2024-01-02", "2024-01-03"}
    for f in manifest.tables["dag_run"].files:
        assert f.path.startswith(f"dag_run/dt={f.partition}/part-")
    assert manifest.tables["variable"].files[0].path == "variable/part-00000.parquet"

    # Every file carries the catalog's explicit schema.
    from airflow_provider_mwaaops.metadata.tables import get_table

    for name, table in manifest.tables.items():
        for f in table.files:
            schema = pq.read_schema(tmp_path / "full" / f.path)
            assert schema.remove_metadata() == get_table(name).arrow_schema.remove_metadata(), f.path

    # XCom (optional) carries JSON text as well, on both lines.
    xcom_manifest = export(source_airflow, tmp_path, export_id="xcom", tables=["xcom"])
    values = [json.loads(v) for v in read_table(sink, xcom_manifest, "xcom").column("value").to_pylist()]
    assert 3 in values
    assert any(isinstance(v, dict) and v.get("rows") == 3 for v in values)


def test_postgres_copy_path_and_cursor_path_write_identical_files(source_airflow, tmp_path):
    if source_airflow.backend != "postgres":
        pytest.skip("the COPY fast path is PostgreSQL's")
    fast = export(source_airflow, tmp_path, export_id="fast", chunk_rows=3, fast_path=True)
    slow = export(source_airflow, tmp_path, export_id="slow", chunk_rows=3, fast_path=False)
    assert fast.source["fast_path"] is True
    assert slow.source["fast_path"] is False
    assert checksums(fast) == checksums(slow)
    assert fast.total_rows == slow.total_rows > 0


def test_postgres_streams_restart_in_big_blocks_and_span_statements(
    source_airflow, tmp_path, monkeypatch, caplog
):
    if source_airflow.backend != "postgres":
        pytest.skip("the COPY fast path is PostgreSQL's")
    from airflow_provider_mwaaops.metadata.sources import pg_copy_reader

    reference = export(source_airflow, tmp_path, export_id="ref", chunk_rows=3)
    # Rows over 128 bytes make the stream start again in big blocks from its last whole chunk;
    # two chunks per COPY make every table of more than 6 rows take several statements.
    monkeypatch.setattr(pg_copy_reader, "BLOCK_BYTES", 128)
    monkeypatch.setattr(pg_copy_reader, "CHUNKS_PER_COPY", 2)
    with caplog.at_level("INFO", logger=pg_copy_reader.__name__):
        small = export(source_airflow, tmp_path, export_id="small", chunk_rows=3)
    assert "reading on in larger blocks" in caplog.text
    assert checksums(small) == checksums(reference)


def test_task_instances_are_paged_in_dag_run_order_where_their_key_is_not_time_ordered(
    source_airflow, tmp_path
):
    from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS

    manifest = export(source_airflow, tmp_path, export_id="k", tables=["task_instance"], chunk_rows=2)
    keyset = manifest.tables["task_instance"].keyset
    # Airflow 3's key is a UUID v7 (time-ordered); Airflow 2's is (dag_id, task_id, run_id, ...).
    assert keyset == (["id"] if AIRFLOW_V_3_0_PLUS else ["dag_run.id", "task_id", "map_index"])
    if not AIRFLOW_V_3_0_PLUS:
        rows = read_table(LocalSink(tmp_path), manifest, "task_instance").to_pylist()
        order = [(r["run_id"], r["task_id"], r["map_index"]) for r in rows]
        assert order == sorted(order), order  # runs in order (created in date order), then tasks
        # A chunk never splits a run: 3 runs of 3 task instances with chunks of 2 rows are
        # 3 chunks of one run each (one file each, all on one day).
        files = manifest.tables["task_instance"].files
        assert [f.rows for f in files] == [3, 3, 3]


def test_a_postgres_export_never_imports_pandas(source_airflow, tmp_path):
    if source_airflow.backend != "postgres":
        pytest.skip("the COPY fast path is PostgreSQL's")
    code = (
        "import sys\n"
        "from airflow_provider_mwaaops.metadata.export import run_export\n"
        "from airflow_provider_mwaaops.metadata.sinks.local import LocalSink\n"
        "from airflow_provider_mwaaops.metadata.sources.database import DatabaseSource\n"
        f"m = run_export(DatabaseSource({source_airflow.sql_alchemy_conn!r}), LocalSink({str(tmp_path)!r}),"
        " tables=['dag_run', 'task_instance', 'log', 'variable', 'connection'], chunk_rows=2)\n"
        "assert m.total_rows > 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pandas'))\n"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # The last line: masking secrets imports Airflow, whose log lines may go to stdout first.
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout  # pandas would cost ~40 MB of RSS


# -- must-show 3: killed at a random chunk, rerun, identical -------------------------------------
class FailingSink(LocalSink):
    """Dies like a killed worker when it is asked to write its ``fail_at``-th data file."""

    def __init__(self, base: Path, fail_at: int) -> None:
        super().__init__(base)
        self.fail_at = fail_at
        self.writes = 0
        self.lock = threading.Lock()  # the writer uploads a chunk's files from several threads

    def write_bytes(self, path: str, data: bytes) -> None:
        if not path.endswith(MANIFEST_NAME):
            with self.lock:
                if self.writes >= self.fail_at:
                    raise KeyboardInterrupt(f"killed while writing {path}")
                self.writes += 1
        super().write_bytes(path, data)


def test_export_killed_at_a_random_chunk_and_rerun_is_identical(source_airflow, tmp_path):
    reference = export(source_airflow, tmp_path / "a", export_id="x", chunk_rows=2)
    files = sum(len(t.files) for t in reference.tables.values())
    seed = random.randrange(1 << 30)
    fail_at = random.Random(seed).randrange(files)

    sink = FailingSink(tmp_path / "b", fail_at)
    source = make_source(source_airflow)
    with pytest.raises(KeyboardInterrupt):
        run_export(source, sink, export_id="x", chunk_rows=2)
    assert sink.writes == fail_at, f"seed {seed}"
    assert not (tmp_path / "b" / "x" / MANIFEST_NAME).exists()
    with pytest.raises(ManifestMissing, match=r"never\s+completed"):
        load_manifest(LocalSink(tmp_path / "b"), "x")
    assert list_exports(LocalSink(tmp_path / "b")) == []

    rerun = run_export(source, LocalSink(tmp_path / "b"), export_id="x", chunk_rows=2)
    source.close()
    assert checksums(rerun) == checksums(reference), f"seed {seed}, failed at file {fail_at}"
    assert verify_export(LocalSink(tmp_path / "b"), rerun) == reference.total_rows
    with pytest.raises(ExportError, match="already complete"):
        export(source_airflow, tmp_path / "b", export_id="x")


def test_bad_exports_are_refused_with_the_file_named(source_airflow, tmp_path):
    manifest = export(source_airflow, tmp_path, export_id="e1", chunk_rows=5)
    sink = LocalSink(tmp_path)
    victim = manifest.tables["task_instance"].files[0]
    path = tmp_path / "e1" / victim.path
    original = path.read_bytes()

    corrupted = bytearray(original)
    corrupted[len(corrupted) // 2] ^= 0xFF
    path.write_bytes(bytes(corrupted))
    with pytest.raises(ChecksumMismatch, match=rf"table task_instance: file .*{victim.path}.* checksum"):
        verify_export(sink, load_manifest(sink, "e1"))
    with pytest.raises(ChecksumMismatch, match="task_instance"):
        list(iter_table(sink, manifest, "task_instance"))

    path.unlink()
    with pytest.raises(ChecksumMismatch, match=rf"{victim.path} is missing"):
        verify_export(sink, manifest)
    path.write_bytes(original)
    verify_export(sink, manifest)

    manifest_file = tmp_path / "e1" / MANIFEST_NAME
    good = manifest_file.read_bytes()
    manifest_file.write_bytes(good[: len(good) // 2])
    with pytest.raises(ManifestCorrupt, match=r"manifest\.json: not valid JSON"):
        load_manifest(sink, "e1")
    newer = json.loads(good)
    newer["schema_version"] += 1
    manifest_file.write_text(json.dumps(newer))
    with pytest.raises(SchemaTooNew, match="upgrade"):
        load_manifest(sink, "e1")
    manifest_file.write_bytes(good)
    with pytest.raises(ManifestMissing, match="nope"):
        load_manifest(sink, "nope")


# -- must-show 4: no plain-text secret in any exported byte ---------------------------------------
def _all_exported_text(base: Path) -> tuple[bytes, str]:
    """Every byte written, plus every value decoded from every Parquet file (zstd hides bytes)."""
    raw = b""
    decoded = []
    for file in sorted(base.rglob("*")):
        if not file.is_file():
            continue
        data = file.read_bytes()
        raw += data
        if file.suffix == ".parquet":
            decoded.append(json.dumps(pq.read_table(io.BytesIO(data)).to_pylist(), default=repr))
    return raw, "\n".join(decoded)


@pytest.mark.parametrize("mode", ["exclude", "fernet"])
def test_canary_secrets_never_appear_in_plain_text(source_airflow, tmp_path, mode):
    from cryptography.fernet import Fernet

    from airflow_provider_mwaaops.metadata.secrets import SecretCipher, cipher_for_manifest

    # The canaries are really in the source (one variable even stored unencrypted).
    plain = db_rows(source_airflow, "SELECT val FROM variable WHERE key = 'canary_plain'")
    assert plain == [(CANARY_VALUE + "-plain",)]

    key = Fernet.generate_key()
    cipher = (
        SecretCipher("fernet", key, {"key_ref": "variable:mwaaops_export_key"}) if mode == "fernet" else None
    )
    manifest = export(source_airflow, tmp_path, export_id="s", cipher=cipher, tables=None)
    raw, decoded = _all_exported_text(tmp_path)
    for canary in (CANARY_PASSWORD, CANARY_VALUE):
        assert canary.encode() not in raw
        assert canary not in decoded
    assert key.decode() not in decoded
    assert key not in raw

    sink = LocalSink(tmp_path)
    variables = {r["key"]: r["val"] for r in read_table(sink, manifest, "variable").to_pylist()}
    conns = {r["conn_id"]: r for r in read_table(sink, manifest, "connection").to_pylist()}
    assert manifest.secrets["mode"] == mode
    if mode == "exclude":
        assert variables["canary_var"] is None
        assert conns["canary_conn"]["password"] is None
        assert conns["canary_conn"]["login"] == "etl"  # non-secret columns are kept
        return
    # Encrypted with the export key: restorable by whoever holds it, and only by them.
    os.environ["AIRFLOW_VAR_MWAAOPS_EXPORT_KEY"] = key.decode()
    try:
        restore_cipher = cipher_for_manifest(manifest.secrets)
    finally:
        del os.environ["AIRFLOW_VAR_MWAAOPS_EXPORT_KEY"]
    assert restore_cipher is not None
    assert restore_cipher.decrypt(variables["canary_var"]) == CANARY_VALUE
    assert restore_cipher.decrypt(variables["canary_plain"]) == CANARY_VALUE + "-plain"
    assert restore_cipher.decrypt(conns["canary_conn"]["password"]) == CANARY_PASSWORD
    assert json.loads(restore_cipher.decrypt(conns["canary_conn"]["extra"])) == {"api_token": CANARY_PASSWORD}


def test_the_masker_reads_secrets_without_reflecting_and_as_the_general_read_does(source_airflow):
    """The masker's cheap read (one query, no reflection) decrypts what the general read does."""
    from airflow_provider_mwaaops.metadata.sources.base import MetadataSource
    from airflow_provider_mwaaops.metadata.tables import get_table

    stored = db_rows(source_airflow, "SELECT is_encrypted FROM variable WHERE key = 'canary_var'")
    assert stored
    assert all(flag for (flag,) in stored)  # Airflow stored it encrypted
    source = make_source(source_airflow)
    try:
        for table in ("connection", "variable"):
            spec = get_table(table)
            cheap = list(source.secret_rows(spec, chunk_rows=3))
            assert table not in source.schema._tables  # answered without reflecting the table
            general = list(MetadataSource.secret_rows(source, spec, chunk_rows=3))
            assert cheap
            assert sorted(map(repr, cheap)) == sorted(map(repr, general))
        values = {row["val"] for row in source.secret_rows(get_table("variable"), 3)}
        assert {CANARY_VALUE, CANARY_VALUE + "-plain"} <= values
    finally:
        source.close()


def test_secrets_of_a_table_without_the_expected_columns_are_read_the_general_way(tmp_path):
    import sqlalchemy as sa

    from airflow_provider_mwaaops.metadata.sources.database import DatabaseSource
    from airflow_provider_mwaaops.metadata.tables import get_table

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # a variable table without Airflow's is_encrypted flag
        conn.execute(sa.text('CREATE TABLE variable (id INTEGER PRIMARY KEY, "key" TEXT, val TEXT)'))
        conn.execute(sa.text("INSERT INTO variable (\"key\", val) VALUES ('k', 'kept-in-plain-text')"))
    engine.dispose()
    source = DatabaseSource(url)
    try:
        assert list(source.secret_rows(get_table("variable"), 10)) == [{"val": "kept-in-plain-text"}]
        assert list(source.secret_rows(get_table("connection"), 10)) == []  # no such table
    finally:
        source.close()


# -- one moment: rows written while the export runs never split a backup ------------------------
@pytest.mark.parametrize("fast_path", [True, False], ids=["copy", "cursor"])
def test_an_export_is_one_moment_of_the_database(source_airflow, tmp_path, fast_path):
    """What the drill example met on Airflow 3: a run retried while the backup ran left history
    rows whose task instance the backup did not hold, and the restore refused the backup."""
    if source_airflow.backend == "sqlite" and fast_path:
        pytest.skip("SQLite has one read path")
    tables = ["dag_run", "task_instance", "task_instance_history", "log"]
    before = {name: db_rows(source_airflow, f"SELECT count(*) FROM {name}")[0][0] for name in tables}
    states = set(db_rows(source_airflow, "SELECT run_id, task_id, state, try_number FROM task_instance"))
    writes = LiveWrites(source_airflow.sql_alchemy_conn, PROBE_DAG, failing_task="broken")
    done: list[str] = []

    def between_reads(table: str, _chunk: int, _rows: int) -> None:
        if table == "dag_run" and not done:  # task instances, their history and log come later
            done.append(table)
            writes.new_run("manual__while_exporting_1", days=300)
        if table == "task_instance" and done == ["dag_run"]:  # its history is read next
            done.append(table)
            writes.new_run("manual__while_exporting_2", days=301)
            writes.retry()

    try:
        manifest = export(
            source_airflow,
            tmp_path,
            export_id="moment",
            chunk_rows=2,
            fast_path=fast_path,
            tables=tables,
            progress=between_reads,
        )
    finally:
        writes.undo()
    assert done == ["dag_run", "task_instance"]
    assert manifest.source["snapshot"]
    sink = LocalSink(tmp_path)
    for name, rows in before.items():
        assert manifest.tables[name].rows == rows, f"{name}: rows written during the export leaked in"
    tis = read_table(sink, manifest, "task_instance").to_pylist()
    assert {(r["run_id"], r["task_id"], r["state"], r["try_number"]) for r in tis} == states
    runs = {r["run_id"] for r in read_table(sink, manifest, "dag_run").to_pylist()}
    assert {r["run_id"] for r in tis} <= runs
    ti_keys = {(r["dag_id"], r["task_id"], r["run_id"], r["map_index"]) for r in tis}
    history = read_table(sink, manifest, "task_instance_history").to_pylist()
    assert {(r["dag_id"], r["task_id"], r["run_id"], r["map_index"]) for r in history} <= ti_keys


def test_a_server_that_cannot_export_a_snapshot_is_read_table_by_table_with_a_warning(
    source_airflow, tmp_path, monkeypatch, caplog
):
    if source_airflow.backend != "postgres":
        pytest.skip("snapshot export is PostgreSQL's")
    from airflow_provider_mwaaops.metadata.sources import snapshot

    def refuse(_connection):
        raise RuntimeError("cannot export a snapshot from a standby")

    monkeypatch.setattr(snapshot, "_export_snapshot", refuse)
    with caplog.at_level("WARNING", logger=snapshot.__name__):
        manifest = export(source_airflow, tmp_path, export_id="nosnap", tables=["dag_run", "task_instance"])
    assert manifest.source["snapshot"] is None
    assert "cannot export a snapshot from a standby" in caplog.text
    assert (
        manifest.tables["task_instance"].rows
        == db_rows(source_airflow, "SELECT count(*) FROM task_instance")[0][0]
    )


# -- incremental: the previous manifest's watermarks bound the next export -------------------------
def test_incremental_exports_never_duplicate_rows(source_airflow, tmp_path):
    sink = LocalSink(tmp_path)
    full = export(source_airflow, tmp_path, export_id="i0", mode="incremental")  # nothing before: full
    assert full.mode == "full"
    assert full.previous_export_id is None
    again = export(source_airflow, tmp_path, export_id="i1", mode="incremental")
    assert again.mode == "incremental"
    assert again.previous_export_id == "i0"
    for name in ("dag_run", "task_instance", "log", "task_instance_history"):
        if name in again.tables:
            assert again.tables[name].rows == 0, name
            assert again.tables[name].watermark_low == full.tables[name].watermark_high

    populate(source_airflow, [4])  # one more run: 3 task instances, 1 dag run, 1 log row at least
    new = export(source_airflow, tmp_path, export_id="i2", mode="incremental")
    assert new.previous_export_id == "i1"
    new_runs = read_table(sink, new, "dag_run").to_pylist()
    assert [json.loads(r["conf"])["day"] for r in new_runs] == [4]
    new_tis = read_table(sink, new, "task_instance").to_pylist()
    assert {r["run_id"] for r in new_tis} == {new_runs[0]["run_id"]}
    assert len(new_tis) == 3
    assert any(r["event"] == "mwaaops_probe" for r in read_table(sink, new, "log").to_pylist())

    # The chain, replayed in order by natural key, equals the database; no export repeats a row.
    for name, key in (
        ("dag_run", ("dag_id", "run_id")),
        ("task_instance", ("dag_id", "task_id", "run_id", "map_index")),
    ):
        seen: dict = {}
        for manifest in (full, again, new):
            rows = read_table(sink, manifest, name).to_pylist()
            keys = [tuple(r[k] for k in key) for r in rows]
            assert len(keys) == len(set(keys)), f"{name} repeats a row within {manifest.export_id}"
            seen.update(zip(keys, rows, strict=True))
        db = db_rows(source_airflow, f"SELECT {', '.join(key)} FROM {name}")
        assert set(seen) == set(db), name
    log_ids = [r["id"] for m in (full, again, new) for r in read_table(sink, m, "log").to_pylist()]
    assert len(log_ids) == len(set(log_ids)) == db_rows(source_airflow, "SELECT count(*) FROM log")[0][0]
    assert latest_export(sink).export_id == "i2"


# -- S3 sink on the embedded AWS -------------------------------------------------------------------
def test_export_to_s3_and_verify(source_airflow, aws_emulator, tmp_path):
    if source_airflow.backend != "sqlite":
        pytest.skip("the sink does not depend on the source backend")
    aws_emulator.client("s3").create_bucket(Bucket="exports")
    sink = open_sink("s3://exports/airflow/prod", aws_conn_id="aws_default")
    source = make_source(source_airflow)
    manifest = run_export(source, sink, export_id="s3x", chunk_rows=4)
    local = export(source_airflow, tmp_path, export_id="s3x", chunk_rows=4)
    assert checksums(manifest) == checksums(local)
    keys = [o["Key"] for o in aws_emulator.client("s3").list_objects_v2(Bucket="exports")["Contents"]]
    assert "airflow/prod/s3x/manifest.json" in keys
    assert any(k.startswith("airflow/prod/s3x/dag_run/dt=2024-01-0") for k in keys)
    assert list_exports(sink) == ["s3x"]
    assert verify_export(sink, load_manifest(sink, "s3x")) == manifest.total_rows


def test_a_task_without_the_metadata_database_is_told_what_to_give(monkeypatch):
    """Airflow 3 hides ``sql_alchemy_conn`` from task processes behind a placeholder URL."""
    import airflow_provider_mwaaops.compat  # noqa: F401  (Airflow is set up before a task starts)
    from airflow_provider_mwaaops.metadata.sources.database import DatabaseSource, DatabaseSourceError

    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "airflow-db-not-allowed:///")
    with pytest.raises(DatabaseSourceError, match="give db_conn_id or sql_alchemy_url"):
        DatabaseSource()
