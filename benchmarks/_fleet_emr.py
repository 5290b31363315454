"""The EMR services of ``trigger_fleet.py`` (``--service emr-serverless`` / ``--service emr-steps``).

Emulator side (imported by ``_fleet_emulator.py``): :func:`setup` creates N EMR Serverless job
runs on one STARTED application, or N steps spread over clusters whose ``StepConcurrencyLevel``
lets every step run at once (EMR runs steps one at a time by default, and N waits for N queued
steps would measure the queue). :func:`install_hold` makes each run or step end ``hold`` +
uniform(0, ``spread``) seconds after its FIRST status read, as the Step Functions workload does,
and records every status read (GetJobRun; DescribeStep or a ListSteps naming the step) with the
state it returned, through the orchestrator's ``described`` callback.

Child side (imported by ``_fleet_child.py``): :func:`make_trigger` builds ours
(``EmrServerlessJobRunTrigger`` / ``EmrStepsTrigger``) or the amazon provider's
(``EmrServerlessStartJobTrigger`` / ``EmrStepSensorTrigger``) for one ``<parent>/<id>`` line of
the id file.
"""

from __future__ import annotations

import calendar
import io
import json
import random
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

SERVICES = ("emr-serverless", "emr-steps")
FINAL_STATES = frozenset({"SUCCESS", "FAILED", "CANCELLED", "COMPLETED", "INTERRUPTED"})
#: Steps per cluster; a cluster runs at most 256 steps at once (StepConcurrencyLevel).
STEPS_PER_CLUSTER = 250
HOLD = {"hold": 30.0, "spread": 5.0}
ACCOUNT_ID = "123456789012"  # moto's default account
#: The orchestrator's recorder of status reads, set by :func:`install_hold`.
DESCRIBED: list[Callable[[str, float, str, float | None], None]] = []
_HELD: set[str] = set()


def _epoch(value: Any) -> float | None:
    """moto's naive UTC datetime as epoch seconds."""
    return None if value is None else calendar.timegm(value.utctimetuple()) + value.microsecond / 1e6


def hold_step(cluster: Any, step: Any, now: float) -> None:
    """A RUNNING step ends ``HOLD`` after its first status read."""
    from airflow_provider_mwaaops.testing.extensions import emr_steps

    key = f"{cluster.id}/{step.id}"
    if key in _HELD:
        return
    _HELD.add(key)
    clock = emr_steps._step_clock(step)
    if clock is not None and step.state == "RUNNING":
        clock.ends_at = now + HOLD["hold"] + random.uniform(0.0, HOLD["spread"])


def record_step(cluster: Any, step: Any, now: float) -> None:
    final = step.state in FINAL_STATES
    DESCRIBED[0](f"{cluster.id}/{step.id}", now, step.state, _epoch(step.end_date_time) if final else None)


def install_hold(described: Callable[[str, float, str, float | None], None]) -> None:
    """Hold runs / steps until ``HOLD`` after their first status read; record every read."""
    from moto.emr.models import ElasticMapReduceBackend
    from moto.emrserverless.models import EMRServerlessBackend

    from airflow_provider_mwaaops.testing.extensions import emr_serverless_jobs

    DESCRIBED[:] = [described]
    get_job_run = EMRServerlessBackend.get_job_run

    def hold_job_run(self: Any, application_id: str, job_run_id: str) -> Any:
        key = f"{application_id}/{job_run_id}"
        now = time.time()
        if key not in _HELD:
            _HELD.add(key)
            for run in self.job_runs.get(application_id, []):
                clock = emr_serverless_jobs._run_clock(run)
                if run.id == job_run_id and clock is not None:
                    emr_serverless_jobs.advance_run(self, run, now)
                    running_at = emr_serverless_jobs._timeline(clock).running_at or now
                    clock.duration = now + HOLD["hold"] + random.uniform(0.0, HOLD["spread"]) - running_at
        run = get_job_run(self, application_id, job_run_id)
        described(key, now, run.state, _epoch(run.ended_at) if run.state in FINAL_STATES else None)
        return run

    EMRServerlessBackend.get_job_run = hold_job_run  # type: ignore[method-assign]

    describe_step = ElasticMapReduceBackend.describe_step

    def held_describe_step(self: Any, cluster_id: str, step_id: str) -> Any:
        now = time.time()
        cluster = self.clusters[cluster_id]
        for step in cluster.steps:
            if step.id == step_id:
                hold_step(cluster, step, now)
        found = describe_step(self, cluster_id, step_id)
        record_step(cluster, found, now)
        return found

    ElasticMapReduceBackend.describe_step = held_describe_step  # type: ignore[method-assign]

    from moto.emr.responses import ElasticMapReduceResponse

    list_steps = ElasticMapReduceResponse.list_steps

    def held_list_steps(self: Any) -> Any:
        now = time.time()
        cluster = self.backend.clusters.get(self._get_param("ClusterId"))
        wanted = set(self._get_param("StepIds", []) or [])
        steps = [step for step in cluster.steps if step.id in wanted] if cluster is not None else []
        for step in steps:
            hold_step(cluster, step, now)
        result = list_steps(self)
        for step in steps:
            record_step(cluster, step, now)
        return result

    ElasticMapReduceResponse.list_steps = held_list_steps  # type: ignore[method-assign]


def setup(emulator: Any, service: str, n: int, tag: str) -> tuple[list[str], dict[str, int]]:
    """Create N RUNNING job runs or steps; returns their ``<parent>/<id>`` and a state count."""
    emulator.emr.set_timings(
        job_submitted=0, job_pending=0, job_scheduled=0, application_starting=0, step_running=0
    )
    if service == "emr-serverless":
        return _job_runs(emulator, n, tag)
    return _steps(emulator, n, tag)


def _job_runs(emulator: Any, n: int, tag: str) -> tuple[list[str], dict[str, int]]:
    serverless = emulator.client("emr-serverless")
    app = serverless.create_application(name=f"fleet-{tag}", releaseLabel="emr-7.1.0", type="SPARK")
    app_id = app["applicationId"]
    serverless.start_application(applicationId=app_id)
    emulator.emr.script_job_run("*", duration=float("inf"))

    def start(index: int) -> str:
        return serverless.start_job_run(
            applicationId=app_id,
            clientToken=f"{tag}-{index}",
            name=f"{tag}-{index:05d}",
            executionRoleArn="arn:aws:iam::123456789012:role/fleet-benchmark",
            jobDriver={"sparkSubmit": {"entryPoint": "s3://fleet/job.py"}},
        )["jobRunId"]

    with ThreadPoolExecutor(8) as pool:
        ids = [f"{app_id}/{run_id}" for run_id in pool.map(start, range(n))]
    states: dict[str, int] = {}
    for page in serverless.get_paginator("list_job_runs").paginate(applicationId=app_id):
        for run in page["jobRuns"]:
            states[run["state"]] = states.get(run["state"], 0) + 1
    return ids, states


def _steps(emulator: Any, n: int, tag: str) -> tuple[list[str], dict[str, int]]:
    emr = emulator.client("emr")
    emulator.emr.script_step("*", duration=float("inf"))
    ids: list[str] = []
    states: dict[str, int] = {}
    for first in range(0, n, STEPS_PER_CLUSTER):
        cluster_id = emr.run_job_flow(
            Name=f"fleet-{tag}-{first}",
            ReleaseLabel="emr-7.1.0",
            StepConcurrencyLevel=256,
            Instances={
                "KeepJobFlowAliveWhenNoSteps": True,
                "InstanceCount": 1,
                "MasterInstanceType": "m5.xlarge",
            },
            JobFlowRole="EMR_EC2_DefaultRole",
            ServiceRole="EMR_DefaultRole",
        )["JobFlowId"]
        count = min(STEPS_PER_CLUSTER, n - first)
        steps = [
            {
                "Name": f"{tag}-{first + index:05d}",
                "ActionOnFailure": "CONTINUE",
                "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["true"]},
            }
            for index in range(count)
        ]
        step_ids: list[str] = []
        for start in range(0, count, 100):  # keep each request small
            step_ids += emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=steps[start : start + 100])[
                "StepIds"
            ]
        ids += [f"{cluster_id}/{step_id}" for step_id in step_ids]
        for page in emr.get_paginator("list_steps").paginate(ClusterId=cluster_id):
            for step in page["Steps"]:
                state = step["Status"]["State"]
                states[state] = states.get(state, 0) + 1
    return ids, states


def make_trigger(service: str, impl: str, ident: str, waiter_delay: float, max_attempts: int) -> Any:
    """One trigger of ``impl`` ("ours" or "amazon") for ``<parent>/<id>``."""
    parent, _, child = ident.partition("/")
    if service == "emr-serverless":
        if impl == "ours":
            from airflow_provider_mwaaops.triggers.emr import EmrServerlessJobRunTrigger

            return EmrServerlessJobRunTrigger(
                application_id=parent, job_run_id=child, waiter_delay=waiter_delay, aws_conn_id="aws_default"
            )
        from airflow.providers.amazon.aws.triggers.emr import EmrServerlessStartJobTrigger

        return EmrServerlessStartJobTrigger(
            application_id=parent,
            job_id=child,
            waiter_delay=int(waiter_delay),
            waiter_max_attempts=max_attempts,
            aws_conn_id="aws_default",
        )
    if impl == "ours":
        from airflow_provider_mwaaops.triggers.emr import EmrStepsTrigger

        return EmrStepsTrigger(
            cluster_id=parent, step_ids=[child], waiter_delay=waiter_delay, aws_conn_id="aws_default"
        )
    from airflow.providers.amazon.aws.triggers.emr import EmrStepSensorTrigger

    return EmrStepSensorTrigger(
        job_flow_id=parent,
        step_id=child,
        waiter_delay=int(waiter_delay),
        waiter_max_attempts=max_attempts,
        aws_conn_id="aws_default",
    )


def import_all() -> None:
    """Both implementations' modules, whichever runs: equal baselines."""
    from airflow.providers.amazon.aws.triggers.emr import (  # noqa: F401
        EmrServerlessStartJobTrigger,
        EmrStepSensorTrigger,
    )

    from airflow_provider_mwaaops.triggers.emr import EmrServerlessJobRunTrigger  # noqa: F401


def rest_action(method: str, path: str) -> str | None:
    """The action of an EMR Serverless (REST) request, for the per-action counters."""
    parts = path.strip("/").split("/")
    if parts[:1] == ["applications"] and len(parts) == 4 and parts[2] == "jobruns" and method == "GET":
        return "GetJobRun"
    if parts[:1] == ["applications"] and len(parts) == 3 and parts[2] == "jobruns":
        return "ListJobRuns" if method == "GET" else "StartJobRun"
    return None


# -- fast paths: the status reads answered without flask, dispatch and serializer ----------------------
def _region(environ: dict[str, Any]) -> str:
    scope = environ.get("HTTP_AUTHORIZATION", "").split("Credential=", 1)[-1].split("/")
    return scope[2] if len(scope) > 2 else "us-east-1"


def _reply(start_response: Any, answer: dict[str, Any], content_type: str) -> list[bytes]:
    payload = json.dumps(answer).encode()
    start_response(
        "200 OK",
        [
            ("Content-Type", content_type),
            ("x-amzn-RequestId", str(uuid.uuid4())),
            ("Content-Length", str(len(payload))),
        ],
    )
    return [payload]


def _step_answer(step: Any) -> dict[str, Any]:
    timeline = {
        "CreationDateTime": _epoch(step.creation_date_time),
        "StartDateTime": _epoch(step.start_date_time),
        "EndDateTime": _epoch(step.end_date_time),
    }
    return {
        "Id": step.id,
        "Name": step.name,
        "ActionOnFailure": step.action_on_failure,
        "Status": {"State": step.state, "Timeline": {k: v for k, v in timeline.items() if v is not None}},
    }


#: moto's JobRun attribute of each GetJobRun ``jobRun`` member (filled from botocore's model).
_JOB_RUN_MEMBERS: list[tuple[str, str]] = []
_JOB_RUN_ALIASES = {"jobRunId": "id", "executionRole": "execution_role_arn"}


def _job_run_answer(run: Any) -> dict[str, Any]:
    """The ``jobRun`` moto's serializer sends for ``run``: every member of the API's JobRun
    structure that the run has (None left out), timestamps as moto writes them (epoch seconds
    truncated to milliseconds)."""
    from moto.core.serialize import TimestampSerializer

    if not _JOB_RUN_MEMBERS:
        import botocore.session
        from botocore import xform_name

        model = botocore.session.get_session().get_service_model("emr-serverless")
        shape = model.operation_model("GetJobRun").output_shape.members["jobRun"]
        _JOB_RUN_MEMBERS[:] = [(name, _JOB_RUN_ALIASES.get(name, xform_name(name))) for name in shape.members]
    answer = {}
    for member, attribute in _JOB_RUN_MEMBERS:
        value = getattr(run, attribute, None)
        if value is not None:
            answer[member] = (
                TimestampSerializer._timestamp_unixtimestamp(value) if isinstance(value, datetime) else value
            )
    return answer


def fast_answer(environ: dict[str, Any], start_response: Any, target: str) -> list[bytes] | None:
    """GetJobRun, ListSteps (by StepIds) and DescribeStep straight from moto's backends (with our
    emulator extensions' state), the way ``_fleet_emulator`` answers DescribeExecution: the
    emulator, not the measured process, would otherwise set the pace. None: let moto answer."""
    from moto.emr.models import emr_backends
    from moto.emrserverless.models import emrserverless_backends

    from airflow_provider_mwaaops.testing.extensions import emr_scripts, emr_steps

    region = _region(environ)
    if target == "GetJobRun":
        parts = environ.get("PATH_INFO", "").strip("/").split("/")
        backend = emrserverless_backends[ACCOUNT_ID][region]
        try:
            run = backend.get_job_run(parts[1], parts[3])
        except Exception:
            return None
        return _reply(start_response, {"jobRun": _job_run_answer(run)}, "application/json")
    if target not in ("ListSteps", "DescribeStep"):
        return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(raw)  # moto reads it again when this path declines
    body = json.loads(raw or b"{}")
    cluster = emr_backends[ACCOUNT_ID][region].clusters.get(body.get("ClusterId"))
    wanted = body.get("StepIds") if target == "ListSteps" else [body.get("StepId")]
    if cluster is None or not wanted or body.get("Marker") or body.get("StepStates"):
        return None
    now = time.time()
    with emr_scripts.SIMULATION_LOCK:
        steps = [step for step in cluster.steps if step.id in set(wanted or [])]
        for step in steps:
            hold_step(cluster, step, now)
        emr_steps.advance_cluster(cluster, emr_scripts.now())
        answers = [_step_answer(step) for step in steps]
        for step in steps:
            record_step(cluster, step, now)
    reply = {"Steps": answers} if target == "ListSteps" else {"Step": answers[0]}
    return _reply(start_response, reply, "application/x-amz-json-1.1")
