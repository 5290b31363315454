"""Amazon MWAA environments: the amazon provider's ``MwaaHook`` plus what a recovery needs.

The amazon provider's ``MwaaHook`` (9.8.0, the oldest one MWAA ships) has the boto3 client and
``invoke_rest_api``; everything about the environments themselves is left to raw boto3 calls. This
module adds them once: :class:`MwaaEnvironmentHook` reads, creates, updates, deletes and lists
environments, and :class:`EnvironmentSnapshot` is the stored form of a GetEnvironment answer that a
recovery replays into another Region.

Snapshot document (JSON, format ``mwaaops-mwaa-environment-snapshot``, version 1)::

    {
      "format": "mwaaops-mwaa-environment-snapshot", "format_version": 1,
      "taken_at": "2026-01-01T12:00:00.000000+00:00",
      "source": {"account_id": "...", "region": "us-east-1", "environment_name": "prod", "arn": "..."},
      "configuration": {...},   # CreateEnvironment members that mean the same in every Region
      "region_bound": {...},    # network, bucket, roles, KMS key, S3 object versions
      "read_only": {...},       # Arn, Status, CreatedAt, LastUpdate, WebserverUrl, log group ARNs...
      "withheld_configuration_options": ["smtp.smtp_password"],
      "sha256": "..."           # of the canonical JSON of everything above
    }

Airflow configuration options whose names Airflow treats as secret (``*password*``, ``*secret*``,
``*token*``...) are withheld: listed by name, never written. A create from the snapshot must be
given them again (or told to go without).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from airflow.providers.amazon.aws.hooks.mwaa import MwaaHook
from botocore.exceptions import ClientError

from airflow_provider_mwaaops.aws.model_constraints import constraint_errors, describe_errors, service_model

__all__ = [
    "CREATE_FAILURE_STATUSES",
    "READY_STATUSES",
    "SNAPSHOT_FORMAT",
    "SNAPSHOT_FORMAT_VERSION",
    "SNAPSHOT_TAG",
    "UPDATE_FAILURE_STATUSES",
    "EnvironmentSnapshot",
    "MwaaEnvironmentHook",
    "SnapshotError",
    "environment_failure",
    "validate_environment_name",
]

SNAPSHOT_FORMAT = "mwaaops-mwaa-environment-snapshot"
SNAPSHOT_FORMAT_VERSION = 1
#: Tag put on environments created from a snapshot, holding its checksum so a retry recognises its own.
SNAPSHOT_TAG = "mwaaops:snapshot-sha256"

#: Statuses of ``API_Environment.html``: where a create or update ends.
READY_STATUSES = frozenset({"AVAILABLE"})
CREATE_FAILURE_STATUSES = frozenset({"CREATE_FAILED", "UNAVAILABLE", "DELETING", "DELETED"})
UPDATE_FAILURE_STATUSES = frozenset({"UPDATE_FAILED", "UNAVAILABLE", "DELETING", "DELETED"})

#: GetEnvironment members that describe one environment's state or AWS-made resources; never replayed.
READ_ONLY_FIELDS = frozenset(
    {
        "Arn",
        "Status",
        "CreatedAt",
        "LastUpdate",
        "WebserverUrl",
        "ServiceRoleArn",
        "CeleryExecutorQueue",
        "DatabaseVpcEndpointService",
        "WebserverVpcEndpointService",
    }
)
#: CreateEnvironment members that name resources of one Region (or one bucket's object versions).
REGION_BOUND_FIELDS = (
    "NetworkConfiguration",
    "SourceBucketArn",
    "ExecutionRoleArn",
    "KmsKey",
    "PluginsS3ObjectVersion",
    "RequirementsS3ObjectVersion",
    "StartupScriptS3ObjectVersion",
)
OBJECT_VERSION_FIELDS = (
    "PluginsS3ObjectVersion",
    "RequirementsS3ObjectVersion",
    "StartupScriptS3ObjectVersion",
)
#: Tags AWS reserves (``aws:``) or that describe the old environment (ours).
_UNREPLAYED_TAG_PREFIXES = ("aws:", "mwaaops:")


class SnapshotError(ValueError):
    """A snapshot that cannot be used: unreadable, altered, of a newer format, of another account."""


def validate_environment_name(name: str) -> None:
    """Refuse a name CreateEnvironment would refuse (AWS's pattern and length), before any call."""
    errors = constraint_errors("mwaa", "GetEnvironment", {"Name": name})
    if errors:
        raise ValueError(f"environment name {name!r} is not valid for MWAA: {describe_errors(errors)}")


def environment_failure(environment: Mapping[str, Any]) -> str:
    """The service's reason for a failed create or update (``LastUpdate.Error``), as one line."""
    error = (environment.get("LastUpdate") or {}).get("Error") or {}
    code, message = error.get("ErrorCode"), error.get("ErrorMessage")
    if code and message:
        return f"{code}: {message}"
    return str(code or message or "MWAA gave no reason (LastUpdate.Error is empty)")


def _create_members() -> frozenset[str]:
    return frozenset(service_model("mwaa").operation_model("CreateEnvironment").input_shape.members)


def _is_secret_option(key: str) -> bool:
    """Whether Airflow's secrets masker treats a configuration option of this name as secret."""
    from airflow_provider_mwaaops.secrets_masking import redact

    probe = "mwaaops-probe-value"
    return redact({key.rsplit(".", 1)[-1]: probe}) != {key.rsplit(".", 1)[-1]: probe}


def _canonical(document: Mapping[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)


def _json_safe(value: Any) -> Any:
    return json.loads(
        json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))
    )


@dataclass(frozen=True)
class EnvironmentSnapshot:
    """A GetEnvironment answer split into what can be replayed elsewhere and what cannot."""

    source: dict[str, Any]
    taken_at: str
    configuration: dict[str, Any]
    region_bound: dict[str, Any]
    read_only: dict[str, Any] = field(default_factory=dict)
    withheld_configuration_options: list[str] = field(default_factory=list)

    # -- building and storing -----------------------------------------------------------------------
    @classmethod
    def from_environment(
        cls, environment: Mapping[str, Any], *, account_id: str, region: str, taken_at: datetime | None = None
    ) -> EnvironmentSnapshot:
        replayable = _create_members() - {"Name"}
        configuration: dict[str, Any] = {}
        region_bound: dict[str, Any] = {}
        read_only: dict[str, Any] = {}
        for key, value in _json_safe(dict(environment)).items():
            if key == "Name" or value is None:
                continue
            if key in REGION_BOUND_FIELDS:
                region_bound[key] = value
            elif key in replayable and key not in READ_ONLY_FIELDS:
                configuration[key] = value
            else:
                read_only[key] = value
        cls._split_logging(environment, configuration, read_only)
        withheld = cls._withhold_secrets(configuration)
        tags = {
            k: v
            for k, v in (configuration.get("Tags") or {}).items()
            if not k.startswith(_UNREPLAYED_TAG_PREFIXES)
        }
        if tags:
            configuration["Tags"] = tags
        else:
            configuration.pop("Tags", None)
        return cls(
            source={
                "account_id": account_id,
                "region": region,
                "environment_name": environment["Name"],
                "arn": environment.get("Arn"),
            },
            taken_at=(taken_at or datetime.now(UTC)).isoformat(),
            configuration=configuration,
            region_bound=region_bound,
            read_only=read_only,
            withheld_configuration_options=withheld,
        )

    @staticmethod
    def _split_logging(
        environment: Mapping[str, Any], configuration: dict[str, Any], read_only: dict[str, Any]
    ) -> None:
        """Keep each module's Enabled / LogLevel; its log group ARN belongs to the old environment."""
        logging = environment.get("LoggingConfiguration")
        if not logging:
            return
        configuration["LoggingConfiguration"] = {
            module: {k: v for k, v in settings.items() if k in ("Enabled", "LogLevel")}
            for module, settings in logging.items()
        }
        groups = {
            module: settings["CloudWatchLogGroupArn"]
            for module, settings in logging.items()
            if settings.get("CloudWatchLogGroupArn")
        }
        if groups:
            read_only["LoggingConfiguration"] = groups

    @staticmethod
    def _withhold_secrets(configuration: dict[str, Any]) -> list[str]:
        options = configuration.get("AirflowConfigurationOptions") or {}
        withheld = sorted(key for key in options if _is_secret_option(key))
        if withheld:
            configuration["AirflowConfigurationOptions"] = {
                k: v for k, v in options.items() if k not in withheld
            }
        return withheld

    def content(self) -> dict[str, Any]:
        """The document without its checksum."""
        return {
            "format": SNAPSHOT_FORMAT,
            "format_version": SNAPSHOT_FORMAT_VERSION,
            "taken_at": self.taken_at,
            "source": self.source,
            "configuration": self.configuration,
            "region_bound": self.region_bound,
            "read_only": self.read_only,
            "withheld_configuration_options": self.withheld_configuration_options,
        }

    @property
    def sha256(self) -> str:
        return hashlib.sha256(_canonical(self.content()).encode()).hexdigest()

    def to_json(self) -> str:
        return json.dumps({**self.content(), "sha256": self.sha256}, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "snapshot") -> EnvironmentSnapshot:
        """Read a snapshot; refuse one that is not ours, of a newer format, or altered."""
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise SnapshotError(f"{where} is not JSON: {exc}") from exc
        if not isinstance(document, dict) or document.get("format") != SNAPSHOT_FORMAT:
            raise SnapshotError(f"{where} is not an MWAA environment snapshot (format {SNAPSHOT_FORMAT!r})")
        version = document.get("format_version")
        if not isinstance(version, int) or version > SNAPSHOT_FORMAT_VERSION:
            raise SnapshotError(
                f"{where} has format_version {version!r}; this provider reads up to "
                f"{SNAPSHOT_FORMAT_VERSION}: upgrade airflow-provider-mwaaops"
            )
        try:
            snapshot = cls(
                source=dict(document["source"]),
                taken_at=str(document["taken_at"]),
                configuration=dict(document["configuration"]),
                region_bound=dict(document["region_bound"]),
                read_only=dict(document.get("read_only") or {}),
                withheld_configuration_options=list(document.get("withheld_configuration_options") or []),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotError(f"{where} lacks a required part: {exc}") from exc
        if document.get("sha256") != snapshot.sha256:
            raise SnapshotError(f"{where} was altered: its sha256 does not match its content")
        return snapshot

    @property
    def environment_name(self) -> str:
        return str(self.source["environment_name"])

    @property
    def account_id(self) -> str:
        return str(self.source.get("account_id") or "")

    @property
    def region(self) -> str:
        return str(self.source.get("region") or "")

    def key(self, prefix: str) -> str:
        """Where the snapshot goes under ``prefix``: one object per environment and moment, so
        earlier snapshots are never overwritten and the newest sorts last."""
        moment = datetime.fromisoformat(self.taken_at).astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return f"{prefix.strip('/')}/{self.environment_name}/{moment}.json".lstrip("/")

    # -- replaying ----------------------------------------------------------------------------------
    def create_request(
        self,
        name: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        *,
        allow_missing_secrets: bool = False,
    ) -> dict[str, Any]:
        """The CreateEnvironment arguments that recreate this environment as ``name``.

        ``overrides`` replace members (``None`` removes one). Raises ``ValueError`` for an override
        CreateEnvironment does not have, for withheld secret options not given again, and for
        anything AWS's model would refuse, so nothing is created from bad input.
        """
        overrides = dict(overrides or {})
        allowed = _create_members() - {"Name"}
        unknown = sorted(set(overrides) - allowed)
        if unknown:
            raise ValueError(
                f"overrides name fields CreateEnvironment does not have: {unknown}; valid: {sorted(allowed)}"
            )
        request = {**self.configuration, **self.region_bound}
        if "SourceBucketArn" in overrides:
            # Object versions belong to the snapshot's bucket; another bucket has its own.
            for key in OBJECT_VERSION_FIELDS:
                request.pop(key, None)
        options = dict(request.get("AirflowConfigurationOptions") or {})
        options.update(overrides.pop("AirflowConfigurationOptions", None) or {})
        missing = [key for key in self.withheld_configuration_options if key not in options]
        if missing and not allow_missing_secrets:
            raise ValueError(
                f"the snapshot withheld secret Airflow configuration options {missing}: give them in "
                "overrides['AirflowConfigurationOptions'] or allow_missing_secrets=True"
            )
        if options:
            request["AirflowConfigurationOptions"] = options
        for key, value in overrides.items():
            if value is None:
                request.pop(key, None)
            else:
                request[key] = value
        request["Tags"] = {**(request.get("Tags") or {}), SNAPSHOT_TAG: self.sha256}
        request["Name"] = name or self.environment_name
        errors = constraint_errors("mwaa", "CreateEnvironment", request)
        if errors:
            raise ValueError(f"CreateEnvironment would refuse this request: {describe_errors(errors)}")
        return request


class MwaaEnvironmentHook(MwaaHook):
    """Environment management on top of the amazon provider's ``MwaaHook``.

    Takes the same arguments (``aws_conn_id``, ``region_name``, ``verify``, ``config``).
    """

    def get_environment(self, name: str) -> dict[str, Any] | None:
        """GetEnvironment's ``Environment``; ``None`` when there is no such environment."""
        try:
            return dict(self.conn.get_environment(Name=name)["Environment"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise

    def create_environment(self, request: Mapping[str, Any]) -> str:
        """CreateEnvironment; returns the environment's ARN."""
        return str(self.conn.create_environment(**request)["Arn"])

    def update_environment(self, name: str, changes: Mapping[str, Any]) -> str:
        """UpdateEnvironment; returns the environment's ARN."""
        return str(self.conn.update_environment(Name=name, **changes)["Arn"])

    def delete_environment(self, name: str) -> None:
        self.conn.delete_environment(Name=name)

    def iter_environments(self) -> Iterator[str]:
        """Every environment name of the account and Region (ListEnvironments, all pages)."""
        for page in self.conn.get_paginator("list_environments").paginate():
            yield from page.get("Environments", [])

    def snapshot(self, name: str) -> EnvironmentSnapshot:
        """A snapshot of ``name`` as it is now; ``ValueError`` when it does not exist."""
        environment = self.get_environment(name)
        if environment is None:
            raise ValueError(f"MWAA environment {name!r} does not exist in {self.conn_region_name}")
        return EnvironmentSnapshot.from_environment(
            environment, account_id=self.account_id, region=self.conn_region_name
        )
