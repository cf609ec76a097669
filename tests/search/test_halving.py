"""Successive halving: who is promoted (ties, fewer candidates than eta, failed trials), and the
rungs of a round on a real store, "trained" instantly: continued runs, stored decisions that a
resumed search keeps, nothing enqueued twice, further seeds at the top."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from rewardsmith.config import parse_config
from rewardsmith.metrics import score_outcomes
from rewardsmith.rewards.candidate import Candidate
from rewardsmith.search.halving import Ladder, places, promote
from rewardsmith.search.ranking import RankedCandidate, rank_candidates
from rewardsmith.store import RunStore, TrialResult

N = 20  # questions per evaluation
BUDGET = 9  # eta 3: rungs of 1, 3 and 9 steps


def standing(name: str, score: float, accuracy: float = 0.5, *, failed: bool = False):
    seeds = 0 if failed else 1
    score = float("-inf") if failed else score
    return RankedCandidate(name, 0, seeds, accuracy, None, None, None, score, (1,))


PROMOTIONS = [
    # (standings, eta, expected, why)
    ([("a", 0.3), ("b", 0.2), ("c", 0.1)], 3, ["a"], "ceil(3/3) = 1"),
    ([("a", 0.3), ("b", 0.2), ("c", 0.1), ("d", 0.0)], 3, ["a", "b"], "ceil(4/3) = 2"),
    ([("a", 0.3), ("b", 0.2)], 3, ["a"], "fewer candidates than eta: one goes on"),
    ([("a", 0.1)], 3, ["a"], "a lone candidate goes on"),
    ([("x", 0.3), ("y", 0.3), ("w", 0.3)], 3, ["w"], "a tie: the name decides"),
    ([("a", None), ("b", 0.1), ("c", None)], 2, ["b"], "two places, one COMPLETE: only it"),
    ([("a", None), ("b", None)], 2, [], "all failed: nobody"),
]


@pytest.mark.parametrize(("rows", "eta", "expected", "why"), PROMOTIONS)
def test_promote(rows: list, eta: int, expected: list[str], why: str) -> None:
    ranked = [standing(n, s or 0.0, failed=s is None) for n, s in rows]
    random.Random(0).shuffle(ranked)  # the order comes from the sort key, not the input
    assert promote(sorted(ranked, key=RankedCandidate.key), len(rows), eta) == expected, why


def test_a_tie_on_score_breaks_on_accuracy_then_name() -> None:
    ranked = [standing("b", 0.2, 0.6), standing("a", 0.2, 0.5), standing("c", 0.2, 0.6)]
    assert [r.name for r in sorted(ranked, key=RankedCandidate.key)] == ["b", "c", "a"]
    assert places(3, 3) == 1 and places(4, 2) == 2


# ------------------------------------------------------------------ a round on a real store


class Instant:
    """Completes each claimed trial at once with ``accuracy(name, rung, seed)`` (None: FAILED);
    records what it ran."""

    def __init__(self, store: RunStore, accuracy) -> None:
        self.store, self.accuracy, self.ran = store, accuracy, []

    def __call__(self, trial_ids) -> None:
        for trial_id in trial_ids:
            trial = self.store.claim_trial(trial_id)
            if trial is None:  # not PENDING: already run
                continue
            name = trial.candidates[0] if trial.candidates else "baseline"
            rung = trial.attrs.get("rung", 0)
            self.ran.append((name, rung, trial.seed))
            accuracy = self.accuracy(name, rung, trial.seed)
            if accuracy is None:
                self.store.fail_trial(trial_id, "RuntimeError: crashed")
                continue
            correct = [i < round(accuracy * N) for i in range(N)]
            metrics = score_outcomes([True] * N, correct).to_dict()
            result = TrialResult(metrics, tuple(int(c) for c in correct))
            self.store.complete_trial(trial_id, result)


def make_store(tmp_path: Path, names, **screening) -> RunStore:
    cfg = parse_config(
        {
            "grpo": {"max_steps": BUDGET},
            "search": {"screening": {"mode": "halving", **screening}},
            "eval": {"limit": N},
        }
    )
    store = RunStore.create(tmp_path / "run", cfg)
    for name in names:
        code = f"def {name}(prompts, completions, answer, **kw):\n    return [0.0]\n"
        store.add_candidate(Candidate(name, code, name, 1, "test"))
    return store


def baseline(store: RunStore, run) -> None:
    run([store.enqueue_trial("baseline", [], attrs={"role": "screening"})])


SCORES = {"a": 0.30, "b": 0.50, "c": 0.45, "d": 0.60, "e": 0.20, "f": 0.40, "g": 0.35}


def by_rung(store: RunStore) -> dict[int, list]:
    out: dict[int, list] = {}
    for t in store.trials(kind="screen"):
        out.setdefault(t.attrs["rung"], []).append(t)
    return out


def test_a_round_climbs_the_rungs(tmp_path: Path) -> None:
    # d would be the best, but its rung-0 trial crashes: it is never promoted
    def accuracy(name: str, rung: int, seed: int) -> float | None:
        return None if name == "d" else SCORES.get(name, 0.25) + 0.05 * rung

    with make_store(tmp_path, SCORES) as store:
        run = Instant(store, accuracy)
        baseline(store, run)
        ladder = Ladder(store, store.config(), run, lambda text: None)
        assert ladder.steps == [1, 3, BUDGET]
        assert ladder.climb(list(SCORES)) == ["b"]
        rungs = by_rung(store)
        assert [len(rungs[r]) for r in (0, 1, 2)] == [7, 3, 1]  # ceil(7/3) = 3, ceil(3/3) = 1
        assert {t.candidates[0] for t in rungs[1]} == {"b", "c", "f"}
        # each rung trains its own steps of the full schedule, continuing the rung below
        first = {t.candidates[0]: t for t in rungs[0]}
        second = {t.candidates[0]: t for t in rungs[1]}
        for name, t in second.items():
            assert t.attrs["continues"] == first[name].id
            assert (t.attrs["rung_steps"], t.attrs["budget"]) == (3, BUDGET)
            assert t.config["grpo"]["max_steps"] == 3
        assert rungs[2][0].attrs["continues"] == second["b"].id
        assert rungs[2][0].config["grpo"]["max_steps"] == BUDGET
        # the decisions are stored on the decided trials
        assert {n for n, t in first.items() if store.trial(t.id).attrs["promoted"]} == set(second)
        assert store.trial(first["d"].id).attrs["promoted"] is False
        assert store.trial(second["b"].id).attrs["promoted"] is True
        assert "promoted" not in store.trial(rungs[2][0].id).attrs  # the top is not decided
        # climbing again enqueues and runs nothing
        count = len(store.trials())
        ran = len(run.ran)
        assert ladder.climb(list(SCORES)) == ["b"]
        assert len(store.trials()) == count and len(run.ran) == ran
        # the ranking puts the top rung first, then rung 1, then rung 0; failed last
        ranked = rank_candidates(store)
        assert [r.name for r in ranked][:3] == ["b", "c", "f"]
        assert [r.rung for r in ranked] == [2, 1, 1, 0, 0, 0, 0]
        assert ranked[-1].name == "d" and ranked[-1].failed


def test_a_stored_decision_is_kept_on_resume(tmp_path: Path) -> None:
    with make_store(tmp_path, SCORES) as store:
        run = Instant(store, lambda name, rung, seed: SCORES[name] if name in SCORES else 0.25)
        baseline(store, run)
        ids = Ladder(store, store.config(), run, lambda text: None).first(list(SCORES))
        from rewardsmith.search.halving import decide

        assert decide(store, store.config(), 0, ids) == ["d", "b", "c"]
        # the search dies here; when it resumes, rung 1 trials now score differently and
        # the rung-0 results are the same: the decision must not be made again differently
        rerun = Instant(store, lambda name, rung, seed: 1.0 - SCORES.get(name, 0.5))
        ladder = Ladder(store, store.config(), rerun, lambda text: None)
        top = ladder.climb(list(SCORES))
        assert {n for n, rung, _ in rerun.ran if rung == 0} == set()  # rung 0 not re-run
        assert {n for n, rung, _ in rerun.ran if rung == 1} == {"d", "b", "c"}
        assert top == ["c"]  # the worst of rung 0's three now leads rung 1


def test_fewer_candidates_than_eta_and_seeds_at_top(tmp_path: Path) -> None:
    with make_store(tmp_path, ["a", "b"], seeds_at_top=3) as store:
        run = Instant(store, lambda name, rung, seed: SCORES.get(name, 0.25))
        baseline(store, run)
        ladder = Ladder(store, store.config(), run, lambda text: None)
        assert ladder.climb(["a", "b"]) == ["b"]
        top = [t for t in store.trials(kind="screen") if t.attrs["rung"] == 2]
        cfg = store.config()
        assert sorted(t.seed for t in top) == [cfg.seed, cfg.seed + 1, cfg.seed + 2]
        assert [t.attrs["continues"] is None for t in top] == [False, True, True]
        best = rank_candidates(store)[0]
        assert (best.name, best.rung, best.seeds, len(best.trial_ids)) == ("b", 2, 3, 3)


def test_full_mode_is_one_rung(tmp_path: Path) -> None:
    cfg = parse_config({"grpo": {"max_steps": BUDGET}, "eval": {"limit": N}})
    with RunStore.create(tmp_path / "run", cfg) as store:
        for name in ("a", "b"):
            code = f"def {name}(prompts, completions, answer, **kw):\n    return [0.0]\n"
            store.add_candidate(Candidate(name, code, name, 1, "test"))
        run = Instant(store, lambda name, rung, seed: SCORES.get(name, 0.25))
        assert Ladder(store, cfg, run, lambda text: None).climb(["a", "b"]) == ["a", "b"]
        trials = store.trials(kind="screen")
        assert len(trials) == 2 and all(t.attrs == {} for t in trials)
        assert all(t.config["grpo"]["max_steps"] == BUDGET for t in trials)
