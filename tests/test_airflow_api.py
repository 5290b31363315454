"""AirflowApiClient against a real ``airflow api-server`` (URL and MWAA InvokeRestApi emulator), and
its retry/error behaviour against a tiny local HTTP server that fails on purpose."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from airflow_provider_mwaaops.airflow_api import (
    PROBE_PAGE_SIZE,
    RESPONSE_BUDGET_SHARE,
    AirflowApiClient,
    AirflowApiError,
)

NO_WAIT = 0.0


def _client(url: str, **kwargs: Any) -> AirflowApiClient:
    client = AirflowApiClient.from_url(url, **kwargs)
    client._wait = lambda _state: NO_WAIT  # retries without sleeping; the policy is what is tested
    return client


# -- a scripted HTTP server: answers from a queue, records what it was asked ----------------------
class _Scripted(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers: list[tuple[int, Any]] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Scripted

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append((self.command, self.path, dict(self.headers)))
        if self.path == "/auth/token":
            status, payload = 201, {"access_token": f"token-{len(self.server.requests)}"}
            assert json.loads(body)["username"] == "admin"
        else:
            status, payload = self.server.answers.pop(0) if self.server.answers else (200, {})
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass


@pytest.fixture
def scripted() -> Iterator[_Scripted]:
    server = _Scripted()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_transient_errors_are_retried_then_succeed(scripted: _Scripted) -> None:
    scripted.answers = [(503, {"detail": "busy"}), (502, {}), (200, {"version": "3.3.2"})]
    assert _client(scripted.url, attempts=4).get("/version") == {"version": "3.3.2"}
    assert len(scripted.requests) == 3


def test_client_errors_are_not_retried_and_name_the_url(scripted: _Scripted) -> None:
    scripted.answers = [(404, {"detail": "The Pool with name: `nope` was not found"})]
    with pytest.raises(AirflowApiError) as err:
        _client(scripted.url, attempts=4).get("/pools/nope")
    assert len(scripted.requests) == 1
    assert err.value.status == 404
    assert f"GET {scripted.url}/api/v2/pools/nope answered 404" in str(err.value)
    assert "was not found" in str(err.value)


def test_retries_give_up_with_the_last_error(scripted: _Scripted) -> None:
    scripted.answers = [(500, {"detail": "boom"})] * 3
    with pytest.raises(AirflowApiError, match="answered 500: boom") as err:
        _client(scripted.url, attempts=3).post("/dags/~/dagRuns/list", json={})
    assert err.value.status == 500
    assert len(scripted.requests) == 3


def test_unreachable_api_names_the_url() -> None:
    from airflow_provider_mwaaops.testing.api_server import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(AirflowApiError, match=f"GET {url}/api/v2/version unreachable") as err:
        _client(url, attempts=2).get("/version")
    assert err.value.status is None


def test_token_is_fetched_and_renewed_on_401(scripted: _Scripted) -> None:
    scripted.answers = [(200, {"a": 1}), (401, {"detail": "expired"}), (200, {"b": 2})]
    client = _client(scripted.url, username="admin", password="pw")
    assert client.get("/x") == {"a": 1}
    assert client.get("/y") == {"b": 2}
    paths = [(method, path.split("?")[0]) for method, path, _ in scripted.requests]
    assert paths == [
        ("POST", "/auth/token"),
        ("GET", "/api/v2/x"),
        ("GET", "/api/v2/y"),
        ("POST", "/auth/token"),
        ("GET", "/api/v2/y"),
    ]
    bearer = [headers.get("Authorization") for _, path, headers in scripted.requests if "/api/v2/" in path]
    assert bearer == ["Bearer token-1", "Bearer token-1", "Bearer token-4"]


def test_paginate_stops_on_a_short_page_without_total(scripted: _Scripted) -> None:
    scripted.answers = [(200, {"items": [{"i": 0}, {"i": 1}]}), (200, {"items": [{"i": 2}]})]
    items = list(_client(scripted.url).paginate("/things", items_key="items", page_size=2))
    assert [i["i"] for i in items] == [0, 1, 2]
    assert [p.split("?")[1] for _, p, _ in scripted.requests] == ["offset=0&limit=2", "offset=2&limit=2"]


def test_paginate_sizes_pages_from_the_bytes_per_row_under_a_response_limit(scripted: _Scripted) -> None:
    """Through a size-limited transport (MWAA: 6 MB) the first page is small and the next ones are
    sized from the bytes per row of the previous page, to a quarter of the limit."""
    row = {"name": "x" * 380}  # about 400 bytes of JSON per row
    total = PROBE_PAGE_SIZE + 50
    scripted.answers = [
        (200, {"items": [row] * n, "total_entries": total}) for n in (PROBE_PAGE_SIZE, *[5] * 10)
    ]
    client = _client(scripted.url)
    client._transport.response_limit_bytes = 8_000  # type: ignore[misc]
    items = list(client.paginate("/things", items_key="items", page_size=100))

    assert len(items) == total
    limits = [int(p.split("limit=")[1]) for _, p, _ in scripted.requests]
    page_bytes = len(
        json.dumps({"items": [row] * PROBE_PAGE_SIZE, "total_entries": total}, separators=(",", ":"))
    )
    expected = int(8_000 * RESPONSE_BUDGET_SHARE * PROBE_PAGE_SIZE / page_bytes)
    assert limits[0] == PROBE_PAGE_SIZE
    assert limits[1:] == [expected] * 10  # 2,000 bytes of budget / ~400 bytes a row
    assert expected == 5
    assert all(limit * len(json.dumps(row)) <= 8_000 * RESPONSE_BUDGET_SHARE for limit in limits[1:])


def test_paginate_without_a_response_limit_asks_for_full_pages(scripted: _Scripted) -> None:
    scripted.answers = [
        (200, {"items": [{"i": i} for i in range(100)], "total_entries": 150}),
        (200, {"items": []}),
    ]
    scripted.answers[1] = (200, {"items": [{"i": i} for i in range(50)], "total_entries": 150})
    assert len(list(_client(scripted.url).paginate("/things", items_key="items", page_size=100))) == 150
    assert [int(p.split("limit=")[1]) for _, p, _ in scripted.requests] == [100, 100]


def test_from_config_reads_the_mwaaops_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MWAAOPS__API_URL", "http://airflow.example:8080/")
    monkeypatch.setenv("AIRFLOW__MWAAOPS__API_TIMEOUT", "2.5")
    monkeypatch.delenv("AIRFLOW__MWAAOPS__MWAA_ENVIRONMENT_NAME", raising=False)
    client = AirflowApiClient.from_config()
    assert client.target == "http://airflow.example:8080/api/v2"
    assert client._transport.timeout == 2.5  # type: ignore[attr-defined]
    monkeypatch.setenv("AIRFLOW__MWAAOPS__MWAA_ENVIRONMENT_NAME", "prod-data")
    assert AirflowApiClient.from_config().target.strip() == "MWAA environment 'prod-data'"


# -- against a real airflow api-server (Airflow 3) --------------------------------------------------
def test_real_api_server_with_token_from_credentials(airflow_api_server: Any) -> None:
    client = AirflowApiClient.from_url(
        airflow_api_server.url, username="admin", password=airflow_api_server.password
    )
    assert client.get("/version")["version"].startswith("3.")
    with pytest.raises(AirflowApiError) as err:
        client.get("/pools/mwaaops-no-such-pool")
    assert err.value.status == 404
    assert f"{airflow_api_server.url}/api/v2/pools/mwaaops-no-such-pool" in str(err.value)


def test_paginate_beyond_the_servers_page_limit(airflow_api_server: Any) -> None:
    """The server caps pages at [api] maximum_page_limit (100); asking for more still gets all."""
    client = AirflowApiClient.from_url(airflow_api_server.url, token=airflow_api_server.token())
    names = [f"mwaaops_page_{i:03d}" for i in range(105)]
    for name in names:
        client.post("/pools", json={"name": name, "slots": 1})
    try:
        got = [p["name"] for p in client.paginate("/pools", {"order_by": "name"}, "pools", page_size=500)]
        assert client.detected_page_limit == 100
        assert [n for n in got if n.startswith("mwaaops_page_")] == names
        assert len(got) == len(set(got)) == client.get("/pools", {"limit": 1})["total_entries"]
    finally:
        for name in names:
            client.request("DELETE", f"/pools/{name}")


@pytest.fixture
def mwaa_environment(airflow_api_server: Any, aws_emulator: Any) -> str:
    from airflow_provider_mwaaops.testing.extensions import mwaa_environments, mwaa_rest_api

    aws_emulator.client("mwaa").create_environment(
        Name="mwaaops-test",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/mwaa",
        SourceBucketArn="arn:aws:s3:::mwaa-dags",
        DagS3Path="dags",
        NetworkConfiguration={"SubnetIds": ["subnet-1", "subnet-2"]},
        AirflowVersion="3.3.1",
    )
    mwaa_environments.wait_for_status("mwaaops-test")  # CREATING -> AVAILABLE
    mwaa_rest_api.attach_api_server("mwaaops-test", airflow_api_server.url, token=airflow_api_server.token())
    return "mwaaops-test"


def test_mwaa_invoke_rest_api_emulator_semantics(mwaa_environment: str, aws_emulator: Any) -> None:
    from botocore.exceptions import ClientError

    mwaa = aws_emulator.client("mwaa")
    answer = mwaa.invoke_rest_api(
        Name=mwaa_environment, Method="GET", Path="/pools", QueryParameters={"limit": 1}
    )
    assert answer["RestApiStatusCode"] == 200
    assert len(answer["RestApiResponse"]["pools"]) == 1
    with pytest.raises(ClientError) as err:
        mwaa.invoke_rest_api(Name=mwaa_environment, Method="GET", Path="/pools/mwaaops-nope")
    assert err.value.response["Error"]["Code"] == "RestApiClientException"
    assert err.value.response["RestApiStatusCode"] == 404
    assert "was not found" in err.value.response["RestApiResponse"]["detail"]
    with pytest.raises(ClientError) as err:
        mwaa.invoke_rest_api(Name=mwaa_environment, Method="GET", Path="/" + "x" * 64)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as err:
        mwaa.invoke_rest_api(Name="mwaaops-missing", Method="GET", Path="/pools")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert mwaa.get_environment(Name=mwaa_environment)["Environment"]["Status"] == "AVAILABLE"


def test_client_through_mwaa(mwaa_environment: str) -> None:
    client = AirflowApiClient.from_mwaa(mwaa_environment)
    assert client.get("/version")["version"].startswith("3.")
    created = client.post("/pools", json={"name": "mwaaops_via_mwaa", "slots": 2})
    assert created["slots"] == 2
    try:
        with pytest.raises(AirflowApiError) as err:
            client.get("/pools/mwaaops-nope")
        assert err.value.status == 404
        assert "GET MWAA environment 'mwaaops-test' /pools/mwaaops-nope answered 404" in str(err.value)
    finally:
        client.request("DELETE", "/pools/mwaaops_via_mwaa")
    missing = AirflowApiClient.from_mwaa("mwaaops-missing", attempts=3)
    with pytest.raises(AirflowApiError, match="ResourceNotFoundException") as err:
        missing.get("/pools")
    assert not err.value.retryable


def test_mwaa_pages_stay_under_the_response_limit(
    mwaa_environment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages sized from the bytes per row never reach InvokeRestApi's limit (lowered here)."""
    from airflow_provider_mwaaops.testing.extensions import mwaa_rest_api

    client = AirflowApiClient.from_mwaa(mwaa_environment, attempts=1)
    names = [f"mwaaops_big_{i:02d}" for i in range(30)]
    for name in names:
        client.post("/pools", json={"name": name, "slots": 1, "description": "d" * 300})
    try:
        monkeypatch.setattr(mwaa_rest_api, "RESPONSE_LIMIT_BYTES", 6_000)
        monkeypatch.setattr(client._transport, "response_limit_bytes", 6_000)
        got = [p["name"] for p in client.paginate("/pools", {"order_by": "name"}, "pools", page_size=100)]
        assert [n for n in got if n.startswith("mwaaops_big_")] == names
    finally:
        monkeypatch.undo()
        for name in names:
            client.request("DELETE", f"/pools/{name}")


def test_an_oversized_mwaa_answer_is_an_error_like_any_other(
    mwaa_environment: str, aws_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS documents the 6 MB limit, not its error: the emulator answers the API reference's generic
    InternalServerException, and the client fails with it, saying what to check."""
    from botocore.exceptions import ClientError

    from airflow_provider_mwaaops.testing.extensions import mwaa_rest_api

    monkeypatch.setattr(mwaa_rest_api, "RESPONSE_LIMIT_BYTES", 50)
    with pytest.raises(ClientError) as raw:
        aws_emulator.client("mwaa").invoke_rest_api(Name=mwaa_environment, Method="GET", Path="/pools")
    assert raw.value.response["Error"] == {
        "Code": "InternalServerException",
        "Message": "An internal error has occurred.",
    }
    client = AirflowApiClient.from_mwaa(mwaa_environment, attempts=1)
    with pytest.raises(AirflowApiError) as err:
        client.get("/pools", {"limit": 100})
    assert type(err.value) is AirflowApiError
    assert "InternalServerException" in str(err.value)
    assert "answer over 6 MB" in str(err.value)
