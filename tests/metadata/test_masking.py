"""The masking rules on Arrow chunks, without a database: what is masked, what is left alone."""

from __future__ import annotations

import json
import sys
import threading

import pyarrow as pa
import pytest

from airflow_provider_mwaaops.metadata.masking import (
    SecretMasker,
    collect_known_secrets,
    redact_json_text,
    sensitive_fields,
)
from airflow_provider_mwaaops.metadata.tables import get_table


@pytest.fixture(autouse=True, params=["hyperscan", "re2"])
def row_search_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every rule with both searches: Hyperscan (the fast-masking extra) and RE2 without it."""
    if request.param == "re2":
        monkeypatch.setitem(sys.modules, "hyperscan", None)  # import hyperscan -> ImportError
    else:
        pytest.importorskip("hyperscan", reason="the fast-masking extra is not installed")
    return str(request.param)


def _chunk(table: str, **columns: list) -> pa.Table:
    spec = get_table(table)
    n = len(next(iter(columns.values())))
    arrays = [pa.array(columns.get(c.name, [None] * n), c.arrow_type) for c in spec.columns]
    return pa.Table.from_arrays(arrays, schema=spec.arrow_schema)


def _masker(*secrets: str) -> SecretMasker:
    return SecretMasker(frozenset(secrets), sensitive_fields())


def test_known_secrets_are_masked_in_every_form_airflow_writes_them() -> None:
    secret = 'pa ss"wo\\rd/é'
    masker = _masker(secret)
    extra = [
        json.dumps({"full_command": str(["airflow", "variables", "set", "k", secret])}),
        json.dumps({"value": secret}),
        "postgres://u:" + __import__("urllib.parse").parse.quote(secret, safe="") + "@h/db",
        "nothing here",
        None,
    ]
    out = masker.mask(get_table("log"), _chunk("log", id=list(range(5)), extra=extra))
    values = out.column("extra").to_pylist()
    assert all(secret not in (v or "") for v in values)
    assert all("***" in v for v in values[:3])
    assert values[3:] == ["nothing here", None]
    assert masker.counts == {"log": {"extra": 3}}


def test_sensitive_keys_are_masked_as_airflow_masks_them_nested_json_included() -> None:
    masker = _masker()
    conf = [
        json.dumps({"day": 1, "password": "p-123456", "nested": {"api_key": "k-123456"}}),
        json.dumps({"body": json.dumps({"token": "t-123456"})}),
        json.dumps({"day": 2}),
    ]
    out = masker.mask(get_table("dag_run"), _chunk("dag_run", id=[1, 2, 3], conf=conf))
    first, second, third = out.column("conf").to_pylist()
    assert json.loads(first) == {"day": 1, "password": "***", "nested": {"api_key": "***"}}
    assert json.loads(json.loads(second)["body"]) == {"token": "***"}
    assert third == conf[2]  # untouched rows keep their exact text
    assert masker.counts == {"dag_run": {"conf": 2}}


def test_cli_audit_records_have_json_arguments_redacted() -> None:
    argv = ["airflow", "connections", "add", "c", "--conn-extra", json.dumps({"api_key": "k-123456"})]
    redacted = json.loads(redact_json_text(json.dumps({"full_command": str(argv)})))
    assert "k-123456" not in redacted["full_command"]
    assert "'airflow', 'connections', 'add'" in redacted["full_command"]


def test_an_xcom_named_by_a_sensitive_key_is_masked_whole() -> None:
    masker = _masker()
    chunk = _chunk(
        "xcom", key=["api_key", "return_value"], value=[json.dumps("k-123456"), json.dumps("kept-12345")]
    )
    out = masker.mask(get_table("xcom"), chunk)
    assert out.column("value").to_pylist() == [json.dumps("***"), json.dumps("kept-12345")]


def test_unscanned_columns_and_clean_chunks_are_left_as_they_are() -> None:
    masker = _masker("s3cr3t-value")
    chunk = _chunk("dag_run", id=[1], dag_id=["s3cr3t-value"], conf=["{}"])
    assert masker.mask(get_table("dag_run"), chunk) is chunk  # dag_id is an identifier: not scanned
    assert masker.counts == {}


def test_short_values_and_airflow_are_not_treated_as_secrets() -> None:
    rows = [
        ("variable", {"val": "true"}),
        ("variable", {"val": "airflow"}),
        ("variable", {"val": "long-enough"}),
        (
            "connection",
            {"password": None, "extra": json.dumps({"api_key": "key-12345", "region": "eu-west-1"})},
        ),
    ]
    found = collect_known_secrets(rows, sensitive_fields(), 5)
    assert found == {"long-enough", "key-12345", rows[3][1]["extra"]}


def test_sensitive_names_cover_the_installed_airflows() -> None:
    from airflow_provider_mwaaops.compat import secrets_masker_sensitive_fields

    assert secrets_masker_sensitive_fields() <= sensitive_fields()


def _naive(values: list[str | None], secrets: list[str]) -> list[str | None]:
    """Every secret replaced row by row in plain Python: what the group pre-scan must not change."""
    ordered = sorted(secrets, key=lambda s: (-len(s), s))
    out: list[str | None] = []
    for value in values:
        if value is not None:
            for secret in ordered:
                value = value.replace(secret, "***")
        out.append(value)
    return out


def test_every_row_is_found_whatever_the_layout() -> None:
    """Secrets at group edges, split across two rows, in sliced and multi-chunk arrays, nulls."""
    import random

    rng = random.Random(7)
    secrets = ["s3cr3t-alpha", "s3cr3t-beta-longer"]
    values: list[str | None] = []
    for index in range(203):  # not a multiple of the group size
        roll = rng.random()
        if roll < 0.1:
            values.append(None)
        elif roll < 0.2:
            values.append(f"x{rng.choice(secrets)}y")
        elif roll < 0.3:
            values.append("s3cr3t-")  # half a secret: with the next row's text a match across rows
        else:
            values.append(f"row {index} " + "alpha" * rng.randint(0, 3))
    masker = _masker(*secrets)
    whole = pa.array(values, pa.string())
    layouts = {
        "one chunk": pa.chunked_array([whole]),
        "sliced chunks": pa.chunked_array([whole.slice(0, 37), whole.slice(37, 100), whole.slice(137)]),
        "large_string": pa.chunked_array([whole.cast(pa.large_string()).slice(5)]),
    }
    for name, column in layouts.items():
        expected = _naive(column.to_pylist(), secrets)
        masked, _ = masker._mask_array(column, json_like=False)
        assert masked.to_pylist() == expected, name
    assert (
        masker._mask_array(pa.chunked_array([pa.array(["clean"] * 40)]), json_like=False)[0].to_pylist()
        == ["clean"] * 40
    )


def test_a_masker_prepared_in_the_background_masks_as_one_that_was_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extra = [json.dumps({"value": "s3cret-value", "password": "other"}), "clean", None]
    chunk = _chunk("log", id=[1, 2, 3], extra=extra)
    expected = _masker("s3cret-value").mask(get_table("log"), chunk)

    gate = threading.Event()
    prepare = SecretMasker._prepare
    monkeypatch.setattr(SecretMasker, "_prepare", lambda self: (gate.wait(10), prepare(self)))
    prepared = _masker("s3cret-value")
    prepared.prepare_in_background()
    masked: list[pa.Table] = []
    masking = threading.Thread(target=lambda: masked.append(prepared.mask(get_table("log"), chunk)))
    masking.start()
    masking.join(0.5)
    assert masking.is_alive()  # the first chunk waits for the preparation...
    gate.set()
    masking.join(10)
    assert masked == [expected]  # ...and is masked as without it

    failing = _masker("s3cret-value")
    monkeypatch.setattr(SecretMasker, "_prepare", prepare)
    monkeypatch.setattr("airflow_provider_mwaaops.metadata.masking.row_search", _raise)
    failing.prepare_in_background()  # the failure is not lost: the chunk that needs it raises
    with pytest.raises(RuntimeError, match="cannot compile"):
        failing.mask(get_table("log"), _chunk("log", id=[1], extra=extra[:1]))


def _raise(*_args: object) -> None:
    raise RuntimeError("cannot compile")
