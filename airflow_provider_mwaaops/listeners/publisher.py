"""Publishing listener events to SNS and EventBridge without ever holding up Airflow.

Listener hooks run inside Airflow's own components (API server, scheduler, triggerer, dag
processor, task processes) on their request or loop threads. A slow or unreachable AWS endpoint
there would stall whatever Airflow was doing, so a hook only ever *enqueues* (``put_nowait`` on a
bounded queue): a daemon worker thread owned by this module does the network calls, with short
botocore timeouts and clients created lazily in that thread. A full queue drops the event, counts
the drop and logs it; a failed call is counted and logged. Nothing here raises into the caller.

Short-lived processes would lose what is still queued when they exit, so:

* an ``atexit`` handler waits (bounded) for the queue to drain; it runs at a normal interpreter
  exit and in Airflow 3 task processes (the task supervisor runs atexit functions registered after
  its fork);
* Airflow 2.11 task processes are forked and end with ``os._exit()``, which skips atexit, so the
  listener calls :meth:`EventPublisher.flush` from the task-instance success/failure hooks, after
  Airflow has already recorded the task's end date and state.

Airflow's components fork (the dag processor for every file it parses, the LocalExecutor's
workers, the task supervisor). A fork copies Python's per-module import locks as they are: had the
worker been importing (creating its first client imports boto3 and the amazon provider), the child
would wait forever for a module another thread was loading, seen as a DAG file import timeout in
the dag processor. So a fork waits until the worker has finished creating a client; see
``_hold_publishers_for_fork``.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import queue
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: Connect timeout of the publishing clients (seconds). With the read timeout and the attempts
#: below, a hanging endpoint costs the worker thread a bounded time and the caller nothing.
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 5.0
MAX_ATTEMPTS = 2
#: How long a process about to exit waits for queued events (atexit, end of a 2.11 task).
FLUSH_TIMEOUT_S = 5.0
#: SNS and EventBridge both reject messages above 256 KiB; keep a margin for attributes/envelope.
MAX_MESSAGE_BYTES = 250 * 1024
#: Drops are logged the first time and then once per this many, so a flood cannot flood the log.
DROP_LOG_EVERY = 100
#: How long a fork waits for the worker to finish creating a client (what imports modules); a
#: connection read from a slow secrets backend is the only thing that makes it long.
FORK_WAIT_S = 10.0

EVENTBRIDGE_SOURCE = "mwaaops.airflow"


@dataclass(frozen=True)
class PublishTargets:
    """Where one event goes; empty ``sns_topic_arn`` / ``event_bus_name`` disable that target."""

    sns_topic_arn: str = ""
    event_bus_name: str = ""
    aws_conn_id: str | None = "aws_default"
    region_name: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.sns_topic_arn or self.event_bus_name)


@dataclass
class PublisherStats:
    """Counters since the process started (reset in a forked child)."""

    enqueued: int = 0
    published: int = 0
    dropped: int = 0
    failed: int = 0
    last_error: str = ""
    errors: list[str] = field(default_factory=list)


class ClientFactory(Protocol):
    def __call__(self, service: str, targets: PublishTargets) -> Any: ...


def aws_hook_client(service: str, targets: PublishTargets) -> Any:
    """A boto3 client from the Airflow connection, with short timeouts and few retries.

    Goes through the amazon provider's hook so that every credential form a connection supports
    (keys, role assumption, MWAA's execution role) works here too.
    """
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    from botocore.config import Config

    config = Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
    )
    hook = AwsBaseHook(
        aws_conn_id=targets.aws_conn_id,
        region_name=targets.region_name or None,
        client_type=service,
        config=config,
    )
    return hook.conn


def sns_message_attributes(payload: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Attributes that SNS subscription filter policies can match on."""
    attributes = {
        "event_type": payload.get("event_type"),
        "asset_uri": (payload.get("asset") or {}).get("uri"),
        "environment": payload.get("environment"),
        "source_dag_id": (payload.get("event") or {}).get("source_dag_id"),
    }
    return {
        name: {"DataType": "String", "StringValue": str(value)[:1024]}
        for name, value in attributes.items()
        if value
    }


def fit_message(payload: dict[str, Any]) -> str:
    """The payload as JSON within the SNS/EventBridge size limit.

    Only user-supplied ``extra`` dictionaries can grow without bound; when the message is too big
    they are replaced by a marker instead of losing the whole event.
    """
    body = json.dumps(payload, default=str, separators=(",", ":"))
    if len(body.encode()) <= MAX_MESSAGE_BYTES:
        return body
    trimmed = json.loads(body)
    for section in ("event", "asset"):
        if isinstance(trimmed.get(section), dict) and trimmed[section].get("extra"):
            trimmed[section]["extra"] = {"mwaaops_truncated": True}
    return json.dumps(trimmed, default=str, separators=(",", ":"))


class EventPublisher:
    """A bounded queue and one daemon thread that publishes what the listener hands it."""

    def __init__(
        self,
        max_queue_size: int = 1000,
        client_factory: ClientFactory = aws_hook_client,
        flush_timeout: float = FLUSH_TIMEOUT_S,
    ):
        self.max_queue_size = max(1, max_queue_size)
        self.flush_timeout = flush_timeout
        self._client_factory = client_factory
        self._lock = threading.Lock()
        self._atexit_registered = False
        # Held by the worker while it creates a client, and by a thread about to fork.
        self._creating_client = threading.Lock()
        self._held_for_fork = False
        self._reset_for_process()
        _publishers.add(self)

    def _reset_for_process(self) -> None:
        # A forked child inherits the parent's queue but not its thread: start afresh there.
        self._pid = os.getpid()
        self._queue: queue.Queue[tuple[dict[str, Any], PublishTargets]] = queue.Queue(self.max_queue_size)
        self._thread: threading.Thread | None = None
        self._clients: dict[tuple[str, str | None, str | None], Any] = {}
        self.stats = PublisherStats()

    # -- caller side (Airflow's threads): never blocks, never raises -----------------------------
    def publish(self, payload: dict[str, Any], targets: PublishTargets) -> bool:
        """Queue one event; False when it was dropped (queue full) or nothing is configured."""
        try:
            if not targets.enabled:
                return False
            if self._pid != os.getpid():
                self._reset_for_process()
            self._ensure_worker()
            try:
                self._queue.put_nowait((payload, targets))
            except queue.Full:
                self._count_drop(payload)
                return False
            self.stats.enqueued += 1
            return True
        except Exception:
            log.warning("mwaaops: could not queue an asset event for publishing", exc_info=True)
            return False

    def flush(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for every queued event to be handled; True if drained."""
        if self._pid != os.getpid() or self._thread is None:
            return True
        deadline = time.monotonic() + (self.flush_timeout if timeout is None else timeout)
        condition = self._queue.all_tasks_done
        with condition:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    log.warning(
                        "mwaaops: %d asset event(s) still unpublished after waiting; they are lost",
                        self._queue.unfinished_tasks,
                    )
                    return False
                condition.wait(remaining)
        return True

    @property
    def pending(self) -> int:
        return self._queue.unfinished_tasks

    def _count_drop(self, payload: dict[str, Any]) -> None:
        self.stats.dropped += 1
        if self.stats.dropped == 1 or self.stats.dropped % DROP_LOG_EVERY == 0:
            log.warning(
                "mwaaops: asset event queue full (%d); dropped %s %s (%d dropped so far)",
                self.max_queue_size,
                payload.get("event_type"),
                (payload.get("asset") or {}).get("uri"),
                self.stats.dropped,
            )

    def _ensure_worker(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="mwaaops-asset-events", daemon=True)
            self._thread.start()
            if not self._atexit_registered:
                atexit.register(self._flush_at_exit)
                self._atexit_registered = True

    def _flush_at_exit(self) -> None:
        try:
            self.flush()
        except Exception:  # pragma: no cover - interpreter shutdown
            log.debug("mwaaops: flush at exit failed", exc_info=True)

    # -- worker thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            payload, targets = self._queue.get()
            try:
                self._send(payload, targets)
            except Exception as err:  # every failure is counted and logged, never raised
                self.stats.failed += 1
                self.stats.last_error = f"{type(err).__name__}: {err}"
                self.stats.errors = [*self.stats.errors[-9:], self.stats.last_error]
                log.warning(
                    "mwaaops: publishing %s event for %s failed: %s",
                    payload.get("event_type"),
                    (payload.get("asset") or {}).get("uri"),
                    self.stats.last_error,
                )
            else:
                self.stats.published += 1
            finally:
                self._queue.task_done()

    def _client(self, service: str, targets: PublishTargets) -> Any:
        key = (service, targets.aws_conn_id, targets.region_name)
        client = self._clients.get(key)
        if client is None:
            with self._creating_client:  # imports modules: no fork meanwhile (module docstring)
                client = self._client_factory(service, targets)
            self._clients[key] = client
        return client

    # -- fork safety (called by the os.register_at_fork handlers below) ----------------------------
    def _hold_for_fork(self) -> None:
        if threading.current_thread() is self._thread:
            return  # the worker itself forking (a credential process, say): it holds nothing else
        self._held_for_fork = self._creating_client.acquire(timeout=FORK_WAIT_S)
        if not self._held_for_fork:
            log.warning(
                "mwaaops: forking while the asset-event worker has been creating an AWS client for "
                "%.0f s; the child may hang on an import the worker had begun",
                FORK_WAIT_S,
            )

    def _release_after_fork(self, in_child: bool) -> None:
        if in_child and not self._held_for_fork:
            # The worker thread does not exist here; a lock it held would never be released.
            self._creating_client = threading.Lock()
        elif self._held_for_fork:
            self._creating_client.release()
        self._held_for_fork = False

    def _send(self, payload: dict[str, Any], targets: PublishTargets) -> None:
        message = fit_message(payload)
        errors: list[str] = []
        if targets.sns_topic_arn:
            try:
                self._send_sns(message, payload, targets)
            except Exception as err:
                errors.append(f"SNS {targets.sns_topic_arn}: {type(err).__name__}: {err}")
        if targets.event_bus_name:
            try:
                self._send_eventbridge(message, payload, targets)
            except Exception as err:
                errors.append(f"EventBridge {targets.event_bus_name}: {type(err).__name__}: {err}")
        if errors:
            raise PublishError("; ".join(errors))

    def _send_sns(self, message: str, payload: dict[str, Any], targets: PublishTargets) -> None:
        kwargs: dict[str, Any] = {
            "TopicArn": targets.sns_topic_arn,
            "Message": message,
            "Subject": f"Airflow asset {payload.get('event_type', 'event')}"[:100],
            "MessageAttributes": sns_message_attributes(payload),
        }
        if targets.sns_topic_arn.endswith(".fifo"):
            uri = str((payload.get("asset") or {}).get("uri") or "asset")
            # Per-asset ordering; SNS caps group ids at 128 characters.
            kwargs["MessageGroupId"] = uri if len(uri) <= 128 else hashlib.sha256(uri.encode()).hexdigest()
            kwargs["MessageDeduplicationId"] = hashlib.sha256(message.encode()).hexdigest()
        self._client("sns", targets).publish(**kwargs)

    def _send_eventbridge(self, message: str, payload: dict[str, Any], targets: PublishTargets) -> None:
        entry = {
            "Source": EVENTBRIDGE_SOURCE,
            "DetailType": f"Airflow Asset {str(payload.get('event_type', 'event')).capitalize()}",
            "Detail": message,
            "EventBusName": targets.event_bus_name,
        }
        answer = self._client("events", targets).put_events(Entries=[entry])
        if answer.get("FailedEntryCount"):
            failed = [e for e in answer.get("Entries", []) if e.get("ErrorCode")]
            raise PublishError(f"PutEvents rejected the event: {failed}")


class PublishError(RuntimeError):
    """A target refused or could not be reached (logged and counted by the worker)."""


_publishers: weakref.WeakSet[EventPublisher] = weakref.WeakSet()


def _hold_publishers_for_fork() -> None:
    """Before any ``os.fork()`` in this process: wait until no worker is creating a client.

    Python copies a module's import lock into the child as it is at the fork; a module that the
    worker thread was importing stays locked there forever (the thread does not exist in the
    child), and the child's own import of it hangs.
    """
    for publisher in list(_publishers):
        publisher._hold_for_fork()


def _release_publishers_after_fork(in_child: bool) -> None:
    for publisher in list(_publishers):
        publisher._release_after_fork(in_child)


os.register_at_fork(
    before=_hold_publishers_for_fork,
    after_in_parent=lambda: _release_publishers_after_fork(in_child=False),
    after_in_child=lambda: _release_publishers_after_fork(in_child=True),
)
