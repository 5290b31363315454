"""One snapshot for every read of an export, so that its tables agree with each other.

Why: an export reads table after table while Airflow keeps writing. Read separately, a table read
later can hold rows pointing at rows an earlier read did not see. On Airflow 3 a retry gives the
task instance a new id and its history rows follow it (``ON UPDATE CASCADE``): a backup taken
during a retry held ``task_instance_history`` rows whose task instance it did not have, and the
restore refused it (foreign key). A backup must be one moment of the database.

PostgreSQL: one transaction exports its snapshot (``pg_export_snapshot()``) and stays open while
the export runs; every connection the source opens then imports it (``SET TRANSACTION SNAPSHOT``)
before its first query, so the COPY streams keep their own connections, run in parallel and all
see the same data. That is what ``pg_dump --jobs`` does. See "Snapshot Synchronization Functions"
(https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-SNAPSHOT-SYNCHRONIZATION)
and https://www.postgresql.org/docs/current/sql-set-transaction.html. The open transaction holds
back VACUUM for the export's duration, as pg_dump's does.

SQLite: the database file is copied with SQLite's online backup API in one step (one read lock,
https://www.sqlite.org/backup.html) into a private temporary file, and the export reads the copy.
One long read transaction on the live file would instead hold off Airflow's writers (rollback
journal) for the whole export; a copy holds them off only while it is taken.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

log = logging.getLogger(__name__)

#: What ``pg_export_snapshot()`` returns (hex words joined by dashes), checked before it is
#: written into a statement: SET TRANSACTION SNAPSHOT takes a literal, not a bind parameter.
_SNAPSHOT_ID = re.compile(r"^[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+$")


@contextlib.contextmanager
def postgres_snapshot(engine: sa.engine.Engine) -> Iterator[str | None]:
    """While open, every connection ``engine`` hands out reads one exported snapshot.

    Yields a description for the manifest, or None where the server cannot export a snapshot
    (the export then reads table by table, as before, and says so in a warning).
    """
    holder = engine.raw_connection()
    try:
        try:
            snapshot_id = _export_snapshot(holder)
        except Exception as err:  # e.g. a server or proxy without snapshot export
            log.warning(
                "The export reads each table at its own moment: PostgreSQL did not export a "
                "snapshot (%s). Rows written during the export may reference rows it does not hold.",
                err,
            )
            with contextlib.suppress(Exception):
                holder.rollback()
            yield None
            return

        def import_snapshot(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
            _import_snapshot(dbapi_connection, snapshot_id)

        sa.event.listen(engine, "checkout", import_snapshot)
        try:
            yield f"postgresql snapshot {snapshot_id}"
        finally:
            sa.event.remove(engine, "checkout", import_snapshot)
    finally:
        with contextlib.suppress(Exception):
            holder.rollback()
        holder.close()


def _export_snapshot(dbapi_connection: Any) -> str:
    cur = dbapi_connection.cursor()
    try:
        # The driver opens the transaction at the first statement; its characteristics must be
        # set before its first query, and an imported snapshot needs REPEATABLE READ.
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cur.execute("SELECT pg_export_snapshot()")
        snapshot_id = str(cur.fetchone()[0])
    finally:
        cur.close()
    if not _SNAPSHOT_ID.match(snapshot_id):
        raise ValueError(f"unexpected snapshot id {snapshot_id!r}")
    return snapshot_id


def _import_snapshot(dbapi_connection: Any, snapshot_id: str) -> None:
    """Make the connection's next transaction read ``snapshot_id``.

    A pooled connection may come back in a transaction; SET TRANSACTION SNAPSHOT must come before
    the transaction's first query, so end it first (a rollback of an idle connection does nothing).
    """
    dbapi_connection.rollback()
    cur = dbapi_connection.cursor()
    try:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cur.execute(f"SET TRANSACTION SNAPSHOT '{snapshot_id}'")
    finally:
        cur.close()


@contextlib.contextmanager
def sqlite_copy(engine: sa.engine.Engine) -> Iterator[sa.engine.Engine | None]:
    """An engine on a private copy of ``engine``'s SQLite file taken at one moment; None for an
    in-memory database (only its own connection sees it: nothing else writes to it)."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="mwaaops-export-"))
    copy = folder / "snapshot.db"
    try:
        _backup(database, copy)
        snapshot = sa.create_engine(f"sqlite:///{copy}", poolclass=sa.pool.NullPool)
        try:
            yield snapshot
        finally:
            snapshot.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _backup(database: str, copy: Path) -> None:
    """SQLite's online backup in one step: one read lock, so the copy is one moment of the file."""
    if database.startswith("file:"):
        source = sqlite3.connect(database, uri=True)
    else:
        source = sqlite3.connect(f"{Path(database).absolute().as_uri()}?mode=ro", uri=True)
    try:
        target = sqlite3.connect(copy)
        try:
            source.backup(target, pages=-1)
        finally:
            target.close()
    finally:
        source.close()
