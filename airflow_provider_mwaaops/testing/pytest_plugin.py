"""pytest fixtures for testing DAGs offline: an embedded AWS and a throw-away Airflow.

Loaded automatically through the ``pytest11`` entry point once the package is installed. Importing
it does nothing: Airflow and moto are imported only when a fixture is used, and a private
AIRFLOW_HOME is set up only when asked for, with ``--mwaaops-isolated-airflow`` or
``mwaaops_isolated_airflow = true`` in the pytest ini. That has to happen before test modules are
collected, because Airflow fixes its home and database at its first import.

Fixtures:

``mwaaops_airflow``
    (session) the isolated Airflow, migrated once per session (SQLite).
``aws_emulator``
    (function) :class:`~airflow_provider_mwaaops.testing.emulator.AwsEmulator` with every
    resource dropped before the test and the ``aws_default`` connection pointed at it.
``dag_runner``
    (function) :func:`~airflow_provider_mwaaops.testing.dag_runner.run_dag`, with both of the above.
``airflow_api_server``
    (session, Airflow 3 only) a real ``airflow api-server`` on loopback sharing the isolated Airflow
    and the emulator: :class:`~airflow_provider_mwaaops.testing.api_server.AirflowApiServer`.
``postgres_url`` / ``postgres_airflow``
    (function) a fresh, empty PostgreSQL database URL / an isolated Airflow whose metadata DB is a
    fresh PostgreSQL database at the installed Airflow's schema. Both skip when no server answers,
    and fail instead when ``MWAAOPS_REQUIRE_POSTGRES=1``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_mwaaops.testing.airflow_env import IsolatedAirflow
    from airflow_provider_mwaaops.testing.api_server import AirflowApiServer
    from airflow_provider_mwaaops.testing.dag_runner import DagRunResult
    from airflow_provider_mwaaops.testing.emulator import AwsEmulator

_ISOLATED_AIRFLOW_KEY = pytest.StashKey["IsolatedAirflow"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mwaaops", "airflow-provider-mwaaops test harness")
    group.addoption(
        "--mwaaops-isolated-airflow",
        action="store_true",
        default=None,
        help="Run Airflow from a temporary AIRFLOW_HOME with its own SQLite database.",
    )
    parser.addini(
        "mwaaops_isolated_airflow",
        type="bool",
        default=False,
        help="Run Airflow from a temporary AIRFLOW_HOME with its own SQLite database.",
    )


def _isolation_requested(config: pytest.Config) -> bool:
    flag = config.getoption("--mwaaops-isolated-airflow")
    return bool(flag if flag is not None else config.getini("mwaaops_isolated_airflow"))


def pytest_configure(config: pytest.Config) -> None:
    if not _isolation_requested(config):
        return
    if "airflow" in sys.modules:
        raise pytest.UsageError(
            "mwaaops_isolated_airflow: airflow was imported before pytest configured its isolated "
            "AIRFLOW_HOME (often by a top-level import in conftest.py); move that import into the "
            "fixtures or tests that need it"
        )
    from airflow_provider_mwaaops.testing.airflow_env import IsolatedAirflow

    airflow = IsolatedAirflow(Path(tempfile.mkdtemp(prefix="mwaaops-airflow-")))
    config.stash[_ISOLATED_AIRFLOW_KEY] = airflow
    os.environ.update(airflow.environ)


def pytest_unconfigure(config: pytest.Config) -> None:
    airflow = config.stash.get(_ISOLATED_AIRFLOW_KEY, None)
    if airflow is not None:
        shutil.rmtree(airflow.home, ignore_errors=True)


@pytest.fixture(scope="session")
def mwaaops_airflow(pytestconfig: pytest.Config) -> IsolatedAirflow:
    """The session's Airflow installation, migrated (the real ``airflow db migrate``)."""
    airflow = pytestconfig.stash.get(_ISOLATED_AIRFLOW_KEY, None)
    if airflow is None:
        raise pytest.UsageError(
            "mwaaops_airflow needs an isolated Airflow home: run pytest with "
            "--mwaaops-isolated-airflow or set 'mwaaops_isolated_airflow = true' in the pytest ini"
        )
    return airflow.migrate()


@pytest.fixture(scope="session")
def _mwaaops_emulator_server() -> Iterator[AwsEmulator]:
    from airflow_provider_mwaaops.testing.emulator import AwsEmulator

    with AwsEmulator() as emulator:
        yield emulator


@pytest.fixture
def aws_emulator(_mwaaops_emulator_server: AwsEmulator) -> Iterator[AwsEmulator]:
    """The embedded AWS, emptied before the test, with this process pointed at it."""
    _mwaaops_emulator_server.reset()
    with _mwaaops_emulator_server.activated():
        yield _mwaaops_emulator_server


@pytest.fixture
def dag_runner(mwaaops_airflow: IsolatedAirflow, aws_emulator: AwsEmulator) -> Callable[..., DagRunResult]:
    """``run_dag(dag, conf=...)`` against the isolated Airflow and the emulator."""
    from airflow_provider_mwaaops.testing.dag_runner import run_dag

    def _run(dag: Any, **kwargs: Any) -> DagRunResult:
        return run_dag(dag, **kwargs)

    return _run


@pytest.fixture(scope="session")
def airflow_api_server(
    mwaaops_airflow: IsolatedAirflow, _mwaaops_emulator_server: AwsEmulator
) -> Iterator[AirflowApiServer]:
    """A real ``airflow api-server`` (Airflow 3) on the session's isolated Airflow and emulator."""
    from airflow_provider_mwaaops.compat import HAS_API_SERVER

    if not HAS_API_SERVER:
        pytest.skip("airflow api-server exists on Airflow 3 only")
    from airflow_provider_mwaaops.testing.api_server import AirflowApiServer

    with AirflowApiServer(mwaaops_airflow, extra_environ=_mwaaops_emulator_server.environ()) as server:
        yield server


def _require_postgres() -> None:
    from airflow_provider_mwaaops.testing import postgres

    try:
        postgres.check_available()
    except postgres.PostgresUnavailable as err:
        if postgres.postgres_required():
            pytest.fail(f"{postgres.REQUIRE_ENV}=1 but {err}")
        pytest.skip(str(err))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty PostgreSQL database, dropped after the test."""
    _require_postgres()
    from airflow_provider_mwaaops.testing import postgres

    url = postgres.create_database()
    try:
        yield url
    finally:
        postgres.drop_database(url)


@pytest.fixture
def postgres_airflow(tmp_path: Path) -> Iterator[IsolatedAirflow]:
    """An isolated Airflow (own home) whose metadata DB is a fresh, migrated PostgreSQL database.

    The test process's own Airflow stays on SQLite; use this one from subprocesses
    (``run_airflow``/``run_python``, real Airflow components) or through its URL.
    """
    _require_postgres()
    from airflow_provider_mwaaops.testing.postgres import migrated_postgres_airflow

    with migrated_postgres_airflow(tmp_path / "airflow-pg") as airflow:
        yield airflow
