"""Plain options of Airflow's configuration, read without importing Airflow when it is not loaded.

Why: the export's secret masking needs two options (``[core] sensitive_var_conn_names`` and
``[logging] min_length_masked_secret``). Importing ``airflow.configuration`` for them takes 2-5 s
(it loads SQLAlchemy, structlog and the providers manager), which ``mwaaops metadata export``
otherwise never pays: measured, it made the command 35-55 % slower on a 1M-row table.

Inside Airflow (a task, ``dag.test()``, anything that already imported its configuration)
Airflow's own ``conf`` answers. Otherwise the lookup follows Airflow's documented order for an
option that is not sensitive ("Setting Configuration Options",
https://airflow.apache.org/docs/apache-airflow/stable/howto/set-config.html): the
``AIRFLOW__{SECTION}__{KEY}`` environment variable, then ``airflow.cfg`` (``AIRFLOW_CONFIG``, else
``$AIRFLOW_HOME/airflow.cfg``, ``AIRFLOW_HOME`` defaulting to ``~/airflow``), then Airflow's
default; both with environment variables and ``~`` expanded, as Airflow does. ``_CMD`` /
``_SECRET`` variants and secrets backends apply to sensitive options only, so not here.
Where this reader could differ from Airflow (a deprecated option name set, unit-test mode), it
defers to Airflow's ``conf``.
"""

from __future__ import annotations

import configparser
import os
import sys

#: The options this reader may answer, with their deprecated names (``airflow/configuration.py``
#: ``deprecated_options``): when a deprecated name is set, Airflow's own rules decide.
DEPRECATED_NAMES: dict[tuple[str, str], tuple[str, str] | None] = {
    ("core", "sensitive_var_conn_names"): ("admin", "sensitive_variable_fields"),
    ("logging", "min_length_masked_secret"): None,
}


def airflow_option(section: str, key: str, fallback: str) -> str:
    """``[section] key`` of Airflow's configuration; ``fallback`` is Airflow's own default."""
    if "airflow.configuration" not in sys.modules:
        found = option_without_airflow(section, key)
        if found is not None:
            return found[0] if found[0] is not None else fallback
    from airflow.configuration import conf

    return str(conf.get(section, key, fallback=fallback))


def option_without_airflow(section: str, key: str) -> tuple[str | None] | None:
    """``(value,)``, ``(None,)`` when unset, or None when only Airflow can tell."""
    deprecated = DEPRECATED_NAMES[(section, key)]
    if deprecated is not None and _environ(*deprecated) is not None:
        return None
    if (_environ("core", "unit_test_mode") or "").strip().lower() in ("true", "t", "1"):
        return None
    value = _environ(section, key)
    if value is not None:
        return (_expand(value),)
    parser = configparser.ConfigParser(strict=False)
    try:
        parser.read(_config_path())
    except configparser.Error:
        return None
    if deprecated is not None and parser.has_option(*deprecated):
        return None
    if parser.has_option("core", "unit_test_mode"):
        return None
    if parser.has_option(section, key):
        try:
            return (_expand(parser.get(section, key)),)
        except configparser.Error:
            return None
    return (None,)


def _environ(section: str, key: str) -> str | None:
    return os.environ.get(f"AIRFLOW__{section.upper()}__{key.upper()}")


def _config_path() -> str:
    home = _expand(os.environ.get("AIRFLOW_HOME", "~/airflow"))
    configured = os.environ.get("AIRFLOW_CONFIG")
    return os.path.join(home, "airflow.cfg") if configured is None else _expand(configured)


def _expand(value: str) -> str:
    """Environment variables and ``~``, repeated until nothing changes (Airflow's ``expand_env_var``)."""
    while True:
        expanded = os.path.expanduser(os.path.expandvars(value))
        if expanded == value:
            return expanded
        value = expanded
