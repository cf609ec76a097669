"""Extra-split evaluations: COMPLETE trials only, written once, readable after a restart, and
added to stores created before the table existed."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from rewardsmith.config import RunConfig
from rewardsmith.store import Evaluation, RunStore, StoreError, TrialResult
from rewardsmith.store.schema import EvaluationRow
from tests._postgres import run_sql

TEST_METRICS = {"f1": 0.8, "accuracy": 0.6, "n": 5, "ci": {"f1": (0.7, 0.9)}, "split": "test"}


def _complete(store: RunStore, kind: str = "baseline", seed: int = 0) -> int:
    trial_id = store.enqueue_trial(kind, seed=seed)
    store.claim_trial(trial_id)
    store.complete_trial(trial_id, TrialResult(metrics={"f1": 0.5}, correctness=(1, 0)))
    return trial_id


def test_round_trip_and_listing(store: RunStore) -> None:
    first, second = _complete(store, seed=1), _complete(store, seed=2)
    added = store.add_evaluation(first, "test", TEST_METRICS, [1, 0, 1, 1, 0], "evals/t1.jsonl")
    assert isinstance(added, Evaluation)
    assert (added.trial_id, added.split, added.correctness) == (first, "test", (1, 0, 1, 1, 0))
    assert added.metrics["ci"]["f1"] == [0.7, 0.9]  # stored as JSON: tuples become lists
    assert added.created_at > 0
    assert store.evaluation(first, "test") == added
    assert store.evaluation(first, "val") is None
    assert store.evaluation(second, "test") is None
    store.add_evaluation(second, "test", {"f1": 0.1}, [0, 0, 0, 0, 0])
    store.add_evaluation(first, "train", {"f1": 0.9}, [True, False])
    assert [(e.trial_id, e.split) for e in store.evaluations()] == [
        (first, "test"),
        (first, "train"),
        (second, "test"),
    ]
    assert [e.trial_id for e in store.evaluations(split="test")] == [first, second]
    assert store.evaluations(split="val") == []
    # the selection-split result is untouched by test evaluations
    assert store.result(first).metrics == {"f1": 0.5}


def test_evaluations_survive_a_restart(tmp_path: Path, config: RunConfig) -> None:
    with RunStore.create(tmp_path / "run", config) as store:
        trial_id = _complete(store)
        added = store.add_evaluation(trial_id, "test", TEST_METRICS, (1, 1, 0))
    with RunStore.open(tmp_path / "run") as reopened:
        assert reopened.evaluation(trial_id, "test") == added
        assert reopened.evaluation(trial_id, "test").records_path is None


def test_adding_again_returns_the_stored_evaluation_unchanged(store: RunStore) -> None:
    trial_id = _complete(store)
    original = store.add_evaluation(trial_id, "test", {"f1": 0.8}, [1, 0, 1], "a.jsonl")
    again = store.add_evaluation(trial_id, "test", {"f1": 0.1}, [0, 0, 0, 0], "b.jsonl")
    assert again == original  # results are immutable: the second call changes nothing
    assert store.evaluation(trial_id, "test").metrics == {"f1": 0.8}
    assert len(store.evaluations()) == 1
    with Session(store._engine) as session:  # not even through the ORM
        row = session.get(EvaluationRow, (trial_id, "test"))
        row.metrics = {"f1": 1.0}
        with pytest.raises(ValueError, match="immutable"):
            session.commit()
    assert store.evaluation(trial_id, "test").metrics == {"f1": 0.8}


@pytest.mark.parametrize("state", ["PENDING", "RUNNING", "FAILED"])
def test_only_complete_trials_are_evaluated(store: RunStore, state: str) -> None:
    trial_id = store.enqueue_trial("ensemble")
    if state != "PENDING":
        store.claim_trial(trial_id)
    if state == "FAILED":
        store.fail_trial(trial_id, "loss became NaN")
    with pytest.raises(StoreError, match=f"trial {trial_id} is {state}; only a COMPLETE"):
        store.add_evaluation(trial_id, "test", {"f1": 0.5}, [1])
    assert store.evaluations() == []


def test_bad_input_is_refused_before_anything_is_written(store: RunStore) -> None:
    trial_id = _complete(store)
    with pytest.raises(StoreError, match="unknown trial 999"):
        store.add_evaluation(999, "test", {"f1": 0.5}, [1])
    with pytest.raises(ValueError, match="0 or 1"):
        store.add_evaluation(trial_id, "test", {"f1": 0.5}, [1, 2])
    with pytest.raises(StoreError, match="split must be"):
        store.add_evaluation(trial_id, "", {"f1": 0.5}, [1])
    with pytest.raises(TypeError, match="cannot store object"):
        store.add_evaluation(trial_id, "test", {"f1": object()}, [1])
    assert store.evaluations() == []
    nan = store.add_evaluation(trial_id, "test", {"f1": float("nan")}, [])
    assert nan.metrics == {"f1": None} and nan.correctness == ()


def test_a_store_made_before_evaluations_gets_the_table(tmp_path: Path, config: RunConfig) -> None:
    with RunStore.create(tmp_path / "run", config) as store:
        trial_id = _complete(store)
        run_sql(store, "DROP TABLE {t}evaluations")  # what a schema-1 store looked like
        run_sql(store, "DROP TABLE {t}reward_monitors")
    with RunStore.open(tmp_path / "run") as old:
        assert old.evaluations() == [] and old.reward_monitors(trial_id) == []
        old.add_evaluation(trial_id, "test", {"f1": 0.7}, [1, 0])
        assert old.result(trial_id).metrics == {"f1": 0.5}  # nothing else changed
    with RunStore.open(tmp_path / "run") as again:
        assert again.evaluation(trial_id, "test").metrics == {"f1": 0.7}
        assert again.manifest().run_id == "run"  # the schema version was checked on open
