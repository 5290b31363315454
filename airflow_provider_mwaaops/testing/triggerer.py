"""Simulated triggerer restarts for DAG tests.

A triggerer that restarts (a deployment, a crash, MWAA replacing a worker) cancels every running
trigger and, in its successor, rebuilds each one from the class path and keyword arguments stored
when the task deferred. Whatever a trigger kept only in memory is gone. ``dag.test()`` runs
triggers inline and never restarts them; :func:`triggerer_restarts` makes it do so:

.. code-block:: python

    with triggerer_restarts(GlueJobRunTrigger, after_seconds=1.0) as rebuilt:
        result = run_dag(dag)
    assert rebuilt  # the wait was interrupted and finished by a rebuilt trigger
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any, cast

from airflow.triggers.base import BaseTrigger, TriggerEvent

__all__ = ["rebuild", "triggerer_restarts"]


def rebuild(trigger: BaseTrigger) -> Any:
    """What a triggerer does after a restart: the trigger's stored JSON back into a trigger."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))


@contextlib.contextmanager
def triggerer_restarts(trigger_class: type[BaseTrigger], after_seconds: float) -> Iterator[list[Any]]:
    """While active, every ``trigger_class`` trigger that runs is cancelled after ``after_seconds``
    (as a stopping triggerer cancels it) and its wait is finished by a trigger rebuilt from its
    serialized arguments. Yields the list of rebuilt triggers (empty if every wait ended sooner).
    """
    original = trigger_class.run
    own = trigger_class.__dict__.get("run")
    rebuilt: list[Any] = []

    async def run(self: BaseTrigger) -> AsyncIterator[TriggerEvent]:
        events = cast("AsyncGenerator[TriggerEvent, None]", original(self))
        first = asyncio.ensure_future(events.__anext__())
        done, _ = await asyncio.wait({first}, timeout=after_seconds)
        if first in done:
            yield first.result()
            await events.aclose()
            return
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
            await first
        await events.aclose()
        successor = rebuild(self)
        rebuilt.append(successor)
        async for event in original(successor):
            yield event
            return

    trigger_class.run = run  # type: ignore[method-assign]
    try:
        yield rebuilt
    finally:
        if own is None:
            del trigger_class.run
        else:
            trigger_class.run = own  # type: ignore[method-assign]
