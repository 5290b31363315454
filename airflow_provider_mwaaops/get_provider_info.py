"""Provider metadata that Airflow reads through the ``apache_airflow_provider`` entry point.

Kept free of Airflow imports: ``airflow providers list`` calls it while the providers manager is
still initialising, and a slow or failing import here would hide the whole provider.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mwaaops import __version__

PACKAGE_NAME = "airflow-provider-mwaaops"


def get_provider_info() -> dict[str, Any]:
    """Describe the provider; sections grow as operators, hooks and notifiers land."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "MWAA Ops",
        "description": (
            "Operations kit for Apache Airflow on Amazon MWAA: redriving Glue, EMR and Step "
            "Functions operators, an SNS notifier, asset listeners, metadata export and restore, "
            "and a task-context log forwarder."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "AWS Step Functions (redriving)",
                "external-doc-url": "https://docs.aws.amazon.com/step-functions/latest/dg/redrive-executions.html",
                "tags": ["aws"],
            },
            {
                "integration-name": "Amazon SNS (notifications)",
                "external-doc-url": "https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering.html",
                "tags": ["aws"],
            },
            {
                "integration-name": "Airflow metadata (export, restore, analysis)",
                "external-doc-url": "https://docs.aws.amazon.com/mwaa/latest/userguide/best-practices-metadata.html",
                "tags": ["aws"],
            },
            {
                "integration-name": "Amazon MWAA (REST API)",
                "external-doc-url": "https://docs.aws.amazon.com/mwaa/latest/API/API_InvokeRestApi.html",
                "tags": ["aws"],
            },
            {
                "integration-name": "Amazon MWAA (disaster recovery)",
                "external-doc-url": "https://docs.aws.amazon.com/mwaa/latest/API/API_Environment.html",
                "tags": ["aws"],
            },
            {
                "integration-name": "AWS Glue (resumable job runs and workflows)",
                "external-doc-url": "https://docs.aws.amazon.com/glue/latest/dg/resuming-workflow.html",
                "tags": ["aws"],
            },
            {
                "integration-name": "Amazon EMR (resuming steps and EMR Serverless job runs)",
                "external-doc-url": "https://docs.aws.amazon.com/emr/latest/APIReference/API_AddJobFlowSteps.html",
                "tags": ["aws"],
            },
        ],
        "operators": [
            {
                "integration-name": "AWS Glue (resumable job runs and workflows)",
                "python-modules": ["airflow_provider_mwaaops.operators.glue"],
            },
            {
                "integration-name": "AWS Step Functions (redriving)",
                "python-modules": ["airflow_provider_mwaaops.operators.step_function"],
            },
            {
                "integration-name": "Amazon SNS (notifications)",
                "python-modules": ["airflow_provider_mwaaops.operators.sns"],
            },
            {
                "integration-name": "Airflow metadata (export, restore, analysis)",
                "python-modules": [
                    "airflow_provider_mwaaops.operators.metadata",
                    "airflow_provider_mwaaops.operators.metadata_restore",
                    "airflow_provider_mwaaops.operators.metadata_analysis",
                ],
            },
            {
                "integration-name": "Amazon MWAA (disaster recovery)",
                "python-modules": [
                    "airflow_provider_mwaaops.operators.mwaa",
                    "airflow_provider_mwaaops.operators.task_token",
                ],
            },
            {
                "integration-name": "Amazon EMR (resuming steps and EMR Serverless job runs)",
                "python-modules": ["airflow_provider_mwaaops.operators.emr"],
            },
        ],
        "sensors": [
            {
                "integration-name": "Amazon MWAA (disaster recovery)",
                "python-modules": ["airflow_provider_mwaaops.sensors.mwaa"],
            },
        ],
        "hooks": [
            {
                "integration-name": "AWS Glue (resumable job runs and workflows)",
                "python-modules": ["airflow_provider_mwaaops.hooks.glue"],
            },
            {
                "integration-name": "AWS Step Functions (redriving)",
                "python-modules": ["airflow_provider_mwaaops.hooks.step_function"],
            },
            {
                "integration-name": "Amazon MWAA (disaster recovery)",
                "python-modules": ["airflow_provider_mwaaops.hooks.mwaa"],
            },
            {
                "integration-name": "Amazon EMR (resuming steps and EMR Serverless job runs)",
                "python-modules": ["airflow_provider_mwaaops.hooks.emr"],
            },
        ],
        "triggers": [
            {
                "integration-name": "AWS Glue (resumable job runs and workflows)",
                "python-modules": ["airflow_provider_mwaaops.triggers.glue"],
            },
            {
                "integration-name": "AWS Step Functions (redriving)",
                "python-modules": ["airflow_provider_mwaaops.triggers.step_function"],
            },
            {
                "integration-name": "Amazon MWAA (disaster recovery)",
                "python-modules": ["airflow_provider_mwaaops.triggers.mwaa"],
            },
            {
                "integration-name": "Amazon EMR (resuming steps and EMR Serverless job runs)",
                "python-modules": ["airflow_provider_mwaaops.triggers.emr"],
            },
        ],
        "notifications": [
            "airflow_provider_mwaaops.notifications.sns.SnsRunStatusNotifier",
            "airflow_provider_mwaaops.notifications.task_token.TaskTokenNotifier",
        ],
        "config": {"mwaaops": _config_section()},
        "extra-links": [],
        "plugins": [
            {
                "name": "mwaaops",
                "plugin-class": "airflow_provider_mwaaops.plugins.mwaaops.MwaaOpsPlugin",
            }
        ],
    }


def _option(
    description: str,
    type_: str = "string",
    default: str | None = "",
    example: str | None = None,
    sensitive: bool = False,
) -> dict[str, Any]:
    return {
        "sensitive": sensitive,
        "description": description,
        "version_added": None,
        "type": type_,
        "example": example,
        "default": default,
    }


def _config_section() -> dict[str, Any]:
    """The ``[mwaaops]`` section: settings of the components that run inside Airflow itself
    (listeners, log forwarder), which have no operator arguments to carry them."""
    return {
        "description": "Settings of airflow-provider-mwaaops's listeners and log forwarder.",
        "options": {
            "environment_name": _option(
                "Name of this Airflow environment, added to every published event and notification "
                "(on MWAA: the environment's name).",
                example="prod-data",
            ),
            "aws_conn_id": _option(
                "Airflow connection the listeners and the log forwarder use for AWS.", default="aws_default"
            ),
            "region_name": _option("AWS region; empty means the connection's region.", default=""),
            "asset_events_sns_topic_arn": _option(
                "SNS topic that receives a message for every created or changed asset (dataset on "
                "Airflow 2); empty disables SNS publishing.",
                example="arn:aws:sns:us-east-1:123456789012:airflow-asset-events",
            ),
            "asset_events_event_bus_name": _option(
                "EventBridge bus that receives the same events; empty disables EventBridge publishing.",
                example="default",
            ),
            "asset_events_include": _option(
                "Comma-separated glob patterns (fnmatch, case-sensitive) of asset URIs to publish; "
                "empty means all.",
                example="s3://data-lake/*",
            ),
            "asset_events_exclude": _option(
                "Comma-separated glob patterns of asset URIs never to publish.", example="file://*"
            ),
            "asset_events_queue_size": _option(
                "Events waiting to be published, at most; beyond it new events are dropped (counted "
                "and logged) so that Airflow itself is never slowed down.",
                type_="integer",
                default="1000",
            ),
            "log_forwarder_enabled": _option(
                "Write why Airflow ended the previous try (heartbeat timeout, stuck in queued, "
                "external kill) at the top of the next try's log.",
                type_="boolean",
                default="True",
            ),
            "api_url": _option(
                "Base URL of the Airflow 3 API server the log forwarder reads event logs from; empty "
                "means [api] base_url when api_username is set. With none of api_url, api_username "
                "and mwaa_environment_name set, the forwarder reads nothing on Airflow 3.",
                example="http://localhost:8080",
            ),
            "api_username": _option("User for the API server's token endpoint (Airflow 3).", example="admin"),
            "api_password": _option(
                "Password for the API server's token endpoint (Airflow 3); prefer the "
                "AIRFLOW__MWAAOPS__API_PASSWORD_SECRET / _CMD forms.",
                example="",
                sensitive=True,
            ),
            "mwaa_environment_name": _option(
                "When set, the log forwarder reads event logs through MWAA's InvokeRestApi for this "
                "environment instead of api_url.",
                example="prod-data",
            ),
            "log_reads_per_second": _option(
                "CloudWatch Logs reads per second that the job-log forwarding of deferred Glue and "
                "EMR waits (forward_logs) may make together, per process (triggerer) and Region "
                "endpoint. GetLogEvents is limited to 10 per second per account and Region, shared "
                "with everything else that reads logs there; over the budget a wait reads its "
                "job's log lines at a later status check (later, never lost). 0 means unlimited.",
                type_="float",
                default="5",
            ),
            "api_timeout": _option(
                "Seconds the log forwarder waits for the API before giving up (it never fails a task).",
                type_="float",
                default="5.0",
            ),
        },
    }
