"""Reading the next chunk while the current one is written (restore/run.py ``_read_ahead``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import closing

import pytest

from airflow_provider_mwaaops.metadata.restore.run import _read_ahead


def test_items_arrive_in_order_and_all_of_them():
    assert list(_read_ahead(iter(range(100)))) == list(range(100))
    assert list(_read_ahead(iter([]))) == []


def test_an_error_while_producing_reaches_the_consumer_after_the_items_before_it():
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("bad file")

    seen: list[int] = []

    def consume() -> None:
        for item in _read_ahead(items()):
            seen.append(item)

    with pytest.raises(ValueError, match="bad file"):
        consume()
    assert seen == [1, 2]


def test_a_consumer_that_stops_early_stops_the_producer():
    produced = []

    def items() -> Iterator[int]:
        for i in range(1000):
            produced.append(i)
            yield i

    def consume() -> None:
        with closing(_read_ahead(items())) as reader:  # as the restore holds it
            for item in reader:
                if item == 3:
                    raise RuntimeError("write failed")

    before = threading.active_count()
    with pytest.raises(RuntimeError):
        consume()
    assert threading.active_count() == before  # the thread has ended
    assert len(produced) <= 6  # at most the item in hand, one queued, one being put
