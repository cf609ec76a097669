"""Attempts and fencing: each claim gets a token; only the current attempt can write its trial."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rewardsmith.config import RunConfig
from rewardsmith.store import RewardMonitorRecord, RunStore, StoreError, TrialResult, TrialState
from rewardsmith.store.run_store import StaleAttemptError
from tests._postgres import run_sql


def _result(f1: float) -> TrialResult:
    return TrialResult(metrics={"f1": f1}, correctness=(1, 0), adapter_path="a", eval_path="e")


def _superseded(store: RunStore) -> tuple[int, str, str]:
    """A trial claimed (token ``old``), recovered as after a crash, and claimed again (``new``)."""
    trial_id = store.enqueue_trial("baseline")
    old = store.claim_trial(trial_id).attempt_token
    assert store.recover() == [trial_id]
    new = store.claim_trial(trial_id).attempt_token
    return trial_id, old, new


def test_each_claim_is_a_new_attempt_with_its_own_token(store: RunStore) -> None:
    trial_id, old, new = _superseded(store)
    assert old and new and old != new
    trial = store.trial(trial_id)
    assert trial.attempts == 2 and trial.attempt_token == new
    assert store.attempt_is_current(trial_id, new)
    assert not store.attempt_is_current(trial_id, old)
    assert store.attempt_dir(trial_id, 1) != store.attempt_dir(trial_id, 2)
    assert store.attempt_dir(trial_id, 2).parent == store.adapters_dir / f"trial-{trial_id}"


def test_a_stale_attempt_cannot_complete_or_fail_the_trial(store: RunStore) -> None:
    trial_id, old, new = _superseded(store)
    monitor = RewardMonitorRecord("x_reward", {"calls": 1})
    with pytest.raises(StaleAttemptError, match="stale"):
        store.complete_trial(trial_id, _result(0.9), monitors=[monitor], token=old)
    with pytest.raises(StaleAttemptError):
        store.fail_trial(trial_id, "late failure", token=old)
    # nothing of the stale attempt was written; the current one is untouched
    trial = store.trial(trial_id)
    assert trial.state is TrialState.RUNNING and trial.attempt_token == new
    assert store.result(trial_id) is None and store.reward_monitors(trial_id) == []
    store.complete_trial(trial_id, _result(0.5), token=new)
    assert store.result(trial_id) == _result(0.5)
    with pytest.raises(StaleAttemptError):  # even the winner cannot write twice
        store.complete_trial(trial_id, _result(0.7), token=new)


def test_a_stale_attempt_cannot_write_over_a_completed_trial(store: RunStore) -> None:
    trial_id, old, new = _superseded(store)
    store.complete_trial(trial_id, _result(0.5), token=new)
    for write in (
        lambda: store.complete_trial(trial_id, _result(0.9), token=old),
        lambda: store.fail_trial(trial_id, "straggler", token=old),
        lambda: store.record_worker(trial_id, old, pid=1, start=None),
    ):
        with pytest.raises(StaleAttemptError, match="COMPLETE"):
            write()
    assert store.result(trial_id) == _result(0.5)
    assert not store.release_attempt(trial_id, old)


def test_worker_identity_is_recorded_for_the_current_attempt_only(store: RunStore) -> None:
    trial_id, old, new = _superseded(store)
    store.record_worker(trial_id, new, pid=4242, start="boot:123", worker="host:4242")
    trial = store.trial(trial_id)
    assert (trial.worker, trial.worker_pid, trial.worker_start) == ("host:4242", 4242, "boot:123")
    with pytest.raises(StaleAttemptError):
        store.record_worker(trial_id, old, pid=1, start="boot:1")
    assert store.trial(trial_id).worker_pid == 4242
    with pytest.raises(StoreError, match="unknown trial"):
        store.record_worker(999, new, pid=1, start=None)


def test_release_puts_back_only_the_current_attempt(store: RunStore) -> None:
    trial_id, old, new = _superseded(store)
    assert not store.release_attempt(trial_id, old)
    assert store.trial(trial_id).state is TrialState.RUNNING
    assert store.release_attempt(trial_id, new)
    trial = store.trial(trial_id)
    assert trial.state is TrialState.PENDING and trial.attempts == 2
    assert (trial.attempt_token, trial.worker, trial.worker_pid) == (None, None, None)
    assert not store.release_attempt(trial_id, new)  # already released


def test_recovery_and_requeue_clear_the_attempt(store: RunStore) -> None:
    trial_id = store.enqueue_trial("baseline")
    token = store.claim_trial(trial_id).attempt_token
    store.record_worker(trial_id, token, pid=7, start="boot:7")
    store.recover()
    trial = store.trial(trial_id)
    assert (trial.attempt_token, trial.worker_pid, trial.worker_start) == (None, None, None)
    token = store.claim_trial(trial_id).attempt_token
    store.fail_trial(trial_id, "reward timed out", token=token)
    store.requeue_trial(trial_id)
    assert store.trial(trial_id).attempt_token is None
    assert store.claim_trial(trial_id).attempts == 3


def test_unfenced_writes_still_work_for_callers_without_a_token(store: RunStore) -> None:
    trial_id = store.enqueue_trial("baseline")
    store.claim_trial(trial_id)
    store.complete_trial(trial_id, _result(0.5))
    assert store.trial(trial_id).state is TrialState.COMPLETE


def test_an_older_store_gets_the_attempt_columns_on_open(tmp_path: Path, config: RunConfig) -> None:
    if sqlite3.sqlite_version_info < (3, 35):
        pytest.skip("this SQLite cannot drop columns to fake an older store")
    run_dir = tmp_path / "old"
    with RunStore.create(run_dir, config) as store:
        trial_id = store.enqueue_trial("baseline")
        for column in ("attempt_token", "worker_pid", "worker_start"):
            run_sql(store, f"ALTER TABLE {{t}}trials DROP COLUMN {column}")
    with RunStore.open(run_dir) as store:
        assert store.trial(trial_id).attempt_token is None
        token = store.claim_trial(trial_id).attempt_token
        store.complete_trial(trial_id, _result(0.5), token=token)
    with RunStore.open(run_dir) as store:  # a second open finds nothing to add
        assert store.result(trial_id) == _result(0.5)
