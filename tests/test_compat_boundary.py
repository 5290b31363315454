"""compat.py is the only module that knows which Airflow version is installed.

Every other module of the package branches on a named capability of compat
(``TASKS_MAY_USE_METADATA_DB``, ``REACT_UI``...) or calls one of its shims, so supporting a new
Airflow release means editing compat.py alone. This test reads the package's source (nothing is
imported) and names every place that reaches for the version itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "airflow_provider_mwaaops"
COMPAT = PACKAGE / "compat.py"
#: compat's own version names: the parsed version, its text and the AIRFLOW_V_<x>_<y>_PLUS flags.
VERSION_NAMES = ("AIRFLOW_VERSION", "AIRFLOW_VERSION_STRING")
VERSION_FLAG_PREFIX = "AIRFLOW_V_"


def _is_version_name(name: str) -> bool:
    return name in VERSION_NAMES or name.startswith(VERSION_FLAG_PREFIX)


def version_references(source: str) -> list[tuple[int, str]]:
    """``(line, what)`` of every reference to the installed Airflow version in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and _is_version_name(node.id):
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute):
            if _is_version_name(node.attr):
                found.append((node.lineno, f"...{node.attr}"))
            elif (
                node.attr == "__version__" and isinstance(node.value, ast.Name) and node.value.id == "airflow"
            ):
                found.append((node.lineno, "airflow.__version__"))
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if _is_version_name(alias.name) or (node.module == "airflow" and alias.name == "__version__"):
                    found.append((node.lineno, f"from {node.module} import {alias.name}"))
    return found


def test_no_module_but_compat_references_the_airflow_version() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {what}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != COMPAT
        for line, what in version_references(path.read_text())
    ]
    assert not offenders, "use a named capability or shim of compat.py instead:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "source",
    [
        "from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS",
        "from airflow_provider_mwaaops import compat\nif compat.AIRFLOW_V_3_1_PLUS: pass",
        "from airflow_provider_mwaaops.compat import AIRFLOW_VERSION as v",
        "import airflow\nprint(airflow.__version__)",
        "from airflow import __version__",
        "x = compat.AIRFLOW_VERSION_STRING",
    ],
)
def test_each_way_of_reaching_the_version_is_caught(source: str) -> None:
    assert version_references(source)


def test_named_capabilities_pass() -> None:
    source = "from airflow_provider_mwaaops import compat\nif compat.TASKS_MAY_USE_METADATA_DB: pass"
    assert version_references(source) == []


def test_compat_itself_defines_the_version_names() -> None:
    """The check would pass vacuously if compat stopped using these names."""
    assert {what for _, what in version_references(COMPAT.read_text())} >= {
        "AIRFLOW_VERSION",
        "AIRFLOW_V_3_0_PLUS",
    }
