"""Template rendering where Airflow did not prepare it: DAG-level callbacks."""

from __future__ import annotations

from typing import Any

from airflow_provider_mwaaops.compat import template_accessor_classes


def template_accessors() -> dict[str, Any]:
    """``var`` and ``conn`` for Jinja templates, for contexts Airflow built without them.

    A DAG-level callback without a task instance gets only ``dag``, ``run_id`` and ``reason``;
    a notifier's ``{{ var.value.x }}`` needs these to render there too.
    """
    variable_accessor, connection_accessor = template_accessor_classes()
    return {
        "var": {
            "json": variable_accessor(deserialize_json=True),
            "value": variable_accessor(deserialize_json=False),
        },
        "conn": connection_accessor(),
    }
