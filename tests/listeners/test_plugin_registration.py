"""The listener reaches Airflow through the plugin entry point, and once only when a plugins-folder
module (the no-pip path) is present too."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from airflow_provider_mwaaops.plugins import folder

LISTENER = "airflow_provider_mwaaops.listeners.asset_events.AssetEventsListener"
FOLDER_MODULE = """
from airflow_provider_mwaaops.plugins.folder import plugins_folder_plugin

MwaaOpsPlugin = plugins_folder_plugin()
"""

pytestmark = pytest.mark.timeout(300)


def airflow_plugins(environ: dict[str, str]) -> list[dict]:
    """``airflow plugins --output json``: what Airflow's plugins manager loaded, in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "plugins", "--output", "json"],
        env={**os.environ, **environ, "AIRFLOW__CORE__EXECUTOR": "SequentialExecutor"}
        if not _airflow_3()
        else {**os.environ, **environ},
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    start = out.stdout.index("[")
    return json.loads(out.stdout[start:])


def _airflow_3() -> bool:
    from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS

    return AIRFLOW_V_3_0_PLUS


def test_airflow_plugins_lists_the_listener_from_the_entry_point(mwaaops_airflow):
    plugins = [p for p in airflow_plugins(mwaaops_airflow.environ) if p["name"] == "mwaaops"]

    assert len(plugins) == 1
    assert LISTENER in plugins[0]["listeners"]
    assert "airflow.plugins" in plugins[0]["source"] or "EntryPoint" in plugins[0]["source"]


def test_plugins_folder_module_with_the_package_installed_registers_once(mwaaops_airflow, tmp_path):
    (tmp_path / "mwaaops_plugin.py").write_text(FOLDER_MODULE)
    environ = {**mwaaops_airflow.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(tmp_path)}

    plugins = [p for p in airflow_plugins(environ) if p["name"] == "mwaaops"]

    assert len(plugins) == 1, plugins
    assert plugins[0]["listeners"].count(LISTENER) == 1


def test_plugins_folder_helper_yields_the_plugin_only_without_the_entry_point(monkeypatch):
    assert folder.entry_point_installed()  # this checkout is installed (editable) with its entry point
    assert folder.plugins_folder_plugin() is None

    monkeypatch.setattr(folder, "entry_points", lambda group: [])
    plugin = folder.plugins_folder_plugin()

    from airflow_provider_mwaaops.listeners.asset_events import asset_events_listener

    assert plugin is not None
    assert plugin.name == "mwaaops"
    assert asset_events_listener in plugin.listeners
