"""Forks while the publishing worker creates its first client (what imports modules).

Airflow's dag processor forks a child for every file it parses, and it receives asset-created
events from the same parsing: a fork that copies an import the worker has begun leaves the child
waiting forever for that module (seen in CI as a DAG file import timeout). Here the worker's
client creation imports a module that takes a while to load, the test forks in the middle of it,
and the child imports the same module.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mwaaops.listeners import publisher as publisher_module
from airflow_provider_mwaaops.listeners.publisher import EventPublisher, PublishTargets, aws_hook_client

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is what is tested")

#: How long the child may take to import the module before it counts as hung.
CHILD_DEADLINE_S = 20.0
SLOW_IMPORT_S = 1.5


@pytest.fixture
def slow_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The name of a fresh module whose import takes :data:`SLOW_IMPORT_S` seconds."""
    name = f"mwaaops_slow_import_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(f"import time\ntime.sleep({SLOW_IMPORT_S})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def _publisher_importing(module: str) -> tuple[EventPublisher, threading.Event]:
    """A publisher whose client creation imports ``module`` before creating the real client."""
    creating = threading.Event()

    def client_factory(service: str, targets: PublishTargets) -> Any:
        creating.set()
        __import__(module)
        return aws_hook_client(service, targets)

    return EventPublisher(client_factory=client_factory), creating


def _child_imports(module: str, also: Any = None) -> int:
    """Fork; the child imports ``module`` (and runs ``also``); the child's exit status, or -1 if
    it had not finished within :data:`CHILD_DEADLINE_S` (then it is killed)."""
    pid = os.fork()
    if pid == 0:  # the child: only what is tested, then leave without running any cleanup
        status = 1
        try:
            __import__(module)
            status = 0 if also is None or also() else 2
        finally:
            os._exit(status)
    deadline = time.monotonic() + CHILD_DEADLINE_S
    while time.monotonic() < deadline:
        done, wait_status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(wait_status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -1


def test_a_fork_during_client_creation_waits_and_the_child_imports(targets, slow_module) -> None:
    publisher, creating = _publisher_importing(slow_module)
    assert publisher.publish({"event_type": "created"}, PublishTargets(sns_topic_arn=targets.topic_arn))
    assert creating.wait(30)
    time.sleep(SLOW_IMPORT_S / 3)  # the worker is now inside the module's import

    assert _child_imports(slow_module) == 0, "the forked child hung on the module the worker imported"
    assert publisher.flush(30)
    assert publisher.stats.published == 1
    assert len(targets.sns_messages(1)) == 1


def test_a_fork_that_cannot_wait_longer_warns_and_the_child_can_still_create_clients(
    targets, slow_module, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(publisher_module, "FORK_WAIT_S", 0.1)
    caplog.set_level(logging.WARNING, logger=publisher_module.__name__)
    publisher, creating = _publisher_importing(slow_module)
    assert publisher.publish({"event_type": "created"}, PublishTargets(sns_topic_arn=targets.topic_arn))
    assert creating.wait(30)

    def child_can_create_a_client() -> bool:
        # The worker that held the lock does not exist in the child; the child's must be free.
        return publisher._creating_client.acquire(timeout=5)

    # The child skips the import (it may hang: the fork did not wait) and checks only its lock.
    assert _child_imports("json", also=child_can_create_a_client) == 0
    assert "forking while the asset-event worker has been creating an AWS client" in caplog.text
    assert publisher.flush(30)
    assert publisher.stats.published == 1
