"""Candidates, trials and results: round trips, idempotent enqueue, atomic claims, immutability."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from rewardsmith.config import RunConfig, parse_config
from rewardsmith.rewards.candidate import Candidate
from rewardsmith.store import RewardMonitorRecord, RunStore, StoreError, TrialResult, TrialState
from rewardsmith.store.schema import ResultRow

MakeCandidate = Callable[..., Candidate]


def _result(f1: float, accuracy: float = 0.5) -> TrialResult:
    return TrialResult(metrics={"f1": f1, "accuracy": accuracy}, correctness=(1, 0, 1))


def test_candidates_round_trip(store: RunStore, candidate: MakeCandidate) -> None:
    a, b = candidate("alpha_reward"), candidate("beta_reward", round=2, value=0.5)
    store.add_candidate(a, verdict={"accepted": True, "stage": "accepted"})
    store.add_candidate(b)
    assert store.get_candidate("alpha_reward") == a
    assert store.get_candidate("alpha_reward").code_hash == a.code_hash
    assert store.candidates() == [a, b]
    assert store.candidates(round=2) == [b]
    assert store.verdicts() == {"alpha_reward": {"accepted": True, "stage": "accepted"},
                                "beta_reward": None}  # fmt: skip
    store.set_verdict("beta_reward", {"accepted": False, "reason": "timed out"})
    assert store.verdicts(round=2)["beta_reward"]["reason"] == "timed out"


def test_adding_a_candidate_again_is_a_no_op(store: RunStore, candidate: MakeCandidate) -> None:
    store.add_candidate(candidate("alpha_reward"))
    store.add_candidate(candidate("alpha_reward"))
    assert len(store.candidates()) == 1
    with pytest.raises(StoreError, match="taken by other code"):
        store.add_candidate(candidate("alpha_reward", value=2.0))
    with pytest.raises(StoreError, match="unknown candidate 'nope'"):
        store.get_candidate("nope")


def test_enqueue_is_idempotent(store: RunStore, candidate: MakeCandidate) -> None:
    for name in ("a_reward", "b_reward"):
        store.add_candidate(candidate(name))
    first = store.enqueue_trial("ensemble", ["a_reward", "b_reward"], {"a_reward": 2.0}, seed=1)
    again = store.enqueue_trial("ensemble", ["b_reward", "a_reward"], {"a_reward": 2.0}, seed=1)
    assert again == first  # the set, not the order, identifies the trial
    others = {
        store.enqueue_trial("ensemble", ["a_reward", "b_reward"], {"a_reward": 2.0}, seed=2),
        store.enqueue_trial("ensemble", ["a_reward", "b_reward"], {"a_reward": 1.0}, seed=1),
        store.enqueue_trial("screen", ["a_reward", "b_reward"], {"a_reward": 2.0}, seed=1),
        store.enqueue_trial("ensemble", ["a_reward"], {"a_reward": 2.0}, seed=1),
    }
    assert first not in others and len(others) == 4
    assert len(store.trials()) == 5


def test_enqueue_keys_on_the_config(store: RunStore, config: RunConfig) -> None:
    baseline = store.enqueue_trial("baseline")
    assert store.trial(baseline).seed == config.seed
    assert store.trial(baseline).config_hash == config.config_hash()
    assert store.enqueue_trial("baseline", config=config.model_dump()) == baseline
    longer = config.model_copy(update={"grpo": config.grpo.model_copy(update={"max_steps": 9})})
    other = store.enqueue_trial("baseline", config=longer)
    assert other != baseline
    assert store.trial(other).config["grpo"]["max_steps"] == 9


def test_enqueue_rejects_bad_requests(store: RunStore, candidate: MakeCandidate) -> None:
    with pytest.raises(StoreError, match="unknown candidate"):
        store.enqueue_trial("screen", ["ghost_reward"])
    store.add_candidate(candidate("a_reward"))
    with pytest.raises(StoreError, match="repeat"):
        store.enqueue_trial("screen", ["a_reward", "a_reward"])
    with pytest.raises(StoreError, match="finite"):
        store.enqueue_trial("screen", ["a_reward"], {"a_reward": float("nan")})
    with pytest.raises(StoreError, match="grpo.max_steps"):
        store.enqueue_trial("screen", ["a_reward"], config={"grpo": {"max_steps": 0}})
    with pytest.raises(StoreError, match="not one string"):
        store.enqueue_trial("screen", "a_reward")
    assert store.trials() == []


def test_claim_is_exclusive_and_next_pending_is_fifo(store: RunStore) -> None:
    ids = [store.enqueue_trial("baseline", seed=s) for s in range(3)]
    claimed = store.claim_trial(ids[1], worker="w1")
    assert claimed is not None and claimed.state is TrialState.RUNNING
    assert (claimed.worker, claimed.attempts) == ("w1", 1) and claimed.started_at is not None
    assert store.claim_trial(ids[1], worker="w2") is None  # already RUNNING
    assert store.next_pending().id == ids[0]
    assert store.next_pending(kind="baseline").id == ids[2]
    assert store.next_pending() is None
    with pytest.raises(StoreError, match="unknown trial 99"):
        store.claim_trial(99)


def test_complete_writes_result_and_state_together(store: RunStore) -> None:
    trial_id = store.enqueue_trial("baseline")
    with pytest.raises(StoreError, match="is PENDING, cannot become COMPLETE"):
        store.complete_trial(trial_id, _result(0.5))
    assert store.result(trial_id) is None
    store.claim_trial(trial_id)
    result = TrialResult(
        metrics={"f1": 0.61, "accuracy": 0.44, "f1_ci": (0.55, 0.67), "bad": float("nan")},
        correctness=[1, 0, 0, True, False],
        curves={"check_answer": {"mean": [0.1, 0.4], "std": [1.0, 0.9]}, "zero_std": [0.5, 0.25]},
        eval_path="evals/1.jsonl",
        adapter_path="adapters/1",
    )
    store.complete_trial(trial_id, result)
    trial, stored = store.trial(trial_id), store.result(trial_id)
    assert trial.state is TrialState.COMPLETE and trial.duration_s is not None
    assert trial.finished_at >= trial.started_at
    assert stored.metrics == {"f1": 0.61, "accuracy": 0.44, "f1_ci": [0.55, 0.67], "bad": None}
    assert stored.correctness == (1, 0, 0, 1, 0)
    assert stored.curves["check_answer"]["mean"] == [0.1, 0.4]
    assert (stored.eval_path, stored.adapter_path) == ("evals/1.jsonl", "adapters/1")


def test_results_are_immutable(store: RunStore) -> None:
    trial_id = store.enqueue_trial("baseline")
    store.claim_trial(trial_id)
    store.complete_trial(trial_id, _result(0.5))
    with pytest.raises(StoreError, match="is COMPLETE"):
        store.complete_trial(trial_id, _result(0.9))
    with pytest.raises(StoreError, match="is COMPLETE"):
        store.fail_trial(trial_id, "late failure")
    with Session(store._engine) as session:  # even through the ORM
        row = session.get(ResultRow, trial_id)
        row.metrics = {"f1": 1.0}
        with pytest.raises(ValueError, match="immutable"):
            session.commit()
    assert store.result(trial_id).metrics["f1"] == 0.5


def test_bad_correctness_fails_before_anything_is_written(store: RunStore) -> None:
    trial_id = store.enqueue_trial("baseline")
    store.claim_trial(trial_id)
    with pytest.raises(ValueError, match="0 or 1"):
        store.complete_trial(trial_id, TrialResult(metrics={}, correctness=(1, 2)))
    assert store.trial(trial_id).state is TrialState.RUNNING
    assert store.result(trial_id) is None


def test_failure_is_data_and_can_be_retried(store: RunStore) -> None:
    trial_id = store.enqueue_trial("screen")
    store.claim_trial(trial_id)
    store.fail_trial(trial_id, "reward timed out in 31% of calls (threshold 20%)")
    failed = store.trial(trial_id)
    assert failed.state is TrialState.FAILED and "31%" in failed.fail_reason
    assert store.trials(state="FAILED") == [failed]
    assert store.enqueue_trial("screen") == trial_id  # a resumed search does not retry it
    assert store.next_pending() is None
    store.requeue_trial(trial_id)
    retried = store.next_pending()
    assert retried.id == trial_id and retried.attempts == 2 and retried.fail_reason is None


GARBAGE = {
    "reward": "units_reward",
    "kind": "garbage_above_correct",
    "step": 12,
    "detail": "scored 2/6 corrupted copies of correct completions above their originals",
    "value": 1 / 3,
}


def _monitor(findings=(GARBAGE,), **summary) -> RewardMonitorRecord:
    return RewardMonitorRecord("units_reward", {"calls": 30, "audits": 6, **summary}, findings)


def test_monitor_findings_are_stored_with_a_complete_trial(store: RunStore) -> None:
    trial_id = store.enqueue_trial("screen")
    other = store.enqueue_trial("baseline")
    store.claim_trial(trial_id)
    quiet = RewardMonitorRecord("other_reward", {"calls": 30}, ())
    store.complete_trial(trial_id, _result(0.5), monitors=[_monitor(), quiet])
    assert store.reward_monitors(trial_id) == [quiet, _monitor()]  # by reward name
    assert store.reward_monitors(other) == []
    store.claim_trial(other)
    with pytest.raises(StoreError, match="several monitor records"):
        store.complete_trial(other, _result(0.5), monitors=[quiet, quiet])
    assert store.trial(other).state is TrialState.RUNNING  # nothing was written


def test_monitor_findings_are_stored_with_a_failed_trial_and_cleared_on_retry(
    store: RunStore,
) -> None:
    trial_id = store.enqueue_trial("screen")
    store.claim_trial(trial_id)
    nan = _monitor(p95_latency_s=float("nan"))
    store.fail_trial(trial_id, "reward units_reward misbehaved in training", monitors=[nan])
    (stored,) = store.reward_monitors(trial_id)
    assert stored.findings == (GARBAGE,) and stored.summary["p95_latency_s"] is None
    store.requeue_trial(trial_id)
    assert store.reward_monitors(trial_id) == []
    store.claim_trial(trial_id)
    store.complete_trial(trial_id, _result(0.5), monitors=[_monitor(findings=())])
    assert store.reward_monitors(trial_id)[0].findings == ()


def test_recover_resets_only_running_trials(store: RunStore) -> None:
    done, running, pending = (store.enqueue_trial("baseline", seed=s) for s in range(3))
    for trial_id in (done, running):
        store.claim_trial(trial_id)
    store.complete_trial(done, _result(0.5))
    assert store.recover() == [running]
    assert [t.state for t in store.trials()] == [
        TrialState.COMPLETE,
        TrialState.PENDING,
        TrialState.PENDING,
    ]
    assert store.result(done).metrics["f1"] == 0.5
    assert store.recover() == []
    assert store.trial(pending).attempts == 0


def test_recover_can_target_one_worker(store: RunStore) -> None:
    a, b = store.enqueue_trial("baseline", seed=1), store.enqueue_trial("baseline", seed=2)
    store.claim_trial(a, worker="host:1")
    store.claim_trial(b, worker="host:2")
    assert store.recover(worker="host:1") == [a]
    assert store.trial(b).state is TrialState.RUNNING


def test_leaderboard_ranks_by_metric_then_accuracy(
    store: RunStore, candidate: MakeCandidate
) -> None:
    scores = {"a_reward": (0.7, 0.5), "b_reward": (0.8, 0.4), "c_reward": (0.7, 0.6)}
    for name, (f1, acc) in scores.items():
        store.add_candidate(candidate(name))
        trial_id = store.enqueue_trial("screen", [name])
        store.claim_trial(trial_id)
        store.complete_trial(trial_id, _result(f1, acc))
    store.add_candidate(candidate("d_reward"))
    store.claim_trial(store.enqueue_trial("screen", ["d_reward"]))  # RUNNING: not ranked
    baseline = store.enqueue_trial("baseline")
    store.claim_trial(baseline)
    store.complete_trial(baseline, TrialResult(metrics={"accuracy": 0.9}))  # no f1
    ranked = [t.candidates for t, _ in store.leaderboard("f1")]
    assert ranked == [("b_reward",), ("c_reward",), ("a_reward",)]
    by_accuracy = [t.candidates for t, _ in store.leaderboard("accuracy", kinds=None)]
    assert by_accuracy[0] == ()
    assert [t.kind for t, _ in store.leaderboard("f1", kinds=None)][-1] == "baseline"


def test_everything_survives_a_reopen(
    tmp_path: Path, config: RunConfig, candidate: MakeCandidate
) -> None:
    with RunStore.create(tmp_path / "run", config) as store:
        store.add_candidate(candidate("a_reward"))
        trial_id = store.enqueue_trial("screen", ["a_reward"], attrs={"round": 1})
        store.claim_trial(trial_id)
        store.complete_trial(trial_id, _result(0.66))
    with RunStore.open(tmp_path / "run") as store:
        trial = store.trial(trial_id)
        assert trial.attrs == {"round": 1} and trial.candidates == ("a_reward",)
        assert store.result(trial_id).metrics["f1"] == 0.66
        assert store.get_candidate("a_reward").description == "constant 1.0"
        assert parse_config(trial.config) == config.model_copy(update={"name": None})


def test_threads_share_one_store(store: RunStore) -> None:
    ids = [store.enqueue_trial("baseline", seed=s) for s in range(30)]

    def drain(_: int) -> list[int]:
        ran = []
        while (trial := store.next_pending()) is not None:
            store.complete_trial(trial.id, _result(0.1))
            ran.append(trial.id)
        return ran

    with ThreadPoolExecutor(6) as pool:
        ran = [i for chunk in pool.map(drain, range(6)) for i in chunk]
    assert sorted(ran) == ids


def test_racing_adds_of_one_candidate_store_it_once(
    store: RunStore, candidate: MakeCandidate
) -> None:
    same = candidate("shared_reward")
    with ThreadPoolExecutor(6) as pool:
        stored = list(pool.map(lambda _: store.add_candidate(same), range(12)))
    assert stored == [same] * 12 and store.candidates() == [same]


def test_overlong_names_are_refused_alike_on_every_backend(
    store: RunStore, candidate: MakeCandidate
) -> None:
    with pytest.raises(StoreError, match="name is longer than 200"):
        store.add_candidate(candidate("r" * 201))
    assert store.candidates() == []
