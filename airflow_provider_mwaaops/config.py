"""The ``[mwaaops]`` configuration section, read in one place.

Every setting of the components that run inside Airflow itself (listeners, log forwarder,
notifications, the Airflow API client) is read through a getter here, so that a default, a type
or a fallback is written once. The defaults are the ones :mod:`~airflow_provider_mwaaops.get_provider_info`
documents: Airflow 3 loads them into its configuration itself, Airflow 2.11 does not, and the
getters fall back to them there.

Values are cached because Airflow's ``conf.get`` costs tens of microseconds and some getters run
on every listener event. A cached value is read again when its ``AIRFLOW__MWAAOPS__<OPTION>``
environment variable changes (tests and ``dag.test()`` sessions set them; Airflow itself does not
reload ``airflow.cfg`` in a running process). After changing the configuration some other way
(``conf.set``), call :func:`clear_cache`.
"""

from __future__ import annotations

import math
import os
from typing import Any

from airflow_provider_mwaaops.compat import conf
from airflow_provider_mwaaops.get_provider_info import get_provider_info

SECTION = "mwaaops"

_OPTIONS: dict[str, dict[str, Any]] = get_provider_info()["config"][SECTION]["options"]
_DEFAULTS = {key: str(option["default"] or "") for key, option in _OPTIONS.items()}
#: The environment variables that override each option (sensitive ones also take _CMD and _SECRET).
_OVERRIDES = {
    key: tuple(
        f"AIRFLOW__{SECTION.upper()}__{key.upper()}{suffix}"
        for suffix in (("", "_CMD", "_SECRET") if option["sensitive"] else ("",))
    )
    for key, option in _OPTIONS.items()
}
_cache: dict[str, tuple[tuple[str | None, ...], str]] = {}


def _read(key: str) -> str:
    """``[mwaaops] key`` as text, its documented default when unset."""
    overrides = tuple(map(os.environ.get, _OVERRIDES[key]))
    cached = _cache.get(key)
    if cached is not None and cached[0] == overrides:
        return cached[1]
    value = str(conf.get(SECTION, key, fallback=_DEFAULTS[key]) or "")
    _cache[key] = (overrides, value)
    return value


def _optional(key: str) -> str | None:
    return _read(key).strip() or None


def _patterns(key: str) -> list[str]:
    return [part.strip() for part in _read(key).split(",") if part.strip()]


def clear_cache() -> None:
    """Forget every cached value (after ``conf.set`` or a reloaded ``airflow.cfg``)."""
    _cache.clear()


# -- shared ---------------------------------------------------------------------------------------
def environment_name() -> str | None:
    """This Airflow environment's name, added to published events and notifications."""
    return _optional("environment_name")


def aws_conn_id() -> str | None:
    """The AWS connection of the listeners, the log forwarder and MWAA API calls."""
    return _optional("aws_conn_id")


def region_name() -> str | None:
    """AWS region; None means the connection's."""
    return _optional("region_name")


# -- asset events listener ------------------------------------------------------------------------
def asset_events_sns_topic_arn() -> str:
    return _read("asset_events_sns_topic_arn").strip()


def asset_events_event_bus_name() -> str:
    return _read("asset_events_event_bus_name").strip()


def asset_events_include() -> list[str]:
    """Glob patterns of the asset URIs to publish (empty: all)."""
    return _patterns("asset_events_include")


def asset_events_exclude() -> list[str]:
    """Glob patterns of the asset URIs never to publish."""
    return _patterns("asset_events_exclude")


def asset_events_queue_size() -> int:
    """Events waiting to be published, at most; a malformed value means the default."""
    try:
        return int(_read("asset_events_queue_size") or _DEFAULTS["asset_events_queue_size"])
    except ValueError:
        return int(_DEFAULTS["asset_events_queue_size"])


# -- log forwarder and the Airflow API ------------------------------------------------------------
def log_forwarder_enabled() -> bool:
    """Airflow's boolean spellings; a malformed value keeps the forwarder on (it must not break
    task start-up)."""
    value = _read("log_forwarder_enabled").split("#", 1)[0].strip().lower()
    return value not in ("f", "false", "0")


def mwaa_environment_name() -> str:
    """The MWAA environment whose InvokeRestApi carries Airflow API calls; empty: none."""
    return _read("mwaa_environment_name").strip()


def api_url() -> str:
    """The Airflow 3 API server's base URL as configured here (empty: not set)."""
    return _read("api_url").strip()


def api_username() -> str | None:
    return _optional("api_username")


def api_password() -> str | None:
    return _read("api_password") or None


def api_timeout() -> float:
    """Seconds an Airflow API call may take."""
    value = _read("api_timeout") or _DEFAULTS["api_timeout"]
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"[{SECTION}] api_timeout = {value!r} is not a number of seconds") from None


def api_configured() -> bool:
    """Whether this section names an Airflow API to call (an MWAA environment, a URL or a user)."""
    return bool(mwaa_environment_name() or api_url() or api_username())


# -- job-log forwarding of the AWS waits ----------------------------------------------------------
def log_reads_per_second() -> float:
    """CloudWatch Logs reads per second for all log forwarding of one process; 0: unlimited.

    Raises ``ValueError`` naming the option for a value that is not a finite number >= 0.
    """
    value = _read("log_reads_per_second").split("#", 1)[0].strip() or _DEFAULTS["log_reads_per_second"]
    try:
        rate = float(value)
    except ValueError:
        rate = math.nan
    if not math.isfinite(rate) or rate < 0:
        raise ValueError(
            f"[{SECTION}] log_reads_per_second = {value!r} is not a number of reads per second "
            "(0 or more; 0 means unlimited)"
        )
    return rate
