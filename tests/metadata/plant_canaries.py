"""Plant canary secrets where Airflow itself keeps them, run inside a throw-away Airflow.

``plant_canaries.py run CANARIES_JSON``: a real DAG run (``dag.test``) whose ``conf`` holds a
password, whose task renders a template field from the conf and from a variable and returns what
it rendered (an XCom), and an audit ``log`` row whose extra holds a password.

``plant_canaries.py rest2 CANARIES_JSON``: Airflow 2's REST API v1 (the webserver's own Flask app,
driven through its test client) creating a connection with a password and extra, and a variable.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

PROBE_DAG = "mwaaops_canary_probe"


def run(canaries: dict[str, str]) -> None:
    from airflow_provider_mwaaops.compat import DAG, task
    from airflow_provider_mwaaops.testing.dag_runner import dag_test, register_dag_for_test

    with DAG(PROBE_DAG, schedule=None, start_date=datetime(2024, 1, 1, tzinfo=UTC), catchup=False) as dag:

        @task(
            templates_dict={
                "api_key": "{{ dag_run.conf['render']['api_token'] }}",
                "note": "rotated to {{ var.value.canary_cli_var }}",
            }
        )
        def render(templates_dict: Any = None) -> dict:
            return dict(templates_dict)

        render()

    register_dag_for_test(dag)
    conf = {"day": 1, "password": canaries["conf_password"], "render": {"api_token": canaries["rendered"]}}
    dag_test(dag, conf=conf, logical_date=datetime(2024, 1, 1, tzinfo=UTC))

    from airflow.models.log import Log
    from airflow.utils.session import create_session

    with create_session() as session:
        session.add(
            Log(
                event="mwaaops_canary",
                dag_id=PROBE_DAG,
                extra=json.dumps({"password": canaries["log_password"], "why": "audit row"}),
            )
        )


def rest2(canaries: dict[str, str]) -> None:
    from airflow.www.app import create_app

    app = create_app(testing=True)
    client = app.test_client()
    answers = [
        client.post(
            "/api/v1/connections",
            json={
                "connection_id": "canary_api_conn",
                "conn_type": "postgres",
                "host": "db.example",
                "login": "etl",
                "password": canaries["api_password"],
                "extra": json.dumps({"api_key": canaries["api_extra"]}),
            },
        ),
        client.post("/api/v1/variables", json={"key": "canary_api_var", "value": canaries["api_variable"]}),
    ]
    for answer in answers:
        if answer.status_code != 200:
            raise SystemExit(f"REST API v1 answered {answer.status_code}: {answer.get_data(as_text=True)}")


if __name__ == "__main__":
    {"run": run, "rest2": rest2}[sys.argv[1]](json.loads(sys.argv[2]))
