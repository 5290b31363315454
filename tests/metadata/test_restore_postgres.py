"""Must-show 1 on MWAA's backend: PostgreSQL source with real runs -> export -> restore into a
freshly migrated PostgreSQL database -> every exported table equal row by row -> a second restore
changes nothing. Runs on whichever Airflow line runs the tests (the must-show is 2.11).

Skips without a PostgreSQL server, fails instead under MWAAOPS_REQUIRE_POSTGRES=1 (CI).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from airflow_provider_mwaaops.metadata.restore import RestoreOptions, restore_metadata
from airflow_provider_mwaaops.metadata.restore.compare import compare_exports
from airflow_provider_mwaaops.metadata.secrets import SecretCipher
from airflow_provider_mwaaops.metadata.sinks import open_sink
from airflow_provider_mwaaops.testing.airflow_env import IsolatedAirflow

POPULATE = str(Path(__file__).with_name("populate_source.py"))
FERNET = "AIRFLOW__CORE__FERNET_KEY"


def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
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


def scalar(url: str, sql: str) -> Any:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


@pytest.mark.timeout(900)
def test_postgres_round_trip_equal_row_by_row_and_idempotent(postgres_airflow, postgres_url, tmp_path):
    key = Fernet.generate_key().decode()
    exports = tmp_path / "exports"
    postgres_airflow.run_python(POPULATE, "populate", str(exports), key, "backup-1", python=sys.executable)

    # the target: an empty PostgreSQL database, migrated by the real `airflow db migrate`
    target = IsolatedAirflow(tmp_path / "target", sql_alchemy_conn=postgres_url).migrate()
    options = RestoreOptions(
        export_key=key,
        target_fernet_key=target.environ[FERNET],
        source_fernet_key=postgres_airflow.environ[FERNET],
        strict=True,
    )
    sink = open_sink(str(exports))
    report = restore_metadata(sink, "backup-1", postgres_url, options)
    assert report.tables["task_instance"].inserted == 5
    assert report.tables["dag_run"].inserted == 3
    assert report.tables["job"].inserted == 3
    assert report.tables["trigger"].inserted == 1

    again = tmp_path / "again"
    target.run_python(POPULATE, "export", str(again), key, "after-restore", python=sys.executable)
    cipher = SecretCipher("fernet", key.encode())
    result = compare_exports(
        sink,
        "backup-1",
        open_sink(str(again)),
        "after-restore",
        cipher_a=cipher,
        cipher_b=cipher,
        fernet_key_a=postgres_airflow.environ[FERNET],
        fernet_key_b=target.environ[FERNET],
    )
    assert result.equal, result.describe()
    assert {"dag_run", "task_instance", "job", "log", "trigger", "xcom", "variable", "connection"} <= {
        name for name, table in result.tables.items() if table.rows_a
    }

    before = dump(postgres_url)
    second = restore_metadata(
        sink, "backup-1", postgres_url, RestoreOptions(**{**vars(options), "strict": False})
    )
    assert second.changed_rows == 0, second.summary()
    assert dump(postgres_url) == before

    # Airflow's own next rows never collide with restored ids: the sequences were moved past them
    highest_job = scalar(postgres_url, "SELECT max(id) FROM job")
    new_job = scalar(
        postgres_url,
        "INSERT INTO job (job_type, state, start_date) VALUES ('SchedulerJob', 'running', now())"
        " RETURNING id",
    )
    assert new_job > highest_job
    new_log = scalar(postgres_url, "INSERT INTO log (dttm, event) VALUES (now(), 'after') RETURNING id")
    assert new_log > scalar(postgres_url, "SELECT max(id) FROM log WHERE event <> 'after'")
