"""Snowflake without an account: fakesnow (Snowflake SQL on DuckDB) behind the snowflake provider.

``fakesnow.patch()`` replaces ``snowflake.connector.connect``, which the snowflake provider's
``SnowflakeHook.get_conn`` imports at call time, so the provider's hooks and SQL operators run
unchanged; ``dag.test()`` runs tasks in this process on both Airflow lines, so the patch reaches
them. Databases live in memory for the duration of the block and are shared by every connection
opened in it, so what one task loads the next task can query.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

from airflow_provider_mwaaops.testing.emulator import patched_environ

SNOWFLAKE_CONN_ID = "snowflake_default"


def snowflake_connection_json() -> str:
    """An Airflow ``snowflake`` connection; fakesnow accepts any account and credentials."""
    return json.dumps(
        {
            "conn_type": "snowflake",
            "login": "demo",
            "password": "demo-password",
            "schema": "PUBLIC",
            "extra": {
                "account": "fakesnow",
                "warehouse": "DEMO_WH",
                "database": "DEMO_DB",
                "role": "DEMO_ROLE",
            },
        }
    )


@contextlib.contextmanager
def fake_snowflake(conn_id: str = SNOWFLAKE_CONN_ID) -> Iterator[None]:
    """Patch Snowflake with fakesnow and provide the ``conn_id`` connection for the block.

    Does nothing but the connection if fakesnow is not installed (it is in the ``test`` extra),
    so a dags folder without Snowflake DAGs runs in the demo regardless.
    """
    try:
        import fakesnow
    except ImportError:
        patch: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    else:
        patch = fakesnow.patch()
    with patched_environ({f"AIRFLOW_CONN_{conn_id.upper()}": snowflake_connection_json()}), patch:
        yield
