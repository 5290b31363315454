"""AsyncClientPool against the embedded AWS: sharing, keys, loops, threads, credentials, closing."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiobotocore.client import AioBaseClient
from aiobotocore.session import AioSession

from airflow_provider_mwaaops.aws.client_pool import (
    AsyncClientPool,
    ClientRequest,
    ResolvedClient,
    fetch_connection,
    resolve_client,
    shared_pool,
)
from airflow_provider_mwaaops.testing.emulator import AwsEmulator


class RecordingResolver:
    """The real resolver, counting calls and recording the thread each ran in."""

    def __init__(self, fail_with: BaseException | None = None) -> None:
        self.calls: list[ClientRequest] = []
        self.threads: list[threading.Thread] = []
        self.fail_with = fail_with

    def __call__(self, request: ClientRequest, connection: Any) -> ResolvedClient:
        self.calls.append(request)
        self.threads.append(threading.current_thread())
        if self.fail_with is not None:
            raise self.fail_with
        return resolve_client(request, connection)


@pytest.fixture
def created(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Service names of every aiobotocore client created during the test."""
    names: list[str] = []
    original = AioSession.create_client

    def counting(self: AioSession, service_name: str, *args: Any, **kwargs: Any) -> Any:
        names.append(service_name)
        return original(self, service_name, *args, **kwargs)

    monkeypatch.setattr(AioSession, "create_client", counting)
    return names


@pytest.fixture
def closed(monkeypatch: pytest.MonkeyPatch) -> list[AioBaseClient]:
    """Every aiobotocore client closed during the test."""
    clients: list[AioBaseClient] = []
    original = AioBaseClient.__aexit__

    async def recording(self: AioBaseClient, *exc_info: Any) -> None:
        clients.append(self)
        await original(self, *exc_info)

    monkeypatch.setattr(AioBaseClient, "__aexit__", recording)
    return clients


@pytest.fixture
def second_connection(aws_emulator: AwsEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """A second AWS connection to the emulator, in another default region."""
    extra = {"region_name": "eu-west-1", "endpoint_url": aws_emulator.endpoint_url}
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_SECOND",
        json.dumps({"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra}),
    )
    return "aws_second"


@pytest.fixture
def pool() -> AsyncClientPool:
    return AsyncClientPool()


async def test_concurrent_first_callers_share_one_client(
    aws_emulator: AwsEmulator, created: list[str]
) -> None:
    resolver = RecordingResolver()
    pool = AsyncClientPool(resolver=resolver)
    clients = await asyncio.gather(*(pool.client("stepfunctions") for _ in range(200)))

    assert len({id(client) for client in clients}) == 1
    assert created == ["stepfunctions"]
    assert len(resolver.calls) == 1
    responses = await asyncio.gather(*(client.list_state_machines() for client in clients))
    assert all(response["stateMachines"] == [] for response in responses)

    # Later callers get the cached client without another resolution.
    assert await pool.client("stepfunctions") is clients[0]
    assert len(resolver.calls) == 1
    await pool.close()


async def test_the_client_is_configured_for_the_emulator_and_the_pool(
    aws_emulator: AwsEmulator, pool: AsyncClientPool
) -> None:
    client = await pool.client("stepfunctions")
    assert client.meta.endpoint_url == aws_emulator.endpoint_url
    assert client.meta.region_name == aws_emulator.region_name
    assert client.meta.config.max_pool_connections == pool.max_pool_connections
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": pool.max_attempts}
    await pool.close()


async def test_keys_region_conn_service_and_config(
    aws_emulator: AwsEmulator, second_connection: str, pool: AsyncClientPool, created: list[str]
) -> None:
    default = await pool.client("stepfunctions")
    other_region = await pool.client("stepfunctions", region_name="eu-west-1")
    other_conn = await pool.client("stepfunctions", aws_conn_id=second_connection)
    other_service = await pool.client("glue")
    other_config = await pool.client("stepfunctions", botocore_config={"max_pool_connections": 5})

    clients = [default, other_region, other_conn, other_service, other_config]
    assert len({id(client) for client in clients}) == 5
    assert len(created) == 5
    assert other_region.meta.region_name == "eu-west-1"
    assert other_conn.meta.region_name == "eu-west-1"
    assert other_config.meta.config.max_pool_connections == 5
    for client in (default, other_region, other_conn, other_config):
        assert (await client.list_state_machines())["stateMachines"] == []
    assert (await other_service.get_jobs())["Jobs"] == []
    await pool.close()


async def test_connection_extra_config_overrides_pool_defaults(
    aws_emulator: AwsEmulator, monkeypatch: pytest.MonkeyPatch, pool: AsyncClientPool
) -> None:
    extra = {
        "region_name": aws_emulator.region_name,
        "endpoint_url": aws_emulator.endpoint_url,
        "config_kwargs": {"max_pool_connections": 7, "retries": {"mode": "adaptive", "max_attempts": 2}},
    }
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_TUNED",
        json.dumps({"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra}),
    )
    client = await pool.client("stepfunctions", aws_conn_id="aws_tuned")
    assert client.meta.config.max_pool_connections == 7
    assert client.meta.config.retries["mode"] == "adaptive"
    assert (await client.list_state_machines())["stateMachines"] == []
    await pool.close()


async def test_explicit_default_region_shares_the_connections_client(
    aws_emulator: AwsEmulator, pool: AsyncClientPool, created: list[str]
) -> None:
    implicit = await pool.client("stepfunctions")
    explicit = await pool.client("stepfunctions", region_name=aws_emulator.region_name)
    assert implicit is explicit
    assert created == ["stepfunctions"]
    await pool.close()


async def test_resolution_runs_off_the_event_loop_thread(aws_emulator: AwsEmulator) -> None:
    resolver = RecordingResolver()
    pool = AsyncClientPool(resolver=resolver)
    await pool.client("stepfunctions")
    loop_thread = threading.current_thread()
    assert resolver.threads
    assert all(thread is not loop_thread for thread in resolver.threads)
    await pool.close()


async def test_a_failed_creation_fails_every_waiter_once_and_is_retried_later(
    aws_emulator: AwsEmulator,
) -> None:
    resolver = RecordingResolver(fail_with=RuntimeError("sts says no"))
    pool = AsyncClientPool(resolver=resolver)
    results = await asyncio.gather(*(pool.client("stepfunctions") for _ in range(20)), return_exceptions=True)
    assert all(isinstance(result, RuntimeError) and str(result) == "sts says no" for result in results)
    assert len(resolver.calls) == 1

    resolver.fail_with = None
    client = await pool.client("stepfunctions")
    assert (await client.list_state_machines())["stateMachines"] == []
    assert len(resolver.calls) == 2
    await pool.close()


async def test_a_cancelled_waiter_does_not_abort_the_creation(
    aws_emulator: AwsEmulator, pool: AsyncClientPool
) -> None:
    first = asyncio.ensure_future(pool.client("stepfunctions"))
    second = asyncio.ensure_future(pool.client("stepfunctions"))
    await asyncio.sleep(0)
    first.cancel()
    client = await second
    assert first.cancelled()
    assert await pool.client("stepfunctions") is client
    await pool.close()


async def test_close_closes_every_client_and_later_calls_reopen(
    aws_emulator: AwsEmulator, pool: AsyncClientPool, closed: list[AioBaseClient]
) -> None:
    sfn = await pool.client("stepfunctions")
    glue = await pool.client("glue")
    await pool.close()
    assert {id(client) for client in closed} == {id(sfn), id(glue)}

    reopened = await pool.client("stepfunctions")
    assert reopened is not sfn
    assert (await reopened.list_state_machines())["stateMachines"] == []
    await pool.close()
    await pool.close()  # idempotent
    assert len(closed) == 3


def test_each_event_loop_gets_its_own_client_and_a_finished_loop_closes_its_clients(
    aws_emulator: AwsEmulator, closed: list[AioBaseClient], created: list[str]
) -> None:
    pool = AsyncClientPool()

    async def use() -> AioBaseClient:
        client = await pool.client("stepfunctions")
        await client.list_state_machines()
        return client

    first = asyncio.run(use())
    assert closed == [first]  # asyncio.run's async-generator shutdown closed it, on its own loop
    second = asyncio.run(use())
    assert second is not first
    assert closed == [first, second]
    assert created == ["stepfunctions", "stepfunctions"]


def test_a_loop_closed_without_shutdown_is_forgotten(aws_emulator: AwsEmulator) -> None:
    pool = AsyncClientPool()
    old_loop = asyncio.new_event_loop()
    first = old_loop.run_until_complete(pool.client("stepfunctions"))
    old_loop.close()  # no shutdown_asyncgens: the pool cannot close the client on that loop

    async def fresh() -> AioBaseClient:
        client = await pool.client("stepfunctions")
        await client.list_state_machines()
        return client

    second = asyncio.run(fresh())
    assert second is not first
    assert old_loop not in pool._loops


async def test_assume_role_credentials_resolve_and_refresh_off_the_loop(
    aws_emulator: AwsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.providers.amazon.aws.hooks.base_aws import BaseSessionFactory

    extra = {
        "region_name": aws_emulator.region_name,
        "endpoint_url": aws_emulator.endpoint_url,
        "role_arn": "arn:aws:iam::123456789012:role/mwaa-pool-test",
    }
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_ROLE",
        json.dumps({"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra}),
    )
    threads: list[threading.Thread] = []
    original = BaseSessionFactory._refresh_credentials

    def recording(self: BaseSessionFactory) -> dict[str, Any]:
        threads.append(threading.current_thread())
        credentials = original(self)
        if len(threads) == 1:  # first credentials about to expire: the first call must refresh them
            soon = datetime.now(UTC) + timedelta(minutes=1)
            credentials["expiry_time"] = soon.isoformat()
        return credentials

    monkeypatch.setattr(BaseSessionFactory, "_refresh_credentials", recording)
    pool = AsyncClientPool()
    client = await pool.client("stepfunctions", aws_conn_id="aws_role")
    assert len(threads) == 1  # AssumeRole at resolution
    assert (await client.list_state_machines())["stateMachines"] == []
    assert len(threads) == 2  # refreshed before signing, because the first credentials expire soon
    assert (await client.list_state_machines())["stateMachines"] == []
    assert len(threads) == 2  # the refreshed credentials are good for an hour
    loop_thread = threading.current_thread()
    assert all(thread is not loop_thread for thread in threads)
    await pool.close()


async def test_fetch_connection_of_an_undefined_connection_is_none(mwaaops_airflow: Any) -> None:
    assert await fetch_connection("mwaaops_no_such_connection") is None
    assert await fetch_connection(None) is None


async def test_no_connection_uses_the_default_credential_chain(aws_emulator: AwsEmulator) -> None:
    pool = AsyncClientPool()
    client = await pool.client("stepfunctions", aws_conn_id=None, region_name="us-west-2")
    assert client.meta.region_name == "us-west-2"
    assert (await client.list_state_machines())["stateMachines"] == []  # AWS_ENDPOINT_URL + env creds
    await pool.close()


def _resolved(
    endpoint_url: str | None, verify: bool | str | None = None, config: Any = None
) -> ResolvedClient:
    return ResolvedClient(
        session=None,  # type: ignore[arg-type]
        service_name="stepfunctions",
        aws_conn_id="aws_default",
        region_name="us-east-1",
        endpoint_url=endpoint_url,
        verify=verify,
        config=config,
    )


def test_plain_http_endpoints_skip_certificate_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    effective = AsyncClientPool._effective_verify
    assert effective(_resolved("http://127.0.0.1:5000")) is False
    assert effective(_resolved("http://127.0.0.1:5000", verify="/etc/ca.pem")) is False
    assert effective(_resolved("https://vpce.example.com", verify="/etc/ca.pem")) == "/etc/ca.pem"
    assert effective(_resolved(None)) is None
    assert effective(_resolved(None, verify=False)) is False

    from botocore.config import Config

    proxied = Config(proxies={"http": "https://proxy.example.com:3128"})
    assert effective(_resolved("http://moto:5000", config=proxied)) is None
    monkeypatch.setenv("HTTP_PROXY", "https://proxy.example.com:3128")
    monkeypatch.setenv("NO_PROXY", "")
    assert effective(_resolved("http://moto:5000")) is None


def test_shared_pool_is_one_per_process() -> None:
    assert shared_pool() is shared_pool()
    assert isinstance(shared_pool(), AsyncClientPool)


def test_pool_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AsyncClientPool(max_pool_connections=0)
    with pytest.raises(ValueError, match="at least 1"):
        AsyncClientPool(max_calls_in_flight=0)


async def test_calls_in_flight_are_bounded_per_client(
    aws_emulator: AwsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More concurrent calls than the bound: the extra ones wait before botocore touches them."""
    running = {"now": 0, "peak": 0}
    original = AioBaseClient._make_api_call

    async def tracked(self: AioBaseClient, operation_name: str, api_params: dict) -> Any:
        running["now"] += 1
        running["peak"] = max(running["peak"], running["now"])
        try:
            await asyncio.sleep(0.05)
            return await original(self, operation_name, api_params)
        finally:
            running["now"] -= 1

    monkeypatch.setattr(AioBaseClient, "_make_api_call", tracked)
    pool = AsyncClientPool(max_calls_in_flight=3)
    client = await pool.client("stepfunctions")

    answers = await asyncio.gather(*(client.list_state_machines() for _ in range(12)))

    assert [answer["stateMachines"] for answer in answers] == [[]] * 12
    assert running["peak"] == 3
    paginated = [page async for page in client.get_paginator("list_state_machines").paginate()]
    assert paginated[0]["stateMachines"] == []  # paginators go through the bound too
    await pool.close()


async def test_the_user_agent_is_built_once_per_feature_set_and_stays_exact(
    aws_emulator: AwsEmulator, pool: AsyncClientPool
) -> None:
    from botocore.context import start_as_current_context
    from botocore.useragent import register_feature_id

    client = await pool.client("stepfunctions", botocore_config={"user_agent_extra": "extra/1"})
    creator = client._user_agent_creator
    uncached = type(creator).to_string

    plain = creator.to_string()
    assert plain == uncached(creator)
    assert creator.to_string() is plain  # reused, not rebuilt
    assert plain.endswith("extra/1")
    with start_as_current_context():
        register_feature_id("PAGINATOR")
        with_feature = creator.to_string()
        assert with_feature == uncached(creator)
    assert with_feature != plain
    assert creator.to_string() is plain
    await pool.close()


def test_the_first_loop_freezes_the_objects_the_process_already_has(
    aws_emulator: AwsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from airflow_provider_mwaaops.aws import client_pool

    async def use(pool: AsyncClientPool) -> None:
        await pool.client("stepfunctions")
        await pool.close()

    monkeypatch.setattr(client_pool, "_frozen", False)
    gc.unfreeze()
    asyncio.run(use(AsyncClientPool(freeze_long_lived_objects=False)))
    assert gc.get_freeze_count() == 0
    asyncio.run(use(AsyncClientPool()))
    assert gc.get_freeze_count() > 0
