"""Amazon MWAA environments in the emulator: lifecycle, request validation, tags, SchedulerHeartbeat.

moto has no MWAA service; :mod:`~airflow_provider_mwaaops.testing.extensions.mwaa_rest_api`
registers one, and this module gives its environments the behaviour of AWS's API reference
(https://docs.aws.amazon.com/mwaa/latest/API/). Each rule names its page.

Lifecycle (``API_Environment.html``, member ``Status``; the statuses and their meanings):

=========================  ==================================================================
call / script              statuses
=========================  ==================================================================
CreateEnvironment          CREATING -> AVAILABLE
  scripted failure         CREATING -> CREATE_FAILED (or UNAVAILABLE), LastUpdate.Error set
UpdateEnvironment          UPDATING -> AVAILABLE; a new AirflowVersion goes
                           UPDATING -> CREATING_SNAPSHOT -> UPDATING -> AVAILABLE (the upgrade
                           path in AWS's user guide)
  scripted failure         UPDATING -> ROLLING_BACK -> UPDATE_FAILED (or UNAVAILABLE); the
                           configuration stays as it was
DeleteEnvironment          DELETING -> DELETED; a deleted environment is reported DELETED once,
                           then GetEnvironment answers ResourceNotFoundException
:func:`make_unavailable`   AVAILABLE -> UNAVAILABLE (an environment that breaks by itself)
=========================  ==================================================================

Each step lasts as moto's state manager says for the model ``mwaa::environment``: by default
``{"progression": "time", "seconds": 1}``; ``{"progression": "immediate"}`` skips to the end,
``{"progression": "manual", "times": N}`` moves one step every N GetEnvironment calls (set it with
``AwsEmulator.set_transition`` or ``POST /moto-api/state-manager/set-transition``). LastUpdate
(``API_LastUpdate.html``) is PENDING while a create or update runs, then SUCCESS or FAILED with
``Error.ErrorCode`` / ``Error.ErrorMessage``. ``Source`` is left out: AWS documents it only for
its own processes (maintenance).

Validation: every request is checked against the constraints of AWS's model (the lengths, patterns,
ranges, enums and required members that the API reference lists per member, read from botocore's
copy of the model), and answered as AWS answers a constraint violation: ``ValidationException`` with
``"1 validation error detected: Value 'x' at 'name' failed to satisfy constraint: Member must
satisfy regular expression pattern: ..."``. Rules from the member descriptions: ``AirflowVersion``
and ``EnvironmentClass`` must be among the documented valid values (``API_CreateEnvironment.html``;
the versions of the MWAA brief are added, the reference's list lags), ``Schedulers`` is 1 for
``mw1.micro`` and 2-5 otherwise. Where AWS documents no message (a duplicate name, an update of an
environment that is busy), the error carries the reference's generic description ("The provided
input is not valid.") followed by an ``(emulator: ...)`` note that says what was wrong; nothing
there is presented as AWS's own words.

Tags (``API_TagResource.html``, ``API_UntagResource.html``, ``API_ListTagsForResource.html``): the
ARN must match ``arn:aws:airflow:<region>:<account>:environment/<name>`` of an existing
environment of this account and region, else ResourceNotFoundException; 1-50 tags per call.

ListEnvironments (``API_ListEnvironments.html``): MaxResults 1-25, NextToken paging.

SchedulerHeartbeat (https://docs.aws.amazon.com/mwaa/latest/userguide/access-metrics-cw-202.html):
while an environment is AVAILABLE its scheduler heartbeats every ``HEARTBEAT_INTERVAL_S``
seconds into moto's CloudWatch (namespace ``AmazonMWAA``, metric ``SchedulerHeartbeat``,
dimensions ``Environment`` = name and ``Function`` = ``Scheduler``, unit Count). The datapoints are
derived from the environment's history when CloudWatch is read (moto's ``CloudWatchMetricProvider``
hook, the way moto publishes S3's own metrics), one statistic set per minute, for the last 15 days
(CloudWatch's retention of 1-minute data). :func:`stop_scheduler` simulates a dead scheduler (from
now, or from a moment in the past), :func:`start_scheduler` revives it, and
:func:`age_environment` moves an environment's whole history into the past, so that a test has
heartbeats older than a sensor's window without waiting for them.

Scripted failures (for tests; all in-process, all forgotten by ``/moto-api/reset``):
:func:`fail_next_create`, :func:`fail_next_update`, :func:`make_unavailable` and
:func:`fail_next_call` (an API error for the next call of an action, optionally after the call
took effect: a response lost on the way back).
"""

from __future__ import annotations

import math
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from moto.core.common_models import BaseModel, CloudWatchMetricProvider
from moto.core.exceptions import ServiceException
from moto.moto_api import state_manager

from airflow_provider_mwaaops.aws import model_constraints

if TYPE_CHECKING:
    from moto.cloudwatch.models import MetricAggregatedDatum

MODEL_NAME = "mwaa::environment"
#: moto's state manager progression of every lifecycle step unless a test sets another.
DEFAULT_TRANSITION: dict[str, Any] = {"progression": "time", "seconds": 1}
#: The scheduler's heartbeat period (Airflow's ``scheduler_heartbeat_sec`` default, as on MWAA).
HEARTBEAT_INTERVAL_S = 5.0
HEARTBEAT_NAMESPACE = "AmazonMWAA"
HEARTBEAT_METRIC = "SchedulerHeartbeat"
HEARTBEAT_FUNCTION = "Scheduler"
#: How far back heartbeats are kept (CloudWatch keeps 1-minute datapoints for 15 days).
HEARTBEAT_RETENTION = timedelta(days=15)

#: ``API_CreateEnvironment.html``, AirflowVersion: "Valid values: 2.7.2, 2.8.1, 2.9.2, 2.10.1,
#: 2.10.3, 2.11.0, and 3.0.6"; plus the versions MWAA runs today (shared/brief/mwaa.md).
VALID_AIRFLOW_VERSIONS = frozenset(
    {"2.7.2", "2.8.1", "2.9.2", "2.10.1", "2.10.3", "2.11.0", "2.11.2", "3.0.6", "3.2.1", "3.3.1"}
)
DEFAULT_AIRFLOW_VERSION = "3.3.1"  # "If no value is specified, it defaults to the latest version."
#: ``API_CreateEnvironment.html``, EnvironmentClass: valid values.
VALID_ENVIRONMENT_CLASSES = frozenset(
    {"mw1.micro", "mw1.small", "mw1.medium", "mw1.large", "mw1.xlarge", "mw1.2xlarge"}
)
#: Statuses in which the environment runs its scheduler: AVAILABLE, and UPDATE_FAILED ("restored
#: to its previous state successfully and is ready to use", API_Environment.html).
RUNNING_STATUSES = frozenset({"AVAILABLE", "UPDATE_FAILED"})
#: Statuses in which UpdateEnvironment is accepted (AVAILABLE, or restored after a failed update).
UPDATABLE_STATUSES = frozenset({"AVAILABLE", "UPDATE_FAILED"})
#: The error AWS reports for a creation it could not finish (seen in LastUpdate.Error of a real
#: CREATE_FAILED environment; also what the Terraform provider prints as "last error").
DEFAULT_CREATE_ERROR = (
    "INCORRECT_CONFIGURATION",
    "You may need to check the execution role permissions policy for your environment, and that each "
    "of the VPC networking components required by the environment are configured to allow traffic. "
    "Troubleshooting: https://docs.aws.amazon.com/mwaa/latest/userguide/troubleshooting.html",
)
_GENERIC_INVALID = "The provided input is not valid."


# -- errors (shapes and descriptions from the API reference) ----------------------------------------
class ValidationException(ServiceException):
    code = "ValidationException"
    message = _GENERIC_INVALID


class ResourceNotFoundException(ServiceException):
    code = "ResourceNotFoundException"
    message = "The resource is not available."


class InternalServerException(ServiceException):
    code = "InternalServerException"
    message = "An internal error has occurred."


class ServiceUnavailableException(ServiceException):
    code = "ServiceUnavailableException"
    message = "The service is currently unavailable."


class ThrottlingException(ServiceException):
    """A common error of every AWS API (``CommonErrors.html``)."""

    code = "ThrottlingException"
    message = "The request was denied due to request throttling."


_SCRIPTABLE_ERRORS: dict[str, type[ServiceException]] = {
    cls.code: cls
    for cls in (
        ValidationException,
        ResourceNotFoundException,
        InternalServerException,
        ServiceUnavailableException,
        ThrottlingException,
    )
}


def emulator_invalid(note: str) -> ValidationException:
    """A ValidationException for a rule whose message AWS does not document."""
    return ValidationException(f"{_GENERIC_INVALID} (emulator: {note})")


def not_found(what: str) -> ResourceNotFoundException:
    """ResourceNotFoundException with the reference's description and what was looked for."""
    return ResourceNotFoundException(f"{ResourceNotFoundException.message} (emulator: {what} does not exist)")


# -- validation against AWS's model ------------------------------------------------------------------
def constraint_errors(operation: str, params: dict[str, Any]) -> list[str]:
    """What AWS's model says is wrong with ``params`` for ``operation`` (empty: nothing)."""
    return model_constraints.constraint_errors("mwaa", operation, params)


def validate_request(operation: str, params: dict[str, Any]) -> None:
    """Raise AWS's ValidationException for every constraint ``params`` violates."""
    errors = constraint_errors(operation, params)
    if errors:
        raise ValidationException(model_constraints.describe_errors(errors))


def _validate_documented_values(spec: dict[str, Any], environment_class: str | None) -> None:
    version = spec.get("AirflowVersion")
    if version is not None and version not in VALID_AIRFLOW_VERSIONS:
        raise emulator_invalid(
            f"AirflowVersion {version!r} is not a valid value; valid: {sorted(VALID_AIRFLOW_VERSIONS)}"
        )
    if environment_class is not None and environment_class not in VALID_ENVIRONMENT_CLASSES:
        raise emulator_invalid(
            f"EnvironmentClass {environment_class!r} is not a valid value; "
            f"valid: {sorted(VALID_ENVIRONMENT_CLASSES)}"
        )
    schedulers = spec.get("Schedulers")
    if schedulers is not None and environment_class is not None:
        allowed = range(1, 2) if environment_class == "mw1.micro" else range(2, 6)
        if schedulers not in allowed:
            raise emulator_invalid(
                f"Schedulers={schedulers} is not accepted for {environment_class} "
                f"(valid: {allowed.start} to {allowed.stop - 1})"
            )


# -- lifecycle ---------------------------------------------------------------------------------------
def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Operation:
    """A create, update, delete or breakdown on its way through its statuses."""

    kind: str
    remaining: list[str]
    started_at: datetime
    step_started_at: datetime
    error: tuple[str, str] | None = None
    new_spec: dict[str, Any] | None = None
    ticks: int = 0


@dataclass
class _Script:
    """What the next create or update of an environment does instead of succeeding."""

    status: str
    error: tuple[str, str]


@dataclass
class _CallFailure:
    error: ServiceException
    after_effect: bool


class MwaaEnvironment(BaseModel):
    """One environment: its configuration, its status history and its scheduler's outages."""

    def __init__(
        self,
        account_id: str,
        region_name: str,
        partition: str,
        name: str,
        spec: dict[str, Any],
        tags: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.account_id = account_id
        self.region_name = region_name
        self.arn = f"arn:{partition}:airflow:{region_name}:{account_id}:environment/{name}"
        self.spec = {k: v for k, v in spec.items() if k not in ("Name", "Tags")}
        self.tags: dict[str, str] = dict(tags or {})
        self.created_at = _now()
        self.api_server: Any = None  # an mwaa_rest_api.ApiServer once attached
        self.webserver_host = (
            f"{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:8]}.c1.{region_name}.airflow.amazonaws.com"
        )
        self.timeline: list[tuple[str, datetime]] = []
        self.last_update: dict[str, Any] | None = None
        self.outages: list[list[datetime | None]] = []
        self.operation: _Operation | None = None
        self.deleted = False

    # -- status ----------------------------------------------------------------------------------
    def start(self, kind: str, path: list[str], **details: Any) -> None:
        """Enter ``path[0]`` now; the rest follows as the state manager's progression says."""
        now = _now()
        self.operation = _Operation(kind, list(path[1:]), now, now, **details)
        self.timeline.append((path[0], now))
        if kind in ("CREATE", "UPDATE"):
            self.last_update = {"Status": "PENDING", "CreatedAt": now}
        self.settle(now)

    def settle(self, now: datetime | None = None, tick: bool = False) -> str:
        """Advance the running operation to ``now``; ``tick`` counts one GetEnvironment call."""
        now = now or _now()
        operation = self.operation
        if operation is not None:
            config = state_manager.get_transition(MODEL_NAME)
            progression = config.get("progression")
            while operation.remaining:
                if progression == "time":
                    at = operation.step_started_at + timedelta(seconds=float(config.get("seconds", 0)))
                    if at > now:
                        break
                elif progression == "manual":
                    if not tick:
                        break
                    tick = False
                    operation.ticks += 1
                    if operation.ticks < int(config.get("times", 1)):
                        break
                    operation.ticks, at = 0, now
                else:  # "immediate" (moto's default for models it does not know)
                    at = operation.step_started_at
                operation.step_started_at = at
                self.timeline.append((operation.remaining.pop(0), at))
            if not operation.remaining:
                self._finish(operation)
        return self.timeline[-1][0]

    def _finish(self, operation: _Operation) -> None:
        self.operation = None
        final = self.timeline[-1][0]
        if operation.kind == "DELETE":
            self.deleted = True
            return
        if operation.kind == "BREAK":
            if operation.error:
                self.last_update = self._failed_update(operation.started_at, operation.error)
            return
        if final == "AVAILABLE":
            if operation.new_spec:
                self.spec.update(operation.new_spec)
            self.last_update = {"Status": "SUCCESS", "CreatedAt": operation.started_at}
        else:
            self.last_update = self._failed_update(
                operation.started_at, operation.error or DEFAULT_CREATE_ERROR
            )

    @staticmethod
    def _failed_update(started: datetime, error: tuple[str, str]) -> dict[str, Any]:
        return {
            "Status": "FAILED",
            "CreatedAt": started,
            "Error": {"ErrorCode": error[0], "ErrorMessage": error[1]},
        }

    @property
    def status(self) -> str:
        return self.settle()

    @property
    def airflow_version(self) -> str:
        return str(self.spec.get("AirflowVersion") or DEFAULT_AIRFLOW_VERSION)

    @property
    def environment_class(self) -> str:
        return str(self.spec.get("EnvironmentClass") or "mw1.small")

    def describe(self, tick: bool = False) -> dict[str, Any]:
        """GetEnvironment's ``Environment`` (``API_Environment.html``)."""
        status = self.settle(tick=tick)
        described = dict(self.spec)
        described.update(
            {
                "Name": self.name,
                "Arn": self.arn,
                "Status": status,
                "CreatedAt": self.created_at,
                "AirflowVersion": self.airflow_version,
                "EnvironmentClass": self.environment_class,
                "Schedulers": self.spec.get("Schedulers")
                or (1 if self.environment_class == "mw1.micro" else 2),
                "WebserverAccessMode": self.spec.get("WebserverAccessMode") or "PRIVATE_ONLY",
                "ServiceRoleArn": (
                    f"arn:aws:iam::{self.account_id}:role/aws-service-role/airflow.amazonaws.com/"
                    "AWSServiceRoleForAmazonMWAA"
                ),
            }
        )
        if self.tags:
            described["Tags"] = dict(self.tags)
        if self.last_update is not None:
            described["LastUpdate"] = dict(self.last_update)
        if self.api_server is not None:
            described["WebserverUrl"] = self.api_server.url.split("://", 1)[-1]
        elif any(entry == "AVAILABLE" for entry, _ in self.timeline):
            described["WebserverUrl"] = self.webserver_host
        return described

    # -- heartbeats --------------------------------------------------------------------------------
    def alive_spans(self, now: datetime) -> list[tuple[datetime, datetime]]:
        """When the scheduler ran: the AVAILABLE stretches of the history, less the outages."""
        self.settle(now)
        spans: list[tuple[datetime, datetime]] = []
        for index, (status, since) in enumerate(self.timeline):
            if status not in RUNNING_STATUSES:
                continue
            until = self.timeline[index + 1][1] if index + 1 < len(self.timeline) else now
            spans.extend(_subtract(since, until, self.outages, now))
        return spans

    def heartbeat_datums(self, now: datetime) -> list[MetricAggregatedDatum]:
        """One statistic set per minute with the heartbeats the scheduler sent in it."""
        from moto.cloudwatch.models import MetricAggregatedDatum

        dimensions = [
            {"Name": "Environment", "Value": self.name},
            {"Name": "Function", "Value": HEARTBEAT_FUNCTION},
        ]
        counts: dict[datetime, int] = {}
        oldest = now - HEARTBEAT_RETENTION
        for start, end in self.alive_spans(now):
            origin = start
            start = max(start, oldest)
            minute = start.replace(second=0, microsecond=0)
            while minute < end:
                beats = _beats_between(max(start, minute), min(end, minute + timedelta(minutes=1)), origin)
                if beats:
                    counts[minute] = counts.get(minute, 0) + beats
                minute += timedelta(minutes=1)
        return [
            MetricAggregatedDatum(
                namespace=HEARTBEAT_NAMESPACE,
                name=HEARTBEAT_METRIC,
                min_stat=1.0,
                max_stat=1.0,
                sample_count=float(beats),
                sum_stat=float(beats),
                dimensions=dimensions,
                timestamp=minute.replace(tzinfo=None),  # moto compares naive UTC datetimes
                unit="Count",
            )
            for minute, beats in sorted(counts.items())
        ]

    def shift_history(self, by: timedelta) -> None:
        """Move everything that happened to this environment ``by`` into the past."""
        self.created_at -= by
        self.timeline = [(status, since - by) for status, since in self.timeline]
        self.outages = [
            [start - by if start else None, end - by if end else None] for start, end in self.outages
        ]
        if self.last_update is not None and "CreatedAt" in self.last_update:
            self.last_update["CreatedAt"] -= by
        if self.operation is not None:
            self.operation.started_at -= by
            self.operation.step_started_at -= by


def _subtract(
    start: datetime, end: datetime, outages: list[list[datetime | None]], now: datetime
) -> list[tuple[datetime, datetime]]:
    pieces = [(start, end)]
    for outage_start, outage_end in outages:
        cut_from, cut_to = outage_start or start, outage_end or now
        pieces = [
            part
            for a, b in pieces
            for part in ((a, min(b, cut_from)), (max(a, cut_to), b))
            if part[0] < part[1]
        ]
    return pieces


def _beats_between(start: datetime, end: datetime, origin: datetime) -> int:
    """Heartbeats at ``origin + k * HEARTBEAT_INTERVAL_S`` (k >= 0) within ``[start, end)``."""
    if end <= start:
        return 0
    first = max(0, math.ceil((start - origin).total_seconds() / HEARTBEAT_INTERVAL_S))
    after_last = math.ceil((end - origin).total_seconds() / HEARTBEAT_INTERVAL_S)
    return max(0, after_last - first)


_backends: Any = None


def register_backends(backends: Any) -> None:
    """The MWAA service's ``BackendDict`` (made by ``mwaa_rest_api``, which builds on this module)."""
    global _backends
    _backends = backends


def registered_backends() -> Any:
    if _backends is None:
        raise RuntimeError("the emulated MWAA service is not installed (testing.extensions.install_all)")
    return _backends


# -- the backend's environment operations ----------------------------------------------------------------
class MwaaEnvironmentBackend(CloudWatchMetricProvider):
    """Environment management of one account and region (mixed into the MWAA backend)."""

    account_id: str
    region_name: str
    partition: str

    def _init_environments(self) -> None:
        self.environments: dict[str, MwaaEnvironment] = {}
        self.create_scripts: dict[str, _Script] = {}
        self.update_scripts: dict[str, _Script] = {}
        self.call_failures: dict[str, list[_CallFailure]] = {}
        self.lock = threading.RLock()

    # -- scripted API errors ----------------------------------------------------------------------
    def call(self, action: str, run: Any) -> Any:
        """Run one API action, honouring a scripted failure for it."""
        failures = self.call_failures.get(action) or []
        failure = failures.pop(0) if failures else None
        if failure is not None and not failure.after_effect:
            raise failure.error
        with self.lock:
            result = run()
        if failure is not None:
            raise failure.error
        return result

    # -- lookups ------------------------------------------------------------------------------------
    def get_environment(self, name: str, tick: bool = False) -> MwaaEnvironment:
        """The environment (settled to now); ResourceNotFoundException once it is gone."""
        environment = self.environments.get(name)
        if environment is None:
            raise not_found(f"environment {name}")
        environment.settle(tick=tick)
        if environment.deleted:
            del self.environments[name]
        return environment

    def describe_environment(self, name: str) -> dict[str, Any]:
        validate_request("GetEnvironment", {"Name": name})
        environment = self.environments.get(name)
        if environment is None:
            raise not_found(f"environment {name}")
        described = environment.describe(tick=True)
        if environment.deleted:  # reported DELETED this once
            del self.environments[name]
        return described

    def list_environment_names(
        self, max_results: int | None, next_token: str | None
    ) -> tuple[list[str], str | None]:
        validate_request("ListEnvironments", {"MaxResults": max_results, "NextToken": next_token})
        for name in list(self.environments):
            self.get_environment(name)  # forgets environments whose deletion finished
        names = sorted(self.environments)
        start = 0
        if next_token:
            if next_token not in names:
                raise emulator_invalid(f"NextToken {next_token!r} does not come from ListEnvironments")
            start = names.index(next_token)
        size = max_results or 25
        page = names[start : start + size]
        following = names[start + size] if start + size < len(names) else None
        return page, following

    # -- create / update / delete -------------------------------------------------------------------
    def create_environment(self, name: str, spec: dict[str, Any]) -> str:
        """``API_CreateEnvironment.html``: validate, then start CREATING."""
        validate_request("CreateEnvironment", {**spec, "Name": name})
        _validate_documented_values(spec, spec.get("EnvironmentClass") or "mw1.small")
        if name in self.environments:
            self.get_environment(name)  # a finished deletion frees the name
        if name in self.environments:
            raise emulator_invalid(f"an environment named {name} already exists in {self.region_name}")
        environment = MwaaEnvironment(
            self.account_id, self.region_name, self.partition, name, spec, spec.get("Tags")
        )
        self.environments[name] = environment
        script = self.create_scripts.pop(name, None)
        if script is None:
            environment.start("CREATE", ["CREATING", "AVAILABLE"])
        else:
            environment.start("CREATE", ["CREATING", script.status], error=script.error)
        return environment.arn

    def update_environment(self, name: str, changes: dict[str, Any]) -> str:
        """``API_UpdateEnvironment.html``: validate, then UPDATING (via CREATING_SNAPSHOT for a
        version upgrade); the new configuration applies once AVAILABLE."""
        validate_request("UpdateEnvironment", {**changes, "Name": name})
        environment = self.get_environment(name)
        merged = {**environment.spec, **changes}
        _validate_documented_values(changes, merged.get("EnvironmentClass") or "mw1.small")
        status = environment.status
        if status not in UPDATABLE_STATUSES:
            raise emulator_invalid(
                f"environment {name} is {status}; it can be updated when AVAILABLE or UPDATE_FAILED"
            )
        if "NetworkConfiguration" in changes:  # only the security groups can change
            changes = {
                **changes,
                "NetworkConfiguration": {
                    **(environment.spec.get("NetworkConfiguration") or {}),
                    **changes["NetworkConfiguration"],
                },
            }
        upgrade = "AirflowVersion" in changes and changes["AirflowVersion"] != environment.airflow_version
        path = ["UPDATING", "CREATING_SNAPSHOT", "UPDATING"] if upgrade else ["UPDATING"]
        script = self.update_scripts.pop(name, None)
        if script is None:
            environment.start("UPDATE", [*path, "AVAILABLE"], new_spec=changes)
        else:
            environment.start("UPDATE", [*path, "ROLLING_BACK", script.status], error=script.error)
        return environment.arn

    def delete_environment(self, name: str) -> None:
        """``API_DeleteEnvironment.html``: DELETING -> DELETED."""
        validate_request("DeleteEnvironment", {"Name": name})
        environment = self.get_environment(name)
        if environment.status in ("DELETING", "DELETED"):
            raise emulator_invalid(f"environment {name} is already being deleted")
        environment.start("DELETE", ["DELETING", "DELETED"])

    # -- tags ----------------------------------------------------------------------------------------
    def _tagged(self, arn: str) -> MwaaEnvironment:
        name = arn.rsplit("environment/", 1)[-1]
        environment = self.environments.get(name)
        if environment is None or environment.arn != arn:
            raise not_found(arn)
        return self.get_environment(name)

    def tag_resource(self, arn: str, tags: dict[str, str]) -> None:
        validate_request("TagResource", {"ResourceArn": arn, "Tags": tags})
        self._tagged(arn).tags.update(tags)

    def untag_resource(self, arn: str, keys: list[str]) -> None:
        validate_request("UntagResource", {"ResourceArn": arn, "tagKeys": keys})
        environment = self._tagged(arn)
        for key in keys:
            environment.tags.pop(key, None)

    def list_tags(self, arn: str) -> dict[str, str]:
        validate_request("ListTagsForResource", {"ResourceArn": arn})
        return dict(self._tagged(arn).tags)

    # -- CloudWatch ------------------------------------------------------------------------------------
    @staticmethod
    def get_cloudwatch_metrics(account_id: str, region: str) -> list[Any]:
        mwaa_backends = registered_backends()
        # dict.get: a CloudWatch read must not create an MWAA backend for every region it touches.
        account = dict.get(mwaa_backends, account_id)
        backend: Any = dict.get(account, region) if account is not None else None
        if backend is None:
            return []
        now = _now()
        with backend.lock:
            environments = list(backend.environments.values())
            return [datum for environment in environments for datum in environment.heartbeat_datums(now)]


# -- the HTTP side ------------------------------------------------------------------------------------
class MwaaEnvironmentResponses:
    """Response handlers of the environment actions (mixed into the MWAA ``BaseResponse``)."""

    backend: Any
    params: dict[str, Any]  # BaseResponse's parsed request
    _get_param: Any  # BaseResponse._get_param

    def _request_body(self) -> dict[str, Any]:
        return {key: value for key, value in self.params.items() if value is not None and key != "Name"}

    def create_environment(self) -> Any:
        from moto.core.responses import ActionResult

        name, spec = self._get_param("Name"), self._request_body()
        return ActionResult(
            {
                "Arn": self.backend.call(
                    "CreateEnvironment", lambda: self.backend.create_environment(name, spec)
                )
            }
        )

    def update_environment(self) -> Any:
        from moto.core.responses import ActionResult

        name, changes = self._get_param("Name"), self._request_body()
        return ActionResult(
            {
                "Arn": self.backend.call(
                    "UpdateEnvironment", lambda: self.backend.update_environment(name, changes)
                )
            }
        )

    def delete_environment(self) -> Any:
        from moto.core.responses import EmptyResult

        name = self._get_param("Name")
        self.backend.call("DeleteEnvironment", lambda: self.backend.delete_environment(name))
        return EmptyResult()

    def get_environment(self) -> Any:
        from moto.core.responses import ActionResult

        name = self._get_param("Name")
        return ActionResult(
            {
                "Environment": self.backend.call(
                    "GetEnvironment", lambda: self.backend.describe_environment(name)
                )
            }
        )

    def list_environments(self) -> Any:
        from moto.core.responses import ActionResult

        max_results, token = self._get_param("MaxResults"), self._get_param("NextToken")
        names, following = self.backend.call(
            "ListEnvironments", lambda: self.backend.list_environment_names(max_results, token)
        )
        body: dict[str, Any] = {"Environments": names}
        if following:
            body["NextToken"] = following
        return ActionResult(body)

    def tag_resource(self) -> Any:
        from moto.core.responses import EmptyResult

        arn, tags = self._get_param("ResourceArn"), self._get_param("Tags")
        self.backend.call("TagResource", lambda: self.backend.tag_resource(arn, tags))
        return EmptyResult()

    def untag_resource(self) -> Any:
        from moto.core.responses import EmptyResult

        arn, keys = self._get_param("ResourceArn"), self._get_param("tagKeys") or []
        self.backend.call("UntagResource", lambda: self.backend.untag_resource(arn, keys))
        return EmptyResult()

    def list_tags_for_resource(self) -> Any:
        from moto.core.responses import ActionResult

        arn = self._get_param("ResourceArn")
        return ActionResult(
            {"Tags": self.backend.call("ListTagsForResource", lambda: self.backend.list_tags(arn))}
        )


# -- scripting for tests ----------------------------------------------------------------------------------
def _backend(account_id: str | None, region_name: str) -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID

    return registered_backends()[account_id or DEFAULT_ACCOUNT_ID][region_name]


def _environment(name: str, account_id: str | None, region_name: str) -> MwaaEnvironment:
    backend = _backend(account_id, region_name)
    with backend.lock:
        return backend.get_environment(name)


def fail_next_create(
    name: str,
    error_code: str = DEFAULT_CREATE_ERROR[0],
    error_message: str = DEFAULT_CREATE_ERROR[1],
    *,
    status: str = "CREATE_FAILED",
    account_id: str | None = None,
    region_name: str = "us-east-1",
) -> None:
    """The next CreateEnvironment of ``name`` ends ``status`` (CREATE_FAILED or UNAVAILABLE)."""
    if status not in ("CREATE_FAILED", "UNAVAILABLE"):
        raise ValueError(f"a creation fails as CREATE_FAILED or UNAVAILABLE, not {status!r}")
    _backend(account_id, region_name).create_scripts[name] = _Script(status, (error_code, error_message))


def fail_next_update(
    name: str,
    error_code: str = "INCORRECT_CONFIGURATION",
    error_message: str = "The update failed; Amazon MWAA restored the environment from its snapshot.",
    *,
    status: str = "UPDATE_FAILED",
    account_id: str | None = None,
    region_name: str = "us-east-1",
) -> None:
    """The next UpdateEnvironment of ``name`` rolls back to ``status`` (UPDATE_FAILED or UNAVAILABLE).

    The default message is the emulator's; give the one your test expects.
    """
    if status not in ("UPDATE_FAILED", "UNAVAILABLE"):
        raise ValueError(f"an update fails as UPDATE_FAILED or UNAVAILABLE, not {status!r}")
    _backend(account_id, region_name).update_scripts[name] = _Script(status, (error_code, error_message))


def make_unavailable(
    name: str,
    error_code: str | None = None,
    error_message: str | None = None,
    *,
    account_id: str | None = None,
    region_name: str = "us-east-1",
) -> None:
    """The environment becomes UNAVAILABLE now (its scheduler stops with it)."""
    environment = _environment(name, account_id, region_name)
    error = (error_code, error_message or error_code) if error_code else None
    environment.start("BREAK", ["UNAVAILABLE"], error=error)


def fail_next_call(
    action: str,
    error_code: str = "InternalServerException",
    message: str | None = None,
    *,
    after_effect: bool = False,
    account_id: str | None = None,
    region_name: str = "us-east-1",
) -> None:
    """The next call of ``action`` (``"CreateEnvironment"``, ``"GetEnvironment"``...) fails with
    ``error_code``; with ``after_effect`` the call takes effect first (a response lost on the way
    back, as when a worker dies after CreateEnvironment was accepted)."""
    error_class = _SCRIPTABLE_ERRORS.get(error_code)
    if error_class is None:
        raise ValueError(f"error_code must be one of {sorted(_SCRIPTABLE_ERRORS)}, got {error_code!r}")
    error = error_class(message) if message else error_class()
    backend = _backend(account_id, region_name)
    backend.call_failures.setdefault(action, []).append(_CallFailure(error, after_effect))


def stop_scheduler(
    name: str, at: datetime | None = None, *, account_id: str | None = None, region_name: str = "us-east-1"
) -> None:
    """The scheduler dies at ``at`` (default now; may be in the past): no heartbeat after it."""
    environment = _environment(name, account_id, region_name)
    if environment.outages and environment.outages[-1][1] is None:
        return
    environment.outages.append([at or _now(), None])


def start_scheduler(name: str, *, account_id: str | None = None, region_name: str = "us-east-1") -> None:
    """The scheduler heartbeats again from now on (while the environment is AVAILABLE)."""
    environment = _environment(name, account_id, region_name)
    if environment.outages and environment.outages[-1][1] is None:
        environment.outages[-1][1] = _now()


def age_environment(
    name: str, by: timedelta, *, account_id: str | None = None, region_name: str = "us-east-1"
) -> None:
    """Move the environment's whole history ``by`` into the past (created earlier, heartbeating
    since then): a test gets heartbeats older than a sensor's window without waiting."""
    _environment(name, account_id, region_name).shift_history(by)


def wait_for_status(
    name: str,
    statuses: str | tuple[str, ...] = "AVAILABLE",
    *,
    timeout: float = 30.0,
    account_id: str | None = None,
    region_name: str = "us-east-1",
) -> str:
    """Block until the environment reaches one of ``statuses`` (for test set-up); returns it."""
    import time

    wanted = (statuses,) if isinstance(statuses, str) else statuses
    deadline = time.monotonic() + timeout
    while True:
        status = _environment(name, account_id, region_name).status
        if status in wanted:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"environment {name} is still {status} after {timeout}s, not {wanted}")
        time.sleep(0.05)


def install() -> None:
    """Register the lifecycle's default pace with moto's state manager."""
    state_manager.register_default_transition(MODEL_NAME, transition=DEFAULT_TRANSITION)


__all__ = [
    "DEFAULT_CREATE_ERROR",
    "DEFAULT_TRANSITION",
    "HEARTBEAT_FUNCTION",
    "HEARTBEAT_INTERVAL_S",
    "HEARTBEAT_METRIC",
    "HEARTBEAT_NAMESPACE",
    "MODEL_NAME",
    "MwaaEnvironment",
    "MwaaEnvironmentBackend",
    "MwaaEnvironmentResponses",
    "age_environment",
    "constraint_errors",
    "fail_next_call",
    "fail_next_create",
    "fail_next_update",
    "make_unavailable",
    "start_scheduler",
    "stop_scheduler",
    "validate_request",
    "wait_for_status",
]
