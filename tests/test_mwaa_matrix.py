"""The MWAA matrix's decisions (scripts/mwaa_matrix.py) that need no environment built: which pins
the testing kit lifts, the kit's constraints file, which examples are skipped and the smoke subset."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="module")
def matrix():
    sys.path.insert(0, str(SCRIPTS))  # the script imports its sibling check_mwaa_constraints
    try:
        spec = importlib.util.spec_from_file_location("mwaa_matrix", SCRIPTS / "mwaa_matrix.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["mwaa_matrix"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("mwaa_matrix", None)
        sys.path.remove(str(SCRIPTS))


def test_kit_lifts_moto_below_its_floor_with_its_parser(matrix):
    pins = {"moto": "5.0.11", "py-partiql-parser": "0.5.5", "pytest": "8.3.5", "flask": "2.2.5"}

    assert matrix.kit_exemptions(pins) == ["moto", "py-partiql-parser"]


def test_kit_lifts_nothing_where_the_pins_satisfy_it(matrix):
    assert matrix.kit_exemptions({"pytest": "8.4.1", "pytest-asyncio": "0.25.0"}) == []


def test_kit_lifts_a_pytest_older_than_it_accepts(matrix):
    assert matrix.kit_exemptions({"pytest": "7.4.0"}) == ["pytest"]


def test_kit_constraints_drop_only_the_lifted_pins(matrix, tmp_path):
    vdir = tmp_path / "2.11.0"
    vdir.mkdir()
    (vdir / "airflow_constraints.txt").write_text("moto==5.0.11\nPy_Partiql_Parser==0.5.5\npytest==8.3.5\n")
    (vdir / "mwaa_essential_constraints.txt").write_text("apache-airflow==2.11.0\n")
    target = tmp_path / "kit.txt"

    matrix.kit_constraints(vdir, target, ["moto", "py-partiql-parser"])

    assert target.read_text().split() == ["pytest==8.3.5", "apache-airflow==2.11.0"]


def test_only_examples_needing_a_service_are_skipped(matrix):
    skipped = matrix.examples_needing_services()

    assert skipped == {"example_snowflake_sns": "Snowflake"}


def test_smoke_subset_runs_every_other_example(matrix):
    ids = matrix.smoke_node_ids({"example_snowflake_sns": "Snowflake"})
    examples = sorted(p.stem for p in matrix.EXAMPLE_DAGS.glob("example_*.py"))

    run = [i.split("[")[1].rstrip("]") for i in ids if "test_example_dag_succeeds[" in i]
    assert run == [e for e in examples if e != "example_snowflake_sns"]
    assert "tests/test_provider_modules.py" in ids
