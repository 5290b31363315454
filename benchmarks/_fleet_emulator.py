"""The emulator process of ``trigger_fleet.py``: moto via AwsEmulator, plus server-side counters.

Runs in its own process so that moto's memory, its threads (two per running execution) and its
request handling stay out of the measured process. It talks to the orchestrator over stdin/stdout,
one JSON object per line:

* on start it prints ``{"port": ..., "environ": {...}}`` (``AwsEmulator.environ()``);
* ``{"cmd": "setup", "n": N, "tag": "...", "arn_file": "...", "hold": H, "spread": S}`` resets
  moto, creates a state machine, starts N executions, writes their ARNs to the file. Each execution
  stays RUNNING until H + uniform(0, S) seconds after its first DescribeExecution, then succeeds:
  every trigger watches for the same time however long its implementation took to start, and
  completions fall at random points of the polling cycle;
* ``{"cmd": "stats"}`` answers how many executions have been described at least once, and when
  the last of them was described for the first time;
* ``{"cmd": "report"}`` answers the per-execution record (every DescribeExecution request with
  its time and the status it returned; stopDate) and the count of all API requests by action.

Server-side counting treats both trigger implementations alike: it sees the requests, not the
code that made them.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import random
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _fleet_emr
import _fleet_glue_logs

#: ``Wait.Seconds`` value that means "hold, as configured by setup" in this process.
HOLD_SECONDS = 86_400
ACCOUNT_ID = "123456789012"  # moto's default account
FINAL = {
    *("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "STOPPED", "TIMEOUT", "ERROR"),
    *("SUCCESS", "CANCELLED", "COMPLETED", "INTERRUPTED"),
}
#: The job of ``--service glue`` (``_fleet_child.GLUE_JOB``).
GLUE_JOB = "fleet-glue"


@dataclass
class ExecutionRecord:
    polls: list[float] = field(default_factory=list)
    first_final_poll: float | None = None
    status: str | None = None
    stop_date: float | None = None


class Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.actions: Counter[str] = Counter()
            self.executions: dict[str, ExecutionRecord] = {}
            self.first_polled: dict[str, threading.Event] = {}
            self.last_first_poll: float | None = None

    def first_poll_event(self, arn: str) -> threading.Event:
        with self.lock:
            return self.first_polled.setdefault(arn, threading.Event())

    def count_action(self, action: str) -> None:
        with self.lock:
            self.actions[action] += 1

    def described(self, arn: str, when: float, status: str, stop_date: float | None) -> None:
        with self.lock:
            record = self.executions.get(arn)
            if record is None:
                record = self.executions[arn] = ExecutionRecord()
                self.last_first_poll = when
                self.first_polled.setdefault(arn, threading.Event()).set()
            record.polls.append(when)
            record.status = status
            if status in FINAL and record.first_final_poll is None:
                record.first_final_poll = when
                record.stop_date = stop_date


COUNTERS = Counters()


class RequestProfiler:
    """cProfile of the emulator's request handling (``--profile-dir``), CPU time per thread.

    moto answers each HTTP connection on its own thread and cProfile only sees the thread that
    enabled it, so every request thread gets its own profiler (thread CPU time as the clock: wall
    time would count the waits for the GIL); ``dump`` merges them into one pstats file per run.
    """

    def __init__(self) -> None:
        self.directory: Path | None = None
        self.lock = threading.Lock()
        self.profiles: list[Any] = []
        self.local = threading.local()
        self.generation = 0

    def thread_profiler(self) -> Any:
        if self.directory is None:
            return None
        mine = getattr(self.local, "profile", None)
        if mine is None or mine[0] != self.generation:
            import cProfile

            mine = self.local.profile = (self.generation, cProfile.Profile(time.thread_time))
            with self.lock:
                self.profiles.append(mine[1])
        return mine[1]

    def reset(self) -> None:
        with self.lock:
            self.generation += 1
            self.profiles = []

    def dump(self, tag: str) -> None:
        if self.directory is None:
            return
        import pstats

        with self.lock:
            profiles, self.profiles = self.profiles, []
            self.generation += 1
        stats: Any = None
        for profile in profiles:
            profile.create_stats()
            if not profile.stats:
                continue
            if stats is None:
                stats = pstats.Stats(profile)
            else:
                stats.add(profile)
        if stats is not None:
            stats.dump_stats(self.directory / f"emulator-{tag}.pstats")


PROFILER = RequestProfiler()
#: (hold, spread) of the current run: an execution finishes ``hold`` + uniform(0, ``spread``) seconds
#: after it is first described.
HOLD = {"hold": 30.0, "spread": 5.0}


def _speed_up_moto() -> None:
    """Cache moto's list of service modules: it is a directory scan per request, twice.

    ``DomainDispatcherApplication.get_backend_for_host`` calls ``list_of_moto_modules()`` (listdir
    plus ~180 ``stat`` calls) for every request; it was ~40% of moto's CPU time per DescribeExecution.
    The list cannot change while the server runs. A faster emulator keeps it from being the
    bottleneck: the measured process, not moto, should set the pace.
    """
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]


def _epoch(value: Any) -> Any:
    """A datetime as the epoch seconds AWS's JSON protocol sends (millisecond precision)."""
    return round(value.timestamp(), 3) if isinstance(value, datetime.datetime) else value


def _redrive_fields(execution: Any) -> dict[str, Any]:
    """The redrive members our emulator extension adds to DescribeExecution, where it has them."""
    try:
        from airflow_provider_mwaaops.testing.extensions.stepfunctions_redrive import redrive_fields
    except ImportError:
        return {}
    return {key: _epoch(value) for key, value in redrive_fields(execution).items()}


def _status(value: Any) -> str:
    return str(getattr(value, "value", value))


def _describe_answer(execution: Any) -> dict[str, Any]:
    """moto's DescribeExecution answer (``StepFunctionResponse.describe_execution`` and our
    extension's redrive members), as JSON types."""
    status = _status(execution.status)
    answer = {
        "executionArn": execution.execution_arn,
        "input": execution.execution_input,
        "name": execution.name,
        "startDate": _epoch(execution.start_date),
        "stateMachineArn": execution.state_machine_arn,
        "status": status,
    }
    if status in {"SUCCEEDED", "ABORTED", "FAILED", "TIMED_OUT"} and execution.stop_date is not None:
        answer["stopDate"] = _epoch(execution.stop_date)
    if status == "SUCCEEDED":
        output = execution.output
        if output is not None:
            answer["output"] = output if isinstance(output, str) else json.dumps(output)
        answer["outputDetails"] = execution.output_details
    for key in ("error", "cause"):
        if getattr(execution, key, None) is not None:
            answer[key] = getattr(execution, key)
    answer.update(_redrive_fields(execution))
    return answer


def _fast_describe(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """DescribeExecution answered from moto's backend without flask, dispatch and serializer.

    The state is moto's (its executing engine runs the executions); only the HTTP plumbing is
    shortened, which makes moto's request path about twice as fast.
    """
    from moto.stepfunctions.exceptions import ExecutionDoesNotExist
    from moto.stepfunctions.responses import get_backend

    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.loads(environ["wsgi.input"].read(length) or b"{}")
    scope = environ.get("HTTP_AUTHORIZATION", "").split("Credential=", 1)[-1].split("/")
    region = scope[2] if len(scope) > 2 else "us-east-1"
    headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", str(uuid.uuid4()))]
    try:
        execution = get_backend(ACCOUNT_ID, region).describe_execution(body.get("executionArn", ""))
    except ExecutionDoesNotExist as exc:
        payload = json.dumps({"__type": "ExecutionDoesNotExist", "message": str(exc.message)}).encode()
        start_response("400 Bad Request", [*headers, ("Content-Length", str(len(payload)))])
        return [payload]
    answer = _describe_answer(execution)
    stop = execution.stop_date if "stopDate" in answer else None
    COUNTERS.described(answer["executionArn"], time.time(), answer["status"], stop and stop.timestamp())
    payload = json.dumps(answer).encode()
    start_response("200 OK", [*headers, ("Content-Length", str(len(payload)))])
    return [payload]


def _install_counting(fast_describe: bool) -> None:
    """Count every API request (WSGI level) and record each DescribeExecution answer."""
    from moto.moto_server import threaded_moto_server
    from moto.stepfunctions.responses import StepFunctionResponse

    base_app = threaded_moto_server.DomainDispatcherApplication

    class CountingApp(base_app):  # type: ignore[misc, valid-type]
        def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
            profiler = PROFILER.thread_profiler()
            if profiler is None:
                return self._answer(environ, start_response)
            profiler.enable()
            try:
                return self._answer(environ, start_response)
            finally:
                profiler.disable()

        def _answer(self, environ: dict[str, Any], start_response: Any) -> Any:
            path = environ.get("PATH_INFO", "")
            if not path.startswith("/moto-api"):
                method = str(environ.get("REQUEST_METHOD"))
                target = (
                    environ.get("HTTP_X_AMZ_TARGET")
                    or _fleet_emr.rest_action(method, path)
                    or f"{method} {path}"
                )
                COUNTERS.count_action(target.rsplit(".", 1)[-1])
                if fast_describe and target == "AWSStepFunctions.DescribeExecution":
                    return _fast_describe(environ, start_response)
                if fast_describe and target == "AWSGlue.GetJobRun":
                    answer = _fast_get_job_run(environ, start_response)
                    if answer is not None:
                        return answer
                if fast_describe and _fleet_emr.DESCRIBED:
                    answer = _fleet_emr.fast_answer(environ, start_response, target.rsplit(".", 1)[-1])
                    if answer is not None:
                        return answer
            return super().__call__(environ, start_response)

    threaded_moto_server.DomainDispatcherApplication = CountingApp

    original = StepFunctionResponse.describe_execution

    def describe_execution(self: StepFunctionResponse) -> Any:
        result = original(self)
        answer = result.result
        COUNTERS.described(
            answer["executionArn"], time.time(), _status(answer["status"]), _epoch(answer.get("stopDate"))
        )
        return result

    StepFunctionResponse.describe_execution = describe_execution  # type: ignore[method-assign]
    _install_glue_counting()


def _install_glue_counting() -> None:
    """Record each GetJobRun answer; a run's first GetJobRun starts its hold (see _hold_glue_run)."""
    from moto.glue.responses import GlueResponse

    original = GlueResponse.get_job_run

    def get_job_run(self: GlueResponse) -> Any:
        run_id = self._get_param("RunId")
        now = time.time()
        with COUNTERS.lock:
            first = run_id not in COUNTERS.executions
        if first:
            _hold_glue_run(self.glue_backend, self._get_param("JobName"), run_id, now)
        result = original(self)
        run = result.result["JobRun"]
        COUNTERS.described(run_id, now, str(run["JobRunState"]), _epoch(run.get("CompletedOn")))
        return result

    GlueResponse.get_job_run = get_job_run  # type: ignore[method-assign]


def _json_value(value: Any) -> Any:
    """A value of a JobRun structure as moto's JSON serializer sends it (datetimes: epoch seconds,
    truncated to milliseconds, by moto's own function)."""
    from moto.core.serialize import TimestampSerializer

    if isinstance(value, datetime.datetime):
        return TimestampSerializer._timestamp_unixtimestamp(value)
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    return value


def _fast_get_job_run(environ: dict[str, Any], start_response: Any) -> list[bytes] | None:
    """GetJobRun answered from moto's Glue backend without flask, dispatch and serializer.

    The run is moto's, with our extension's timeline (``backend.get_job_run`` settles the
    backend first and ``as_dict`` reads the run's fields off its timeline, as on moto's path);
    only the HTTP plumbing is shortened: through moto's full path GetJobRun cost the emulator
    about 5 ms of CPU, and with 1000 runs polled every 5 s the emulator set the pace. None (a
    job or run that does not exist, a malformed request): moto answers, with its own error.
    """
    from moto.core.exceptions import JsonRESTError
    from moto.glue.models import glue_backends

    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(raw)  # moto reads it again when this path declines
    try:
        body = json.loads(raw or b"{}")
        job_name, run_id = body["JobName"], body["RunId"]
        backend = glue_backends[ACCOUNT_ID][_fleet_emr._region(environ)]
    except (KeyError, TypeError, ValueError):
        return None
    now = time.time()
    with COUNTERS.lock:
        first = run_id not in COUNTERS.executions
    if first:
        _hold_glue_run(backend, job_name, run_id, now)  # does nothing for a run that does not exist
    try:
        run = backend.get_job_run(job_name, run_id)
    except JsonRESTError:
        return None
    fields = _json_value(run.as_dict())
    COUNTERS.described(run_id, now, str(fields["JobRunState"]), fields.get("CompletedOn"))
    return _fleet_emr._reply(start_response, {"JobRun": fields}, "application/x-amz-json-1.1")


def _hold_glue_run(backend: Any, job_name: str, run_id: str, now: float) -> None:
    """The run (RUNNING until stopped) now SUCCEEDS ``hold`` + uniform(0, ``spread``) seconds from
    this first GetJobRun, as a Step Functions execution of the other workload does."""
    import dataclasses

    from airflow_provider_mwaaops.testing.extensions.glue_job_runs import GLUE_LOCK, life_of

    end = now + HOLD["hold"] + random.uniform(0.0, HOLD["spread"])
    with GLUE_LOCK:
        job = backend.jobs.get(job_name)
        run = next((r for r in job.job_runs if r.job_run_id == run_id), None) if job is not None else None
        life = life_of(run) if run is not None else None
        if life is None or life.started_at is None:
            return
        running_from = life.started_at.timestamp() + life.script.starting_seconds
        life.script = dataclasses.replace(life.script, running_seconds=max(0.0, end - running_from))


def _setup_glue(emulator: Any, n: int, tag: str, arn_file: str, hold: float, spread: float) -> dict[str, Any]:
    """A job with room for N runs, N runs that hold RUNNING until first polled (ids to the file)."""
    emulator.reset()
    COUNTERS.reset()
    HOLD.update(hold=hold, spread=spread)
    glue = emulator.client("glue")
    glue.create_job(
        Name=GLUE_JOB,
        Role="arn:aws:iam::123456789012:role/fleet-benchmark",
        Command={"Name": "glueetl", "ScriptLocation": "s3://fleet/etl.py"},
        ExecutionProperty={"MaxConcurrentRuns": n},
    )
    emulator.glue.script_job(GLUE_JOB, starting_seconds=0, running_seconds=None)

    run_ids, statuses = _fleet_glue_logs.start_fleet_runs(glue, GLUE_JOB, n, tag, COUNTERS, arn_file)
    return {"arn_file": arn_file, "n": len(run_ids), "statuses": dict(statuses)}


def _install_hold() -> None:
    """A Wait state of HOLD_SECONDS ends HOLD after the execution's first DescribeExecution.

    So every trigger watches its execution for the same time (plus a random part of one polling
    period), however long the implementation took to start: API calls per wait are comparable.
    """
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
        WaitFunction,
    )

    original = WaitFunction._wait_interval

    def _wait_interval(self: WaitFunction, env: Any, wait_seconds: int) -> None:
        if wait_seconds != HOLD_SECONDS:
            return original(self, env, wait_seconds)
        arn = env.states.context_object.context_object_data["Execution"]["Id"]
        first_polled = COUNTERS.first_poll_event(arn)
        while env.is_running() and not first_polled.wait(60):
            pass
        with COUNTERS.lock:
            record = COUNTERS.executions.get(arn)
            first = record.polls[0] if record else time.time()
        end = first + HOLD["hold"] + random.uniform(0.0, HOLD["spread"])
        while env.is_running() and (remaining := end - time.time()) > 0:
            env.program_state_event.wait(remaining)
        return None

    WaitFunction._wait_interval = _wait_interval  # type: ignore[method-assign]


DEFINITION = json.dumps(
    {
        "StartAt": "Hold",
        "States": {
            "Hold": {"Type": "Wait", "Seconds": HOLD_SECONDS, "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
    }
)


def _setup(emulator: Any, n: int, tag: str, arn_file: str, hold: float, spread: float) -> dict[str, Any]:
    emulator.reset()
    COUNTERS.reset()
    HOLD.update(hold=hold, spread=spread)
    sfn = emulator.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"fleet-{tag}",
        definition=DEFINITION,
        roleArn="arn:aws:iam::123456789012:role/fleet-benchmark",
    )["stateMachineArn"]

    def start(index: int) -> str:
        return sfn.start_execution(stateMachineArn=machine, name=f"{tag}-{index:05d}")["executionArn"]

    with ThreadPoolExecutor(8) as pool:
        arns = list(pool.map(start, range(n)))
    # ListExecutions, not DescribeExecution: a describe would start the hold clock.
    statuses: Counter[str] = Counter()
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine):
        statuses.update(execution["status"] for execution in page["executions"])
    with COUNTERS.lock:  # only the triggers' requests count; the hold events must stay
        COUNTERS.actions.clear()
    with open(arn_file, "w") as out:
        out.write("\n".join(arns))
    return {"arn_file": arn_file, "n": len(arns), "statuses": dict(statuses)}


def _setup_emr(
    emulator: Any, service: str, n: int, tag: str, arn_file: str, hold: float, spread: float
) -> dict[str, Any]:
    """N EMR Serverless job runs or EMR steps, RUNNING until ``hold`` after their first status read."""
    emulator.reset()
    COUNTERS.reset()
    _fleet_emr.HOLD.update(hold=hold, spread=spread)
    ids, statuses = _fleet_emr.setup(emulator, service, n, tag)
    with COUNTERS.lock:  # only the triggers' requests count
        COUNTERS.actions.clear()
        COUNTERS.executions.clear()
    with open(arn_file, "w") as out:
        out.write("\n".join(ids))
    return {"arn_file": arn_file, "n": len(ids), "statuses": statuses}


def _report() -> dict[str, Any]:
    with COUNTERS.lock:
        return {
            "actions": dict(COUNTERS.actions),
            "executions": {
                arn: {
                    "polls": rec.polls,
                    "first_final_poll": rec.first_final_poll,
                    "status": rec.status,
                    "stop_date": rec.stop_date,
                }
                for arn, rec in COUNTERS.executions.items()
            },
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--moto-describe", action="store_true", help="no DescribeExecution fast path")
    parser.add_argument(
        "--service",
        default="stepfunctions",
        choices=("stepfunctions", "glue", _fleet_glue_logs.SERVICE, *_fleet_emr.SERVICES),
    )
    parser.add_argument("--profile-dir", type=Path, help="cProfile the request handling of each run here")
    args = parser.parse_args()
    PROFILER.directory = args.profile_dir
    _speed_up_moto()
    _install_counting(fast_describe=not args.moto_describe)
    _install_hold()
    from airflow_provider_mwaaops.testing.emulator import AwsEmulator

    emulator = AwsEmulator().start()
    if args.service in _fleet_emr.SERVICES:
        _fleet_emr.install_hold(COUNTERS.described)
    print(json.dumps({"port": emulator.port, "environ": emulator.environ()}), flush=True)
    tag = "none"
    for line in sys.stdin:
        request = json.loads(line)
        cmd = request["cmd"]
        if cmd == "setup":
            params = {key: request[key] for key in ("n", "tag", "arn_file", "hold", "spread")}
            tag = request["tag"]
            if request.get("service") == "glue":
                answer = _setup_glue(emulator, **params)
            elif args.service in _fleet_emr.SERVICES:
                answer = _setup_emr(emulator, args.service, **params)
            else:
                answer = _setup(emulator, **params)
            PROFILER.reset()  # the triggers' requests only
        elif cmd.startswith(_fleet_glue_logs.SERVICE + "-"):
            answer = _fleet_glue_logs.command(request, emulator, COUNTERS)
        elif cmd == "stats":
            with COUNTERS.lock:
                answer = {
                    "polled": len(COUNTERS.executions),
                    "last_first_poll": COUNTERS.last_first_poll,
                    "describes": COUNTERS.actions.get("DescribeExecution", 0)
                    + COUNTERS.actions.get("GetJobRun", 0),
                }
        elif cmd == "report":
            answer = _report()
            PROFILER.dump(tag)
        elif cmd == "quit":
            break
        else:
            answer = {"error": f"unknown command {cmd!r}"}
        print(json.dumps(answer), flush=True)
    emulator.stop()


if __name__ == "__main__":
    main()
