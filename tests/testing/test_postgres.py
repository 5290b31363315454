"""PostgreSQL fixtures: fresh databases per test, migrated by the real `airflow db migrate`."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from airflow_provider_mwaaops.testing import postgres


def test_postgres_url_is_a_fresh_empty_database(postgres_url):
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                sa.text("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            ).scalar()
    finally:
        engine.dispose()
    assert tables == 0


def test_postgres_airflow_is_migrated_and_usable_from_the_cli(postgres_airflow):
    result = postgres_airflow.run_airflow("db", "check-migrations", "-t", "5")
    assert result.returncode == 0
    engine = sa.create_engine(postgres_airflow.sql_alchemy_conn)
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    assert version


def test_unreachable_server_gives_a_reason(monkeypatch):
    monkeypatch.setenv(postgres.ADMIN_URL_ENV, "postgresql://postgres@127.0.0.1:1/test")
    with pytest.raises(postgres.PostgresUnavailable, match=r"127\.0\.0\.1:1.*MWAAOPS_POSTGRES_URL"):
        postgres.check_available()
