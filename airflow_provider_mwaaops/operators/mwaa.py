"""Amazon MWAA operators for disaster recovery: snapshot an environment, recreate it, wait for updates.

* :class:`MwaaEnvironmentSnapshotOperator` stores GetEnvironment as JSON in S3 (one object per
  environment and moment, with its sha256), split into replayable, Region-bound and read-only parts
  (:class:`~airflow_provider_mwaaops.hooks.mwaa.EnvironmentSnapshot`).
* :class:`MwaaCreateEnvironmentFromSnapshotOperator` replays a snapshot into this (or another)
  Region with overrides, tags the environment with the snapshot's checksum so that a retry attaches
  to what the first try created, and waits (deferrable) until AVAILABLE.
* :class:`MwaaUpdateEnvironmentOperator` applies changes (or attaches to an update in progress) and
  waits likewise.

Every input is checked against AWS's own constraints before any create or update call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_mwaaops.aws.errors import error_code
from airflow_provider_mwaaops.aws.model_constraints import constraint_errors, describe_errors, service_model
from airflow_provider_mwaaops.compat import AirflowException
from airflow_provider_mwaaops.hooks.mwaa import (
    SNAPSHOT_TAG,
    EnvironmentSnapshot,
    MwaaEnvironmentHook,
    SnapshotError,
    validate_environment_name,
)
from airflow_provider_mwaaops.operators.base import AwsBaseOperator, aws_template_fields
from airflow_provider_mwaaops.triggers.base import STATUS_SUCCESS
from airflow_provider_mwaaops.triggers.mwaa import MwaaEnvironmentStatusTrigger

if TYPE_CHECKING:
    from airflow_provider_mwaaops.compat import Context

__all__ = [
    "MwaaCreateEnvironmentFromSnapshotOperator",
    "MwaaEnvironmentBaseOperator",
    "MwaaEnvironmentSnapshotOperator",
    "MwaaUpdateEnvironmentOperator",
    "load_snapshot",
]

#: Statuses in which an environment is still on its way somewhere: attach and wait.
IN_PROGRESS_STATUSES = frozenset({"CREATING", "PENDING", "UPDATING", "CREATING_SNAPSHOT", "ROLLING_BACK"})


def _split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"expected an s3://bucket/key URI, got {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return bucket, key


def load_snapshot(s3_client: Any, uri: str) -> tuple[EnvironmentSnapshot, str]:
    """Read a snapshot from ``uri``: one object, or a folder (ending in ``/``) whose newest
    ``.json`` is taken. Returns the snapshot and the URI it was read from."""
    bucket, key = _split_s3_uri(uri)
    if not key or key.endswith("/"):
        keys = [
            item["Key"]
            for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
            for item in page.get("Contents", [])
            if item["Key"].endswith(".json")
        ]
        if not keys:
            raise SnapshotError(f"no snapshot under {uri}")
        key = max(keys)  # keys end in a sortable UTC moment
    where = f"s3://{bucket}/{key}"
    try:
        body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        if error_code(exc) in ("NoSuchKey", "404"):
            raise SnapshotError(f"no snapshot at {where}") from exc
        raise
    return EnvironmentSnapshot.from_json(body, where=where), where


class MwaaEnvironmentBaseOperator(AwsBaseOperator):
    """What the MWAA environment operators share: the hook, and the wait until AVAILABLE whose
    event ``execute_complete`` turns into the result or a failure naming the service's reason."""

    aws_hook_class = MwaaEnvironmentHook
    aws_service_label = "MWAA"
    ui_color = "#ffe0b3"

    hook: MwaaEnvironmentHook

    def _wait(self, context: Context, environment_name: str, operation: str) -> Any:
        trigger = MwaaEnvironmentStatusTrigger(
            environment_name=environment_name,
            operation=operation,  # type: ignore[arg-type]
            **self.trigger_kwargs(),
        )
        return self.wait_for(trigger, context)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        event = event or {}
        name = event.get("environment_name", "?")
        self.raise_for_event(event, f"MWAA environment {name}", self.wait_timeout)
        if event.get("status") != STATUS_SUCCESS:
            raise AirflowException(
                f"MWAA environment {name} ended {event.get('environment_status')}: {event.get('reason')}"
            )
        self.log.info("MWAA environment %s is AVAILABLE", name)
        return {
            "environment_name": name,
            "arn": event.get("arn"),
            "status": event.get("environment_status"),
            "webserver_url": event.get("webserver_url"),
        }


class MwaaEnvironmentSnapshotOperator(MwaaEnvironmentBaseOperator):
    """Store an environment's GetEnvironment answer in S3 as a replayable snapshot.

    :param environment_name: the environment to snapshot. (templated)
    :param bucket: S3 bucket for snapshots (replicate it to the recovery Region). (templated)
    :param prefix: key prefix; the object is ``<prefix>/<environment>/<UTC moment>.json``. (templated)
    :param s3_conn_id: AWS connection for S3 (default: ``aws_conn_id``).

    Returns (XCom) ``{"uri", "sha256", "environment_name", "taken_at", "withheld_configuration_options"}``.
    """

    template_fields: Sequence[str] = aws_template_fields("environment_name", "bucket", "prefix")

    def __init__(
        self,
        *,
        environment_name: str,
        bucket: str,
        prefix: str = "mwaa-snapshots",
        s3_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.environment_name = environment_name
        self.bucket = bucket
        self.prefix = prefix
        self.s3_conn_id = s3_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        validate_environment_name(self.environment_name)
        with self.aws_errors():
            snapshot = self.hook.snapshot(self.environment_name)
        key = snapshot.key(self.prefix)
        s3 = S3Hook(aws_conn_id=self.s3_conn_id or self.aws_conn_id).get_conn()
        s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=snapshot.to_json().encode(),
            ContentType="application/json",
            ChecksumAlgorithm="SHA256",
            Metadata={"mwaaops-snapshot-sha256": snapshot.sha256},
        )
        uri = f"s3://{self.bucket}/{key}"
        if snapshot.withheld_configuration_options:
            self.log.warning(
                "Secret Airflow configuration options were not written: %s; give them again when "
                "recreating the environment",
                snapshot.withheld_configuration_options,
            )
        self.log.info("Snapshot of %s written to %s (sha256 %s)", self.environment_name, uri, snapshot.sha256)
        return {
            "uri": uri,
            "sha256": snapshot.sha256,
            "environment_name": self.environment_name,
            "taken_at": snapshot.taken_at,
            "withheld_configuration_options": snapshot.withheld_configuration_options,
        }


class MwaaCreateEnvironmentFromSnapshotOperator(MwaaEnvironmentBaseOperator):
    """Recreate an environment from a snapshot, then wait until it is AVAILABLE.

    :param snapshot: S3 URI of a snapshot, or of a folder (ending in ``/``) whose newest snapshot
        is used, e.g. ``s3://dr-bucket/mwaa-snapshots/prod/``. (templated)
    :param environment_name: name of the new environment (default: the snapshot's). (templated)
    :param network_configuration: ``{"SubnetIds": [...], "SecurityGroupIds": [...]}`` of this
        Region. (templated)
    :param source_bucket_arn: DAGs bucket of this Region; the snapshot's S3 object versions are then
        dropped (they belong to the old bucket) unless given in ``overrides``. (templated)
    :param execution_role_arn: execution role to use. (templated)
    :param kms_key: KMS key of this Region (``None`` keeps the snapshot's). (templated)
    :param overrides: any other CreateEnvironment members (``None`` removes one); a name
        CreateEnvironment does not have is an error. (templated)
    :param allow_missing_secrets: create even though secret Airflow configuration options the
        snapshot withheld were not given again in ``overrides["AirflowConfigurationOptions"]``.
    :param allow_other_account: accept a snapshot taken in another AWS account.
    :param s3_conn_id: AWS connection for S3 (default: ``aws_conn_id``).

    Idempotent: the environment is tagged ``mwaaops:snapshot-sha256``; a retry that finds an
    environment of that name carrying this snapshot's checksum waits for it instead of creating
    another one, and one created otherwise is an error. CREATE_FAILED and UNAVAILABLE fail the task
    with the service's ``LastUpdate.Error``. Returns (XCom) the environment's name, ARN, status and
    web server URL.
    """

    template_fields: Sequence[str] = aws_template_fields(
        "snapshot",
        "environment_name",
        "network_configuration",
        "source_bucket_arn",
        "execution_role_arn",
        "kms_key",
        "overrides",
    )
    template_fields_renderers = {"network_configuration": "json", "overrides": "json"}

    def __init__(
        self,
        *,
        snapshot: str,
        environment_name: str | None = None,
        network_configuration: Mapping[str, Any] | None = None,
        source_bucket_arn: str | None = None,
        execution_role_arn: str | None = None,
        kms_key: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        allow_missing_secrets: bool = False,
        allow_other_account: bool = False,
        s3_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.snapshot = snapshot
        self.environment_name = environment_name
        self.network_configuration = network_configuration
        self.source_bucket_arn = source_bucket_arn
        self.execution_role_arn = execution_role_arn
        self.kms_key = kms_key
        self.overrides = overrides
        self.allow_missing_secrets = allow_missing_secrets
        self.allow_other_account = allow_other_account
        self.s3_conn_id = s3_conn_id

    def _all_overrides(self) -> dict[str, Any]:
        overrides = dict(self.overrides or {})
        for member, value in (
            ("NetworkConfiguration", self.network_configuration),
            ("SourceBucketArn", self.source_bucket_arn),
            ("ExecutionRoleArn", self.execution_role_arn),
            ("KmsKey", self.kms_key),
        ):
            if value is not None:
                overrides[member] = dict(value) if isinstance(value, Mapping) else value
        return overrides

    def _request(self) -> tuple[EnvironmentSnapshot, dict[str, Any]]:
        """Everything that can be refused, refused before any create call."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        if self.environment_name:
            validate_environment_name(self.environment_name)
        s3 = S3Hook(aws_conn_id=self.s3_conn_id or self.aws_conn_id).get_conn()
        try:
            snapshot, where = load_snapshot(s3, self.snapshot)
        except (SnapshotError, ValueError) as exc:
            raise AirflowException(str(exc)) from exc
        self.log.info(
            "Snapshot %s: environment %s of %s, taken %s",
            where,
            snapshot.environment_name,
            snapshot.region,
            snapshot.taken_at,
        )
        if not self.allow_other_account:
            with self.aws_errors():
                account = self.hook.account_id
            if snapshot.account_id and snapshot.account_id != account:
                raise AirflowException(
                    f"snapshot {where} was taken in account {snapshot.account_id}, this connection works in "
                    f"{account}; set allow_other_account=True to replay it here"
                )
        try:
            request = snapshot.create_request(
                self.environment_name, self._all_overrides(), allow_missing_secrets=self.allow_missing_secrets
            )
        except ValueError as exc:
            raise AirflowException(str(exc)) from exc
        return snapshot, request

    def execute(self, context: Context) -> Any:
        snapshot, request = self._request()
        name = request["Name"]
        with self.aws_errors():
            existing = self.hook.get_environment(name)
            if existing is not None:
                self._attach(existing, snapshot)
            else:
                self._create(request, snapshot)
        return self._wait(context, name, "create")

    def _attach(self, existing: Mapping[str, Any], snapshot: EnvironmentSnapshot) -> None:
        name = existing["Name"]
        tag = (existing.get("Tags") or {}).get(SNAPSHOT_TAG)
        if tag != snapshot.sha256:
            raise AirflowException(
                f"MWAA environment {name} already exists and was not created from this snapshot "
                f"(its {SNAPSHOT_TAG} tag is {tag!r}); choose another environment_name or delete it"
            )
        self.log.info(
            "MWAA environment %s was already created from this snapshot (%s): attaching to it",
            name,
            existing.get("Status"),
        )

    def _create(self, request: dict[str, Any], snapshot: EnvironmentSnapshot) -> None:
        name = request["Name"]
        try:
            arn = self.hook.create_environment(request)
        except Exception as exc:
            # A create that reached AWS while its answer got lost (and the SDK's own retry was then
            # refused) left the environment behind: it carries our tag, so take it.
            if error_code(exc) != "ValidationException":
                raise
            existing = self.hook.get_environment(name)
            if existing is None:
                raise
            self._attach(existing, snapshot)
            return
        self.log.info("CreateEnvironment %s accepted: %s", name, arn)


class MwaaUpdateEnvironmentOperator(MwaaEnvironmentBaseOperator):
    """Update an environment (or wait for an update in progress) until AVAILABLE again.

    :param environment_name: the environment. (templated)
    :param changes: UpdateEnvironment members to change, e.g. ``{"MaxWorkers": 10}``; empty: only
        wait for the update in progress. (templated)

    A retry does not update twice: an update in progress is waited for, and changes that are
    already in place are not sent again. ROLLING_BACK -> UPDATE_FAILED and UNAVAILABLE fail the task
    with the service's ``LastUpdate.Error``.
    """

    template_fields: Sequence[str] = aws_template_fields("environment_name", "changes")
    template_fields_renderers = {"changes": "json"}

    def __init__(
        self, *, environment_name: str, changes: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.environment_name = environment_name
        self.changes = changes

    def _validated_changes(self) -> dict[str, Any]:
        validate_environment_name(self.environment_name)
        changes = dict(self.changes or {})
        allowed = set(service_model("mwaa").operation_model("UpdateEnvironment").input_shape.members) - {
            "Name"
        }
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise ValueError(
                f"changes name fields UpdateEnvironment does not have: {unknown}; valid: {sorted(allowed)}"
            )
        errors = constraint_errors("mwaa", "UpdateEnvironment", {**changes, "Name": self.environment_name})
        if errors:
            raise ValueError(f"UpdateEnvironment would refuse these changes: {describe_errors(errors)}")
        return changes

    def execute(self, context: Context) -> Any:
        changes = self._validated_changes()
        with self.aws_errors():
            environment = self.hook.get_environment(self.environment_name)
            if environment is None:
                raise AirflowException(f"MWAA environment {self.environment_name} does not exist")
            status = environment.get("Status")
            pending = {k: v for k, v in changes.items() if not _same(environment.get(k), v)}
            if status in IN_PROGRESS_STATUSES:
                self.log.info("MWAA environment %s is %s: waiting for it", self.environment_name, status)
            elif pending:
                self.hook.update_environment(self.environment_name, pending)
                self.log.info("UpdateEnvironment %s: %s", self.environment_name, sorted(pending))
            else:
                self.log.info("MWAA environment %s already has these settings", self.environment_name)
        return self._wait(context, self.environment_name, "update")


def _same(current: Any, wanted: Any) -> bool:
    """Whether a change is already in place (nested members compared as JSON)."""
    if isinstance(wanted, Mapping) and isinstance(current, Mapping):
        return all(_same(current.get(k), v) for k, v in wanted.items())
    return json.dumps(current, sort_keys=True, default=str) == json.dumps(wanted, sort_keys=True, default=str)
