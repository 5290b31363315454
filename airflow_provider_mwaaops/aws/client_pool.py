"""One aiobotocore client per (connection, region, service, endpoint), shared by every trigger.

Why: the amazon provider's triggers each build their own hook, session and client. Measured with
1000 deferred tasks (see the performance brief) that costs 1.2-1.6 MB per trigger, mostly an SSL
context loaded with the whole CA bundle per client, and half a minute of event-loop stalls while
1000 connection lookups queue on one worker thread and 1000 clients load their JSON models. A
triggerer's triggers nearly all talk to a handful of (connection, region, service) combinations, so
sharing one client per combination makes a trigger cost a few kilobytes (a coroutine and its
requests) and start polling at once.

How a client is made (:meth:`AsyncClientPool.client`):

1. The Airflow connection is fetched without blocking the loop. Where the Task SDK has
   ``BaseHook.aget_connection`` (Airflow 3.1+) it is awaited on the loop: it speaks to the
   triggerer's supervisor asynchronously, so no thread has to reach back into the loop (the pattern
   behind the triggerer comms crashes apache/airflow#64620 and #67380). Elsewhere (Airflow 2.11,
   3.0) ``BaseHook.get_connection`` runs under asgiref's ``sync_to_async``, as the amazon provider
   does. asgiref rather than ``asyncio.to_thread``: on Airflow 3 a synchronous lookup reaches the
   supervisor through ``async_to_sync``, which finds the triggerer's loop only from a thread that
   ``sync_to_async`` started; from a plain thread it starts a second event loop on the same socket.
2. The rest is the amazon provider's own code, run under ``sync_to_async`` (:func:`resolve_client`):
   ``AwsConnectionWrapper`` (region, endpoint_url, verify, botocore config, assume-role settings
   from the connection extra) and the configured ``SessionFactory`` ``create_session(deferrable=
   True)``, which performs the STS AssumeRole call and returns an aiobotocore session with
   refreshable credentials. The service's JSON models are loaded there too, into one loader shared
   by all sessions, so the loop does not parse them.
3. Refreshes of assume-role credentials call the provider's blocking STS code; the pool wraps that
   callback so that it runs in a worker thread too and credentials keep working past expiry
   without stalling the loop.
4. The client is entered on the loop and cached.

Concurrent first callers for one key wait on a single creation task: one connection lookup, one
AssumeRole, one client, and if it fails every waiter sees that failure (a later call tries again).
The task is shielded, so a trigger cancelled while waiting does not abort a creation others need.

Clients are bound to the event loop that entered them (their aiohttp connector is), so the pool
keeps one set per running loop. When a loop shuts down through ``asyncio.run`` / ``asyncio.Runner``
(the triggerer, ``dag.test()`` inline triggers, pytest-asyncio) the pool closes that loop's clients
from the loop's async-generator shutdown hook; a loop closed without that hook is forgotten the next
time a new loop asks for a client. ``await pool.close()`` closes the calling loop's clients. (A
``WeakKeyDictionary`` keyed by loop would not do: every client holds its loop strongly through its
connector, so no entry would ever be collected.)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import inspect
import logging
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import botocore.loaders
from aiobotocore.config import AioConfig
from airflow.exceptions import AirflowNotFoundException
from asgiref.sync import sync_to_async
from botocore.config import Config
from botocore.exceptions import DataNotFoundError
from botocore.utils import get_environ_proxies

# Module-level on purpose: imported lazily in fetch_connection, compat (and Airflow modules behind
# it) loaded on the event loop and stalled it 0.3 s (Airflow 3.3) to 1.3 s (2.11) at the first client.
from airflow_provider_mwaaops.compat import BaseHook

if TYPE_CHECKING:
    from aiobotocore.client import AioBaseClient
    from aiobotocore.session import AioSession

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_CALLS_IN_FLIGHT",
    "DEFAULT_MAX_POOL_CONNECTIONS",
    "AsyncClientPool",
    "ClientRequest",
    "ClientResolver",
    "ResolvedClient",
    "fetch_connection",
    "resolve_client",
    "shared_pool",
]

log = logging.getLogger(__name__)

#: HTTP connections per client. One client serves every trigger of a key, and requests beyond the
#: limit queue in aiohttp instead of opening more sockets: 50 keeps a burst of first polls from
#: 1000 triggers flowing while staying well under the Step Functions / Glue API rate limits.
DEFAULT_MAX_POOL_CONNECTIONS = 50

#: botocore "standard" retry mode attempts (the first call included) per API call. The polling
#: layer backs off between polls; in-call retries only absorb a single dropped connection or 5xx,
#: and standard mode's retry quota, shared by all triggers on a client, stops a retry storm when a
#: service is down. More attempts would stretch one poll past the polling layer's own schedule.
DEFAULT_MAX_ATTEMPTS = 3

#: API calls one pooled client runs at once; further calls wait their turn BEFORE botocore builds,
#: signs and sends them. Without the bound, a thousand triggers polling at once (a triggerer
#: start, or triggers deferred together) each run botocore's request preparation (about a
#: millisecond of CPU) in the same event-loop iteration and stall the loop for a second or more;
#: with it, one iteration prepares at most this many requests. 16 calls in flight still serve
#: hundreds of calls per second at AWS's latencies, far above what polling triggers need.
DEFAULT_MAX_CALLS_IN_FLIGHT = 16

# One botocore loader for every session of the pool: each service's JSON model is parsed once per
# process instead of once per session (botocore/botocore#3078 is the same idea in the provider).
_SHARED_LOADER = botocore.loaders.Loader()

_T = TypeVar("_T")


# -- what a caller asks for, and what it resolves to -------------------------------------------------
def _config_fingerprint(config: Config | None) -> Hashable:
    """A hashable stand-in for a botocore Config (Config objects compare by identity)."""
    if config is None:
        return None
    options = getattr(config, "_user_provided_options", None)
    if not isinstance(options, Mapping):
        return ("id", id(config))
    return tuple(sorted((key, repr(value)) for key, value in options.items()))


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """The arguments of one :meth:`AsyncClientPool.client` call; ``key`` identifies its client."""

    service_name: str
    aws_conn_id: str | None = "aws_default"
    region_name: str | None = None
    verify: bool | str | None = None
    botocore_config: Config | None = field(default=None, compare=False)

    @property
    def key(self) -> Hashable:
        return (
            self.service_name,
            self.aws_conn_id,
            self.region_name,
            self.verify,
            _config_fingerprint(self.botocore_config),
        )


@dataclass(frozen=True, slots=True)
class ResolvedClient:
    """Everything needed to open a client, worked out from the connection off the event loop."""

    session: AioSession
    service_name: str
    aws_conn_id: str | None
    region_name: str | None
    endpoint_url: str | None
    verify: bool | str | None
    config: Config | None = field(default=None, compare=False)

    @property
    def key(self) -> Hashable:
        """Two requests that resolve to the same key share one client (explicit vs. default region)."""
        return (
            self.service_name,
            self.aws_conn_id,
            self.region_name,
            self.endpoint_url,
            self.verify,
            _config_fingerprint(self.config),
        )


#: The sync callable, run in a worker thread, that turns (request, connection or None) into a ResolvedClient.
ClientResolver = Callable[[ClientRequest, Any], ResolvedClient]


# -- resolution: connection lookup on the loop (async), everything else in a worker thread ---------
async def fetch_connection(aws_conn_id: str | None) -> Any | None:
    """The Airflow connection ``aws_conn_id`` without blocking the event loop, None if undefined.

    A missing connection falls back to boto's default credential chain (the MWAA execution role),
    as the amazon provider's hooks do.
    """
    if not aws_conn_id:
        return None
    aget_connection = getattr(BaseHook, "aget_connection", None)
    try:
        if aget_connection is not None:
            return await aget_connection(aws_conn_id)
        return await sync_to_async(BaseHook.get_connection)(aws_conn_id)
    except AirflowNotFoundException:
        log.warning("AWS connection %r is not defined; using boto's default credential chain", aws_conn_id)
        return None


def resolve_client(request: ClientRequest, connection: Any | None) -> ResolvedClient:
    """Build the aiobotocore session and client arguments with the amazon provider's own logic.

    Blocking (it may call STS AssumeRole, read profile files and load JSON models): the pool runs it
    in a worker thread. Same precedence rules as ``AwsBaseHook``: an explicit region, verify or
    botocore config wins over the connection extra.
    """
    from airflow.providers.amazon.aws.hooks.base_aws import resolve_session_factory
    from airflow.providers.amazon.aws.utils.connection_wrapper import AwsConnectionWrapper

    wrapper = AwsConnectionWrapper(
        conn=connection,
        region_name=request.region_name,
        botocore_config=request.botocore_config,
        verify=request.verify,
    )
    factory = resolve_session_factory()(
        conn=wrapper, region_name=wrapper.region_name, config=wrapper.botocore_config
    )
    session = factory.create_session(deferrable=True)
    session.register_component("data_loader", _SHARED_LOADER)
    _refresh_credentials_off_loop(session)
    _warm_up_models(session, request.service_name)
    return ResolvedClient(
        session=session,
        service_name=request.service_name,
        aws_conn_id=request.aws_conn_id,
        region_name=wrapper.region_name or session.get_config_variable("region"),
        endpoint_url=wrapper.get_service_endpoint_url(request.service_name),
        verify=wrapper.verify,
        config=wrapper.botocore_config,
    )


def _off_loop(func: Callable[[], _T]) -> Callable[[], Awaitable[_T]]:
    """An async version of ``func`` that runs it in asgiref's worker thread."""

    @functools.wraps(func)
    async def run() -> _T:
        return await sync_to_async(func)()

    return run


def _refresh_credentials_off_loop(session: AioSession) -> None:
    """Make refreshable credentials (assume role, web identity) refresh in a worker thread.

    The provider hands aiobotocore its synchronous STS refresh callback; aiobotocore awaits the
    callback's result if it is awaitable and otherwise calls it on the loop, which would freeze
    every trigger for the length of an STS round trip each time the role credentials expire.
    """
    credentials = getattr(session, "_credentials", None)
    refresh = getattr(credentials, "_refresh_using", None)
    if refresh is None or inspect.iscoroutinefunction(refresh):
        return
    credentials._refresh_using = _off_loop(refresh)  # type: ignore[union-attr]


def _warm_up_models(session: AioSession, service_name: str) -> None:
    """Parse the JSON a client needs at creation here, in the worker thread, not on the loop."""
    loader = session.get_component("data_loader")
    for name in ("endpoints", "partitions", "_retry", "sdk-default-configuration"):
        with contextlib.suppress(DataNotFoundError):
            loader.load_data(name)
    for type_name in ("service-2", "endpoint-rule-set-1"):
        with contextlib.suppress(DataNotFoundError):
            loader.load_service_model(service_name, type_name)


# -- the pool ------------------------------------------------------------------------------------
@dataclass(eq=False)
class _LoopClients:
    """The clients of one event loop, and the creations under way on it."""

    loop: asyncio.AbstractEventLoop
    clients: dict[Hashable, AioBaseClient] = field(default_factory=dict)
    by_resolved: dict[Hashable, AioBaseClient] = field(default_factory=dict)
    pending: dict[Hashable, asyncio.Task[AioBaseClient]] = field(default_factory=dict)
    stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    sentinel: AsyncGenerator[None, None] | None = None
    closed: bool = False


def _consume_result(task: asyncio.Task[Any]) -> None:
    """Retrieve a finished creation's exception so asyncio does not log it when all waiters left."""
    if not task.cancelled():
        task.exception()


class AsyncClientPool:
    """Ready aiobotocore clients shared by all coroutines of an event loop; see the module docs.

    Retries: clients use botocore's ``standard`` mode with :data:`DEFAULT_MAX_ATTEMPTS` attempts,
    not zero retries, although the polling layer backs off between polls. A poll that hits one
    dropped connection or 5xx then still gets its answer instead of waiting a whole polling
    interval, and standard mode's client-side retry quota, shared by every trigger on the client,
    stops in-call retries altogether while a service is failing, leaving the backoff to the polling
    layer. Throttling errors that survive the attempts reach the caller, where
    :func:`~airflow_provider_mwaaops.aws.errors.is_throttling` tells the polling layer to slow down.

    :param max_pool_connections: HTTP connections per client (one aiohttp connector per client),
        unless the connection extra's ``config_kwargs`` or the caller's ``botocore_config`` sets it.
    :param max_attempts: botocore standard-mode attempts per call, unless configured as above.
    :param max_calls_in_flight: API calls a client runs at once (see
        :data:`DEFAULT_MAX_CALLS_IN_FLIGHT`); the others wait, in order, before any work is done
        for them.
    :param freeze_long_lived_objects: on the first loop that uses the pool, ``gc.freeze()`` the
        objects the process already has (Airflow's, mostly; once per process), so that Python's
        full collections stop walking them: one such collection stalled the loop for 0.8 s when
        1000 deferred waits started together.
    :param resolver: the blocking half of client resolution, run in a worker thread; defaults to
        :func:`resolve_client`. Tests and custom credential schemes replace it.
    """

    def __init__(
        self,
        *,
        max_pool_connections: int = DEFAULT_MAX_POOL_CONNECTIONS,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        max_calls_in_flight: int = DEFAULT_MAX_CALLS_IN_FLIGHT,
        freeze_long_lived_objects: bool = True,
        resolver: ClientResolver | None = None,
    ) -> None:
        if max_pool_connections < 1 or max_attempts < 1 or max_calls_in_flight < 1:
            raise ValueError("max_pool_connections, max_attempts and max_calls_in_flight must be at least 1")
        self.max_pool_connections = max_pool_connections
        self.max_attempts = max_attempts
        self.max_calls_in_flight = max_calls_in_flight
        self.freeze_long_lived_objects = freeze_long_lived_objects
        self._resolver: ClientResolver = resolver or resolve_client
        self._loops: dict[asyncio.AbstractEventLoop, _LoopClients] = {}
        self._loops_lock = threading.Lock()

    async def client(
        self,
        service_name: str,
        *,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: Config | Mapping[str, Any] | None = None,
    ) -> AioBaseClient:
        """The shared, already entered client for these arguments on the running loop.

        Do not close it or use it as a context manager: other triggers are using it. A
        ``botocore_config`` may be given as a dict (how triggers serialize it).
        """
        if isinstance(botocore_config, Mapping):
            botocore_config = Config(**botocore_config)
        request = ClientRequest(service_name, aws_conn_id, region_name, verify, botocore_config)
        state = await self._state()
        client = state.clients.get(request.key)
        if client is not None:
            return client
        return await self._single_flight(
            state, ("request", request.key), lambda: self._create(state, request)
        )

    async def close(self) -> None:
        """Close the running loop's clients and forget loops that have been closed."""
        state = self._loops.get(asyncio.get_running_loop())
        if state is not None:
            await self._discard(state)
        self._forget_closed_loops()

    # -- per-loop state ------------------------------------------------------------------------
    async def _state(self) -> _LoopClients:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is not None:
            return state
        self._forget_closed_loops()
        if self.freeze_long_lived_objects:
            _freeze_long_lived_objects()
        with self._loops_lock:
            state = self._loops.setdefault(loop, _LoopClients(loop))
        if state.sentinel is None:
            # The loop's async-generator shutdown (asyncio.run/Runner) closes this generator while
            # the loop still runs, and its finally block closes the loop's clients.
            state.sentinel = self._lifetime(state)
            await state.sentinel.__anext__()
        return state

    async def _lifetime(self, state: _LoopClients) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await self._discard(state)

    def _forget_closed_loops(self) -> None:
        """Drop clients of loops closed without async-generator shutdown (they cannot be awaited)."""
        with self._loops_lock:
            for loop in [loop for loop in self._loops if loop.is_closed()]:
                state = self._loops.pop(loop)
                state.closed = True

    async def _discard(self, state: _LoopClients) -> None:
        with self._loops_lock:
            if self._loops.get(state.loop) is state:
                del self._loops[state.loop]
        if state.closed:
            return
        state.closed = True
        for task in list(state.pending.values()):
            task.cancel()
        clients = len(state.by_resolved)
        state.clients.clear()
        state.by_resolved.clear()
        await state.stack.aclose()
        log.debug("Closed %d pooled AWS client(s)", clients)

    # -- creation ------------------------------------------------------------------------------
    @staticmethod
    async def _single_flight(
        state: _LoopClients, key: Hashable, create: Callable[[], Coroutine[Any, Any, AioBaseClient]]
    ) -> AioBaseClient:
        """Run ``create`` once for all concurrent callers with ``key``; each awaits the same task."""
        task = state.pending.get(key)
        if task is None:
            task = state.loop.create_task(create())
            state.pending[key] = task
            task.add_done_callback(lambda done: state.pending.pop(key, None))
            task.add_done_callback(_consume_result)
        return await asyncio.shield(task)

    async def _create(self, state: _LoopClients, request: ClientRequest) -> AioBaseClient:
        connection = await fetch_connection(request.aws_conn_id)
        resolved = await sync_to_async(self._resolver)(request, connection)
        client = state.by_resolved.get(resolved.key)
        if client is None:
            client = await self._single_flight(
                state, ("resolved", resolved.key), lambda: self._open(state, resolved)
            )
        state.clients[request.key] = client
        return client

    async def _open(self, state: _LoopClients, resolved: ResolvedClient) -> AioBaseClient:
        creator = resolved.session.create_client(
            resolved.service_name,
            region_name=resolved.region_name,
            endpoint_url=resolved.endpoint_url,
            verify=self._effective_verify(resolved),
            config=self._client_config(resolved.config),
        )
        client = await state.stack.enter_async_context(creator)
        if state.closed:  # the pool was closed for this loop while the client was being made
            await creator.__aexit__(None, None, None)
            raise RuntimeError("AsyncClientPool was closed while a client was being created")
        _bound_calls_in_flight(client, self.max_calls_in_flight)
        _reuse_user_agent(client)
        state.by_resolved[resolved.key] = client
        log.debug(
            "Opened pooled %s client (conn %r, region %s, endpoint %s)",
            resolved.service_name,
            resolved.aws_conn_id,
            resolved.region_name,
            resolved.endpoint_url or "default",
        )
        return client

    def _client_config(self, config: Config | None) -> AioConfig:
        """Pool defaults under whatever the caller or the connection configured."""
        defaults = AioConfig(
            retries={"mode": "standard", "total_max_attempts": self.max_attempts},
            max_pool_connections=self.max_pool_connections,
        )
        return defaults.merge(config) if config is not None else defaults

    @staticmethod
    def _effective_verify(resolved: ResolvedClient) -> bool | str | None:
        """``False`` for a plain-http endpoint reached without a proxy, else the configured value.

        aiobotocore builds an SSL context for every client whose ``verify`` is true, loading the
        whole CA bundle (~680 KB) even when the endpoint is ``http://`` (moto, LocalStack, a VPC
        proxy). Certificate verification cannot apply to a plain-http endpoint, so turning it off
        changes nothing but the memory. With an environment proxy the proxy hop may be TLS, so the
        configured value is kept.
        """
        endpoint = resolved.endpoint_url
        if not endpoint or urlsplit(endpoint).scheme != "http":
            return resolved.verify
        if get_environ_proxies(endpoint).get("http") or getattr(resolved.config, "proxies", None):
            return resolved.verify
        return False


_frozen = False


def _freeze_long_lived_objects() -> None:
    """``gc.freeze()`` once per process, when the first event loop starts using the pool.

    A triggerer (or a worker running a synchronous wait) holds about a million objects from
    Airflow's imports that live as long as the process. Python's full (generation 2) collection
    walks all of them: measured with 1000 deferred waits starting together, one full collection
    stopped the event loop for 0.8 s, which was the whole start-up stall. Frozen objects are no
    longer scanned (Airflow's DAG processor manager and LocalExecutor call ``gc.freeze`` for the
    same reason); they are still freed by reference counting, only a reference cycle among them
    would now stay in memory. Objects created later (the triggers themselves) are collected as
    usual.
    """
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()


def _bound_calls_in_flight(client: AioBaseClient, limit: int) -> None:
    """Let at most ``limit`` API calls of ``client`` run at once (see DEFAULT_MAX_CALLS_IN_FLIGHT).

    Every operation method, paginator and waiter of an aiobotocore client goes through its
    ``_make_api_call``; the bound wraps it on this instance, so the semaphore is taken before
    botocore does any work for the call.
    """
    semaphore = asyncio.Semaphore(limit)
    make_api_call = client._make_api_call

    async def bounded(operation_name: str, api_params: dict[str, Any]) -> Any:
        async with semaphore:
            return await make_api_call(operation_name, api_params)

    client._make_api_call = bounded  # type: ignore[method-assign]


def _reuse_user_agent(client: AioBaseClient) -> None:
    """Build the client's User-Agent header once per set of SDK feature flags, not per request.

    botocore rebuilds the header for every request (``rebuild_and_replace_user_agent_handler``)
    from values that are fixed for a client (SDK, OS, Python, config, ``user_agent_extra``) plus
    the feature flags of the call (retry mode, paginator, waiter...). Measured with 1000 polling
    triggers, that rebuild was an eighth of the event loop's time per call. The same inputs give
    the same string, so it is kept per (client features, call features). Skipped where botocore
    builds the header differently (older versions), which only costs the time it always did.
    """
    creator = getattr(client, "_user_agent_creator", None)
    build = getattr(creator, "to_string", None)
    if build is None or not hasattr(creator, "_build_feature_metadata"):
        return
    try:
        from botocore.context import get_context
    except ImportError:  # botocore without per-call feature context
        return
    built: dict[tuple[frozenset[str], frozenset[str]], str] = {}

    def to_string() -> str:
        context = get_context()
        key = (
            frozenset(getattr(creator, "_client_features", None) or ()),
            frozenset(context.features if context is not None else ()),
        )
        user_agent = built.get(key)
        if user_agent is None:
            user_agent = built[key] = build()
        return user_agent

    creator.to_string = to_string  # type: ignore[union-attr]


_shared_pool: AsyncClientPool | None = None
_shared_pool_lock = threading.Lock()


def shared_pool() -> AsyncClientPool:
    """The process-wide pool that all triggers of this package use."""
    global _shared_pool
    if _shared_pool is None:
        with _shared_pool_lock:
            if _shared_pool is None:
                _shared_pool = AsyncClientPool()
    return _shared_pool
