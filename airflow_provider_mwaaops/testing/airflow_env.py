"""A throw-away Airflow installation: its own AIRFLOW_HOME, a SQLite metadata DB, migrated once.

Airflow reads AIRFLOW_HOME and its configuration when ``airflow`` is first imported, so the
environment must be in place before that import. ``isolated_airflow_environ`` builds the variables;
``migrate`` runs the real ``airflow db migrate`` in a subprocess (so the calling process's Airflow
import, if any, is untouched) and caches the migrated database per Airflow version so that later
sessions copy a file instead of replaying every migration.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from contextlib import AbstractContextManager
from pathlib import Path

from cryptography.fernet import Fernet

from airflow_provider_mwaaops.testing.emulator import patched_environ


def isolated_airflow_environ(
    home: Path, dags_folder: Path | None = None, sql_alchemy_conn: str | None = None
) -> dict[str, str]:
    """Environment for an Airflow that keeps everything under ``home`` and loads no examples.

    The metadata DB is a SQLite file under ``home`` unless ``sql_alchemy_conn`` names another one.
    """
    home.mkdir(parents=True, exist_ok=True)
    dags = dags_folder or home / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_alchemy_conn or f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__SCHEDULER__CHILD_PROCESS_LOG_DIRECTORY": str(home / "logs" / "scheduler"),
        # Without this Airflow 2 tries to reach the internet for the default connections' docs.
        "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
        # Connections and variables are encrypted as they would be on MWAA.
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__WEBSERVER__BASE_URL": "http://localhost:8080",
        "AIRFLOW__API__BASE_URL": "http://localhost:8080",
    }


def _airflow_version_in(python: str) -> str:
    out = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('apache-airflow'))"],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def _cache_dir() -> Path:
    root = (
        os.environ.get("MWAAOPS_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    )
    return Path(root) / "airflow-provider-mwaaops"


def migrate(environ: dict[str, str], python: str = sys.executable) -> None:
    """Bring the SQLite metadata DB named in ``environ`` to the installed Airflow's schema.

    The first call per Airflow version runs ``airflow db migrate`` into a cached template; every
    call then copies that template, which takes milliseconds instead of the 10-30 s a migration
    costs. Delete ``~/.cache/airflow-provider-mwaaops`` to force a fresh migration.
    """
    conn = environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    if not conn.startswith("sqlite:///"):
        _run_migrate(environ, python)
        return
    target = Path(conn.removeprefix("sqlite:///"))
    version = _airflow_version_in(python)
    key = hashlib.sha256(f"{version}|{sys.version_info[:2]}".encode()).hexdigest()[:12]
    template = _cache_dir() / f"airflow-{version}-{key}.db"
    if not template.exists():
        template.parent.mkdir(parents=True, exist_ok=True)
        scratch = template.with_suffix(f".{os.getpid()}.tmp")
        scratch.unlink(missing_ok=True)
        _run_migrate({**environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{scratch}"}, python)
        os.replace(scratch, template)  # atomic: a concurrent session never sees a half-migrated file
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)


def _run_migrate(environ: dict[str, str], python: str) -> None:
    env = {**os.environ, **environ}
    result = subprocess.run(
        [python, "-m", "airflow", "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"airflow db migrate failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )


class IsolatedAirflow:
    """An isolated AIRFLOW_HOME, migrated, whose environment can be activated in this process."""

    def __init__(self, home: Path, dags_folder: Path | None = None, sql_alchemy_conn: str | None = None):
        self.home = home
        self.environ = isolated_airflow_environ(home, dags_folder, sql_alchemy_conn)

    @property
    def sql_alchemy_conn(self) -> str:
        return self.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]

    def run_airflow(
        self, *args: str, python: str = sys.executable, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run the ``airflow`` CLI against this installation in a subprocess."""
        return self.run_python("-m", "airflow", *args, python=python, timeout=timeout, check=check)

    def run_python(
        self, *args: str, python: str = sys.executable, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run Python in a subprocess that sees only this installation (e.g. a second metadata DB)."""
        result = subprocess.run(
            [python, *args],
            env={**os.environ, **self.environ},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)[:200]} failed ({result.returncode}):\n{result.stdout[-4000:]}\n"
                f"{result.stderr[-4000:]}"
            )
        return result

    def migrate(self) -> IsolatedAirflow:
        migrate(self.environ)
        return self

    def activated(self) -> AbstractContextManager[None]:
        """Set this installation's variables for a block (before ``airflow`` is first imported)."""
        return patched_environ(self.environ)
