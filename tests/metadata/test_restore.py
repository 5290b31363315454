"""Restore into freshly migrated SQLite metadata databases, on whichever Airflow line runs the tests.

The source is a real Airflow with history from dag.test() (see populate_source.py), exported with
the real exporter in its own process. Equality is checked independently of the restore code: the
restored database is exported again and compared row by row with the original export.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from airflow_provider_mwaaops.metadata.restore import RestoreError, RestoreOptions, restore_metadata
from airflow_provider_mwaaops.metadata.restore.compare import compare_exports
from airflow_provider_mwaaops.metadata.secrets import SecretCipher
from airflow_provider_mwaaops.metadata.sinks import open_sink
from airflow_provider_mwaaops.testing.airflow_env import IsolatedAirflow

POPULATE = str(Path(__file__).with_name("populate_source.py"))
#: Real Airflow processes (history, exports, migrations) on a busy 2-core machine take minutes.
pytestmark = pytest.mark.timeout(900)
FERNET = "AIRFLOW__CORE__FERNET_KEY"


class Source:
    def __init__(self, airflow: IsolatedAirflow, exports: Path, key: str) -> None:
        self.airflow = airflow
        self.exports = exports
        self.key = key

    @property
    def sink(self) -> Any:
        return open_sink(str(self.exports))

    @property
    def fernet_key(self) -> str:
        return self.airflow.environ[FERNET]

    def options(self, target: IsolatedAirflow, **overrides: Any) -> RestoreOptions:
        values: dict[str, Any] = {
            "export_key": self.key,
            "target_fernet_key": target.environ[FERNET],
            "source_fernet_key": self.fernet_key,
        }
        values.update(overrides)
        return RestoreOptions(**values)


def export_database(
    airflow: IsolatedAirflow, exports: Path, key: str, export_id: str, mode: str = "fernet"
) -> None:
    airflow.run_python(POPULATE, "export", str(exports), key, export_id, mode, python=sys.executable)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    base = tmp_path_factory.mktemp("restore-source")
    airflow = IsolatedAirflow(base / "home").migrate()
    key = Fernet.generate_key().decode()
    airflow.run_python(POPULATE, "populate", str(base / "exports"), key, "backup-1")
    return Source(airflow, base / "exports", key)


@pytest.fixture
def target(tmp_path: Path) -> IsolatedAirflow:
    return IsolatedAirflow(tmp_path / "target").migrate()


def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, for "nothing was written" checks."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            out = {}
            for name in sa.inspect(conn).get_table_names():
                rows = conn.execute(sa.text(f'SELECT * FROM "{name}"')).fetchall()
                out[name] = sorted(
                    tuple(repr(bytes(v) if isinstance(v, memoryview) else v) for v in row) for row in rows
                )
            return out
    finally:
        engine.dispose()


def query(url: str, sql: str, **params: Any) -> list[Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).fetchall()
    finally:
        engine.dispose()


def assert_round_trip(source: Source, target: IsolatedAirflow, tmp_path: Path) -> None:
    """Export the restored database and compare it row by row with the original export.

    The second export runs in the target Airflow's own process, which decrypts connections and
    variables with the target's Fernet key: equal plain text proves the target can read them.
    """
    again = tmp_path / "again"
    export_database(target, again, source.key, "after-restore")
    cipher = SecretCipher("fernet", source.key.encode())
    result = compare_exports(
        source.sink,
        "backup-1",
        open_sink(str(again)),
        "after-restore",
        cipher_a=cipher,
        cipher_b=cipher,
        fernet_key_a=source.fernet_key,
        fernet_key_b=target.environ[FERNET],
    )
    assert result.equal, result.describe()
    compared = {name for name, table in result.tables.items() if table.rows_a}
    assert {"dag_run", "task_instance", "job", "log", "trigger", "variable", "connection", "xcom"} <= compared


# -- round trip -------------------------------------------------------------------------------------
def test_round_trip_into_fresh_database_then_second_restore_changes_nothing(source, target, tmp_path):
    report = restore_metadata(source.sink, "backup-1", target.sql_alchemy_conn, source.options(target))
    assert report.changed_rows > 0
    assert report.tables["dag_run"].inserted == 3
    assert report.verified_files > 0
    assert_round_trip(source, target, tmp_path)

    before = dump(target.sql_alchemy_conn)
    again = restore_metadata(source.sink, "backup-1", target.sql_alchemy_conn, source.options(target))
    assert again.changed_rows == 0, again.summary()
    assert all(stats.inserted == stats.updated == 0 for stats in again.tables.values())
    assert dump(target.sql_alchemy_conn) == before


# -- dry run ----------------------------------------------------------------------------------------
def test_dry_run_reports_per_table_and_writes_nothing(source, target):
    before = dump(target.sql_alchemy_conn)
    report = restore_metadata(
        source.sink, "backup-1", target.sql_alchemy_conn, source.options(target, dry_run=True)
    )
    assert report.dry_run
    assert report.tables["task_instance"].inserted == 5
    assert report.tables["xcom"].inserted > 0
    assert "would change" in report.summary()
    assert dump(target.sql_alchemy_conn) == before

    real = restore_metadata(source.sink, "backup-1", target.sql_alchemy_conn, source.options(target))
    planned = {name: (s.inserted, s.updated) for name, s in report.tables.items()}
    assert planned == {name: (s.inserted, s.updated) for name, s in real.tables.items()}


# -- surrogate ids ----------------------------------------------------------------------------------
def test_colliding_job_trigger_and_log_ids_are_remapped_consistently(source, target, tmp_path):
    url = target.sql_alchemy_conn
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the new environment's own scheduler already wrote rows 1..3
        for _ in range(3):
            conn.execute(
                sa.text(
                    "INSERT INTO job (job_type, state, start_date, hostname) "
                    "VALUES ('SchedulerJob', 'running', '2030-01-01 00:00:00', 'new-env')"
                )
            )
        conn.execute(sa.text("INSERT INTO log (dttm, event) VALUES ('2030-01-01 00:00:00', 'new-env')"))
    engine.dispose()

    report = restore_metadata(source.sink, "backup-1", url, source.options(target))
    assert report.tables["job"].ids_remapped == 3
    assert report.tables["log"].ids_remapped >= 1

    # every reference follows its job: the restored scheduler job is the one with the old start date
    rows = query(url, "SELECT j.job_type, j.hostname FROM dag_run d JOIN job j ON j.id = d.creating_job_id")
    assert rows
    assert {tuple(r) for r in rows} == {("SchedulerJob", "worker-1")}
    rows = query(url, 'SELECT j.job_type FROM "trigger" t JOIN job j ON j.id = t.triggerer_id')
    assert [tuple(r) for r in rows] == [("TriggererJob",)]
    rows = query(url, 'SELECT count(*) FROM task_instance ti JOIN "trigger" t ON t.id = ti.trigger_id')
    assert rows[0][0] == 1
    assert query(url, "SELECT count(*) FROM job WHERE hostname = 'new-env'")[0][0] == 3

    # ids differ from the export, so compare without them; a second restore still changes nothing
    again = tmp_path / "again"
    export_database(target, again, source.key, "after-restore")
    cipher = SecretCipher("fernet", source.key.encode())
    ids = ["id", "creating_job_id", "queued_by_job_id", "job_id", "triggerer_id", "trigger_id"]
    result = compare_exports(
        source.sink,
        "backup-1",
        open_sink(str(again)),
        "after-restore",
        cipher_a=cipher,
        cipher_b=cipher,
        fernet_key_a=source.fernet_key,
        fernet_key_b=target.environ[FERNET],
        tables=["dag_run", "task_instance", "trigger", "variable", "connection", "xcom", "dag"],
        ignore_columns={
            name: ids for name in ("dag_run", "task_instance", "trigger", "variable", "connection")
        },
    )
    assert result.equal, result.describe()
    assert restore_metadata(source.sink, "backup-1", url, source.options(target)).changed_rows == 0


# -- re-activation ----------------------------------------------------------------------------------
def test_dags_active_at_backup_are_unpaused_paused_ones_stay_paused(source, target):
    url = target.sql_alchemy_conn
    first = restore_metadata(source.sink, "backup-1", url, source.options(target))
    assert first.reactivated_dags == []  # inserted as they were: nothing to re-activate
    # the new environment's DAG processor parses the files again, paused at creation
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE dag SET is_paused = :p"), {"p": True})
    engine.dispose()
    report = restore_metadata(source.sink, "backup-1", url, source.options(target))
    assert report.reactivated_dags == ["restore_source_ok"]
    paused = dict(query(url, "SELECT dag_id, is_paused FROM dag"))
    assert not paused["restore_source_ok"]
    assert paused["restore_source_failing"]


# -- secrets ----------------------------------------------------------------------------------------
def test_export_without_secrets_restores_connections_without_passwords_and_reports(source, tmp_path, target):
    plain = tmp_path / "plain"
    export_database(source.airflow, plain, source.key, "no-secrets", mode="exclude")
    report = restore_metadata(
        open_sink(str(plain)), "no-secrets", target.sql_alchemy_conn, source.options(target, export_key=None)
    )
    assert report.tables["connection"].inserted == 1
    assert query(target.sql_alchemy_conn, "SELECT password FROM connection")[0][0] is None
    assert report.tables["variable"].inserted == 0
    assert sum(report.tables["variable"].skipped.values()) == 2
    assert any("variable.val" in note for note in report.secrets)


def test_trigger_kwargs_from_another_fernet_key_need_the_source_key(source, target):
    url = target.sql_alchemy_conn
    report = restore_metadata(source.sink, "backup-1", url, source.options(target, source_fernet_key=None))
    assert report.tables["trigger"].inserted == 0
    assert "another Fernet key" in next(iter(report.tables["trigger"].skipped))
    # the deferred task instance no longer points at a trigger that was not restored
    assert report.tables["task_instance"].references_cleared == {"trigger_id": 1}
    assert query(url, "SELECT count(*) FROM task_instance WHERE trigger_id IS NOT NULL")[0][0] == 0

    restore_metadata(source.sink, "backup-1", url, source.options(target))
    token = query(url, 'SELECT kwargs FROM "trigger"')[0][0]
    decoded = json.loads(Fernet(target.environ[FERNET].encode()).decrypt(token.encode()))
    assert "moment" in json.dumps(decoded)


def test_wrong_export_key_is_refused_before_any_write(source, target):
    before = dump(target.sql_alchemy_conn)
    with pytest.raises(RestoreError, match="does not match the key"):
        restore_metadata(
            source.sink,
            "backup-1",
            target.sql_alchemy_conn,
            source.options(target, export_key=Fernet.generate_key().decode()),
        )
    assert dump(target.sql_alchemy_conn) == before


# -- bad input: refused before any write ----------------------------------------------------------------
@pytest.fixture
def broken_copy(source: Source, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(source.exports, copy)
    return copy


def test_corrupted_file_is_refused_before_any_write(source, target, broken_copy):
    manifest = json.loads((broken_copy / "backup-1" / "manifest.json").read_text())
    last = manifest["tables"]["xcom"]["files"][-1]["path"]  # restored last: earlier tables must not land
    path = broken_copy / "backup-1" / last
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    before = dump(target.sql_alchemy_conn)
    with pytest.raises(RestoreError, match="checksum") as caught:
        restore_metadata(
            open_sink(str(broken_copy)), "backup-1", target.sql_alchemy_conn, source.options(target)
        )
    assert last in str(caught.value)
    assert "xcom" in str(caught.value)
    assert dump(target.sql_alchemy_conn) == before


def test_missing_manifest_is_refused(source, target, broken_copy):
    (broken_copy / "backup-1" / "manifest.json").unlink()
    with pytest.raises(RestoreError, match="no manifest"):
        restore_metadata(
            open_sink(str(broken_copy)), "backup-1", target.sql_alchemy_conn, source.options(target)
        )


def test_corrupt_manifest_is_refused(source, target, broken_copy):
    (broken_copy / "backup-1" / "manifest.json").write_text("{not json")
    with pytest.raises(RestoreError, match="not valid JSON"):
        restore_metadata(
            open_sink(str(broken_copy)), "backup-1", target.sql_alchemy_conn, source.options(target)
        )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("schema_version", 99, "export schema version 99"), ("airflow_version", "9.0.0", "Airflow 9.0.0")],
)
def test_newer_schema_is_refused_before_any_write(source, target, broken_copy, field, value, message):
    path = broken_copy / "backup-1" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest[field] = value
    path.write_text(json.dumps(manifest))
    before = dump(target.sql_alchemy_conn)
    with pytest.raises(RestoreError, match=message):
        restore_metadata(
            open_sink(str(broken_copy)), "backup-1", target.sql_alchemy_conn, source.options(target)
        )
    assert dump(target.sql_alchemy_conn) == before


def test_unmigrated_target_is_refused(source, tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(RestoreError, match="airflow db migrate"):
        restore_metadata(
            source.sink, "backup-1", url, RestoreOptions(export_key=source.key, target_fernet_key="")
        )


def test_strict_restore_refuses_a_target_with_history(source, target):
    url = target.sql_alchemy_conn
    restore_metadata(source.sink, "backup-1", url, source.options(target, strict=True))  # empty: fine
    before = dump(url)
    with pytest.raises(RestoreError, match="strict restore refused: the target is not empty"):
        restore_metadata(source.sink, "backup-1", url, source.options(target, strict=True))
    assert dump(url) == before


def test_failure_while_writing_rolls_everything_back(source, target, monkeypatch):
    from airflow_provider_mwaaops.metadata.restore import plan

    original = plan.TableRestorer.process

    def failing(self, rows):
        if self.rule.name == "xcom":
            raise sa.exc.OperationalError("INSERT", {}, Exception("disk full"))
        return original(self, rows)

    monkeypatch.setattr(plan.TableRestorer, "process", failing)
    before = dump(target.sql_alchemy_conn)
    with pytest.raises(RestoreError, match=r"disk full.*table xcom"):
        restore_metadata(source.sink, "backup-1", target.sql_alchemy_conn, source.options(target))
    assert dump(target.sql_alchemy_conn) == before


def test_per_table_transactions_keep_finished_tables_and_say_so(source, target, monkeypatch):
    from airflow_provider_mwaaops.metadata.restore import plan

    original = plan.TableRestorer.process

    def failing(self, rows):
        if self.rule.name == "xcom":
            raise ValueError("bad value")
        return original(self, rows)

    monkeypatch.setattr(plan.TableRestorer, "process", failing)
    with pytest.raises(
        RestoreError, match=r"committed before the failure: .*dag_run.*rerunning the restore is safe"
    ):
        restore_metadata(
            source.sink, "backup-1", target.sql_alchemy_conn, source.options(target, transaction="table")
        )
    assert query(target.sql_alchemy_conn, "SELECT count(*) FROM xcom")[0][0] == 0
    monkeypatch.setattr(plan.TableRestorer, "process", original)
    report = restore_metadata(source.sink, "backup-1", target.sql_alchemy_conn, source.options(target))
    assert report.tables["xcom"].inserted > 0
    assert report.tables["dag_run"].inserted == 0


# -- incremental chain ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def grown(source: Source) -> Source:
    """An hour later: one more run and a newer scheduler heartbeat, exported incrementally."""
    source.airflow.run_python(POPULATE, "grow", str(source.exports), source.key, "backup-2")
    return source


def test_incremental_chain_restores_to_the_latest_state(grown, target, tmp_path):
    manifest = json.loads((grown.exports / "backup-2" / "manifest.json").read_text())
    assert manifest["mode"] == "incremental"
    assert manifest["previous_export_id"] == "backup-1"
    report = restore_metadata(grown.sink, "backup-2", target.sql_alchemy_conn, grown.options(target))
    assert report.export_ids == ["backup-1", "backup-2"]
    # the scheduler job is in both exports (its heartbeat moved): one row, the newer heartbeat
    assert (
        query(target.sql_alchemy_conn, "SELECT count(*) FROM job WHERE job_type = 'SchedulerJob'")[0][0] == 1
    )

    again = tmp_path / "again"
    export_database(target, again, grown.key, "after-restore")
    cipher = SecretCipher("fernet", grown.key.encode())
    result = compare_exports(
        grown.sink,
        "backup-2-full",
        open_sink(str(again)),
        "after-restore",
        cipher_a=cipher,
        cipher_b=cipher,
        fernet_key_a=grown.fernet_key,
        fernet_key_b=target.environ[FERNET],
    )
    assert result.equal, result.describe()
    assert result.tables["dag_run"].rows_a == 4
    second = restore_metadata(grown.sink, "backup-2", target.sql_alchemy_conn, grown.options(target))
    assert second.changed_rows == 0, second.summary()


def test_trigger_kwargs_airflow_kept_in_plain_json_are_restored_and_compared(source, tmp_path):
    """Airflow stores some triggers' kwargs unencrypted and reads them so (``Trigger._decrypt_kwargs``:
    a value starting with ``{`` is plain JSON): the restore keeps them, whatever the Fernet keys."""
    plain_source = IsolatedAirflow(tmp_path / "plain-source").migrate()
    restore_metadata(source.sink, "backup-1", plain_source.sql_alchemy_conn, source.options(plain_source))
    fernet = Fernet(plain_source.environ[FERNET].encode())
    engine = sa.create_engine(plain_source.sql_alchemy_conn)
    with engine.begin() as conn:
        for trigger_id, token in conn.execute(sa.text('SELECT id, kwargs FROM "trigger"')).fetchall():
            plain = fernet.decrypt(token.encode()).decode()
            update = sa.text('UPDATE "trigger" SET kwargs = :kwargs WHERE id = :id')
            conn.execute(update, {"kwargs": plain, "id": trigger_id})
    engine.dispose()
    exports = tmp_path / "plain-exports"
    export_database(plain_source, exports, source.key, "plain-kwargs")

    target = IsolatedAirflow(tmp_path / "target").migrate()
    options = RestoreOptions(export_key=source.key, target_fernet_key=target.environ[FERNET])
    report = restore_metadata(open_sink(str(exports)), "plain-kwargs", target.sql_alchemy_conn, options)
    assert report.tables["trigger"].inserted == 1, report.tables["trigger"]
    assert not report.tables["trigger"].skipped

    again = tmp_path / "again"
    export_database(target, again, source.key, "after-restore")
    cipher = SecretCipher("fernet", source.key.encode())
    result = compare_exports(
        open_sink(str(exports)),
        "plain-kwargs",
        open_sink(str(again)),
        "after-restore",
        cipher_a=cipher,
        cipher_b=cipher,
        fernet_key_a=plain_source.environ[FERNET],
        fernet_key_b=target.environ[FERNET],
        restore_report=report,
    )
    assert result.equal, result.describe()
