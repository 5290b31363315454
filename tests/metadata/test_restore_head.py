"""The installed Airflow's migration head, read from the migration scripts' text (restore/run.py).

It must be alembic's own answer on whichever Airflow line runs the tests, and it must give up
(so alembic decides) whenever the scripts' graph is not a plain one-head graph.
"""

from __future__ import annotations

from pathlib import Path

from airflow_provider_mwaaops.metadata.restore.run import _head_from_migration_texts, installed_head_revision


def test_the_head_is_alembics_own():
    from airflow.utils.db import _get_script_object

    assert installed_head_revision() == _get_script_object().get_current_head()


def _script(directory: Path, name: str, revision: str | None, down: str) -> None:
    lines = [f'"""{name}"""', "from alembic import op"]
    if revision is not None:
        lines.append(f'revision = "{revision}"')
    lines.append(f"down_revision = {down}")
    (directory / f"{name}.py").write_text("\n".join(lines) + "\n")


def test_merges_typed_assignments_and_multiline_tuples(tmp_path: Path):
    _script(tmp_path, "0001_base", "aaa", "None")
    _script(tmp_path, "0002_left", "bbb", '"aaa"')
    (tmp_path / "0003_right.py").write_text('revision: str = "ccc"\ndown_revision: str | None = "aaa"\n')
    _script(tmp_path, "0004_merge", "ddd", '(\n    "bbb",\n    "ccc",\n)')
    (tmp_path / "__init__.py").write_text("")
    assert _head_from_migration_texts(str(tmp_path)) == "ddd"


def test_gives_up_on_two_heads_or_an_unreadable_script(tmp_path: Path):
    _script(tmp_path, "0001_base", "aaa", "None")
    _script(tmp_path, "0002_left", "bbb", "'aaa'")
    _script(tmp_path, "0003_right", "ccc", "'aaa'")
    assert _head_from_migration_texts(str(tmp_path)) is None  # two heads
    (tmp_path / "0003_right.py").unlink()
    assert _head_from_migration_texts(str(tmp_path)) == "bbb"
    _script(tmp_path, "0004_odd", None, "'bbb'")
    assert _head_from_migration_texts(str(tmp_path)) is None  # revision not stated plainly
    (tmp_path / "0004_odd.py").unlink()
    _script(tmp_path, "0005_orphan", "eee", "'zzz'")
    assert _head_from_migration_texts(str(tmp_path)) is None  # builds on a revision not there
