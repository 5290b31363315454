"""Compare two exports row by row: the proof of a DR drill.

Restore never checks itself: after restoring export A into a database, export that database again
(B) with the same exporter and compare A with B here. Everything goes through the export format,
so the comparison is independent of the restore's own code.

Per table, rows are compared as multisets of whole rows over the columns both exports have.
Documented exclusions, and only these:

* secret columns (connection password/extra, variable value) are compared in plain text, decrypted
  with each export's key, because Fernet tokens differ on every encryption;
* ``trigger.kwargs`` is stored encrypted with each environment's own Fernet key: compared in plain
  text when both keys are given, left out otherwise;
* JSON columns are compared as parsed JSON (PostgreSQL and SQLite print the same value differently);
* ``log_template.created_at``: every ``airflow db migrate`` writes the log templates itself, with
  its own timestamp; restore matches them on their content and keeps the target's rows;
* ``ignore_columns``: whatever the caller names (e.g. ids when the target already had rows).

And one documented exclusion of rows: a row the restore refuses to insert by design, because a
column it cannot exist without is not in the export (a variable whose value was left out of an
export taken with ``secrets='exclude'``: restore skips it, see
:data:`~airflow_provider_mwaaops.metadata.restore.secrets.REQUIRED_FOR_INSERT`). Such a row missing
from the second export is listed as *not restored by design*, not as lost; given the restore's
report (``restore_report``), their count must match what the restore says it skipped, so a row lost
for any other reason still makes the comparison fail. The same row present in the second export
(the target already had it) simply compares as usual.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import InvalidToken, MultiFernet

from airflow_provider_mwaaops.metadata.manifest import Manifest, load_manifest, read_table
from airflow_provider_mwaaops.metadata.restore.secrets import REQUIRED_FOR_INSERT, is_plain_trigger_kwargs
from airflow_provider_mwaaops.metadata.secrets import SecretCipher, fernet_from_keys
from airflow_provider_mwaaops.metadata.sinks.base import Sink
from airflow_provider_mwaaops.metadata.tables import get_table

#: Columns that legitimately differ after a restore into a freshly migrated database.
ALWAYS_IGNORED: dict[str, tuple[str, ...]] = {"log_template": ("created_at",)}


@dataclass
class TableComparison:
    table: str
    rows_a: int
    rows_b: int
    compared_columns: list[str]
    only_in_a: list[dict[str, Any]] = field(default_factory=list)
    only_in_b: list[dict[str, Any]] = field(default_factory=list)
    #: Rows of A that the restore skips by design (a required column not exported), absent from B.
    not_restored: list[dict[str, Any]] = field(default_factory=list)
    #: Why those rows were not restored, e.g. "val not in the export (secrets excluded)".
    not_restored_reason: str = ""

    @property
    def equal(self) -> bool:
        return (
            not self.only_in_a and not self.only_in_b and self.rows_a - len(self.not_restored) == self.rows_b
        )


@dataclass
class ExportComparison:
    tables: dict[str, TableComparison]
    missing_tables: list[str]

    @property
    def equal(self) -> bool:
        return not self.missing_tables and all(t.equal for t in self.tables.values())

    def describe(self, limit: int = 3) -> str:
        lines = []
        for name in self.missing_tables:
            lines.append(f"{name}: has rows in the first export, missing from the second")
        for name, result in self.tables.items():
            status = "equal" if result.equal else "DIFFERENT"
            lines.append(f"{name}: {result.rows_a} vs {result.rows_b} rows, {status}")
            if result.not_restored:
                lines.append(
                    f"  {len(result.not_restored)} not restored by design: {result.not_restored_reason}"
                )
            for row in result.only_in_a[:limit]:
                lines.append(f"  only in first:  {row}")
            for row in result.only_in_b[:limit]:
                lines.append(f"  only in second: {row}")
        return "\n".join(lines)


def _canonical(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "json":
        try:
            return json.dumps(json.loads(value), sort_keys=True)
        except (TypeError, ValueError):
            return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _rows(
    sink: Sink,
    manifest: Manifest,
    table: str,
    columns: list[str],
    cipher: SecretCipher | None,
    fernet: MultiFernet | None,
) -> list[tuple[Any, ...]]:
    spec = get_table(table)
    data = read_table(sink, manifest, table).select(columns).to_pylist()
    out = []
    for row in data:
        for column in spec.secret_columns:
            if column in row and row[column] is not None and cipher is not None:
                row[column] = cipher.decrypt(str(row[column]))
        if table == "trigger" and "kwargs" in row and fernet is not None and row["kwargs"] is not None:
            row["kwargs"] = _trigger_kwargs(row["kwargs"], fernet)
        out.append(tuple(_canonical(row[c], spec.column_index[c].kind) for c in columns))
    return out


def _trigger_kwargs(value: str, fernet: MultiFernet) -> str:
    """Canonical JSON of a trigger's kwargs, encrypted or kept in plain JSON by Airflow."""
    try:
        plain = value if is_plain_trigger_kwargs(value) else fernet.decrypt(value.encode()).decode()
    except InvalidToken:
        return "<not decryptable>"
    return json.dumps(json.loads(plain), sort_keys=True)


def compare_exports(
    sink_a: Sink,
    export_a: str,
    sink_b: Sink,
    export_b: str,
    *,
    cipher_a: SecretCipher | None = None,
    cipher_b: SecretCipher | None = None,
    fernet_key_a: str | None = None,
    fernet_key_b: str | None = None,
    tables: list[str] | None = None,
    ignore_columns: dict[str, list[str]] | None = None,
    restore_report: Any = None,
) -> ExportComparison:
    """Row-by-row comparison of every table of export A with the same table in export B.

    ``restore_report``: the :class:`~airflow_provider_mwaaops.metadata.restore.run.RestoreReport`
    of the restore from A (optional): rows counted as *not restored by design* must then also be
    rows the restore reports as skipped, or they count as lost.
    """
    manifest_a = load_manifest(sink_a, export_a)
    manifest_b = load_manifest(sink_b, export_b)
    fernet_a, fernet_b = fernet_from_keys(fernet_key_a), fernet_from_keys(fernet_key_b)
    ignore: dict[str, list[str]] = {name: list(cols) for name, cols in ALWAYS_IGNORED.items()}
    for name, cols in (ignore_columns or {}).items():
        ignore.setdefault(name, []).extend(cols)
    results: dict[str, TableComparison] = {}
    missing: list[str] = []
    for name in tables or list(manifest_a.tables):
        entry_a = manifest_a.tables.get(name)
        if entry_a is None:
            continue
        entry_b = manifest_b.tables.get(name)
        if entry_b is None:
            if entry_a.rows:
                missing.append(name)
            continue
        columns = [c for c in entry_a.columns if c in entry_b.columns and c not in ignore.get(name, [])]
        if name == "trigger" and (fernet_a is None or fernet_b is None):
            columns = [c for c in columns if c != "kwargs"]
        rows_a = Counter(_rows(sink_a, manifest_a, name, columns, cipher_a, fernet_a))
        rows_b = Counter(_rows(sink_b, manifest_b, name, columns, cipher_b, fernet_b))
        only_a = [dict(zip(columns, row, strict=True)) for row in (rows_a - rows_b).elements()]
        only_b = [dict(zip(columns, row, strict=True)) for row in (rows_b - rows_a).elements()]
        result = TableComparison(name, sum(rows_a.values()), sum(rows_b.values()), columns, only_a, only_b)
        _set_aside_not_restored(result, _skipped_by(restore_report, name))
        results[name] = result
    return ExportComparison(results, missing)


def _skipped_by(report: Any, table: str) -> int | None:
    """Rows of ``table`` the restore reports as skipped for a missing required column."""
    if report is None:
        return None
    stats = report.tables.get(table)
    if stats is None:
        return 0
    return sum(count for reason, count in stats.skipped.items() if "not in the export" in reason)


def _set_aside_not_restored(result: TableComparison, reported: int | None) -> None:
    """Move rows of A that restore never inserts (a required column is null) out of ``only_in_a``."""
    required = [c for c in REQUIRED_FOR_INSERT.get(result.table, ()) if c in result.compared_columns]
    if not required:
        return
    by_design = [row for row in result.only_in_a if any(row.get(c) is None for c in required)]
    if reported is not None and len(by_design) > reported:
        return  # more rows missing than the restore says it skipped: all of them count as lost
    if by_design:
        result.not_restored = by_design
        result.not_restored_reason = f"{', '.join(required)} not in the export (the restore skips such rows)"
        result.only_in_a = [row for row in result.only_in_a if not any(row.get(c) is None for c in required)]
