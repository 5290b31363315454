"""Both searches answer as Python's own ``in`` and ``str.lower`` would, whatever the layout."""

from __future__ import annotations

import random
import re
import sys
from collections.abc import Sequence

import pyarrow as pa
import pytest

from airflow_provider_mwaaops.metadata.row_search import (
    HyperscanRowSearch,
    Re2RowSearch,
    python_pattern,
    re2_pattern,
    row_search,
)

LITERALS = ["s3cr3t", 'ab\\"c', "é-key", "xy"]
CASELESS = ["token", "api_key"]
#: Letters the random values are made of: pieces of every literal and key in several cases, the
#: two non-ASCII letters whose lower case is ASCII (KELVIN SIGN, I WITH DOT ABOVE), and others.
PIECES = ["s3", "cr", "3t", "ab", '\\"', "c", "é", "-", "key", "x", "y", "to", "TO", "ken", "KEN",
          "api", "API", "_", "k", "\u212a", "en", "\u0130", "\u017f", " ", "é"]  # fmt: skip


def _expected(values: Sequence[str | None]) -> list[bool]:
    return [
        value is not None
        and (any(lit in value for lit in LITERALS) or any(key in value.lower() for key in CASELESS))
        for value in values
    ]


def _random_values(rng: random.Random, count: int) -> list[str | None]:
    values: list[str | None] = []
    for _ in range(count):
        if rng.random() < 0.05:
            values.append(None)
        else:
            values.append("".join(rng.choice(PIECES) for _ in range(rng.randint(0, 6))))
    return values


def _searches() -> dict[str, Re2RowSearch | HyperscanRowSearch]:
    re2 = Re2RowSearch(re2_pattern(LITERALS, CASELESS))
    found: dict[str, Re2RowSearch | HyperscanRowSearch] = {"re2": re2}
    if "hyperscan" in sys.modules or _has_hyperscan():
        found["hyperscan"] = HyperscanRowSearch(sorted(LITERALS), sorted(CASELESS), fallback=re2)
    return found


def _has_hyperscan() -> bool:
    try:
        import hyperscan  # noqa: F401
    except ImportError:
        return False
    return True


def _answer(search: Re2RowSearch | HyperscanRowSearch, values: pa.Array) -> list[bool]:
    found = search.rows(values)
    return [False] * len(values) if found is None else found.tolist()


@pytest.mark.parametrize("seed", range(20))
def test_rows_are_exactly_those_python_finds(seed: int) -> None:
    """Matches across two values never count; slices, large strings and nulls answer the same.

    (RE2 folds LATIN SMALL LETTER LONG S into ``s`` where Python's ``lower`` does not; no key here
    has an ``s`` for that to differ on, so both must agree with Python.)
    """
    rng = random.Random(seed)
    values = _random_values(rng, rng.randint(1, 300))
    whole = pa.array(values, pa.string())
    start = rng.randint(0, len(values) - 1)
    layouts = {
        "whole": (whole, values),
        "slice": (whole.slice(start), values[start:]),
        "large_string slice": (whole.cast(pa.large_string()).slice(start), values[start:]),
    }
    for kind, search in _searches().items():
        for layout, (array, plain) in layouts.items():
            assert _answer(search, array) == _expected(plain), (kind, layout)


def test_hyperscan_is_used_when_installed() -> None:
    pytest.importorskip("hyperscan", reason="the fast-masking extra is not installed")
    assert isinstance(row_search(LITERALS, CASELESS), HyperscanRowSearch)


def test_without_hyperscan_re2_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hyperscan", None)
    search = row_search(LITERALS, CASELESS)
    assert isinstance(search, Re2RowSearch)
    assert _answer(search, pa.array(["a TOKEN", "none", None])) == [True, False, False]


def test_nothing_to_search_for_and_nothing_to_search() -> None:
    assert row_search([], []) is None
    for search in _searches().values():
        assert search.rows(pa.array([], pa.string())) is None
        assert search.rows(pa.array([None, ""], pa.string())) is None
        assert _answer(search, pa.array(["xy"])) == [True]


def test_a_letter_that_lowers_to_ascii_is_found_as_python_finds_it() -> None:
    """``"to\u212aen".lower() == "token"`` (KELVIN SIGN): Airflow's masker sees the key there."""
    values = ["x to\u212aen y", "plain", "TOKEN", "to\u212a en"]
    for kind, search in _searches().items():
        assert _answer(search, pa.array(values)) == _expected(values) == [True, False, True, False], kind


@pytest.mark.parametrize("seed", range(5))
def test_the_python_pattern_replaces_as_the_longest_first_alternation(seed: int) -> None:
    """Overlapping literals, one the prefix of another, regex metacharacters."""
    rng = random.Random(seed)
    words = sorted({"".join(rng.choice("ab.c\\\\*x") for _ in range(rng.randint(1, 5))) for _ in range(12)})
    alternation = re.compile("|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w))))
    trie = re.compile(python_pattern(words))
    for _ in range(3000):
        text = "".join(rng.choice("ab.c\\\\*xy") for _ in range(rng.randint(0, 20)))
        assert trie.sub("*", text) == alternation.sub("*", text), (words, text)


def test_the_python_pattern_takes_a_secret_longer_than_the_recursion_limit() -> None:
    key = "-----BEGIN PRIVATE KEY-----" + "A" * 5000
    assert re.compile(python_pattern([key, key[:40], "other"])).sub("*", f"x{key}y") == "x*y"


def test_a_hyperscan_that_cannot_compile_hands_over_to_re2(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    hyperscan = pytest.importorskip("hyperscan", reason="the fast-masking extra is not installed")

    def refuse(*args: object, **kwargs: object) -> None:
        raise hyperscan.error("this CPU lacks SSSE3")

    monkeypatch.setattr(hyperscan, "Database", refuse)
    search = row_search(LITERALS, CASELESS)
    assert isinstance(search, Re2RowSearch)
    assert "masking searches with RE2" in caplog.text
