"""Every module and class the provider info names imports on the installed Airflow.

Airflow imports these lazily (the providers manager, the plugins manager, a DAG file), so a module
that fails to import on one Airflow version shows up only when a user's DAG touches it. The MWAA
matrix (scripts/mwaa_matrix.py) runs this file under each MWAA constraints set as well.
"""

from __future__ import annotations

import importlib

import pytest

from airflow_provider_mwaaops.get_provider_info import get_provider_info

_MODULE_SECTIONS = ("operators", "sensors", "hooks", "triggers")
_CLASS_SECTIONS = ("notifications",)


def _named_modules() -> list[str]:
    info = get_provider_info()
    modules = [
        m for section in _MODULE_SECTIONS for entry in info.get(section, []) for m in entry["python-modules"]
    ]
    return sorted(set(modules))


def _named_classes() -> list[str]:
    info = get_provider_info()
    classes = [path for section in _CLASS_SECTIONS for path in info.get(section, [])]
    classes += [plugin["plugin-class"] for plugin in info.get("plugins", [])]
    return sorted(set(classes))


def test_provider_info_names_modules_and_classes():
    assert _named_modules()
    assert _named_classes()


@pytest.mark.parametrize("module", _named_modules())
def test_named_module_imports(module):
    importlib.import_module(module)


@pytest.mark.parametrize("dotted", _named_classes())
def test_named_class_imports(dotted):
    module, _, name = dotted.rpartition(".")
    assert isinstance(getattr(importlib.import_module(module), name), type)
