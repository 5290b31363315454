"""The measured process of ``trigger_fleet.py``: N triggers of one implementation in one event loop.

Started fresh for every (implementation, N) pair by the orchestrator, with the emulator's
environment (``AIRFLOW_CONN_AWS_DEFAULT`` and friends) and a throw-away ``AIRFLOW_HOME``. It

1. imports Airflow and BOTH trigger implementations (so that both children start from the same
   baseline), collects garbage and reads the baseline RSS;
2. prints ``{"fleet_start": t}`` on stdout, then in one ``asyncio.run`` creates N triggers and runs
   each one's ``run()`` async generator to its first event as N tasks, while a sampler coroutine
   measures event-loop lag (a 50 ms sleep's overshoot, every sample timestamped);
3. writes a JSON result file: per-execution event time and status, lag samples, RSS figures.

Everything here is the same for both implementations except the trigger class constructed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _fleet_emr
import _fleet_glue_logs

LAG_INTERVAL = 0.05


def proc_status_kb(field: str) -> int:
    """A ``VmRSS``/``VmHWM`` style field of /proc/self/status, in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


#: The Glue job of ``--service glue`` (created by ``_fleet_emulator.py``); ``arn`` is then a run id.
GLUE_JOB = "fleet-glue"


def make_glue_trigger(impl: str, run_id: str, waiter_delay: float, max_attempts: int) -> Any:
    """The Glue job-run waits: ours (log forwarding off: status polls only) or the amazon one."""
    if impl == "ours":
        from airflow_provider_mwaaops.triggers.glue import GlueJobRunTrigger

        return GlueJobRunTrigger(
            job_name=GLUE_JOB, job_run_id=run_id, waiter_delay=waiter_delay, forward_logs=False
        )
    if impl == "amazon":
        from airflow.providers.amazon.aws.triggers.glue import GlueJobCompleteTrigger

        return GlueJobCompleteTrigger(
            job_name=GLUE_JOB,
            run_id=run_id,
            verbose=False,
            waiter_delay=int(waiter_delay),
            waiter_max_attempts=max_attempts,
            aws_conn_id="aws_default",
        )
    raise ValueError(f"no {impl!r} implementation for Glue")


def make_trigger(
    impl: str, arn: str, waiter_delay: float, max_attempts: int, service: str = "stepfunctions"
) -> Any:
    if service == _fleet_glue_logs.SERVICE:
        return _fleet_glue_logs.make_trigger(impl, arn, waiter_delay, max_attempts)
    if service == "glue":
        return make_glue_trigger(impl, arn, waiter_delay, max_attempts)
    if service in _fleet_emr.SERVICES:
        return _fleet_emr.make_trigger(service, impl, arn, waiter_delay, max_attempts)
    if impl == "ours":
        from airflow_provider_mwaaops.triggers.step_function import StepFunctionExecutionTrigger

        return StepFunctionExecutionTrigger(
            execution_arn=arn, waiter_delay=waiter_delay, aws_conn_id="aws_default"
        )
    if impl == "amazon":
        from airflow.providers.amazon.aws.triggers.step_function import (
            StepFunctionsExecutionCompleteTrigger,
        )

        return StepFunctionsExecutionCompleteTrigger(
            execution_arn=arn,
            waiter_delay=int(waiter_delay),
            waiter_max_attempts=max_attempts,
            aws_conn_id="aws_default",
        )
    if impl == "shared":
        return SharedClientPoller(arn, waiter_delay)
    raise ValueError(f"unknown implementation {impl!r}")


class SharedClientPoller:
    """Reference: a bare poll loop around ONE aiobotocore client shared by all (no Airflow code).

    Same client settings as our pool (50 connections, standard retries, no SSL context for the
    plain-http emulator) and the same jittered delay: the floor for an aiobotocore-based poller.
    """

    _client: Any = None
    _lock: asyncio.Lock | None = None
    _stack: Any = None

    def __init__(self, arn: str, delay: float) -> None:
        self.arn = arn
        self.delay = delay

    @classmethod
    async def client(cls) -> Any:
        if cls._client is None:
            cls._lock = cls._lock or asyncio.Lock()
            async with cls._lock:
                if cls._client is None:
                    import contextlib

                    from aiobotocore.config import AioConfig
                    from aiobotocore.session import get_session

                    cls._stack = contextlib.AsyncExitStack()
                    cls._client = await cls._stack.enter_async_context(
                        get_session().create_client(
                            "stepfunctions",
                            endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                            verify=False,
                            config=AioConfig(
                                max_pool_connections=50, retries={"mode": "standard", "total_max_attempts": 3}
                            ),
                        )
                    )
        return cls._client

    async def run(self) -> Any:
        from airflow.triggers.base import TriggerEvent

        client = await self.client()
        while True:
            described = await client.describe_execution(executionArn=self.arn)
            if described["status"] not in ("RUNNING", "PENDING_REDRIVE"):
                yield TriggerEvent({"status": "success" if described["status"] == "SUCCEEDED" else "failure"})
                return
            await asyncio.sleep(self.delay * random.uniform(0.8, 1.2))


class GcPauses:
    """Times every garbage collection: a full one over Airflow's objects is a loop stall too."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, int, float]] = []  # (when, generation, seconds)
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((time.time(), info["generation"], time.perf_counter() - self._started))


async def lag_sampler(samples: list[tuple[float, float]], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(LAG_INTERVAL)
        lag = loop.time() - before - LAG_INTERVAL
        samples.append((time.time(), max(0.0, lag)))


async def wait_one(trigger: Any, arn: str, events: dict[str, Any]) -> None:
    agen = trigger.run()
    try:
        event = await agen.__anext__()
        payload = event.payload if hasattr(event, "payload") else event
        events[arn] = {"t": time.time(), "status": str(payload.get("status"))}
    except Exception as exc:  # a trigger should not raise; record it if it does
        events[arn] = {"t": time.time(), "status": f"raised {type(exc).__name__}: {exc}"}
    finally:
        await agen.aclose()


async def fleet(args: argparse.Namespace, arns: list[str], result: dict[str, Any]) -> None:
    samples: list[tuple[float, float]] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(lag_sampler(samples, stop))
    events: dict[str, Any] = {}
    start = time.time()
    cpu_start = time.thread_time()  # the event loop's thread only (not asgiref's worker threads)
    process_cpu_start = _process_cpu()
    triggers = [
        make_trigger(args.impl, arn, args.waiter_delay, args.max_attempts, args.service) for arn in arns
    ]
    tasks = [asyncio.create_task(wait_one(t, arn, events)) for t, arn in zip(triggers, arns, strict=True)]
    result["tasks_created"] = time.time()
    result["created_seconds"] = result["tasks_created"] - start
    _done, pending = await asyncio.wait(tasks, timeout=args.max_seconds)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=10)
    result["all_events"] = time.time()
    result["loop_cpu_seconds"] = time.thread_time() - cpu_start
    result["process_cpu_seconds"] = _process_cpu() - process_cpu_start  # user + sys, every thread
    result["rss_kb_before_shutdown"] = proc_status_kb("VmRSS")
    if SharedClientPoller._stack is not None:
        await SharedClientPoller._stack.aclose()
    stop.set()
    await sampler
    result["events"] = events
    result["lag_samples"] = samples
    result["timed_out"] = len(pending)


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", required=True, choices=["ours", "amazon", "shared", "ours-nologs"])
    parser.add_argument("--arn-file", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--waiter-delay", type=float, required=True)
    parser.add_argument("--max-attempts", type=int, default=10_000)
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--profile", help="write a cProfile of the fleet's event loop to this file")
    parser.add_argument(
        "--service",
        default="stepfunctions",
        choices=("stepfunctions", "glue", _fleet_glue_logs.SERVICE, *_fleet_emr.SERVICES),
    )
    args = parser.parse_args()

    # stdout is the channel to the orchestrator. Airflow's structlog console logging writes to
    # stdout, so keep the channel on a private descriptor and send fd 1 to the log (stderr):
    # otherwise a chatty trigger fills the pipe and blocks the loop.
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    t0 = time.time()
    # Both implementations' modules, whichever runs: equal baselines.
    import aiobotocore.session  # noqa: F401
    import airflow  # noqa: F401
    from airflow.providers.amazon.aws.hooks.step_function import StepFunctionHook  # noqa: F401
    from airflow.providers.amazon.aws.triggers.step_function import (  # noqa: F401
        StepFunctionsExecutionCompleteTrigger,
    )

    if args.service in ("glue", _fleet_glue_logs.SERVICE):  # both Glue implementations (equal baselines)
        from airflow.providers.amazon.aws.triggers.glue import GlueJobCompleteTrigger  # noqa: F401

        from airflow_provider_mwaaops.triggers.glue import GlueJobRunTrigger  # noqa: F401

    from airflow_provider_mwaaops.triggers.step_function import StepFunctionExecutionTrigger  # noqa: F401

    if args.service in _fleet_emr.SERVICES:
        _fleet_emr.import_all()

    with open(args.arn_file) as source:
        arns = [line.strip() for line in source if line.strip()]
    gc.collect()
    result: dict[str, Any] = {
        "impl": args.impl,
        "n": len(arns),
        "import_seconds": time.time() - t0,
        "rss_kb_baseline": proc_status_kb("VmRSS"),
        "hwm_kb_baseline": proc_status_kb("VmHWM"),
    }
    if args.service == _fleet_glue_logs.SERVICE:
        _fleet_glue_logs.capture_lines()
    gc_pauses = GcPauses()
    gc.callbacks.append(gc_pauses)
    result["fleet_start"] = time.time()
    print(json.dumps({"fleet_start": result["fleet_start"]}), file=channel, flush=True)
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.runcall(asyncio.run, fleet(args, arns, result))
        profiler.dump_stats(args.profile)
    else:
        asyncio.run(fleet(args, arns, result))
    gc.callbacks.remove(gc_pauses)
    result["gc_pauses"] = gc_pauses.pauses
    result["hwm_kb_peak"] = proc_status_kb("VmHWM")
    result["rss_kb_end"] = proc_status_kb("VmRSS")
    if args.service == _fleet_glue_logs.SERVICE:
        _fleet_glue_logs.write_delivered(Path(args.out).with_name("delivered.txt"))
    with open(args.out, "w") as out:
        json.dump(result, out)
    print(json.dumps({"done": True}), file=channel, flush=True)


if __name__ == "__main__":
    main()
