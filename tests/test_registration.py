"""Airflow discovers the provider and its plugin through the package's entry points alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from airflow_provider_mwaaops import __version__
from airflow_provider_mwaaops.get_provider_info import get_provider_info


def _airflow_cli(*args: str) -> list[dict]:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args, "-o", "json"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    # Airflow prints warnings before the JSON document on some versions.
    document = result.stdout[result.stdout.index("[") :]
    return json.loads(document)


def test_providers_list_shows_the_provider_with_its_version(mwaaops_airflow):
    providers = {p["package_name"]: p for p in _airflow_cli("providers", "list")}

    assert "airflow-provider-mwaaops" in providers, sorted(providers)
    assert providers["airflow-provider-mwaaops"]["version"] == __version__


def test_plugins_lists_the_plugin_from_its_entry_point(mwaaops_airflow):
    plugins = {p["name"]: p for p in _airflow_cli("plugins")}

    assert "mwaaops" in plugins, sorted(plugins)
    assert "airflow-provider-mwaaops" in plugins["mwaaops"]["source"]
    assert "airflow.plugins" in plugins["mwaaops"]["source"]


def test_provider_info_names_the_distribution_and_plugin():
    info = get_provider_info()

    assert info["package-name"] == "airflow-provider-mwaaops"
    assert info["versions"] == [__version__]
    plugin_classes = [p["plugin-class"] for p in info["plugins"]]
    assert plugin_classes == ["airflow_provider_mwaaops.plugins.mwaaops.MwaaOpsPlugin"]


def test_provider_info_matches_airflows_schema():
    import importlib.resources

    import jsonschema

    schema_file = importlib.resources.files("airflow").joinpath("provider_info.schema.json")
    schema = json.loads(schema_file.read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_every_module_and_class_named_in_provider_info_imports():
    """A typo in provider info only shows when Airflow lazily imports the entry: catch it here."""
    import importlib

    info = get_provider_info()
    integrations = {i["integration-name"] for i in info["integrations"]}
    for section in ("operators", "hooks", "triggers"):
        for entry in info[section]:
            assert entry["integration-name"] in integrations, (section, entry)
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for path in info["notifications"]:
        module, _, name = path.rpartition(".")
        assert getattr(importlib.import_module(module), name)
