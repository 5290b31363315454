"""EMR steps that run on their cluster in order, fail with FailureDetails, obey ActionOnFailure and cancel.

moto starts the first step of a cluster and leaves every other one PENDING forever; it has no
FAILED, no FailureDetails, no CancelSteps and no ListSteps paging. Here each cluster carries a
clock, and every EMR read (DescribeStep, ListSteps, DescribeCluster, ListClusters, ...) first plays
its steps forward to the current time, so a step's state depends only on when it is looked at.
What a step does is scripted (:mod:`.emr_scripts`); timings default to
:class:`.emr_scripts.EmrTimings`.

Rules, with the AWS page each follows:

- Steps run in the order they were submitted, ``StepConcurrencyLevel`` at a time (one by default):
  "Amazon EMR executes each step in the order listed" (API reference, AddJobFlowSteps,
  https://docs.aws.amazon.com/emr/latest/APIReference/API_AddJobFlowSteps.html) and "pending steps
  in queue transition to running state in the order they were submitted" (Management Guide,
  "Considerations for running multiple steps in parallel",
  https://docs.aws.amazon.com/emr/latest/ManagementGuide/emr-concurrent-steps.html). A cluster is
  RUNNING while a step runs and WAITING otherwise; a cluster without
  KeepJobFlowAliveWhenNoSteps terminates (ALL_STEPS_COMPLETED) once no step is left.
- Step states PENDING, CANCEL_PENDING, RUNNING, COMPLETED, CANCELLED, FAILED, INTERRUPTED (API
  reference, StepStatus, https://docs.aws.amazon.com/emr/latest/APIReference/API_StepStatus.html).
  AWS does not say when INTERRUPTED applies; here it is a step that was running when its cluster
  shut down (pending ones become CANCELLED).
- A failed step has FailureDetails: Reason ("In the case where the service cannot successfully
  determine the root cause of the failure, it returns 'Unknown Error'"), Message and LogFile (API
  reference, FailureDetails, https://docs.aws.amazon.com/emr/latest/APIReference/API_FailureDetails.html);
  LogFile is the step's stderr under the cluster's LogUri.
- ActionOnFailure (API reference, StepConfig,
  https://docs.aws.amazon.com/emr/latest/APIReference/API_StepConfig.html): CONTINUE goes on with
  the next step; CANCEL_AND_WAIT "cancels any pending steps and returns the cluster to the WAITING
  state"; TERMINATE_CLUSTER / TERMINATE_JOB_FLOW shut the cluster down (TERMINATED_WITH_ERRORS,
  STEP_FAILURE), except that "if the cluster has termination protection enabled AND auto-terminate
  disabled, it will not terminate" (Management Guide, "Using termination protection",
  https://docs.aws.amazon.com/emr/latest/ManagementGuide/UsingEMR_TerminationProtection.html; the
  pending steps are then cancelled, the emulator's reading). "If the step concurrency level of a
  cluster is greater than one, step ActionOnFailure feature will not activate", and AddJobFlowSteps
  refuses an ActionOnFailure other than CONTINUE on such a cluster (Considerations for running
  multiple steps in parallel).
- AddJobFlowSteps: "You can only add steps to a cluster that is in one of the following states:
  STARTING, BOOTSTRAPPING, RUNNING, or WAITING" (API reference, AddJobFlowSteps); "You can have up
  to 256 PENDING and RUNNING steps in a cluster" (Management Guide, "Submit work to a cluster",
  https://docs.aws.amazon.com/emr/latest/ManagementGuide/emr-work-with-steps.html); "The string
  values passed into HadoopJarStep object cannot exceed a total of 10240 characters" (AddJobFlowSteps).
  AWS documents no error for these; the code is ValidationException, as real responses carry: an
  unknown cluster gives "Specified job flow ID does not exist." and a finished one "A job flow that
  is shutting down, terminated, or finished may not be modified." (texts of real AWS responses, as
  matched by terraform-provider-aws and reported in raster-foundry/raster-foundry#352). The other
  messages are the emulator's.
- CancelSteps (API reference, https://docs.aws.amazon.com/emr/latest/APIReference/API_CancelSteps.html):
  at most 256 steps per request; available "in Amazon EMR versions 4.8.0 and later, excluding
  version 5.0.0"; RUNNING steps only from 5.28.0 (PENDING ones before). A cancelled step is
  CANCEL_PENDING, then CANCELLED; the answer lists each step as SUBMITTED or FAILED with a Reason.
  "CancelSteps is idempotent": a step already cancelling or cancelled is SUBMITTED again. "Canceling
  a running step does not trigger the step ActionOnFailure", and it keeps its slot until it is
  CANCELLED (Management Guide, "Cancel steps",
  https://docs.aws.amazon.com/emr/latest/ManagementGuide/emr-cancel-steps.html). A cluster without
  ReleaseLabel counts as a current release. Reasons for FAILED entries are the emulator's.
- ListSteps (API reference, https://docs.aws.amazon.com/emr/latest/APIReference/API_ListSteps.html):
  newest first ("in reverse order"), StepStates and at most ten StepIds as filters, 50 steps per
  page with Marker.
- Step logs are written when a step ends to ``<LogUri>/<cluster-id>/steps/<step-id>/`` as
  ``controller.gz``, ``stdout.gz`` and ``stderr.gz`` (Management Guide, "View Amazon EMR log files",
  https://docs.aws.amazon.com/emr/latest/ManagementGuide/emr-manage-view-web-log-files.html). The
  controller lines are the emulator's own. Logs appear once an EMR call has seen the step end.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from moto.core.exceptions import InvalidToken
from moto.core.responses import ActionResult
from moto.emr.exceptions import InvalidCluster, InvalidRequestException, ValidationException
from moto.emr.models import Cluster, ElasticMapReduceBackend, Step
from moto.emr.responses import ElasticMapReduceResponse
from moto.utilities.paginator import paginate

from airflow_provider_mwaaops.testing.extensions import emr_logs, emr_scripts
from airflow_provider_mwaaops.testing.extensions._patching import add_method, replaced_by, wrap_method
from airflow_provider_mwaaops.testing.extensions.emr_scripts import (
    SIMULATION_LOCK,
    STEP_OUTCOMES,
    EmrTimings,
    RunScript,
    ScriptError,
    book_of,
    log_lines,
    script_from_settings,
    settings_from_tokens,
    to_datetime,
)

_PATCH = "mwaaops.emr_steps"
ACCEPTS_STEPS = frozenset({"STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING"})
RUNS_STEPS = frozenset({"RUNNING", "WAITING"})
CLUSTER_ENDED = frozenset({"TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS"})
STEP_ENDED = frozenset({"COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED"})
ACTIVE_STEP_STATES = frozenset({"PENDING", "RUNNING"})
MAX_ACTIVE_STEPS = 256
MAX_CANCEL_STEPS = 256
MAX_LIST_STEP_IDS = 10
LIST_STEPS_PAGE_SIZE = 50
HADOOP_JAR_STEP_MAX_CHARS = 10240
UNKNOWN_ERROR = "Unknown Error"
_PAGINATION = {
    "list_steps": {"input_token": "marker", "limit_default": LIST_STEPS_PAGE_SIZE, "unique_attribute": "id"}
}


@dataclasses.dataclass
class _StepClock:
    created_at: float
    outcome: str
    duration: float
    message: str | None
    reason: str | None
    stdout: list[str]
    stderr: list[str]
    log_interval: float
    started_at: float | None = None
    ends_at: float | None = None
    cancel_done_at: float | None = None


def _step_clock(step: Step) -> _StepClock | None:
    return step.__dict__.get("_mwaaops_clock")


def _cluster_cursor(cluster: Cluster) -> float:
    return cluster.__dict__.get("_mwaaops_cursor", 0.0)


def _occupies_slot(step: Step) -> bool:
    clock = _step_clock(step)
    return step.state in ("RUNNING", "CANCEL_PENDING") and clock is not None and clock.started_at is not None


def _concurrency(cluster: Cluster) -> int:
    try:
        return max(1, int(cluster.step_concurrency_level or 1))
    except (TypeError, ValueError):
        return 1


def _auto_terminates(cluster: Cluster) -> bool:
    return not cluster.keep_job_flow_alive_when_no_steps


# -- the step clock -------------------------------------------------------------------------------
def advance_cluster(cluster: Cluster, at: float) -> None:
    """Play ``cluster``'s steps forward to time ``at``: starts, ends, ActionOnFailure, logs."""
    if not cluster.__dict__.get("_mwaaops_tracked") or cluster.state in CLUSTER_ENDED:
        return
    moment = _cluster_cursor(cluster)
    while True:
        _start_pending(cluster, moment)
        event = _next_event(cluster)
        if event is None or event[0] > at:
            break
        moment = event[0]
        _end_step(cluster, event[1], moment)
        _settle_cluster(cluster, moment)
        if cluster.state in CLUSTER_ENDED:
            break
    if cluster.state not in CLUSTER_ENDED:
        cluster.__dict__["_mwaaops_cursor"] = max(moment, at)


def _start_pending(cluster: Cluster, moment: float) -> None:
    if cluster.state not in RUNS_STEPS:
        return
    free = _concurrency(cluster) - sum(1 for step in cluster.steps if _occupies_slot(step))
    for step in cluster.steps:
        if free <= 0:
            break
        clock = _step_clock(step)
        if step.state != "PENDING" or clock is None:
            continue
        start = max(moment, clock.created_at)
        clock.started_at, clock.ends_at = start, start + clock.duration
        step.state = "RUNNING"
        step.start_date_time = to_datetime(start)
        free -= 1
    if any(_occupies_slot(step) for step in cluster.steps):
        cluster.state = "RUNNING"


def _next_event(cluster: Cluster) -> tuple[float, Step] | None:
    events = []
    for index, step in enumerate(cluster.steps):
        clock = _step_clock(step)
        if clock is None:
            continue
        if step.state == "RUNNING" and clock.ends_at is not None:
            events.append((clock.ends_at, index, step))
        elif step.state == "CANCEL_PENDING" and clock.cancel_done_at is not None:
            events.append((clock.cancel_done_at, index, step))
    if not events:
        return None
    moment, _, step = min(events, key=lambda event: (event[0], event[1]))
    return moment, step


def _end_step(cluster: Cluster, step: Step, moment: float) -> None:
    clock = _step_clock(step)
    assert clock is not None
    if step.state == "CANCEL_PENDING":
        _finish(cluster, step, "CANCELLED", moment)
        return
    _finish(cluster, step, clock.outcome, moment)
    if clock.outcome == "FAILED" and _concurrency(cluster) == 1:
        _apply_action_on_failure(cluster, step, moment)


def _finish(cluster: Cluster, step: Any, state: str, moment: float) -> None:
    """``step`` (a moto Step) ends in ``state`` at ``moment``."""
    clock = _step_clock(step)
    step.state = state
    step.end_date_time = to_datetime(moment)
    if clock is None:
        return
    if state == "FAILED":
        details = {"Reason": clock.reason or UNKNOWN_ERROR}
        if clock.message:
            details["Message"] = clock.message
        if cluster.log_uri:
            details["LogFile"] = _step_log_uri(cluster, step, "stderr.gz")
        step.__dict__["_mwaaops_failure_details"] = details
    if clock.started_at is not None:
        _write_step_logs(cluster, step, clock, state, moment)


def _apply_action_on_failure(cluster: Cluster, step: Step, moment: float) -> None:
    action = step.action_on_failure
    if action == "CONTINUE":
        return
    terminates = action in ("TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW")
    if terminates and not (cluster.termination_protected and not _auto_terminates(cluster)):
        _shut_down(cluster, moment, "TERMINATED_WITH_ERRORS", "STEP_FAILURE", "Shut down as step failed")
        return
    for other in cluster.steps:  # CANCEL_AND_WAIT, or a protected cluster that stays up
        if other.state == "PENDING":
            _finish(cluster, other, "CANCELLED", moment)


def _settle_cluster(cluster: Cluster, moment: float) -> None:
    """RUNNING while a step runs; otherwise WAITING, or terminated when it auto-terminates."""
    if cluster.state in CLUSTER_ENDED:
        return
    if any(_occupies_slot(step) for step in cluster.steps):
        cluster.state = "RUNNING"
    elif any(step.state == "PENDING" for step in cluster.steps):
        return
    elif _auto_terminates(cluster):
        _shut_down(cluster, moment, "TERMINATED", "ALL_STEPS_COMPLETED", "Steps completed")
    elif cluster.state == "RUNNING":
        cluster.state = "WAITING"


def _shut_down(cluster: Any, moment: float, state: str, code: str, message: str | None) -> None:
    cluster.state = state
    cluster.end_datetime = to_datetime(moment)
    cluster.__dict__["_mwaaops_state_change_code"] = code
    if message:
        cluster.last_state_change_reason = message
    _stop_steps(cluster, moment)


def _stop_steps(cluster: Cluster, moment: float) -> None:
    """A cluster that shut down cancels its pending steps and interrupts the running ones."""
    for step in cluster.steps:
        if step.state == "PENDING" or (step.state == "CANCEL_PENDING" and not _occupies_slot(step)):
            _finish(cluster, step, "CANCELLED", moment)
        elif step.state in ("RUNNING", "CANCEL_PENDING"):
            _finish(cluster, step, "INTERRUPTED", moment)


# -- logs -----------------------------------------------------------------------------------------
def _step_log_uri(cluster: Cluster, step: Step, name: str) -> str:
    return emr_logs.join_s3(cluster.log_uri, cluster.id, "steps", step.id, name)


def _written_lines(lines: list[str], clock: _StepClock, state: str, moment: float) -> list[str]:
    """All lines for a step that ended by itself; those written by then for one stopped early."""
    if state in ("COMPLETED", "FAILED") or clock.started_at is None:
        return lines
    return [
        line
        for index, line in enumerate(lines)
        if clock.started_at + clock.log_interval * (index + 1) <= moment
    ]


def _iso(seconds: float) -> str:
    return to_datetime(seconds).isoformat() + "Z"


def _write_step_logs(cluster: Cluster, step: Step, clock: _StepClock, state: str, moment: float) -> None:
    if not cluster.log_uri or clock.started_at is None:
        return
    account_id = cluster.emr_backend.account_id
    controller = [
        f"{_iso(clock.started_at)} mwaaops emulator: step {step.id} ({step.name}) RUNNING",
        f"{_iso(moment)} mwaaops emulator: step {step.id} {state}",
    ]
    for name, lines in (
        ("controller.gz", controller),
        ("stdout.gz", _written_lines(clock.stdout, clock, state, moment)),
        ("stderr.gz", _written_lines(clock.stderr, clock, state, moment)),
    ):
        emr_logs.put_gzip_lines(account_id, _step_log_uri(cluster, step, name), lines)


# -- scripts --------------------------------------------------------------------------------------
def _args_of(config: Any) -> list[Any]:
    jar_step = config.get("hadoop_jar_step") or config.get("HadoopJarStep") or {}
    return list(jar_step.get("Args") or jar_step.get("args") or [])


def _name_of(config: Any) -> str:
    return config.get("name") or config.get("Name") or ""


def _args_script(config: Any) -> tuple[RunScript | None, int | None]:
    return script_from_settings(settings_from_tokens(_args_of(config)), STEP_OUTCOMES)


def _new_step_clock(script: RunScript, timings: EmrTimings, at: float) -> _StepClock:
    outcome = script.outcome or "COMPLETED"
    stdout, stderr = log_lines(script, outcome == "FAILED", script.message)
    return _StepClock(
        created_at=at,
        outcome=outcome,
        duration=timings.step_running if script.duration is None else script.duration,
        message=script.message,
        reason=script.reason,
        stdout=stdout,
        stderr=stderr,
        log_interval=timings.log_interval if script.log_interval is None else script.log_interval,
    )


def _add_steps(_original: Callable[..., list[Step]]) -> Callable[..., list[Step]]:
    """Steps are created PENDING with their script; the clock decides when they run."""

    def add_steps(self: Cluster, steps: list[Any]) -> list[Step]:
        with SIMULATION_LOCK:
            at = emr_scripts.now()
            book = book_of(self.emr_backend)
            added = []
            for config in steps:
                scripted, times = _args_script(config)
                step = Step(state="PENDING", **config)
                if scripted is not None:
                    earlier = sum(1 for other in self.steps if other.name == step.name)
                    script = scripted if times is None or earlier < times else RunScript()
                else:
                    script = book.take(step.name, self.id) or RunScript()
                step.__dict__["_mwaaops_clock"] = _new_step_clock(script, book.timings, at)
                self.steps.append(step)
                added.append(step)
            if added and not self.__dict__.get("_mwaaops_tracked"):
                self.__dict__["_mwaaops_tracked"] = True
                self.__dict__["_mwaaops_cursor"] = at
            return added

    return add_steps


# -- validation -----------------------------------------------------------------------------------
def _validate_new_steps(cluster: Cluster, steps: list[Any]) -> None:
    if cluster.state not in ACCEPTS_STEPS:
        raise ValidationException(
            "A job flow that is shutting down, terminated, or finished may not be modified."
        )
    active = sum(1 for step in cluster.steps if step.state in ACTIVE_STEP_STATES)
    if active + len(steps) > MAX_ACTIVE_STEPS:
        raise ValidationException(
            f"Cluster {cluster.id} has {active} PENDING or RUNNING steps; adding {len(steps)} would exceed "
            f"the limit of {MAX_ACTIVE_STEPS}."
        )
    for config in steps:
        action = config.get("action_on_failure") or config.get("ActionOnFailure")
        if _concurrency(cluster) > 1 and action not in (None, "CONTINUE"):
            raise ValidationException(
                f"ActionOnFailure {action} is not valid for a cluster whose StepConcurrencyLevel is greater "
                "than 1; use CONTINUE."
            )
        args = _args_of(config)
        if any(not isinstance(arg, str) for arg in args):
            raise ValidationException(
                f"Step {_name_of(config)!r}: every HadoopJarStep argument must be a string."
            )
        jar_step = config.get("hadoop_jar_step") or {}
        total = (
            sum(len(arg) for arg in args)
            + len(jar_step.get("Jar") or "")
            + len(jar_step.get("MainClass") or "")
        )
        if total > HADOOP_JAR_STEP_MAX_CHARS:
            raise ValidationException(
                f"Step {_name_of(config)!r}: the string values passed into HadoopJarStep total "
                f"{total} characters; at most {HADOOP_JAR_STEP_MAX_CHARS} are allowed."
            )
        try:
            _args_script(config)
        except ScriptError as err:
            raise ValidationException(f"mwaaops emulator: {err}") from None


# -- backend patches ------------------------------------------------------------------------------
def _cluster(backend: ElasticMapReduceBackend, cluster_id: str) -> Cluster:
    cluster = backend.clusters.get(cluster_id)
    if cluster is None:
        raise InvalidCluster(cluster_id)
    return cluster


def _add_job_flow_steps(_original: Callable[..., list[Step]]) -> Callable[..., list[Step]]:
    def add_job_flow_steps(
        self: ElasticMapReduceBackend,
        job_flow_id: str,
        steps: list[Any],
        execution_role_arn: str | None = None,
    ) -> list[Step]:
        with SIMULATION_LOCK:
            cluster = self.clusters.get(job_flow_id)
            if cluster is None:
                raise ValidationException("Specified job flow ID does not exist.")
            at = emr_scripts.now()
            advance_cluster(cluster, at)
            _validate_new_steps(cluster, steps)
            added = cluster.add_steps(steps)
            for step in added:
                step.__dict__["execution_role_arn"] = execution_role_arn
            advance_cluster(cluster, at)
            return added

    return add_job_flow_steps


def _advancing_cluster(original: Callable[..., Any]) -> Callable[..., Any]:
    """A read about one cluster (``cluster_id`` first) that first plays its steps to now."""

    def read(self: ElasticMapReduceBackend, cluster_id: str, *args: Any, **kwargs: Any) -> Any:
        with SIMULATION_LOCK:
            advance_cluster(_cluster(self, cluster_id), emr_scripts.now())
            return original(self, cluster_id, *args, **kwargs)

    return read


def _advancing_all(original: Callable[..., Any]) -> Callable[..., Any]:
    """A read about many clusters that first plays every cluster's steps to now."""

    def read(self: ElasticMapReduceBackend, *args: Any, **kwargs: Any) -> Any:
        with SIMULATION_LOCK:
            at = emr_scripts.now()
            for cluster in list(self.clusters.values()):
                advance_cluster(cluster, at)
            return original(self, *args, **kwargs)

    return read


def _describe_step(_original: Callable[..., Any]) -> Callable[..., Step]:
    def describe_step(self: ElasticMapReduceBackend, cluster_id: str, step_id: str) -> Step:
        with SIMULATION_LOCK:
            cluster = _cluster(self, cluster_id)
            advance_cluster(cluster, emr_scripts.now())
            for step in cluster.steps:
                if step.id == step_id:
                    return step
            raise InvalidRequestException(f"Step id '{step_id}' is not valid for cluster {cluster_id}.")

    return describe_step


def _terminate(original: Callable[..., None]) -> Callable[..., None]:
    """TerminateJobFlows (and moto's own termination) stops the cluster's steps at that moment."""

    def terminate(self: Cluster) -> None:
        with SIMULATION_LOCK:
            at = emr_scripts.now()
            advance_cluster(self, at)
            if self.state in CLUSTER_ENDED:
                return
            original(self)
            # moto terminates a cluster without steps nor KeepJobFlowAliveWhenNoSteps as it boots.
            booting = self.__dict__.get("_mwaaops_booting")
            self.__dict__.setdefault(
                "_mwaaops_state_change_code", "ALL_STEPS_COMPLETED" if booting else "USER_REQUEST"
            )
            _stop_steps(self, at)

    return terminate


def _run_bootstrap_actions(original: Callable[..., None]) -> Callable[..., None]:
    def run_bootstrap_actions(self: Cluster) -> None:
        self.__dict__["_mwaaops_booting"] = True
        try:
            original(self)
        finally:
            self.__dict__["_mwaaops_booting"] = False

    return run_bootstrap_actions


def _release(cluster: Cluster) -> tuple[int, ...] | None:
    match = re.fullmatch(r"emr-(\d+)\.(\d+)\.(\d+)", cluster.release_label or "")
    return tuple(int(part) for part in match.groups()) if match else None


def _cancel_refusal(cluster: Cluster, step: Step | None, step_id: str) -> str | None:
    """Why CancelSteps cannot cancel ``step`` (None when it can)."""
    release = _release(cluster)
    if step is None:
        return f"Step {step_id} does not exist in cluster {cluster.id}."
    if release is not None and (release < (4, 8, 0) or release == (5, 0, 0)):
        return (
            "CancelSteps is available only in Amazon EMR versions 4.8.0 and later, excluding version 5.0.0."
        )
    if step.state == "RUNNING" and release is not None and release < (5, 28, 0):
        return "Running steps can be cancelled only with Amazon EMR releases 5.28.0 and later."
    if step.state not in ("PENDING", "RUNNING", "CANCEL_PENDING", "CANCELLED"):
        return f"Step {step_id} is {step.state}; only PENDING or RUNNING steps can be cancelled."
    return None


def backend_cancel_steps(
    self: ElasticMapReduceBackend, cluster_id: str, step_ids: list[str], cancellation_option: str | None
) -> list[dict[str, str]]:
    """CancelSteps: PENDING and RUNNING steps become CANCEL_PENDING, then CANCELLED."""
    if len(step_ids) > MAX_CANCEL_STEPS:
        raise InvalidRequestException(
            f"A maximum of {MAX_CANCEL_STEPS} steps are allowed in each CancelSteps request."
        )
    with SIMULATION_LOCK:
        cluster = _cluster(self, cluster_id)
        at = emr_scripts.now()
        advance_cluster(cluster, at)
        timings = book_of(self).timings
        steps = {step.id: step for step in cluster.steps}
        answers = []
        for step_id in step_ids:
            step = steps.get(step_id)
            refusal = _cancel_refusal(cluster, step, step_id)
            if refusal is not None:
                answers.append({"StepId": step_id, "Status": "FAILED", "Reason": refusal})
                continue
            assert step is not None
            clock = _step_clock(step)
            if step.state in ("PENDING", "RUNNING") and clock is not None:
                step.state = "CANCEL_PENDING"
                clock.ends_at = None
                clock.cancel_done_at = at + timings.step_cancel_pending
            answers.append({"StepId": step_id, "Status": "SUBMITTED"})
        advance_cluster(cluster, at)
        return answers


# -- responses ------------------------------------------------------------------------------------
def response_cancel_steps(self: ElasticMapReduceResponse) -> ActionResult:
    answers = self.backend.cancel_steps(  # type: ignore[attr-defined]
        self._get_param("ClusterId"),
        self._get_param("StepIds", []),
        self._get_param("StepCancellationOption"),
    )
    return ActionResult({"CancelStepsInfoList": answers})


def response_add_job_flow_steps(self: ElasticMapReduceResponse) -> ActionResult:
    """AddJobFlowSteps, keeping the request's ExecutionRoleArn on its steps (moto drops it)."""
    steps = self.backend.add_job_flow_steps(  # type: ignore[call-arg]
        self._get_param("JobFlowId"), self._get_param("Steps", []), self._get_param("ExecutionRoleArn")
    )
    return ActionResult({"StepIds": [step.id for step in steps]})


def _list_steps_page(steps: list[Step], marker: str | None) -> tuple[list[Step], str | None]:
    @paginate(pagination_model=_PAGINATION)
    def list_steps(marker: str | None = None) -> list[Step]:
        return steps

    return list_steps(marker=marker)


def response_list_steps(self: ElasticMapReduceResponse) -> ActionResult:
    """ListSteps: newest first, StepStates / StepIds filters, 50 per page with Marker."""
    step_ids = self._get_param("StepIds", []) or []
    if len(step_ids) > MAX_LIST_STEP_IDS:
        raise InvalidRequestException(
            f"You can specify a maximum of {MAX_LIST_STEP_IDS} StepIds, got {len(step_ids)}."
        )
    with SIMULATION_LOCK:
        cluster = _cluster(self.backend, self._get_param("ClusterId"))
        advance_cluster(cluster, emr_scripts.now())
        order = {id(step): index for index, step in enumerate(cluster.steps)}
        steps = sorted(
            cluster.steps, key=lambda step: (step.creation_date_time, order[id(step)]), reverse=True
        )
        states = self._get_param("StepStates", []) or []
        steps = [
            step
            for step in steps
            if (not step_ids or step.id in step_ids) and (not states or step.state in states)
        ]
        try:
            page, marker = _list_steps_page(steps, self._get_param("Marker"))
        except InvalidToken:
            raise InvalidRequestException("The Marker is not valid for this request.") from None
        return ActionResult({"Steps": page, "Marker": marker})


def _step_status(original: property) -> property:
    def status(self: Step) -> dict[str, Any]:
        result = dict(original.fget(self))  # type: ignore[misc]
        details = self.__dict__.get("_mwaaops_failure_details")
        if details:
            result["FailureDetails"] = dict(details)
        return result

    return property(status)


def _cluster_status(original: property) -> property:
    def status(self: Cluster) -> dict[str, Any]:
        result = dict(original.fget(self))  # type: ignore[misc]
        code = self.__dict__.get("_mwaaops_state_change_code")
        if code and self.state in CLUSTER_ENDED:
            result["StateChangeReason"] = dict(result.get("StateChangeReason") or {}, Code=code)
        return result

    return property(status)


def _replace_property(owner: type, name: str, make: Callable[[property], property]) -> None:
    """Replace the property ``owner.name`` with ``make(property)``, once per process."""
    current = owner.__dict__[name]
    if getattr(current.fget, "_mwaaops_patch", None) == _PATCH:
        return
    replacement = make(current)
    replacement.fget.__dict__["_mwaaops_patch"] = _PATCH  # type: ignore[union-attr]
    setattr(owner, name, replacement)


def install() -> None:
    """Step lifecycles, ActionOnFailure, CancelSteps, paged ListSteps and step logs in moto's EMR."""
    wrap_method(Cluster, "add_steps", _PATCH, _add_steps)
    wrap_method(Cluster, "terminate", _PATCH, _terminate)
    wrap_method(Cluster, "run_bootstrap_actions", _PATCH, _run_bootstrap_actions)
    wrap_method(ElasticMapReduceBackend, "add_job_flow_steps", _PATCH, _add_job_flow_steps)
    wrap_method(ElasticMapReduceBackend, "describe_step", _PATCH, _describe_step)
    for read in ("describe_cluster", "list_steps", "modify_cluster", "list_bootstrap_actions"):
        wrap_method(ElasticMapReduceBackend, read, _PATCH, _advancing_cluster)
    for read in ("describe_job_flows", "list_clusters", "terminate_job_flows"):
        wrap_method(ElasticMapReduceBackend, read, _PATCH, _advancing_all)
    add_method(ElasticMapReduceBackend, "cancel_steps", backend_cancel_steps)
    add_method(ElasticMapReduceResponse, "cancel_steps", response_cancel_steps)
    wrap_method(
        ElasticMapReduceResponse, "add_job_flow_steps", _PATCH, replaced_by(response_add_job_flow_steps)
    )
    wrap_method(ElasticMapReduceResponse, "list_steps", _PATCH, replaced_by(response_list_steps))
    _replace_property(Step, "status", _step_status)
    _replace_property(Cluster, "status", _cluster_status)
