"""Every example DAG in one real Airflow 3 deployment, each triggered through the REST API with no
logical date, as Airflow 3's API and asset-triggered runs are.

``dag.test()`` always gives a run a logical date, so a template that needs one (``{{ ds }}``,
``{{ ts_nodash }}``) passes there and fails in production. Here one deployment serves every
example (starting it is most of the cost): PostgreSQL, the API server, the scheduler with the
LocalExecutor, the dag processor and the triggerer, all pointed at the embedded AWS. Every file in
``example_dags/`` is deployed; each DAG it defines is triggered once through ``POST
/api/v2/dags/{dag_id}/dagRuns`` with ``logical_date: null``, all at once, and must succeed.

New examples are picked up without changing this test. One that needs something set up first
registers it in :data:`PREPARE` (keyed by dag_id), or in :data:`PREPARE_CONF` when its run needs a
conf (as the MWAA recovery example needs the waiting workflow's message); one that needs what this
deployment cannot offer says why in :data:`CANNOT_RUN_HERE`.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from airflow_provider_mwaaops.testing.airflow_env import IsolatedAirflow
    from airflow_provider_mwaaops.testing.api_server import AirflowApiServer
    from airflow_provider_mwaaops.testing.components import AirflowComponents
    from airflow_provider_mwaaops.testing.emulator import AwsEmulator

pytestmark = pytest.mark.skipif(
    not AIRFLOW_V_3_0_PLUS,
    reason="Airflow 2 runs always have a logical date; test_example_dags.py runs the examples there",
)

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
FINISHED = {"success", "failed"}
RUN_TIMEOUT_S = 600.0
#: dag_id -> why this deployment cannot run it (an account-only service, say). Keep it short.
CANNOT_RUN_HERE: dict[str, str] = {}
#: dag_id -> the defect that fails it in a real deployment, until it is fixed. The test checks that
#: these still fail (so an entry goes away with its fix) and that every other example succeeds.
FAILS_HERE_UNTIL_FIXED: dict[str, str] = {}

#: A sitecustomize for every process of the deployment: Snowflake is fakesnow (Snowflake SQL on
#: DuckDB), the same stand-in the dag.test() examples use, with its databases in files so that what
#: one task process loads the next one can query.
FAKESNOW_SITECUSTOMIZE = """
import os
if os.environ.get("MWAAOPS_FAKESNOW_DB_PATH"):
    import fakesnow
    _fakesnow_patch = fakesnow.patch(db_path=os.environ["MWAAOPS_FAKESNOW_DB_PATH"])
    _fakesnow_patch.__enter__()
"""


@dataclass
class Deployment:
    server: AirflowApiServer
    components: AirflowComponents
    emulator: AwsEmulator
    #: dag_id -> the conf its run is triggered with (what a dispatcher would pass it)
    confs: dict[str, dict[str, Any]]

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.server.request(method, path, **kwargs)

    def wait_until(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        return self.components.wait_until(predicate, timeout, what, interval=2.0)

    def trigger(self, dag_id: str) -> str:
        """A run with no logical date, as Airflow 3's REST API and asset triggers make them."""
        body = {"logical_date": None, "conf": self.confs.get(dag_id, {})}
        run = self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)
        assert run["logical_date"] is None, run
        return str(run["dag_run_id"])

    def wait_for_runs(self, runs: dict[str, str], timeout: float) -> dict[str, str]:
        """dag_id -> final state of each run; runs still unfinished at the deadline say so."""
        deadline = time.monotonic() + timeout
        while True:
            states = {dag_id: self.run_state(dag_id, run_id) for dag_id, run_id in runs.items()}
            if set(states.values()) <= FINISHED or time.monotonic() > deadline:
                return states
            self.components.check_running()
            time.sleep(2.0)

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def failure_report(self, dag_id: str, run_id: str) -> str:
        """The run's task states and the log tail of each task that did not succeed."""
        instances = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        lines = [f"{dag_id} {run_id}: " + ", ".join(f"{t['task_id']}={t['state']}" for t in instances)]
        for instance in instances:
            if instance["state"] in ("success", "skipped") or not instance.get("try_number"):
                continue
            path = (
                f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{instance['task_id']}"
                f"/logs/{instance['try_number']}"
            )
            try:
                content = self.api("GET", path, params={"full_content": "true"}).get("content", [])
            except Exception as err:  # the report must not hide the failure it reports
                content = [f"(log unavailable: {err})"]
            lines.append(f"--- {instance['task_id']} try {instance['try_number']} ---")
            lines.extend(_log_lines(content)[-40:])
        return "\n".join(lines)


def _log_lines(content: list[Any]) -> list[str]:
    """A task log's messages, with the exceptions Airflow 3 keeps beside them (``error_detail``)."""
    lines = []
    for event in content:
        if not isinstance(event, dict):
            lines.append(str(event))
            continue
        lines.append(str(event.get("event", event)))
        for error in event.get("error_detail") or []:
            frames = error.get("frames") or []
            where = " <- ".join(f"{f.get('filename')}:{f.get('lineno')}" for f in reversed(frames[-4:]))
            lines.append(f"  {error.get('exc_type')}: {error.get('exc_value')} [{where}]")
    return lines


# -- preparations: what an example needs from its environment besides the emulator's AWS ----------
def _asset_events_targets(emulator: AwsEmulator) -> dict[str, str]:
    """The producer's topic and the consumer's queue, and the producer listener's settings."""
    from airflow_provider_mwaaops.testing.asset_events import (
        create_example_targets,
        producer_listener_environ,
    )

    topic_arn, _ = create_example_targets(emulator)
    return producer_listener_environ(topic_arn)


def _snowflake(tmp: Path) -> dict[str, str]:
    from airflow_provider_mwaaops.testing.snowflake import SNOWFLAKE_CONN_ID, snowflake_connection_json

    site = tmp / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(FAKESNOW_SITECUSTOMIZE)
    (tmp / "fakesnow").mkdir()
    return {
        "PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p),
        "MWAAOPS_FAKESNOW_DB_PATH": str(tmp / "fakesnow"),
        f"AIRFLOW_CONN_{SNOWFLAKE_CONN_ID.upper()}": snowflake_connection_json(),
    }


def _glue_examples(emulator: AwsEmulator) -> dict[str, str]:
    from airflow_provider_mwaaops.testing.glue_examples import script_glue_examples

    script_glue_examples(emulator)
    return {}


def _emr(emulator: AwsEmulator, dag_id: str) -> dict[str, str]:
    from airflow_provider_mwaaops.testing.emr_examples import prepare_emr_example

    return prepare_emr_example(dag_id, emulator)


#: dag_id -> setup before the deployment starts; returns environment variables for its processes.
PREPARE: dict[str, Callable[[AwsEmulator, Path], dict[str, str]]] = {
    # The producer's listener publishes from the API server; the consumer's asset watcher reads the
    # queue in the triggerer: both exist before the deployment starts.
    "example_asset_events_producer": lambda emulator, _tmp: _asset_events_targets(emulator),
    "example_snowflake_sns": lambda _emulator, tmp: _snowflake(tmp),
    # What the Glue examples' job runs do (log lines; a transform run that fails once).
    "example_glue_etl": lambda emulator, _tmp: _glue_examples(emulator),
    # The EMR examples read their cluster / application id from Variables (AIRFLOW_VAR_*).
    "example_emr_steps_redrive": lambda emulator, _tmp: _emr(emulator, "example_emr_steps_redrive"),
    "example_emr_serverless_spark": lambda emulator, _tmp: _emr(emulator, "example_emr_serverless_spark"),
}


def _mwaa_examples(emulator: AwsEmulator) -> dict[str, dict[str, Any]]:
    """The primary environment both MWAA examples use, its disaster and the waiting workflow."""
    from airflow_provider_mwaaops.testing.mwaa_recovery import prepare_mwaa_deployment

    return prepare_mwaa_deployment(emulator, EXAMPLE_DAGS)


#: Setups that give runs their conf: each returns dag_id -> conf for the DAGs it prepares.
PREPARE_CONF: list[Callable[[AwsEmulator], dict[str, dict[str, Any]]]] = [_mwaa_examples]


def _config() -> dict[str, dict[str, Any]]:
    return {
        "core": {
            "executor": "LocalExecutor",
            "parallelism": 8,
            "max_active_tasks_per_dag": 8,
            "dags_are_paused_at_creation": False,
        },
        "scheduler": {"scheduler_heartbeat_sec": 1},
        "dag_processor": {"refresh_interval": 5, "parsing_processes": 1},
    }


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory,
    _mwaaops_emulator_server: AwsEmulator,
    mwaaops_airflow: IsolatedAirflow,  # the test process's Airflow: preparations back it up
) -> Iterator[Deployment]:
    from airflow_provider_mwaaops.testing.api_server import AirflowApiServer
    from airflow_provider_mwaaops.testing.components import AirflowComponents, default_component_commands
    from airflow_provider_mwaaops.testing.pytest_plugin import _require_postgres

    _require_postgres()  # LocalExecutor runs tasks in parallel processes: SQLite would lock
    from airflow_provider_mwaaops.testing.postgres import migrated_postgres_airflow

    emulator = _mwaaops_emulator_server
    emulator.reset()
    tmp = tmp_path_factory.mktemp("deployment")
    dags = tmp / "dags"
    dags.mkdir()
    for example in sorted(EXAMPLE_DAGS.glob("example_*.py")):
        shutil.copy(example, dags / example.name)
    environ = dict(emulator.environ())
    for prepare in PREPARE.values():
        environ.update(prepare(emulator, tmp))
    with emulator.activated():
        confs = {dag_id: conf for prepare in PREPARE_CONF for dag_id, conf in prepare(emulator).items()}
    with ExitStack() as stack:
        airflow = stack.enter_context(migrated_postgres_airflow(tmp / "airflow", dags_folder=dags))
        # What a self-managed Airflow 3 gives tasks that read the metadata database (they may not use
        # Airflow's own session): a connection to it, as the metadata examples expect.
        environ["AIRFLOW_CONN_MWAAOPS_METADATA_DB"] = airflow.sql_alchemy_conn.replace(
            "postgresql+psycopg2://", "postgresql://"
        )
        server = stack.enter_context(AirflowApiServer(airflow, extra_environ=environ))
        components = stack.enter_context(
            AirflowComponents(
                airflow,
                default_component_commands(triggerer=True),
                config=_config(),
                extra_environ={**environ, **server.environ},
            )
        )
        try:
            yield Deployment(server, components, emulator, confs)
        finally:
            components.stop()


def _deployed_dags(deployment: Deployment) -> dict[str, str]:
    """dag_id -> file of every example DAG, once the dag processor has parsed all the files."""
    files = {p.name for p in EXAMPLE_DAGS.glob("example_*.py")}

    def parsed() -> dict[str, str] | None:
        errors = deployment.api("GET", "/api/v2/importErrors")["import_errors"]
        assert not errors, "\n\n".join(f"{e['filename']}:\n{e['stack_trace']}" for e in errors)
        listed = deployment.api("GET", "/api/v2/dags", params={"limit": 1000})["dags"]
        found = {d["dag_id"]: Path(d["fileloc"]).name for d in listed if Path(d["fileloc"]).name in files}
        return found if set(found.values()) == files else None

    return deployment.wait_until(parsed, 300, f"the dag processor to parse {sorted(files)}")


def _asset_triggered_consumer_run(deployment: Deployment) -> str | None:
    runs = deployment.api("GET", "/api/v2/dags/example_asset_events_consumer/dagRuns")["dag_runs"]
    return next((r["dag_run_id"] for r in runs if r["run_type"] == "asset_triggered"), None)


@pytest.mark.timeout(1200)
def test_every_example_succeeds_when_triggered_without_a_logical_date(deployment: Deployment) -> None:
    dags = _deployed_dags(deployment)
    assert set(CANNOT_RUN_HERE) <= set(dags), "CANNOT_RUN_HERE names a DAG that is not an example"
    assert all(reason.strip() for reason in CANNOT_RUN_HERE.values()), "say why an example cannot run"
    runs = {dag_id: deployment.trigger(dag_id) for dag_id in sorted(dags) if dag_id not in CANNOT_RUN_HERE}

    states = deployment.wait_for_runs(runs, RUN_TIMEOUT_S)
    failed = [d for d, state in states.items() if state != "success" and d not in FAILS_HERE_UNTIL_FIXED]
    assert not failed, "\n\n".join(deployment.failure_report(d, runs[d]) for d in failed)
    fixed = [d for d in FAILS_HERE_UNTIL_FIXED if states.get(d) == "success"]
    assert not fixed, f"{fixed} succeed now: remove them from FAILS_HERE_UNTIL_FIXED"

    # The producer's event reached the consumer: the asset-triggered run has no logical date either.
    if {"example_asset_events_producer", "example_asset_events_consumer"} <= runs.keys():
        run_id = deployment.wait_until(
            lambda: _asset_triggered_consumer_run(deployment), 120, "an asset-triggered consumer run"
        )
        state = deployment.wait_until(
            lambda: (s := deployment.run_state("example_asset_events_consumer", run_id)) in FINISHED and s,
            RUN_TIMEOUT_S,
            "the asset-triggered consumer run to finish",
        )
        assert state == "success", deployment.failure_report("example_asset_events_consumer", run_id)
        run = deployment.api("GET", f"/api/v2/dags/example_asset_events_consumer/dagRuns/{run_id}")
        assert run["logical_date"] is None
