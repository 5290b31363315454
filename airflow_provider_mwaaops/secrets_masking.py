"""Masking of secrets in what leaves Airflow (notifications, published events).

Airflow masks secrets in its own task logs only; a value sent elsewhere (an SNS message carrying
an exception text, say) must be masked by whoever sends it.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mwaaops.compat import secrets_maskers


def redact(value: Any, name: str | None = None) -> Any:
    """``value`` (str, dict, list...) with every secret Airflow's secrets maskers know of as ``***``.

    The value goes through every masker the process has (on Airflow 3 the Task SDK's and core's:
    each is fed secrets in different processes). ``name`` is what the value is called (a variable
    or XCom key): a sensitive name hides the whole value, as Airflow's UI does.
    """
    for mask in secrets_maskers():
        value = mask(value) if name is None else mask(value, name)  # type: ignore[call-arg]
    return value
