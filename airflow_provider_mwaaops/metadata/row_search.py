"""Which rows of a string column contain any of a set of literals: the masker's first question.

Masking must look at every byte of a scanned column (a secret can sit anywhere in an audit row),
so this one pass sets what masking costs an export. Two ways to ask it:

- :class:`HyperscanRowSearch`, when the optional ``hyperscan`` package is installed (the
  ``fast-masking`` extra): Hyperscan's literal matcher (SIMD, several hundred literals in one
  pass) over the column's contiguous UTF-8 buffer, each match mapped back to its row by the
  offsets. It answers exactly, so the masker needs no second pass. About ten times faster than
  RE2 on the export benchmark's audit log (benchmarks/README.md).
- :class:`Re2RowSearch` otherwise: one RE2 pass (Arrow compute) over groups of rows, then a
  second, per-row RE2 pass over the groups that matched.

Both compare the case-insensitive literals (sensitive key names) as Python's ``str.lower``
would find them in a row: ASCII case, plus the two non-ASCII letters whose lower case is ASCII
(KELVIN SIGN, LATIN CAPITAL LETTER I WITH DOT ABOVE), for which Hyperscan hands the column to RE2.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

log = logging.getLogger(__name__)

#: UTF-8 of the only non-ASCII characters whose ``str.lower()`` holds ASCII letters.
_LOWERS_TO_ASCII = ("\u212a".encode(), "\u0130".encode())

#: How many rows the RE2 pre-scan searches as one string. Larger groups mean fewer (shorter)
#: strings for RE2 but more rows to check exactly when a group matches (a secret in 1 % of the
#: rows sends 8 % of them to the exact pass); 4, 8 and 16 cost within 5 % of each other on the
#: export benchmark's log.
SCAN_GROUP_ROWS = 8


class RowSearch(Protocol):
    def rows(self, values: pa.Array) -> np.ndarray | None:
        """One boolean per row of ``values`` (a string array): whether it holds a literal; None
        when no row does."""


def row_search(literals: Iterable[str], caseless: Iterable[str]) -> RowSearch | None:
    """The fastest search available for ``literals`` (exact bytes) and ``caseless`` (any case);
    None if there is nothing to look for."""
    literals, caseless = sorted(set(literals)), sorted(set(caseless))
    if not literals and not caseless:
        return None
    re2 = Re2RowSearch(re2_pattern(literals, caseless))
    try:
        import hyperscan  # noqa: F401  (the fast-masking extra)
    except ImportError:
        return re2
    try:
        return HyperscanRowSearch(literals, caseless, fallback=re2)
    except Exception as err:  # a CPU Hyperscan does not support, say: the same answer, slower
        log.warning(
            "Hyperscan cannot search here (%s: %s); masking searches with RE2", type(err).__name__, err
        )
        return re2


def re2_pattern(literals: Iterable[str], caseless: Iterable[str]) -> str:
    """One RE2 alternation: ``literals`` longest first (a literal containing another wins), then
    ``caseless`` case-insensitively."""
    ordered = sorted(literals, key=lambda s: (-len(s), s))
    parts = ["|".join(re2_literal(s) for s in ordered)] if ordered else []
    if caseless := sorted(caseless):
        parts.append("(?i:" + "|".join(re2_literal(s) for s in caseless) + ")")
    return "|".join(parts)


def re2_literal(text: str) -> str:
    """``text`` as an RE2 literal (Python's ``re.escape`` escapes characters RE2 refuses)."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", text)


def python_pattern(literals: Iterable[str]) -> str:
    """A Python regex matching what the alternation of ``literals`` longest first matches, as a
    trie: where the alternation tries every literal at every position of a row (12 us a row for
    the benchmark's 200 secret forms), the trie follows one branch per character (1.7 us).

    The longest literal starting at the leftmost position wins, as in the alternation: branches
    start with distinct characters, and an optional tail is greedy.
    """
    trie: dict[str, Any] = {}
    for literal in literals:
        node = trie
        for char in literal:
            node = node.setdefault(char, {})
        node[""] = {}  # a literal ends here (no character is empty)
    return _trie_regex(trie)


def _trie_regex(node: dict[str, Any]) -> str:
    branches = []
    for char, child in sorted(node.items()):
        if not char:
            continue
        run = char
        while len(child) == 1 and "" not in child:  # a chain without choices is one literal run
            ((next_char, child),) = child.items()
            run += next_char
        branches.append(re.escape(run) + _trie_regex(child))
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if "" in node else body


def _offsets(values: pa.Array) -> np.ndarray:
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    return np.frombuffer(values.buffers()[1], dtype=width)[values.offset : values.offset + len(values) + 1]


def _any_or_none(found: np.ndarray) -> np.ndarray | None:
    return found if found.any() else None


class Re2RowSearch:
    """Groups of :data:`SCAN_GROUP_ROWS` consecutive values searched as one string each, then the
    values of the groups that matched one by one.

    The values of a string array are one contiguous buffer, so a group is just a coarser offsets
    buffer over the same bytes (no copy). A match across two values of a group only makes the
    group's rows candidates: the exact pass decides. (Arrow compiles the pattern at every call
    and RE2's cost per call dominates over short values, so a chunk gets two calls, never one
    per value.)
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def rows(self, values: pa.Array) -> np.ndarray | None:
        candidates = self._candidates(values)
        if candidates is None:
            return None
        (where,) = np.nonzero(candidates)
        exact = pc.match_substring_regex(values.take(pa.array(where)), self.pattern)
        found = np.zeros(len(values), dtype=bool)
        found[where[_bools(pc.fill_null(exact, False))]] = True
        return _any_or_none(found)

    def _candidates(self, values: pa.Array) -> np.ndarray | None:
        data = values.buffers()[2]
        if len(values) == 0 or data is None:
            return None
        offsets = _offsets(values)
        bounds = offsets[::SCAN_GROUP_ROWS]
        if len(values) % SCAN_GROUP_ROWS:
            bounds = np.append(bounds, offsets[-1])
        group_type = pa.large_string() if offsets.dtype == np.int64 else pa.string()
        groups = pa.Array.from_buffers(
            group_type, len(bounds) - 1, [None, pa.py_buffer(np.ascontiguousarray(bounds)), data]
        )
        matched = _bools(pc.match_substring_regex(groups, self.pattern))
        return _any_or_none(np.repeat(matched, SCAN_GROUP_ROWS)[: len(values)])


def _bools(flags: pa.BooleanArray) -> np.ndarray:
    """A boolean array without nulls as NumPy, from its bitmap (``to_numpy`` would import pandas)."""
    bits = np.unpackbits(np.frombuffer(flags.buffers()[1], dtype=np.uint8), bitorder="little")
    return bits[flags.offset : flags.offset + len(flags)].astype(bool)


class HyperscanRowSearch:
    """Every occurrence of every literal in the column's buffer, mapped to rows by the offsets.

    A match that starts in one value and ends in the next is no match (checked by its length),
    so the answer is exact. One compiled database per search; a lock serialises scans, which
    share its scratch space (a scan of a chunk takes about a millisecond).
    """

    def __init__(self, literals: list[str], caseless: list[str], fallback: RowSearch) -> None:
        import hyperscan

        patterns = [s.encode() for s in literals] + [s.encode() for s in caseless]
        flags = [0] * len(literals) + [hyperscan.HS_FLAG_CASELESS] * len(caseless)
        # Text holding a letter that lowers to ASCII goes to RE2 (see the module docstring).
        self._first_special = len(patterns)
        if caseless:
            patterns += _LOWERS_TO_ASCII
            flags += [0] * len(_LOWERS_TO_ASCII)
        self._lengths = np.array([len(p) for p in patterns], dtype=np.int64)
        self._database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._database.compile(
            expressions=patterns, ids=list(range(len(patterns))), elements=len(patterns), flags=flags,
            literal=True,
        )  # fmt: skip
        self._fallback = fallback
        self._lock = threading.Lock()

    def rows(self, values: pa.Array) -> np.ndarray | None:
        import hyperscan

        data = values.buffers()[2]
        if len(values) == 0 or data is None:
            return None
        offsets = _offsets(values)
        ids: list[int] = []
        ends: list[int] = []

        def on_match(pattern_id: int, _start: int, end: int, _flags: int, _context: Any) -> bool:
            ids.append(pattern_id)
            ends.append(end)
            return pattern_id >= self._first_special  # True stops the scan

        with self._lock, contextlib.suppress(hyperscan.ScanTerminated):
            text: Any = memoryview(data)[int(offsets[0]) : int(offsets[-1])]  # no copy; typed as str
            self._database.scan(text, match_event_handler=on_match)
        if not ends:
            return None
        if ids[-1] >= self._first_special:
            return self._fallback.rows(values)  # RE2 folds case beyond ASCII; rare in practice
        end = np.asarray(ends, dtype=np.int64) + offsets[0]
        start = end - self._lengths[np.asarray(ids)]
        row = np.searchsorted(offsets, start, side="right") - 1
        within = end <= offsets[row + 1]
        found = np.zeros(len(values), dtype=bool)
        found[row[within]] = True
        return _any_or_none(found)
