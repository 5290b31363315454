"""Give a throw-away Airflow some history to export: real DAG runs, log rows, secrets.

Run as a script inside the target installation's environment (``IsolatedAirflow.run_python``):
``populate_airflow.py DAYS [CANARY_PASSWORD CANARY_VARIABLE]`` where DAYS is a comma-separated
list of days of January 2024, one DAG run each (a succeeding chain and a failing task).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime


def main(argv: list[str]) -> None:
    from airflow_provider_mwaaops.compat import DAG, task
    from airflow_provider_mwaaops.testing.dag_runner import dag_test, register_dag_for_test

    days = [int(d) for d in argv[0].split(",") if d]
    with DAG(
        "mwaaops_export_probe",
        schedule=None,
        start_date=datetime(2024, 1, 1, tzinfo=UTC),
        catchup=False,
    ) as dag:

        @task
        def extract() -> dict:
            return {"rows": 3, "note": 'ünïcode, "quotes", commas\nand a newline'}

        @task
        def load(payload: dict) -> int:
            return int(payload["rows"])

        @task
        def broken() -> None:
            raise ValueError("this task always fails")

        load(extract())
        broken()

    register_dag_for_test(dag)
    for day in days:
        dag_test(dag, conf={"day": day, "text": 'a,b "c"'}, logical_date=datetime(2024, 1, day, tzinfo=UTC))

    from airflow.models.log import Log
    from airflow.utils.session import create_session

    with create_session() as session:
        for day in days:
            session.add(
                Log(event="mwaaops_probe", extra=json.dumps({"day": day}), dag_id="mwaaops_export_probe")
            )
    if len(argv) >= 3:
        _secrets(argv[1], argv[2])


def _secrets(password: str, value: str) -> None:
    import sqlalchemy as sa
    from airflow.models.connection import Connection
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        session.add(
            Connection(
                conn_id="canary_conn",
                conn_type="postgres",
                host="db.example.com",
                login="etl",
                password=password,
                extra=json.dumps({"api_token": password}),
            )
        )
    Variable.set("canary_var", value)
    with create_session() as session:
        # A value stored unencrypted (written before a Fernet key was configured): still a secret.
        session.execute(
            sa.text("INSERT INTO variable (key, val, is_encrypted) VALUES ('canary_plain', :v, :f)"),
            {"v": value + "-plain", "f": False},
        )


if __name__ == "__main__":
    main(sys.argv[1:])
