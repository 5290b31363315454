"""Secrets masked in every other column of an export, before a chunk is written.

Why: Airflow keeps copies of secrets outside the connection and variable tables, in plain text.
Its audit log (``log.extra``) records the CLI command line and the REST request body that set a
variable or a connection extra; a ``dag_run.conf`` may carry ``{"password": ...}``; a task's
XCom or deferral kwargs may hold what it rendered from ``{{ var.value.x }}``. Excluding or
encrypting the secret columns alone would still ship those copies to whoever reads the export.

Two rules, applied to the :data:`SCANNED_COLUMNS` of each table in every secret mode:

- **Known secrets**: every secret value the export itself knows (connection passwords, the
  whole text of connection extras and their values under sensitive keys, variable values) is
  replaced by ``***`` wherever it occurs in a scanned column, also JSON-, Python- or URL-escaped
  (as it appears inside a JSON document, a logged ``argv`` list or a URI). Values shorter than
  Airflow's ``[logging] min_length_masked_secret`` (5) and ``airflow`` are not masked, as
  Airflow's own masker does not mask them. Both rules share one search per column
  (:mod:`~airflow_provider_mwaaops.metadata.row_search`: Hyperscan with the ``fast-masking``
  extra, RE2 without): no row becomes a Python object unless it holds a secret or a name.
- **Sensitive keys**: in JSON columns, the value of any key Airflow's secrets masker hides
  (``password``, ``secret``, ``api_key``, ``token``... plus ``[core] sensitive_var_conn_names``)
  is masked by Airflow's own ``redact``, as its UI shows it; JSON nested in a JSON string (a
  REST body's ``extra``, a ``--conn-extra`` argument in the CLI's ``full_command``) is masked
  too, and an XCom whose key is sensitive is masked whole. Only rows whose text names a
  sensitive key are parsed. This rule is what protects an export from the REST API, which
  never returns passwords nor sensitive extras, so their values are not known to the export.

Counts of masked values per column go to the manifest (``tables.<name>.masked``), never values.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_mwaaops.metadata.airflow_options import airflow_option
from airflow_provider_mwaaops.metadata.arrays import string_array
from airflow_provider_mwaaops.metadata.row_search import RowSearch, python_pattern, re2_pattern, row_search
from airflow_provider_mwaaops.metadata.sources.base import MetadataSource
from airflow_provider_mwaaops.metadata.tables import TableSpec, get_table

log = logging.getLogger(__name__)

MASK = "***"
#: Airflow's ``[logging] min_length_masked_secret`` default: shorter values are not masked.
DEFAULT_MIN_LENGTH = 5
#: Values Airflow's masker never masks (they are everywhere in its own text).
NEVER_MASKED = frozenset({"airflow"})

#: The columns of each table that may hold a copy of a secret, namely free text a user or Airflow
#: writes (notes, descriptions, the audit log) and JSON payloads (run conf, XComs, deferral kwargs).
#: Identifiers, states, timestamps and DAG definitions (``serialized_dag``, ``dag_code``: code,
#: exported as the DAG files hold it) are not scanned.
SCANNED_COLUMNS: dict[str, tuple[str, ...]] = {
    "dag_bundle": ("signed_url_template", "template_params"),
    "dag": ("description",),
    "variable": ("description",),
    "connection": ("description", "host", "schema", "login"),
    "trigger": ("kwargs",),
    "backfill": ("dag_run_conf",),
    "dag_run": ("conf",),
    "dag_run_note": ("content",),
    "task_instance": ("next_kwargs", "rendered_map_index"),
    "task_instance_history": ("next_kwargs", "rendered_map_index"),
    "task_instance_note": ("content",),
    "log": ("extra",),
    "xcom": ("value",),
}
#: Scanned columns that hold JSON text although the catalog types them as text.
_JSON_TEXT = {("log", "extra")}
#: Scanned columns whose row has a name for the value (an XCom's key): a sensitive name hides
#: the whole value (``return {"api_key": ...}`` with ``multiple_outputs`` pushes key ``api_key``).
_NAMED_BY = {("xcom", "value"): "key"}
#: Tables whose secret columns feed :func:`collect_known_secrets`.
SECRET_SOURCES = ("connection", "variable")


#: The secrets masker's default sensitive names of Airflow 2.11 and 3.x together. Only used to
#: find candidate rows: whether a key is sensitive is then Airflow's own masker's decision
#: (``tests/metadata/test_masking.py`` checks that this covers the installed Airflow's list).
AIRFLOW_SENSITIVE_FIELDS = frozenset(
    {
        "access_key", "access_token", "api_key", "apikey", "auth_header", "authorization", "bearer",
        "connection_string", "dsn", "keyfile_dict", "passphrase", "passwd", "password", "private_key",
        "proxies", "proxy", "proxy_password", "secret", "service_account", "service_key", "token",
        "webhook_url",
    }
)  # fmt: skip


def sensitive_fields() -> frozenset[str]:
    """Sensitive key names: the masker's defaults and ``[core] sensitive_var_conn_names``.

    Read from Airflow's configuration alone (without importing Airflow where it is not loaded):
    the masker itself (through ``compat``) is imported only when a row names one of them, which
    keeps an export light.
    """
    configured = airflow_option("core", "sensitive_var_conn_names", fallback="")
    return AIRFLOW_SENSITIVE_FIELDS | {name.strip().lower() for name in configured.split(",") if name.strip()}


def min_secret_length() -> int:
    return int(airflow_option("logging", "min_length_masked_secret", fallback=str(DEFAULT_MIN_LENGTH)))


def _adaptations(secret: str) -> set[str]:
    """The forms a value takes in Airflow's text: as is, inside JSON, inside a ``repr``, in a URI,
    and a ``repr`` inside JSON (the CLI's ``full_command`` in ``log.extra``)."""
    in_repr = repr(secret)[1:-1]
    forms = {secret, in_repr, quote(secret, safe="")}
    return forms | {json.dumps(form)[1:-1] for form in forms} | {json.dumps(secret, ensure_ascii=False)[1:-1]}


def _leaves_under_sensitive_keys(
    value: Any, sensitive: frozenset[str], hidden: bool = False
) -> Iterator[str]:
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _leaves_under_sensitive_keys(sub, sensitive, hidden or _is_sensitive(key, sensitive))
    elif isinstance(value, list):
        for sub in value:
            yield from _leaves_under_sensitive_keys(sub, sensitive, hidden)
    elif hidden and isinstance(value, str):
        yield value


def _is_sensitive(key: Any, sensitive: frozenset[str]) -> bool:
    name = str(key).strip().lower()
    return any(field in name for field in sensitive)


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def secret_values(table: str, row: dict[str, Any], sensitive: frozenset[str]) -> Iterator[str]:
    """The secrets one connection or variable row holds (plain text): what other columns must not."""
    spec = get_table(table)
    for name in spec.secret_columns:
        value = row.get(name)
        if not isinstance(value, str) or not value:
            continue
        yield value
        parsed = _json_or_none(value) if value.lstrip()[:1] in "{[" else None
        if parsed is not None:
            yield from _leaves_under_sensitive_keys(parsed, sensitive)


@dataclass
class SecretMasker:
    """Masks one export's chunks; ``counts[table][column]`` is how many values it masked."""

    secrets: frozenset[str]
    sensitive: frozenset[str]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    _preparing: threading.Thread | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        forms = {form for secret in self.secrets for form in _adaptations(secret) if form}
        # Longest first: a secret containing another is masked whole.
        self._ordered_forms = sorted(forms, key=lambda s: (-len(s), s))
        self._sensitive_lower = tuple({key.lower() for key in self.sensitive})

    def prepare_in_background(self) -> None:
        """Compile the searches and the rewrite regex on a thread of their own while the export
        reads its first chunk. Compiling (Hyperscan's databases, Python's regex of every secret
        form) took 16-18 ms for the benchmark's 120 secrets, which the first chunk would otherwise
        wait for: 3 % of exporting 100k dag runs. :meth:`mask` waits for it."""
        self._preparing = threading.Thread(target=self._prepare, name="mwaaops-masking-prepare", daemon=True)
        self._preparing.start()

    def _prepare(self) -> None:
        try:
            _ = self._json_search, self._text_search, self._python_literal, self._sensitive_in_lowered
        except Exception:  # the chunk that needs it compiles it again, and raises there
            log.debug("Preparing the masker's searches failed", exc_info=True)

    @cached_property
    def _text_search(self) -> RowSearch | None:
        """Rows of a text column holding a known secret."""
        return row_search(self._ordered_forms, ())

    @cached_property
    def _json_search(self) -> RowSearch | None:
        """Rows of a JSON column holding a known secret or naming a sensitive key (any case)."""
        return row_search(self._ordered_forms, self.sensitive)

    def mask(self, spec: TableSpec, chunk: pa.Table) -> pa.Table:
        """``chunk`` with secrets masked in its scanned columns; other columns untouched."""
        if (preparing := self._preparing) is not None:
            preparing.join()  # at once once it has finished
        for name in SCANNED_COLUMNS.get(spec.name, ()):
            idx = chunk.schema.get_field_index(name)
            if idx < 0 or not pa.types.is_string(chunk.schema.field(idx).type):
                continue
            json_like = spec.column_index[name].kind == "json" or (spec.name, name) in _JSON_TEXT
            masked, changed = self._mask_array(chunk.column(idx), json_like)
            if (named_by := _NAMED_BY.get((spec.name, name))) is not None:
                masked = self._mask_named(masked, chunk.column(named_by))
                # A row masked by both rules counts once (XComs: few rows, compared whole).
                changed = pc.sum(_true_only(pc.not_equal(chunk.column(idx), masked))).as_py() or 0
            if changed:
                table_counts = self.counts.setdefault(spec.name, {})
                table_counts[name] = table_counts.get(name, 0) + changed
                chunk = chunk.set_column(idx, name, masked)
        return chunk

    def _mask_array(self, values: pa.ChunkedArray, json_like: bool) -> tuple[pa.ChunkedArray, int]:
        """``values`` masked, and how many of them changed.

        Every value is searched once (:mod:`.row_search`); only the rows found become Python
        strings, rewritten by each rule where it finds something.
        """
        search = self._json_search if json_like else self._text_search
        if search is None or not _has_text(values):  # nothing to search for, or all null or empty
            return values, 0
        rewrite = self._rewrite_json if json_like else self._rewrite_text
        # One array per chunk: each call's fixed costs (RE2 compiles its pattern at every call;
        # filtering and replacing) are paid once, not per record batch (measured: 20 % less).
        masked, changed = _mask_values(values.combine_chunks(), search, rewrite)
        return (pa.chunked_array([masked]), changed) if changed else (values, 0)

    @cached_property
    def _python_literal(self) -> re.Pattern[str] | None:
        """The known secrets' forms for Python, which rewrites only the rows the search found.
        Compiled when a row first needs it (a small table's export may never need it)."""
        forms = self._ordered_forms
        return re.compile(python_pattern(forms)) if forms else None

    def _rewrite_text(self, text: str) -> str:
        literal = self._python_literal
        return literal.sub(MASK, text) if literal is not None else text

    @cached_property
    def _sensitive_in_lowered(self) -> re.Pattern[str] | None:
        keys = sorted(self._sensitive_lower)
        return re.compile("|".join(re.escape(key) for key in keys)) if keys else None

    def _rewrite_json(self, text: str) -> str:
        text = self._rewrite_text(text)
        names = self._sensitive_in_lowered
        if names is not None and names.search(text.lower()):  # as Airflow's masker compares names
            return redact_json_text(text)
        return text

    def _mask_named(self, values: pa.ChunkedArray, names: pa.ChunkedArray) -> pa.ChunkedArray:
        if not self.sensitive:
            return values
        hints = _true_only(pc.match_substring_regex(names, re2_pattern((), self.sensitive)))
        if not pc.any(hints).as_py():
            return values
        rows = hints.combine_chunks()
        keys = pc.filter(names.combine_chunks(), rows).to_pylist()
        masked, _ = _rewrite_rows(
            values.combine_chunks(), rows, lambda index, text: _redact_named(text, keys[index])
        )
        return pa.chunked_array([masked])


def _mask_values(array: pa.Array, search: RowSearch, rewrite: Callable[[str], str]) -> tuple[pa.Array, int]:
    """``array`` with each row ``search`` finds replaced by ``rewrite(text)``; how many changed."""
    found = search.rows(array)
    if found is None:
        return array, 0
    rows = pa.BooleanArray.from_buffers(
        pa.bool_(), len(found), [None, pa.py_buffer(np.packbits(found, bitorder="little"))]
    )
    return _rewrite_rows(array, rows, lambda _index, text: rewrite(text))


def _has_text(values: pa.ChunkedArray) -> bool:
    return any(chunk.buffers()[2] is not None and chunk.buffers()[2].size > 0 for chunk in values.chunks)


def _true_only(flags: pa.ChunkedArray) -> pa.ChunkedArray:
    """Nulls (the rows whose value is null) as false, without a Python scalar (which would make
    pyarrow import pandas)."""
    return pc.and_not_kleene(flags, pc.is_null(flags))


def _rewrite_rows(
    array: pa.Array, rows: pa.BooleanArray, rewrite: Callable[[int, str], str]
) -> tuple[pa.Array, int]:
    """``array`` with each row ``rows`` marks replaced by ``rewrite(i, text)``, ``i`` counting the
    marked rows (nulls stay null); and how many values changed (the array itself if none)."""
    originals = pc.filter(array, rows).to_pylist()
    rewritten = [None if text is None else rewrite(i, text) for i, text in enumerate(originals)]
    changed = sum(new != old for new, old in zip(rewritten, originals, strict=True))
    if not changed:
        return array, 0
    return pc.replace_with_mask(array, rows, string_array(rewritten).cast(array.type)), changed


def _redact_named(text: str, name: str) -> str:
    """JSON text of a value called ``name``, masked as Airflow masks a value of that name."""
    from airflow_provider_mwaaops.secrets_masking import redact

    parsed = _json_or_none(text)
    value = text if parsed is None else parsed
    redacted = redact(value, name)
    if redacted == value:
        return text
    return redacted if parsed is None else json.dumps(redacted)


def redact_json_text(text: str) -> str:
    """JSON text with sensitive keys' values masked by Airflow's masker; the same text if none.

    Text that is not JSON is returned as is (the known-secret rule still applied to it).
    """
    parsed = _json_or_none(text)
    if not isinstance(parsed, (dict, list)):
        return text
    redacted = _redact_tree(parsed)
    return text if redacted == parsed else json.dumps(redacted)


def _redact_tree(value: Any) -> Any:
    from airflow_provider_mwaaops.secrets_masking import redact

    return _redact_nested_json(redact(value))


def _redact_nested_json(value: Any) -> Any:
    """Strings holding JSON (a REST body's ``extra``) get the same redaction, re-encoded."""
    if isinstance(value, dict):
        return {key: _redact_nested_json(sub) for key, sub in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_nested_json(sub) for sub in value]
    if isinstance(value, str) and value.lstrip()[:1] in "{[":
        redacted = redact_json_text(value)
        return _redact_argv_text(value) if redacted is value else redacted
    return value


def _redact_argv_text(text: str) -> str:
    """Airflow's CLI audit record: ``full_command`` is ``str(sys.argv)``, a Python list whose
    items may be JSON (``--conn-extra '{"api_key": ...}'``); those items are redacted."""
    try:
        argv = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    if not isinstance(argv, list) or not all(isinstance(arg, str) for arg in argv):
        return text
    redacted = [redact_json_text(arg) if arg.lstrip()[:1] in "{[" else arg for arg in argv]
    return text if redacted == argv else str(redacted)


def collect_known_secrets(
    rows: Iterable[tuple[str, dict[str, Any]]], sensitive: frozenset[str], min_length: int
) -> frozenset[str]:
    """The secrets of ``(table, row)`` pairs worth masking elsewhere (long enough, not ``airflow``)."""
    found: set[str] = set()
    for table, row in rows:
        for value in secret_values(table, row, sensitive):
            if len(value) >= min_length and value.lower() not in NEVER_MASKED and value != MASK:
                found.add(value)
    return frozenset(found)


def masker_for_source(source: MetadataSource, chunk_rows: int) -> SecretMasker:
    """The masker of an export from ``source``: its connections' and variables' secrets.

    Read in plain text whatever the secret mode (a database source decrypts them with this
    Airflow's Fernet key, which must be the source's), and only kept in memory.
    """
    sensitive = sensitive_fields()
    rows: list[tuple[str, dict[str, Any]]] = []
    for table in SECRET_SOURCES:
        rows.extend((table, row) for row in source.secret_rows(get_table(table), chunk_rows))
    masker = SecretMasker(collect_known_secrets(rows, sensitive, min_secret_length()), sensitive)
    masker.prepare_in_background()
    log.info("Masking %d known secret values and %d sensitive key names", len(masker.secrets), len(sensitive))
    return masker
