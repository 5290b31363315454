"""Give an isolated Airflow real history, then export it (run as a script in that Airflow's env).

    python populate_source.py populate|grow|export EXPORT_DIR EXPORT_KEY EXPORT_ID [SECRETS_MODE]

``export`` only exports (a restored database, to compare with the original export); ``grow`` adds
a run and a heartbeat, then writes an incremental export EXPORT_ID and a full one EXPORT_ID-full.

Real DAG runs from dag.test() (a success with XComs, a retry that succeeds, a failed run), plus
what dag.test() never writes but a live environment has: scheduler and task jobs referenced by
dag runs and task instances, a trigger a deferred task waits on (kwargs encrypted with this
Airflow's Fernet key), audit log rows, a pool, a paused and an active DAG, and canary secrets.
Prints the export's manifest path.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

CANARY_PASSWORD = "canary-password-5c1e"
CANARY_VALUE = "canary-variable-9a7f"


def build_dags():
    from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS, DAG, task

    tries = {"n": 0}

    with DAG("restore_source_ok", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as ok:

        @task
        def produce() -> dict:
            return {"rows": 42, "when": "2026-01-01"}

        @task(retries=1, retry_delay=timedelta(seconds=0))
        def flaky(value: dict) -> int:
            tries["n"] += 1
            if tries["n"] == 1:
                raise RuntimeError("first try fails")
            return value["rows"] + 1

        flaky(produce())

    with DAG("restore_source_failing", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as bad:

        @task
        def boom() -> None:
            raise ValueError("this run fails")

        boom()

    del AIRFLOW_V_3_0_PLUS
    return ok, bad


def run_history() -> None:
    from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS
    from airflow_provider_mwaaops.testing.dag_runner import run_dag

    ok, bad = build_dags()
    if not AIRFLOW_V_3_0_PLUS:  # 3.x serializes the DAGs for dag.test(); 2.x writes no dag rows
        ok.sync_to_db()
        bad.sync_to_db()
    run_dag(ok, conf={"source": "populate", "nested": {"a": [1, 2]}})
    run_dag(bad)
    run_dag(ok, conf={"second": True}, logical_date=datetime(2026, 2, 1, tzinfo=UTC))


def seed_extras() -> None:
    """Rows a live environment has and dag.test() does not write, through Airflow's own models."""
    import sqlalchemy as sa
    from airflow.models import Connection, Pool, Variable
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS

    with create_session() as session:
        session.add(
            Connection(
                conn_id="restore_canary",
                conn_type="postgres",
                host="db.example",
                login="etl",
                password=CANARY_PASSWORD,
                extra=json.dumps({"sslmode": "require"}),
            )
        )
        session.add(Pool(pool="restore_pool", slots=3, description="restored pool", include_deferred=False))
    Variable.set("restore_canary_var", CANARY_VALUE, description="canary")
    Variable.set("restore_plain_var", json.dumps({"k": [1, 2, 3]}))

    now = datetime.now(UTC)
    with create_session() as session:
        conn = session.connection()
        md = sa.MetaData()
        job = sa.Table("job", md, autoload_with=conn)
        dag_run = sa.Table("dag_run", md, autoload_with=conn)
        ti = sa.Table("task_instance", md, autoload_with=conn)
        dag = sa.Table("dag", md, autoload_with=conn)
        log = sa.Table("log", md, autoload_with=conn)
        ids = []
        for job_type, offset in (("SchedulerJob", 0), ("LocalTaskJob", 1), ("TriggererJob", 2)):
            result = conn.execute(
                job.insert().values(
                    job_type=job_type,
                    state="success",
                    start_date=now - timedelta(minutes=10 - offset),
                    end_date=now,
                    latest_heartbeat=now,
                    hostname="worker-1",
                    unixname="airflow",
                    executor_class="LocalExecutor",
                    dag_id=None,
                )
            )
            ids.append(result.inserted_primary_key[0])
        scheduler_id, task_job_id, triggerer_id = ids
        conn.execute(dag_run.update().values(creating_job_id=scheduler_id))
        values = {"queued_by_job_id": scheduler_id}
        if "job_id" in ti.c:
            values["job_id"] = task_job_id
        conn.execute(ti.update().values(**values))
        trigger = Trigger(
            classpath="airflow.triggers.temporal.DateTimeTrigger", kwargs={"moment": now + timedelta(hours=1)}
        )
        session.add(trigger)
        session.flush()
        conn.execute(
            sa.text(
                "UPDATE "
                + ('"trigger"' if conn.dialect.name == "postgresql" else "trigger")
                + " SET triggerer_id = :j WHERE id = :t"
            ),
            {"j": triggerer_id, "t": trigger.id},
        )
        first = conn.execute(
            sa.select(ti.c.dag_id, ti.c.task_id, ti.c.run_id).where(ti.c.task_id == "produce").limit(1)
        ).first()
        conn.execute(
            ti.update()
            .where(ti.c.dag_id == first.dag_id, ti.c.task_id == first.task_id, ti.c.run_id == first.run_id)
            .values(
                trigger_id=trigger.id,
                next_method="execute_complete",
                next_kwargs={"event": {"status": "pending"}},
            )
        )
        conn.execute(dag.update().where(dag.c.dag_id == "restore_source_ok").values(is_paused=False))
        conn.execute(dag.update().where(dag.c.dag_id == "restore_source_failing").values(is_paused=True))
        event = {
            "dttm": now,
            "event": "cli_restore_test",
            "owner": "airflow",
            "extra": "{}",
            "dag_id": "restore_source_ok",
        }
        conn.execute(log.insert().values(**event))
        conn.execute(log.insert().values(**event))  # an exact duplicate: legal, must survive as two rows
        del AIRFLOW_V_3_0_PLUS


def grow() -> None:
    import sqlalchemy as sa
    from airflow.utils.session import create_session

    from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS
    from airflow_provider_mwaaops.testing.dag_runner import run_dag

    _ok, bad = build_dags()
    if not AIRFLOW_V_3_0_PLUS:
        bad.sync_to_db()
    # The failing DAG (no retries): on 2.11, dag.test() of the retrying DAG next to the seeded
    # deferred task instance never returns.
    run_dag(bad, conf={"third": True}, logical_date=datetime(2026, 3, 1, tzinfo=UTC))
    with create_session() as session:
        conn = session.connection()
        job = sa.Table("job", sa.MetaData(), autoload_with=conn)
        later = datetime.now(UTC)
        conn.execute(job.update().where(job.c.job_type == "SchedulerJob").values(latest_heartbeat=later))


def export(
    export_dir: str, export_key: str, export_id: str, mode: str = "fernet", export_mode: str = "full"
) -> str:
    from airflow_provider_mwaaops.metadata.export import run_export
    from airflow_provider_mwaaops.metadata.secrets import SecretCipher
    from airflow_provider_mwaaops.metadata.sinks import open_sink
    from airflow_provider_mwaaops.metadata.sources.database import DatabaseSource
    from airflow_provider_mwaaops.metadata.tables import TABLES

    cipher = (
        SecretCipher("fernet", export_key.encode(), {"key_ref": "variable:export_key"})
        if mode == "fernet"
        else None
    )
    manifest = run_export(
        DatabaseSource(),
        open_sink(export_dir),
        export_id=export_id,
        mode=export_mode,
        tables=list(TABLES),
        cipher=cipher,
        chunk_rows=7,  # several files per table: the restore reads chunk after chunk
    )
    return f"{export_dir}/{manifest.export_id}/manifest.json"


if __name__ == "__main__":
    action, target_dir, key, wanted_id = sys.argv[1:5]
    secrets_mode = sys.argv[5] if len(sys.argv) > 5 else "fernet"
    if action == "populate":
        run_history()
        seed_extras()
    if action == "grow":  # an hour later: one more run, a heartbeat; incremental + full exports
        grow()
        print(export(target_dir, key, wanted_id, secrets_mode, export_mode="incremental"))
        wanted_id = f"{wanted_id}-full"
    print(export(target_dir, key, wanted_id, secrets_mode))
