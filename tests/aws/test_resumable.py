"""aws/resumable.py: task-instance keys, tries and clears, the retry rules, bounded scans, the memo."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from airflow_provider_mwaaops.aws.resumable import (
    LOOKUP_CLOCK_SKEW,
    Attach,
    Attempt,
    Outcome,
    Refuse,
    RetryPolicy,
    RunLookupError,
    RunMemo,
    RunSeen,
    Start,
    TaskInstanceRef,
    bounded_scan,
    decide,
    parse_tag,
)
from airflow_provider_mwaaops.operators.step_function import execution_name_for

REF = TaskInstanceRef("etl", "load", "manual__2026-11-23T15:16:34.788110+00:00", -1)
STARTED = datetime(2026, 11, 23, 15, 16, 34, tzinfo=UTC)


def context(try_number=1, max_tries=2, retries=2, start_date=STARTED, map_index=-1):
    ti = SimpleNamespace(
        dag_id=REF.dag_id,
        task_id=REF.task_id,
        run_id=REF.run_id,
        map_index=map_index,
        try_number=try_number,
        max_tries=max_tries,
    )
    return {
        "ti": ti,
        "task": SimpleNamespace(retries=retries),
        "dag_run": SimpleNamespace(start_date=start_date),
    }


# -- identity ---------------------------------------------------------------------------------------
def test_key_is_deterministic_sanitised_bounded_and_collision_safe():
    assert REF.key() == REF.key()
    assert len(REF.key(40)) == 40
    assert all(c.isalnum() or c in "_.-" for c in REF.key())
    assert TaskInstanceRef("d", "t", "a:b").key() != TaskInstanceRef("d", "t", "a_b").key()
    assert TaskInstanceRef("d", "t", "r", 0).key() != TaskInstanceRef("d", "t", "r", 1).key()


def test_key_at_80_characters_is_the_step_functions_execution_name():
    """One identity scheme for the package: the Step Functions names are the same keys."""
    for ref in (REF, TaskInstanceRef("d" * 200, "t", "r", 7), TaskInstanceRef("d", "t:x", "r")):
        assert ref.key(80) == execution_name_for(ref.dag_id, ref.task_id, ref.run_id, ref.map_index)


def test_tags_name_the_task_instance_and_the_try():
    attempt = Attempt(REF, try_number=3)
    tag = attempt.tag()
    assert parse_tag(tag) == (REF.key(Attempt.KEY_LENGTH), 3)
    assert attempt.try_of(tag) == 3
    assert attempt.try_of(Attempt(TaskInstanceRef("etl", "load", "other"), 3).tag()) is None
    assert attempt.try_of(None) is None
    assert parse_tag("no-separator") is None
    assert parse_tag("key#x") is None


def test_attempt_from_context_counts_tries_since_the_last_clear():
    first = Attempt.from_context(context(try_number=1, max_tries=2, retries=2))
    assert (first.try_number, first.first_try) == (1, 1)
    assert first.since == STARTED - LOOKUP_CLOCK_SKEW
    retry = Attempt.from_context(context(try_number=2, max_tries=2, retries=2))
    assert retry.first_try == 1
    # Cleared after try 3: Airflow sets max_tries = 3 + retries, so try 4 starts a new cycle.
    cleared = Attempt.from_context(context(try_number=4, max_tries=5, retries=2))
    assert cleared.first_try == 4
    # Inconsistent numbers (retries raised after the clear) never push the first try past this one.
    assert Attempt.from_context(context(try_number=2, max_tries=1, retries=5)).first_try == 1
    assert Attempt.from_context(context(try_number=2, max_tries=9, retries=0)).first_try == 2
    assert Attempt.from_context(context(start_date=None)).since is None


def test_attempt_round_trips_through_json_kwargs():
    attempt = Attempt.from_context(context(try_number=2, map_index=4))
    assert Attempt.from_dict(attempt.as_dict()) == attempt
    assert attempt.older_than_bound(attempt.since - timedelta(seconds=1))  # type: ignore[operator]
    assert not attempt.older_than_bound(STARTED)
    assert not attempt.older_than_bound(None)
    naive = STARTED.replace(tzinfo=None) - timedelta(hours=1)
    assert attempt.older_than_bound(naive)


# -- the rules ----------------------------------------------------------------------------------------
def run(run_id, try_number, outcome, state=""):
    return RunSeen(run_id, try_number, outcome, state)


RETRY = Attempt(REF, try_number=3, first_try=1)


def test_nothing_found_starts_a_first_run():
    decision = decide([], RETRY)
    assert isinstance(decision, Start)
    assert decision.previous is None


def test_a_run_of_this_very_try_is_attached_whatever_its_state():
    """A rebuilt trigger, or a try re-entering its wait, must report its own run's outcome."""
    own_failed = run("jr_3", 3, Outcome.FAILED)
    decision = decide([run("jr_2", 2, Outcome.ACTIVE), own_failed], RETRY)
    assert decision == Attach(own_failed, decision.reason)


def test_an_active_run_of_an_earlier_try_is_attached():
    active = run("jr_1", 1, Outcome.ACTIVE)
    assert isinstance(decide([active], RETRY), Attach)
    assert decide([active], RETRY).run == active  # type: ignore[union-attr]


def test_succeeded_earlier_run_is_not_run_again():
    done = run("jr_2", 2, Outcome.SUCCEEDED)
    decision = decide([run("jr_1", 1, Outcome.FAILED), done], RETRY)
    assert isinstance(decision, Attach)
    assert decision.run == done


def test_failed_earlier_run_gets_a_linked_new_run_or_a_refusal():
    failed = run("jr_2", 2, Outcome.FAILED)
    decision = decide([run("jr_1", 1, Outcome.SUCCEEDED), failed], RETRY)
    assert isinstance(decision, Start)
    assert decision.previous == failed
    refused = decide([failed], RETRY, RetryPolicy(rerun_failed=False))
    assert isinstance(refused, Refuse)
    assert refused.run == failed


def test_after_a_clear_even_a_succeeded_run_runs_again():
    cleared = Attempt(REF, try_number=3, first_try=3)
    succeeded = decide([run("jr_2", 2, Outcome.SUCCEEDED)], cleared)
    assert isinstance(succeeded, Start)
    assert succeeded.previous is None
    failed = decide([run("jr_2", 2, Outcome.FAILED)], cleared, RetryPolicy(rerun_failed=False))
    assert isinstance(failed, Start)  # rerun_failed concerns retries, not a clear
    assert failed.previous is not None
    assert failed.previous.run_id == "jr_2"  # linked to the failed run
    still_running = decide([run("jr_2", 2, Outcome.ACTIVE)], cleared)
    assert isinstance(still_running, Attach)  # never two runs of one task instance at once


def test_restart_stops_what_is_active_and_starts_anew():
    active = run("jr_2", 2, Outcome.ACTIVE)
    decision = decide([run("jr_1", 1, Outcome.SUCCEEDED), active], RETRY, RetryPolicy(on_retry="restart"))
    assert isinstance(decision, Start)
    assert decision.stop_first == (active,)
    assert decision.previous == active
    own = run("jr_3", 3, Outcome.ACTIVE)
    assert isinstance(decide([active, own], RETRY, RetryPolicy(on_retry="restart")), Attach)


def test_policy_rejects_unknown_values():
    with pytest.raises(ValueError, match="on_retry"):
        RetryPolicy(on_retry="again")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rerun_failed"):
        RetryPolicy(rerun_failed="yes")  # type: ignore[arg-type]
    assert RetryPolicy.from_dict(RetryPolicy("restart", False).as_dict()) == RetryPolicy("restart", False)


# -- bounded scans ------------------------------------------------------------------------------------
async def pages_of(*pages):
    for page in pages:
        yield page


def scan(*pages, max_items=10, since=STARTED):
    attempt = Attempt(REF, 1, since=since)
    return asyncio.run(
        bounded_scan(
            pages_of(*pages),
            attempt=attempt,
            started_at=lambda item: item[1],
            max_items=max_items,
            what="runs",
        )
    )


def test_scan_stops_at_the_first_run_older_than_the_bound():
    new, old = STARTED + timedelta(minutes=1), STARTED - timedelta(minutes=1)
    assert scan([("a", new), ("b", new)], [("c", old), ("d", new)]) == [("a", new), ("b", new)]


def test_scan_without_a_bound_reads_everything_and_fails_past_the_limit():
    items = [(str(i), STARTED) for i in range(5)]
    assert len(scan(items, since=None)) == 5
    with pytest.raises(RunLookupError, match="more than 3 runs"):
        scan(items, max_items=3)


def test_scan_read_errors_propagate():
    async def failing():
        yield [("a", STARTED)]
        raise ConnectionError("network down")

    with pytest.raises(ConnectionError):
        asyncio.run(
            bounded_scan(
                failing(), attempt=Attempt(REF, 1), started_at=lambda i: i[1], max_items=9, what="runs"
            )
        )


# -- memo ---------------------------------------------------------------------------------------------
class FakeStore:
    def __init__(self, fail=False):
        self.values: dict = {}
        self.fail = fail

    def get(self, key, default=None):
        if self.fail:
            raise RuntimeError("store down")
        return self.values.get(key, default)

    def set(self, key, value):
        if self.fail:
            raise RuntimeError("store down")
        self.values[key] = value


def memo(monkeypatch, store):
    from airflow_provider_mwaaops import compat

    monkeypatch.setattr(compat, "task_state_store", lambda context: store)
    return RunMemo({}, "glue.job_run")


def test_memo_remembers_and_recalls(monkeypatch):
    store = FakeStore()
    first = memo(monkeypatch, store)
    assert first.available
    assert first.recall() is None
    first.remember("jr_1", 2)
    assert memo(monkeypatch, store).recall() == {"run_id": "jr_1", "try": 2}
    store.values["glue.job_run"] = {"run_id": 5}
    assert memo(monkeypatch, store).recall() is None  # malformed: ignored


def test_memo_errors_cost_only_the_fast_path(monkeypatch, caplog):
    broken = memo(monkeypatch, FakeStore(fail=True))
    assert broken.recall() is None
    broken.remember("jr_1", 1)  # does not raise
    absent = memo(monkeypatch, None)
    assert not absent.available
    assert absent.recall() is None
    absent.remember("jr_1", 1)
