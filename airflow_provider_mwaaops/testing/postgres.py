"""Throw-away PostgreSQL databases for tests that must run on MWAA's metadata backend.

Each test gets its own database on the local server, so tests never see each other's rows. An
Airflow-migrated database is cloned from a template (``CREATE DATABASE ... TEMPLATE``), migrated
once per Airflow version, which turns a 30-60 s ``airflow db migrate`` into well under a second.

Where no PostgreSQL server is reachable the tests skip, saying why; with
``MWAAOPS_REQUIRE_POSTGRES=1`` (set by the project's CI) they fail instead, so a stopped server can
never turn the PostgreSQL coverage silently off.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_mwaaops.testing.airflow_env import IsolatedAirflow, _airflow_version_in

#: The server and database used to create and drop the per-test databases.
ADMIN_URL_ENV = "MWAAOPS_POSTGRES_URL"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
REQUIRE_ENV = "MWAAOPS_REQUIRE_POSTGRES"
TEMPLATE_PREFIX = "mwaaops_template_"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server answered; the message says where we looked and how to start one."""


def admin_url() -> str:
    return os.environ.get(ADMIN_URL_ENV, DEFAULT_ADMIN_URL)


def postgres_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").lower() in {"1", "true", "yes"}


def with_database(url: str, database: str, driver: str | None = None) -> str:
    """``url`` pointing at another database (and optionally a SQLAlchemy driver suffix)."""
    parts = urlsplit(url)
    scheme = f"postgresql+{driver}" if driver else parts.scheme
    return urlunsplit((scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def _connect(url: str):  # type: ignore[no-untyped-def]
    import psycopg2

    conn = psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://"), connect_timeout=3)
    conn.autocommit = True
    return conn


def check_available() -> None:
    """Raise :class:`PostgresUnavailable` with a clear reason if the server cannot be used."""
    try:
        _connect(admin_url()).close()
    except ImportError as err:
        raise PostgresUnavailable(
            "psycopg2 is not installed (pip install 'airflow-provider-mwaaops[postgres]')"
        ) from err
    except Exception as err:
        reason = " ".join(str(err).split())
        raise PostgresUnavailable(
            f"PostgreSQL not reachable at {admin_url()} ({type(err).__name__}: {reason}); "
            f"start it or point {ADMIN_URL_ENV} at one"
        ) from err


def create_database(prefix: str = "mwaaops_test_", template: str | None = None) -> str:
    """Create an empty (or template-cloned) database and return its SQLAlchemy URL (psycopg2)."""
    name = f"{prefix}{secrets.token_hex(6)}"
    conn = _connect(admin_url())
    try:
        with conn.cursor() as cur:
            clause = f' TEMPLATE "{template}"' if template else ""
            cur.execute(f'CREATE DATABASE "{name}"{clause}')
    finally:
        conn.close()
    return with_database(admin_url(), name, driver="psycopg2")


def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    conn = _connect(admin_url())
    try:
        with conn.cursor() as cur:
            # Airflow components may still hold connections; end them so the drop cannot hang.
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        conn.close()


def _database_exists(name: str) -> bool:
    conn = _connect(admin_url())
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            return cur.fetchone() is not None
    finally:
        conn.close()


def migrated_template(scratch_home: Path, python: str = sys.executable) -> str:
    """Name of a database migrated to the installed Airflow's schema, created on first use."""
    version = _airflow_version_in(python)
    key = hashlib.sha256(f"{version}|{sys.version_info[:2]}|{admin_url()}".encode()).hexdigest()[:10]
    template = f"{TEMPLATE_PREFIX}{version.replace('.', '_')}_{key}"
    if _database_exists(template):
        return template
    scratch = create_database(prefix="mwaaops_migrating_")
    try:
        IsolatedAirflow(scratch_home, sql_alchemy_conn=scratch).migrate()
        conn = _connect(admin_url())
        try:
            with conn.cursor() as cur:
                # Rename is atomic: a concurrent session sees either no template or a complete one.
                cur.execute(f'ALTER DATABASE "{urlsplit(scratch).path.lstrip("/")}" RENAME TO "{template}"')
        finally:
            conn.close()
    except Exception:
        drop_database(scratch)
        raise
    return template


@contextmanager
def migrated_postgres_airflow(home: Path, dags_folder: Path | None = None) -> Iterator[IsolatedAirflow]:
    """An :class:`~airflow_provider_mwaaops.testing.airflow_env.IsolatedAirflow` on a fresh
    PostgreSQL database at the installed Airflow's schema, dropped on exit."""
    template = migrated_template(home.parent / f"{home.name}-template-home")
    url = create_database(template=template)
    try:
        yield IsolatedAirflow(home, dags_folder, sql_alchemy_conn=url)
    finally:
        drop_database(url)
