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
        ],
        "operators": [
            {
                "integration-name": "AWS Step Functions (redriving)",
                "python-modules": ["airflow_provider_mwaaops.operators.step_function"],
            },
        ],
        "hooks": [
            {
                "integration-name": "AWS Step Functions (redriving)",
                "python-modules": ["airflow_provider_mwaaops.hooks.step_function"],
            },
        ],
        "triggers": [
            {
                "integration-name": "AWS Step Functions (redriving)",
                "python-modules": ["airflow_provider_mwaaops.triggers.step_function"],
            },
        ],
        "notifications": [],
        "extra-links": [],
        "plugins": [
            {
                "name": "mwaaops",
                "plugin-class": "airflow_provider_mwaaops.plugins.mwaaops.MwaaOpsPlugin",
            }
        ],
    }
