"""The REST metadata source (Airflow 3) against a real ``airflow api-server`` whose page limit is small.

History comes from real ``dag.test()`` runs in the session's isolated Airflow (a retried task, a
mapped task, a failed run); the export goes through the same pipeline as the database source, and
what it wrote is compared with what the API reports, table by table.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS

PAGE_LIMIT = 7
CANARY_PASSWORD = "rest-canary-password-3f1d"
CANARY_VALUE = "rest-canary-value-8e2a"
TABLES = [
    "dag",
    "dag_tag",
    "dag_version",
    "slot_pool",
    "variable",
    "connection",
    "job",
    "dag_run",
    "task_instance",
    "task_instance_history",
    "log",
]

airflow3 = pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="the REST source reads Airflow 3's API v2")


def _build_dags() -> list[Any]:
    from airflow_provider_mwaaops.compat import DAG, task

    tries = {"n": 0}
    with DAG("rest_src_retry", schedule=None, start_date=datetime(2026, 1, 1), tags=["rest", "src"]) as retry:

        @task(retries=1, retry_delay=timedelta(seconds=0))
        def flaky() -> int:
            tries["n"] += 1
            if tries["n"] == 1:
                raise RuntimeError("first try fails")
            return 1

        @task
        def fan_out() -> list[int]:
            return list(range(9))

        @task
        def square(x: int) -> int:
            return x * x

        flaky() >> square.expand(x=fan_out())

    with DAG("rest_src_fail", schedule=None, start_date=datetime(2026, 1, 1)) as fail:

        @task
        def boom() -> None:
            raise ValueError("this run fails")

        boom()
    return [retry, fail]


@pytest.fixture(scope="module")
def history(mwaaops_airflow: Any) -> dict[str, Any]:
    """Real runs plus pools, variables and a connection, written through Airflow itself."""
    if not AIRFLOW_V_3_0_PLUS:
        pytest.skip("the REST source reads Airflow 3's API v2")
    from airflow.models import Connection, Pool
    from airflow.models.variable import Variable  # the ORM model: the SDK's needs a task context
    from airflow.utils.session import create_session

    from airflow_provider_mwaaops.testing.dag_runner import run_dag
    from airflow_provider_mwaaops.testing.emulator import patched_environ

    retry, fail = _build_dags()
    # The log forwarder would look for an API at [api] base_url before every try; none runs there.
    with patched_environ({"AIRFLOW__MWAAOPS__LOG_FORWARDER_ENABLED": "False"}):
        runs = [run_dag(retry), run_dag(fail), run_dag(retry, conf={"second": True})]
    with create_session() as session:
        session.add(
            Connection(
                conn_id="rest_src_canary",
                conn_type="postgres",
                host="db.example",
                login="etl",
                password=CANARY_PASSWORD,
                extra=json.dumps({"sslmode": "require"}),
            )
        )
        for i in range(9):
            session.add(
                Pool(pool=f"rest_src_pool_{i}", slots=i + 1, description="pool", include_deferred=False)
            )
    Variable.set("rest_src_canary", CANARY_VALUE, description="canary")
    Variable.set("rest_src_json", json.dumps({"k": [1, 2, 3]}))
    return {"runs": runs, "dags": {"retry": retry, "fail": fail}}


@pytest.fixture(scope="module")
def small_page_api(mwaaops_airflow: Any, _mwaaops_emulator_server: Any, history: Any) -> Iterator[Any]:
    """A second api-server on the same metadata DB whose [api] maximum_page_limit is tiny.

    It gets its own AIRFLOW_HOME (so its admin password file does not replace the session
    server's) but the session Airflow's database, Fernet key and dags folder.
    """
    import tempfile

    from airflow_provider_mwaaops.testing.airflow_env import IsolatedAirflow
    from airflow_provider_mwaaops.testing.api_server import AirflowApiServer

    home = Path(tempfile.mkdtemp(prefix="mwaaops-rest-src-"))
    clone = IsolatedAirflow(home)
    clone.environ = {**mwaaops_airflow.environ, "AIRFLOW_HOME": str(home)}
    extra = {**_mwaaops_emulator_server.environ(), "AIRFLOW__API__MAXIMUM_PAGE_LIMIT": str(PAGE_LIMIT)}
    with AirflowApiServer(clone, extra_environ=extra) as server:
        yield server


def _url_client(server: Any) -> Any:
    from airflow_provider_mwaaops.airflow_api import AirflowApiClient

    return AirflowApiClient.from_url(server.url, username="admin", password=server.password)


def _export(source: Any, path: Path, **kwargs: Any) -> Any:
    from airflow_provider_mwaaops.metadata.export import run_export
    from airflow_provider_mwaaops.metadata.sinks import open_sink

    return run_export(source, open_sink(str(path)), tables=kwargs.pop("tables", TABLES), **kwargs)


def _rows(path: Path, manifest: Any, table: str) -> list[dict[str, Any]]:
    from airflow_provider_mwaaops.metadata.manifest import read_table
    from airflow_provider_mwaaops.metadata.sinks import open_sink

    return read_table(open_sink(str(path)), manifest, table).to_pylist()


def _api_all(server: Any, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
    """Everything a list endpoint has, read with the lead's plain test client (not ours)."""
    items: list[dict[str, Any]] = []
    while True:
        page = server.request("GET", f"/api/v2{path}", params={**params, "offset": len(items), "limit": 1000})
        items.extend(page[key])
        if not page[key] or len(items) >= page["total_entries"]:
            return items


@airflow3
def test_rest_export_matches_what_the_api_reports(small_page_api: Any, history: Any, tmp_path: Path) -> None:
    from airflow_provider_mwaaops.metadata.sources.rest import RestSource

    source = RestSource(_url_client(small_page_api), page_size=100)
    manifest = _export(source, tmp_path, export_id="rest-full")
    assert (tmp_path / "rest-full" / "manifest.json").exists()
    assert manifest.source["kind"] == "rest"
    assert manifest.source["page_limit"] == PAGE_LIMIT  # every list was paged through the cap
    assert manifest.airflow_version.startswith("3.")

    api = small_page_api
    dag_runs = _api_all(api, "/dags/~/dagRuns", "dag_runs")
    exported = _rows(tmp_path, manifest, "dag_run")
    assert len(dag_runs) > PAGE_LIMIT or len(exported) == len(dag_runs)
    assert sorted((r["dag_id"], r["run_id"], r["state"]) for r in exported) == sorted(
        (r["dag_id"], r["dag_run_id"], r["state"]) for r in dag_runs
    )
    conf = {r["run_id"]: r["conf"] for r in exported}
    assert json.loads(conf[history["runs"][2].run_id]) == {"second": True}

    tis = _api_all(api, "/dags/~/dagRuns/~/taskInstances", "task_instances")
    exported = _rows(tmp_path, manifest, "task_instance")
    assert len(tis) > PAGE_LIMIT
    assert sorted(
        (r["id"], r["dag_id"], r["task_id"], r["run_id"], r["map_index"], r["try_number"], r["state"])
        for r in exported
    ) == sorted(
        (t["id"], t["dag_id"], t["task_id"], t["dag_run_id"], t["map_index"], t["try_number"], t["state"])
        for t in tis
    )
    assert {r["map_index"] for r in exported if r["task_id"] == "square"} == set(range(9))

    # The first try of each retried `flaky` is history; the API's /tries lists it too.
    history_rows = _rows(tmp_path, manifest, "task_instance_history")
    flaky = [t for t in tis if t["task_id"] == "flaky" and t["try_number"] > 1]
    assert flaky
    expected = []
    for ti in flaky:
        tries = api.request(
            "GET", f"/api/v2/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/flaky/tries"
        )["task_instances"]
        expected += [
            (ti["id"], t["try_number"], t["state"]) for t in tries if t["try_number"] < ti["try_number"]
        ]
    # Other tests share this Airflow: compare the history of these task instances only.
    flaky_ids = {ti["id"] for ti in flaky}
    assert sorted(
        (r["task_instance_id"], r["try_number"], r["state"])
        for r in history_rows
        if r["task_instance_id"] in flaky_ids
    ) == sorted(expected)

    events = _api_all(api, "/eventLogs", "event_logs", before=manifest.tables["log"].watermark_high)
    exported = _rows(tmp_path, manifest, "log")
    exported_ids = {r["id"] for r in exported}
    assert {e["event_log_id"] for e in events} <= exported_ids | {None}
    assert len(exported) == manifest.tables["log"].rows

    pools = _api_all(api, "/pools", "pools")
    assert sorted((p["name"], p["slots"]) for p in pools) == sorted(
        (r["pool"], r["slots"]) for r in _rows(tmp_path, manifest, "slot_pool")
    )
    assert {v["key"] for v in _api_all(api, "/variables", "variables")} == {
        r["key"] for r in _rows(tmp_path, manifest, "variable")
    }
    connections = _rows(tmp_path, manifest, "connection")
    assert {c["connection_id"] for c in _api_all(api, "/connections", "connections")} == {
        r["conn_id"] for r in connections
    }
    dags = _api_all(api, "/dags", "dags", exclude_stale="false")
    assert sorted((d["dag_id"], d["is_paused"]) for d in dags) == sorted(
        (r["dag_id"], r["is_paused"]) for r in _rows(tmp_path, manifest, "dag")
    )
    assert {(t["dag_id"], t["name"]) for d in dags for t in d["tags"]} == {
        (r["dag_id"], r["name"]) for r in _rows(tmp_path, manifest, "dag_tag")
    }
    assert ("rest_src_retry", "rest") in {
        (r["dag_id"], r["name"]) for r in _rows(tmp_path, manifest, "dag_tag")
    }
    assert {v["id"] for v in _api_all(api, "/dags/~/dagVersions", "dag_versions")} == {
        r["id"] for r in _rows(tmp_path, manifest, "dag_version")
    }

    # What the API cannot give is recorded as absent, never invented.
    assert "password" in manifest.tables["connection"].columns  # a column, always null
    assert "id" not in manifest.tables["dag_run"].columns
    assert "updated_at" not in manifest.tables["task_instance"].columns
    # Secrets are excluded by default: no canary byte anywhere in the export.
    for file in (tmp_path / "rest-full").rglob("*"):
        if file.is_file():
            data = file.read_bytes()
            assert CANARY_PASSWORD.encode() not in data
            assert CANARY_VALUE.encode() not in data


@airflow3
def test_a_rest_export_written_to_while_it_reads_restores_whole(
    small_page_api: Any, history: Any, mwaaops_airflow: Any, tmp_path: Path
) -> None:
    """The API answers each page at its own moment: runs the scheduler touches while the export
    runs and tasks retried between the task instance and history reads must still leave every
    task instance with its run and every history row with its task instance (a restore refuses
    anything else)."""
    from airflow_provider_mwaaops.metadata.sources.rest import RestSource

    from .live_writes import LiveWrites

    writes = LiveWrites(mwaaops_airflow.sql_alchemy_conn, "rest_src_fail", failing_task="boom")
    done: list[str] = []

    def between_reads(table: str, _chunk: int, _rows: int) -> None:
        if table == "task_instance" and not done:  # its history is read next
            done.append(table)
            writes.new_run("manual__while_exporting_rest", days=300)
            writes.retry()

    source = RestSource(_url_client(small_page_api), page_size=100)
    try:
        touched = writes.touch_run()  # after the export started, before dag_run is read
        tables = ["dag_run", "task_instance", "task_instance_history"]
        manifest = _export(source, tmp_path, export_id="rest-live", tables=tables, progress=between_reads)
    finally:
        writes.undo()
    assert done == ["task_instance"]
    runs = {(r["dag_id"], r["run_id"]) for r in _rows(tmp_path, manifest, "dag_run")}
    assert ("rest_src_fail", touched) in runs
    tis = _rows(tmp_path, manifest, "task_instance")
    assert {(r["dag_id"], r["run_id"]) for r in tis} <= runs
    exported = {(r["dag_id"], r["task_id"], r["run_id"], r["map_index"]): r for r in tis}
    history_rows = _rows(tmp_path, manifest, "task_instance_history")
    assert history_rows
    for row in history_rows:
        key = (row["dag_id"], row["task_id"], row["run_id"], row["map_index"])
        assert key in exported, f"history of a task instance the export does not hold: {key}"
        ti = exported[key]
        assert row["task_instance_id"] == ti["id"]
        assert row["try_number"] < ti["try_number"] or (
            row["try_number"] == ti["try_number"] and ti["state"] == "up_for_retry"
        ), key
    numbered = [(r["task_instance_id"], r["try_number"]) for r in history_rows]
    assert len(numbered) == len(set(numbered))


@airflow3
def test_rest_export_through_mwaa_invoke_rest_api(
    small_page_api: Any, history: Any, aws_emulator: Any, tmp_path: Path
) -> None:
    """The same export through the MWAA InvokeRestApi emulator gives byte-identical files."""
    from airflow_provider_mwaaops.airflow_api import AirflowApiClient
    from airflow_provider_mwaaops.metadata.sources.rest import RestSource
    from airflow_provider_mwaaops.testing.extensions import mwaa_environments, mwaa_rest_api

    aws_emulator.client("mwaa").create_environment(
        Name="rest-src",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/mwaa",
        SourceBucketArn="arn:aws:s3:::mwaa-dags",
        DagS3Path="dags",
        NetworkConfiguration={"SubnetIds": ["subnet-1", "subnet-2"]},
        AirflowVersion="3.3.1",
    )
    mwaa_environments.wait_for_status("rest-src")  # CREATING -> AVAILABLE
    mwaa_rest_api.attach_api_server(
        "rest-src", small_page_api.url, username="admin", password=small_page_api.password
    )
    tables = [t for t in TABLES if t not in ("log", "task_instance_history")]
    by_url = _export(RestSource(_url_client(small_page_api)), tmp_path / "url", tables=tables, export_id="e1")
    mwaa_source = RestSource(AirflowApiClient.from_mwaa("rest-src"))
    by_mwaa = _export(mwaa_source, tmp_path / "mwaa", tables=tables, export_id="e1")
    assert by_mwaa.source["api"] == "MWAA environment 'rest-src'"
    assert by_mwaa.source["page_limit"] == PAGE_LIMIT
    for table in tables:
        assert by_mwaa.tables[table].rows == by_url.tables[table].rows, table
        assert [f.sha256 for f in by_mwaa.tables[table].files] == [
            f.sha256 for f in by_url.tables[table].files
        ]

    # /tries paths of dag.test() runs exceed InvokeRestApi's 64-character Path: skipped and recorded.
    tih = _export(mwaa_source, tmp_path / "mwaa", tables=["task_instance_history"], export_id="e2")
    assert tih.tables["task_instance_history"].rows == 0
    retried = [
        t
        for t in _api_all(small_page_api, "/dags/~/dagRuns/~/taskInstances", "task_instances")
        if t["try_number"] > 1
    ]
    assert retried
    assert tih.source["task_instance_history_skipped"] == len(retried)


@airflow3
def test_incremental_rest_export_reads_only_new_event_logs(
    small_page_api: Any, history: Any, tmp_path: Path
) -> None:
    from airflow.models.log import Log
    from airflow.utils.session import create_session

    from airflow_provider_mwaaops.metadata.sources.rest import RestSource

    first = _export(RestSource(_url_client(small_page_api)), tmp_path, tables=["log"], export_id="i1")
    with create_session() as session:
        for i in range(PAGE_LIMIT + 2):
            session.add(Log(event=f"rest_src_incremental_{i}", owner="test"))
    second = _export(
        RestSource(_url_client(small_page_api)), tmp_path, tables=["log"], export_id="i2", mode="incremental"
    )
    assert second.mode == "incremental"
    assert second.tables["log"].watermark_low == first.tables["log"].watermark_high
    new = _rows(tmp_path, second, "log")
    assert sorted(r["event"] for r in new) == sorted(
        f"rest_src_incremental_{i}" for i in range(PAGE_LIMIT + 2)
    )
    old_ids = {r["id"] for r in _rows(tmp_path, first, "log")}
    assert not old_ids & {r["id"] for r in new}
    third = _export(
        RestSource(_url_client(small_page_api)), tmp_path, tables=["log"], export_id="i3", mode="incremental"
    )
    assert third.tables["log"].rows == 0


@airflow3
def test_unreachable_api_fails_clearly_and_writes_no_manifest(tmp_path: Path) -> None:
    from airflow_provider_mwaaops.airflow_api import AirflowApiClient, AirflowApiError
    from airflow_provider_mwaaops.metadata.sources.rest import RestSource
    from airflow_provider_mwaaops.testing.api_server import free_port

    url = f"http://127.0.0.1:{free_port()}"
    client = AirflowApiClient.from_url(url, attempts=2)
    client._wait = lambda _state: 0.0
    with pytest.raises(AirflowApiError, match=f"{url}/api/v2/version unreachable"):
        _export(RestSource(client), tmp_path, export_id="down")
    assert not list(tmp_path.rglob("manifest.json"))


@airflow3
def test_a_server_without_api_v2_is_refused(tmp_path: Path) -> None:
    """An Airflow 2 webserver (no /api/v2) is named as such rather than exported from."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from airflow_provider_mwaaops.airflow_api import AirflowApiClient
    from airflow_provider_mwaaops.metadata.sources.rest import RestSource, RestSourceError

    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(RestSourceError, match="not an Airflow 3 API server"):
            _export(RestSource(AirflowApiClient.from_url(url)), tmp_path, export_id="v1")
        assert not list(tmp_path.rglob("manifest.json"))
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(AIRFLOW_V_3_0_PLUS, reason="Airflow 2 behaviour")
def test_rest_source_is_not_available_on_airflow_2() -> None:
    from airflow_provider_mwaaops.airflow_api import AirflowApiClient
    from airflow_provider_mwaaops.metadata.sources.rest import RestSource, RestSourceUnavailable

    with pytest.raises(RestSourceUnavailable, match=r"not available on Airflow 2.*DatabaseSource"):
        RestSource(AirflowApiClient.from_url("http://127.0.0.1:8080"))


@airflow3
def test_incremental_rest_export_of_runs_filters_on_updated_at(
    small_page_api: Any, history: Any, tmp_path: Path
) -> None:
    """dag_run / task_instance: the API filters on updated_at (which it never returns)."""
    from airflow_provider_mwaaops.metadata.sources.rest import RestSource
    from airflow_provider_mwaaops.testing.dag_runner import run_dag
    from airflow_provider_mwaaops.testing.emulator import patched_environ

    tables = ["dag_run", "task_instance"]
    first = _export(RestSource(_url_client(small_page_api)), tmp_path, tables=tables, export_id="r1")
    assert first.tables["dag_run"].watermark_column == "updated_at"
    assert first.tables["dag_run"].rows >= 3
    with patched_environ({"AIRFLOW__MWAAOPS__LOG_FORWARDER_ENABLED": "False"}):
        new_run = run_dag(history["dags"]["fail"], conf={"incremental": 1})
    second = _export(
        RestSource(_url_client(small_page_api)), tmp_path, tables=tables, export_id="r2", mode="incremental"
    )
    assert second.tables["dag_run"].watermark_low == first.tables["dag_run"].watermark_high
    assert [(r["dag_id"], r["run_id"]) for r in _rows(tmp_path, second, "dag_run")] == [
        ("rest_src_fail", new_run.run_id)
    ]
    assert [(r["task_id"], r["run_id"], r["state"]) for r in _rows(tmp_path, second, "task_instance")] == [
        ("boom", new_run.run_id, "failed")
    ]


@airflow3
def test_export_operator_with_the_rest_source(small_page_api: Any, history: Any, tmp_path: Path) -> None:
    """MetadataExportOperator(read_from="rest") in a DAG run, configured as a deployment is: [mwaaops]."""
    from airflow_provider_mwaaops.compat import DAG
    from airflow_provider_mwaaops.operators.metadata import MetadataExportOperator
    from airflow_provider_mwaaops.testing.dag_runner import run_dag
    from airflow_provider_mwaaops.testing.emulator import patched_environ

    with DAG("rest_src_export", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        MetadataExportOperator(
            task_id="export",
            export_uri=str(tmp_path),
            read_from="rest",
            tables=["dag_run", "log", "slot_pool"],
        )
    environ = {
        "AIRFLOW__MWAAOPS__API_URL": small_page_api.url,
        "AIRFLOW__MWAAOPS__API_USERNAME": "admin",
        "AIRFLOW__MWAAOPS__API_PASSWORD": small_page_api.password,
        "AIRFLOW__MWAAOPS__MWAA_ENVIRONMENT_NAME": "",
        "AIRFLOW__MWAAOPS__LOG_FORWARDER_ENABLED": "False",
    }
    with patched_environ(environ):
        result = run_dag(dag)
    assert result.succeeded, result.task_states
    manifests = list(tmp_path.rglob("manifest.json"))
    assert len(manifests) == 1
    manifest = json.loads(manifests[0].read_text())
    assert manifest["source"]["kind"] == "rest"
    assert manifest["source"]["api"] == f"{small_page_api.url}/api/v2"
    assert manifest["tables"]["dag_run"]["rows"] >= len(history["runs"])
    assert manifest["tables"]["slot_pool"]["rows"] >= 10


@pytest.mark.skipif(AIRFLOW_V_3_0_PLUS, reason="Airflow 2 behaviour")
def test_export_operator_refuses_the_rest_source_on_airflow_2(tmp_path: Path) -> None:
    from airflow_provider_mwaaops.operators.metadata import MetadataExportOperator

    with pytest.raises(
        ValueError, match=r"read_from='rest' reads Airflow 3's REST API v2.*read_from='database'"
    ):
        MetadataExportOperator(task_id="export", export_uri=str(tmp_path), read_from="rest")
