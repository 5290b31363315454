"""What a busy Airflow writes while an export reads: for tests that an export is one moment."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta


class LiveWrites:
    """Writes what a busy Airflow writes, from its own connection, between two tables' reads: a
    new DAG run with its task instances (one of them retried: a history row), a retry of an
    existing task instance (history row, new try; on Airflow 3 a new id), a log row. ``undo``
    puts the database back."""

    def __init__(self, url: str, dag_id: str, *, failing_task: str) -> None:
        import sqlalchemy as sa

        self.sa = sa
        self.dag_id = dag_id
        self.failing_task = failing_task
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self.meta = sa.MetaData()
        names = ("dag_run", "task_instance", "task_instance_history", "log")
        self.meta.reflect(self.engine, only=lambda name, _m: name in names)
        self.undo_steps: list = []

    def table(self, name: str):
        return self.meta.tables[name]

    def _history_row(self, ti_row) -> dict:
        tih = self.table("task_instance_history")
        row = {c.name: ti_row[c.name] for c in tih.c if c.name in ti_row and c.name != "id"}
        if "task_instance_id" in tih.c:
            row["task_instance_id"] = ti_row["id"]
        if "try_id" in tih.c:
            row["try_id"] = _new_uuid_like(ti_row["id"])
        return row

    def new_run(self, run_id: str, *, days: int) -> None:
        """A run copied from the probe's first one, its task instances, a history row, a log row."""
        sa, run, ti, log_t = self.sa, self.table("dag_run"), self.table("task_instance"), self.table("log")
        tih = self.table("task_instance_history")
        with self.engine.begin() as conn:
            old = conn.execute(sa.select(run).where(run.c.dag_id == self.dag_id).limit(1)).mappings().one()
            new = {k: v for k, v in old.items() if k != "id"}
            new["run_id"] = run_id
            _touch(run, new)
            date_col = "logical_date" if "logical_date" in run.c else "execution_date"
            new[date_col] = old[date_col] + timedelta(days=days)
            conn.execute(run.insert().values(**new))
            rows = conn.execute(sa.select(ti).where(ti.c.run_id == old["run_id"])).mappings().all()
            assert rows, "the probe DAG's first run has task instances"
            for row in rows:
                copy = {**row, "run_id": run_id}
                _touch(ti, copy)
                if "id" in ti.c:
                    copy["id"] = _new_uuid_like(row["id"])
                conn.execute(ti.insert().values(**copy))
            conn.execute(tih.insert().values(**self._history_row(copy)))
            entry = conn.execute(sa.select(log_t).limit(1)).mappings().one()
            values = {k: v for k, v in entry.items() if k != "id"}
            log_id = conn.execute(log_t.insert().values(**values)).inserted_primary_key[0]

        def undo(conn) -> None:
            conn.execute(log_t.delete().where(log_t.c.id == log_id))
            conn.execute(tih.delete().where(tih.c.run_id == run_id))
            conn.execute(ti.delete().where(ti.c.run_id == run_id))
            conn.execute(run.delete().where(run.c.run_id == run_id))

        self.undo_steps.append(undo)

    def touch_run(self) -> str:
        """The scheduler's touch of a running run (every loop): its ``updated_at`` moves on."""
        sa, run = self.sa, self.table("dag_run")
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(run).where(run.c.dag_id == self.dag_id).limit(1)).mappings().one()
            key = [run.c.dag_id == row["dag_id"], run.c.run_id == row["run_id"]]
            conn.execute(run.update().where(*key).values(**_touch(run, {})))

        def undo(conn) -> None:
            conn.execute(run.update().where(*key).values(updated_at=row["updated_at"]))

        self.undo_steps.append(undo)
        return str(row["run_id"])

    def retry(self) -> None:
        """A retry: the try goes to history; the task instance waits for its next try (and on
        Airflow 3 gets a new id)."""
        sa, ti, tih = self.sa, self.table("task_instance"), self.table("task_instance_history")
        with self.engine.begin() as conn:
            query = (
                sa.select(ti).where(ti.c.dag_id == self.dag_id, ti.c.task_id == self.failing_task).limit(1)
            )
            row = dict(conn.execute(query).mappings().one())
            conn.execute(tih.insert().values(**self._history_row(row)))
            key = [ti.c[k] == row[k] for k in ("dag_id", "task_id", "run_id", "map_index")]
            change = {"state": "up_for_retry", "try_number": row["try_number"] + 1}
            _touch(ti, change)
            if "id" in ti.c:
                change["id"] = _new_uuid_like(row["id"])
            conn.execute(ti.update().where(*key).values(**change))

        def undo(conn) -> None:
            conn.execute(ti.update().where(*key).values(**{k: row[k] for k in change}))
            history_key = [tih.c[k] == row[k] for k in ("dag_id", "task_id", "run_id", "map_index")]
            conn.execute(tih.delete().where(*history_key, tih.c.try_number == row["try_number"]))

        self.undo_steps.append(undo)

    def undo(self) -> None:
        with self.engine.begin() as conn:
            for step in reversed(self.undo_steps):
                step(conn)
        self.engine.dispose()


def _new_uuid_like(value):
    """A new id of the stored kind (a UUID object on PostgreSQL, 32 hex characters on SQLite)."""

    if isinstance(value, uuid.UUID):
        return uuid.uuid4()
    return uuid.uuid4().hex if len(str(value)) == 32 else str(uuid.uuid4())


def _touch(table, values: dict) -> dict:
    """Stamp ``updated_at`` as Airflow's ORM does on every write (the REST source filters on it)."""
    if "updated_at" in table.c:
        values["updated_at"] = datetime.now(UTC)
    return values
