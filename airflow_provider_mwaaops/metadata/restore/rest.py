"""The supported restore path where tasks may not write the database (Airflow 3, MWAA 3.x).

Airflow 3's public REST API can create and update exactly three kinds of restorable rows, and
pause/unpause DAGs; this module restores those and nothing else:

=================  ====================================================================
variables          ``POST /variables`` or ``PATCH /variables/{key}`` (values decrypted
                   from the export; excluded values are skipped and reported)
pools              ``POST /pools`` or ``PATCH /pools/{name}`` (``default_pool`` too)
connections        ``POST /connections`` or ``PATCH /connections/{id}``; the API never
                   returns passwords, so a password is written but cannot be compared
DAG re-activation  ``PATCH /dags/{dag_id}`` with ``is_paused: false`` for the DAGs that
                   were active at backup and are paused in the target
=================  ====================================================================

History (dag runs, task instances, logs, jobs, XComs) has no write endpoint: restoring it needs
database access, i.e. ``mwaaops metadata restore`` on a self-managed deployment, or the operator
given a database connection to the target.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from airflow_provider_mwaaops.metadata.manifest import Manifest, read_table
from airflow_provider_mwaaops.metadata.restore.errors import RestoreError
from airflow_provider_mwaaops.metadata.restore.plan import TableStats
from airflow_provider_mwaaops.metadata.restore.run import (
    RestoreOptions,
    RestoreReport,
    _export_cipher,
    export_chain,
    verify_chain,
)
from airflow_provider_mwaaops.metadata.secrets import SecretCipher
from airflow_provider_mwaaops.metadata.sinks.base import Sink

#: Tables (in order) this path restores.
REST_TABLES = ("slot_pool", "variable", "connection")
_CONNECTION_FIELDS = ("conn_type", "description", "host", "schema", "login", "port", "extra")


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "status", None) == 404


def _latest_rows(sink: Sink, manifests: list[Manifest], table: str, key: str) -> dict[str, dict[str, Any]]:
    """The newest exported version of each row (later exports of the chain win)."""
    rows: dict[str, dict[str, Any]] = {}
    for manifest in manifests:
        if table in manifest.tables:
            for row in read_table(sink, manifest, table).to_pylist():
                rows[row[key]] = row
    return rows


class RestApiRestorer:
    """Restores variables, pools and connections through an
    :class:`~airflow_provider_mwaaops.airflow_api.AirflowApiClient`."""

    def __init__(self, client: Any, cipher: SecretCipher | None, dry_run: bool) -> None:
        self.client = client
        self.cipher = cipher
        self.dry_run = dry_run
        self.notes: dict[str, int] = {}

    def _get(self, path: str) -> dict[str, Any] | None:
        try:
            return dict(self.client.get(path))
        except Exception as exc:
            if _not_found(exc):
                return None
            raise

    def _write(self, method: str, path: str, body: dict[str, Any]) -> None:
        if not self.dry_run:
            self.client.request(method, path, json=body)

    def _secret(self, value: Any) -> str | None:
        if value is None:
            return None
        if self.cipher is None:
            raise RestoreError("the export holds encrypted secrets but no export key was given")
        return self.cipher.decrypt(str(value))

    def _note(self, what: str) -> None:
        self.notes[what] = self.notes.get(what, 0) + 1

    def _upsert(
        self,
        stats: TableStats,
        base: str,
        name: str,
        body: dict[str, Any],
        compare: dict[str, Any],
        patch_body: dict[str, Any] | None = None,
    ) -> None:
        path = f"{base}/{quote(name, safe='')}"
        current = self._get(path)
        if current is None:
            self._write("POST", base, body)
            stats.inserted += 1
        elif all(current.get(field) == value for field, value in compare.items()):
            stats.unchanged += 1
        else:
            self._write("PATCH", path, patch_body or body)
            stats.updated += 1

    def pools(self, rows: dict[str, dict[str, Any]]) -> TableStats:
        stats = TableStats("slot_pool", exported=len(rows))
        for name, row in rows.items():
            body = {
                "name": name,
                "slots": row["slots"],
                "description": row.get("description"),
                "include_deferred": bool(row.get("include_deferred")),
            }
            compare = {
                "slots": body["slots"],
                "description": body["description"],
                "include_deferred": body["include_deferred"],
            }
            # POST names the pool "name", PATCH (without update_mask: every field) "pool"
            patch = {"pool": name, **{k: v for k, v in body.items() if k != "name"}}
            self._upsert(stats, "/pools", name, body, compare, patch)
        return stats

    def variables(self, rows: dict[str, dict[str, Any]]) -> TableStats:
        stats = TableStats("variable", exported=len(rows))
        for key, row in rows.items():
            value = self._secret(row.get("val"))
            if value is None:
                stats.skipped["value excluded from the export"] = (
                    stats.skipped.get("value excluded from the export", 0) + 1
                )
                continue
            body = {"key": key, "value": value, "description": row.get("description")}
            self._upsert(stats, "/variables", key, body, {"value": value, "description": body["description"]})
        return stats

    def connections(self, rows: dict[str, dict[str, Any]]) -> TableStats:
        stats = TableStats("connection", exported=len(rows))
        for conn_id, row in rows.items():
            body: dict[str, Any] = {"connection_id": conn_id}
            body.update({field: row.get(field) for field in _CONNECTION_FIELDS})
            body["extra"] = self._secret(row.get("extra"))
            password = self._secret(row.get("password"))
            compare = {field: body[field] for field in _CONNECTION_FIELDS if field != "extra"}
            if body["extra"] is not None:
                compare["extra"] = body["extra"]
            if password is not None:
                body["password"] = password
                self._note("connection.password: written, not comparable through the API (write-only)")
            elif row.get("password") is None:
                self._note("connection.password: excluded from the export, not restored")
            self._upsert(stats, "/connections", conn_id, body, compare)
        return stats

    def reactivate(self, active: list[str]) -> list[str]:
        done = []
        for dag_id in active:
            current = self._get(f"/dags/{quote(dag_id, safe='')}")
            if current is not None and current.get("is_paused"):
                self._write("PATCH", f"/dags/{quote(dag_id, safe='')}", {"is_paused": False})
                done.append(dag_id)
        return sorted(done)


def restore_through_api(
    sink: Sink, export_id: str, client: Any, options: RestoreOptions | None = None
) -> RestoreReport:
    """Restore what Airflow 3's REST API allows (see the module docstring) from an export."""
    options = options or RestoreOptions()
    started = time.monotonic()
    manifests = export_chain(sink, export_id, chain=options.chain)
    tables = [t for t in REST_TABLES if any(t in m.tables for m in manifests)]
    if options.tables is not None:
        tables = [t for t in tables if t in options.tables]
    report = RestoreReport(
        export_ids=[m.export_id for m in manifests],
        target=str(getattr(client, "target", "API")),
        dry_run=options.dry_run,
    )
    verify_chain(sink, manifests, [*tables, "dag"], report)
    restorer = RestApiRestorer(client, _export_cipher(manifests, options), options.dry_run)
    try:
        if "slot_pool" in tables:
            report.tables["slot_pool"] = restorer.pools(_latest_rows(sink, manifests, "slot_pool", "pool"))
        if "variable" in tables:
            report.tables["variable"] = restorer.variables(_latest_rows(sink, manifests, "variable", "key"))
        if "connection" in tables:
            rows = _latest_rows(sink, manifests, "connection", "conn_id")
            report.tables["connection"] = restorer.connections(rows)
        if options.reactivate_dags:
            dags = _latest_rows(sink, manifests, "dag", "dag_id")
            active = sorted(
                d for d, row in dags.items() if row.get("is_paused") is False and not row.get("is_stale")
            )
            report.reactivated_dags = restorer.reactivate(active)
    except RestoreError:
        raise
    except Exception as exc:
        raise RestoreError(f"restore through the Airflow API at {report.target} failed: {exc}") from exc
    report.secrets = restorer.notes
    report.seconds = time.monotonic() - started
    skipped = sorted(
        {
            m_table
            for m in manifests
            for m_table, entry in m.tables.items()
            if entry.rows and m_table not in (*REST_TABLES, "dag")
        }
    )
    if skipped:
        report.ignored_columns["(not restorable through the API; needs database access)"] = skipped
    return report
