"""Every DAG in example_dags/ runs to success under dag.test() on the embedded AWS."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
EXAMPLE_FILES = sorted(p for p in EXAMPLE_DAGS.glob("example_*.py"))


def test_there_are_examples():
    assert EXAMPLE_FILES


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_example_dag_succeeds(path, dag_runner):
    from airflow_provider_mwaaops.compat import load_dags

    dags, errors = load_dags(str(path))
    assert not errors, errors
    assert dags, f"{path.name} defines no DAG"
    for dag in dags.values():
        result = dag_runner(dag)
        assert result.succeeded, result
        assert set(result.task_states.values()) <= {"success", "skipped"}, result.task_states
