"""Housekeeping deletes superseded attempts and the rung checkpoints that no rung will continue,
and nothing that a later step reads."""

from __future__ import annotations

from pathlib import Path

from rewardsmith.metrics import score_outcomes
from rewardsmith.search.halving import Ladder
from rewardsmith.search.housekeeping import tidy
from rewardsmith.store import RunStore, TrialResult
from rewardsmith.training.continuation import RESUME_DIR
from tests.search.test_halving import BUDGET, SCORES, N, baseline, make_store

RETRIED = "b"  # its rung-0 worker died once: attempt 1 is superseded by attempt 2
CRASHES = "e"  # fails twice (two attempts), FAILED


class WithFiles:
    """Runs each trial at once, writing what a worker writes: its attempt's adapter and, for a
    rung that stops before the budget, the trainer checkpoint the next rung continues."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    def _claim(self, trial_id: int, name: str):
        trial = self.store.claim_trial(trial_id)
        if trial is None:
            return None
        if name in (RETRIED, CRASHES) and trial.attrs.get("rung") == 0:
            (self.store.attempt_dir(trial_id, 1) / "trainer").mkdir(parents=True)
            self.store.recover()  # the worker of attempt 1 died: back to PENDING
            trial = self.store.claim_trial(trial_id)
        return trial

    def __call__(self, trial_ids) -> None:
        for trial_id in trial_ids:
            queued = self.store.trial(trial_id)
            name = queued.candidates[0] if queued.candidates else "baseline"
            trial = self._claim(trial_id, name)
            if trial is None:
                continue
            out = self.store.attempt_dir(trial_id, trial.attempts)
            adapter = out / "adapter"
            adapter.mkdir(parents=True)
            (adapter / "adapter_model.safetensors").write_text("weights")
            if trial.config["grpo"]["max_steps"] < BUDGET:  # stopped early: keep a checkpoint
                (adapter / RESUME_DIR).mkdir()
            if name == CRASHES:
                self.store.fail_trial(trial_id, "RuntimeError: crashed")
                continue
            correct = [i < round(SCORES.get(name, 0.25) * N) for i in range(N)]
            metrics = score_outcomes([True] * N, correct).to_dict()
            result = TrialResult(metrics, tuple(int(c) for c in correct), adapter_path=str(adapter))
            self.store.complete_trial(trial_id, result)


def _adapter(store: RunStore, trial) -> Path:
    return Path(store.result(trial.id).adapter_path)


def test_tidy_keeps_what_a_later_step_reads(tmp_path: Path) -> None:
    with make_store(tmp_path, SCORES) as store:
        run = WithFiles(store)
        baseline(store, run)
        ladder = Ladder(store, store.config(), run, lambda text: None)
        ladder.first(list(SCORES))
        # rung 0 finished, nothing decided yet: every checkpoint may still be continued
        assert tidy(store) == {"attempts": 2, "checkpoints": 0}
        rung0 = {t.candidates[0]: t for t in store.trials(kind="screen")}
        assert not store.attempt_dir(rung0[RETRIED].id, 1).exists()
        assert _adapter(store, rung0[RETRIED]).is_relative_to(
            store.attempt_dir(rung0[RETRIED].id, 2)
        )
        failed = rung0[CRASHES]  # a FAILED trial keeps its last attempt, for diagnosis
        assert failed.attempts == 2 and store.attempt_dir(failed.id, 2).is_dir()
        assert all(
            (_adapter(store, t) / RESUME_DIR).is_dir() for t in rung0.values() if t.id != failed.id
        )

        top = ladder.climb(list(SCORES))
        counts = tidy(store)
        screens = store.trials(kind="screen")
        completed = [t for t in screens if t.state.value == "COMPLETE"]
        assert all(_adapter(store, t).is_dir() for t in completed)  # adapters always stay
        stopped_early = [t for t in completed if t.config["grpo"]["max_steps"] < BUDGET]
        assert stopped_early and not any(
            (_adapter(store, t) / RESUME_DIR).exists() for t in stopped_early
        )
        assert counts == {"attempts": 0, "checkpoints": len(stopped_early)}
        assert top and tidy(store) == {"attempts": 0, "checkpoints": 0}  # idempotent


def test_the_recorded_attempt_is_read_from_a_path_or_a_uri() -> None:
    from rewardsmith.search.housekeeping import recorded_attempt

    assert recorded_attempt("s3://bucket/run/adapters/trial-12/attempt-3/adapter") == 3
    assert recorded_attempt("file:///shared/run/adapters/trial-1/attempt-1/policy") == 1
    assert recorded_attempt(None) is None
