"""Named ensembles, the baseline before round 1, and the paper's replacement rule.

The search runs for real (generation, sandboxed validation, the store) with an executor that
"trains" instantly: each trial completes with an accuracy chosen by the test, so the loop's
decisions can be checked in seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rewardsmith.config import EnsembleSection, parse_config
from rewardsmith.metrics import score_outcomes
from rewardsmith.rewards.candidate import Candidate
from rewardsmith.sandbox.pool import SandboxPool
from rewardsmith.search import screening_baseline
from rewardsmith.search.ensembles import AnswerCheck, group_plan, plan_members
from rewardsmith.search.loop import Search
from rewardsmith.store import RunStore, TrialResult
from rewardsmith.tasks import get_task

N = 20  # questions per evaluation

CONSTANT = "def NAME(prompts, completions, answer, **kwargs):\n    return [K] * len(completions)\n"
CHECKS_ANSWER = '''
def NAME(prompts, completions, answer, **kwargs):
    """+1 when the gold answer sits inside the solution tags."""
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [1.0 if "<solution>" in t and str(a) in t.split("<solution>")[-1] else 0.0
            for t, a in zip(texts, answer)]
'''
FORMAT_ONLY = '''
def NAME(prompts, completions, answer, **kwargs):
    """+1 for a closed solution tag, whatever it holds."""
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [1.0 if "</solution>" in t else 0.0 for t in texts]
'''

RANKED = ["a", "b", "c", "d", "e"]
ROUNDS = {"a": 2, "b": 1, "c": 2, "d": 3, "e": 1}
PLANS = [
    # (rule, k, checked answers, expected members, why)
    ("top", 3, "", ["a", "b", "c"], "the three best"),
    ("top", 6, "", [], "more than the screened candidates: not formed"),
    ("diverse_rounds", None, "", ["b", "a", "d"], "the best of rounds 1, 2, 3, in round order"),
    ("diverse_rounds", 2, "", ["b", "a"], "k caps the rounds"),
    ("correctness", 2, "bde", ["b", "d"], "the best two that check the answer"),
    ("correctness", 3, "e", ["e"], "fewer than k check the answer: those there are"),
    ("correctness", 2, "", [], "none checks the answer: not formed"),
]


@pytest.mark.parametrize(("rule", "k", "checked", "expected", "why"), PLANS)
def test_plan_members(rule: str, k: int | None, checked: str, expected: list, why: str) -> None:
    spec = EnsembleSection(name="x", rule=rule, k=k)
    assert plan_members(spec, RANKED, ROUNDS, lambda n: n in checked) == expected, why


def test_configurations_with_the_same_members_and_budget_share_a_trial() -> None:
    search = parse_config(
        {
            "search": {
                "ensembles": [
                    {"name": "top-2", "k": 2},
                    {"name": "top-2 long", "k": 2, "steps": 900},
                    {"name": "correct", "rule": "correctness", "k": 2},
                    {"name": "top-9", "k": 9},
                ]
            }
        }
    ).search
    planned, skipped = group_plan(search, RANKED, ROUNDS, lambda n: n in "ab")
    assert [(p.members, p.steps, p.name) for p in planned] == [
        (("a", "b"), 300, "top-2 = correct"),
        (("a", "b"), 900, "top-2 long"),
    ]
    assert skipped == ["top-9"]


def test_answer_check_runs_the_reward_in_the_sandbox(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "run", parse_config({}))
    programs = {"gold_reward": CHECKS_ANSWER, "tag_reward": FORMAT_ONLY}
    for name, code in programs.items():
        store.add_candidate(Candidate(name, code.replace("NAME", name), "d", 1, "test"))
    checks = AnswerCheck(store)
    try:
        assert checks("gold_reward") is True
        assert checks("tag_reward") is False
    finally:
        checks.close()


# ------------------------------------------------------------------ the loop, trained instantly


class InstantExecutor:
    """Completes each trial at once; ``accuracy(trial)`` says how well it 'trained'."""

    def __init__(self, accuracy) -> None:
        self.accuracy = accuracy
        self.order: list[tuple[str, tuple[str, ...]]] = []

    def run(self, store: RunStore, trial_ids, on_progress=None) -> None:
        for trial_id in trial_ids:
            trial = store.claim_trial(trial_id)
            if trial is None:
                continue
            accuracy = self.accuracy(trial)
            if accuracy is None:  # a crash
                store.fail_trial(trial_id, "RuntimeError: crashed")
                continue
            right = round(accuracy * N)
            correct = [i < right for i in range(N)]
            metrics = score_outcomes([True] * N, correct).to_dict()
            self.order.append((trial.kind, trial.candidates))
            store.complete_trial(trial_id, TrialResult(metrics, tuple(int(c) for c in correct)))


class Scripted:
    """Proposes rewards r<round>_<i> in turn; records what each round was shown."""

    name = "scripted"

    def __init__(self, store: RunStore, programs: dict[str, str]) -> None:
        self.store = store
        self.programs = programs
        self.rejections: list = []
        self.count = 0
        self.seen: list[dict] = []

    def propose(self, round: int, n: int, context) -> list[Candidate]:
        baseline = screening_baseline(self.store)
        self.seen.append(
            {
                "round": round,
                "baseline_done": baseline is not None
                and self.store.result(baseline.id) is not None,
                "examples": context.examples,
            }
        )
        out = []
        for _ in range(n):
            self.count += 1
            name = f"r{round}_{self.count}"
            code = self.programs.get(name, CONSTANT.replace("K", f"0.{self.count}"))
            out.append(Candidate(name, code.replace("NAME", name), "d", round, self.name))
        return out


class NoTestEval(Search):
    def evaluate_finalists(self, top_single) -> None:  # test evaluation loads a model
        pass


def _run(tmp_path: Path, search: dict, accuracy, programs=None):
    cfg = parse_config(
        {
            "seed": 7,
            "grpo": {"max_steps": 5},
            "task": {"options": {"n_train": 40, "n_val": N, "n_test": N}},
            "search": {"rounds": 2, "candidates_per_round": 3, "control_k": 1, **search},
        }
    )
    store = RunStore.create(tmp_path / "run", cfg)
    task = get_task(cfg.task.name, **cfg.task.task_kwargs())
    generator = Scripted(store, programs or {})
    executor = InstantExecutor(accuracy)
    with SandboxPool() as pool:
        NoTestEval(store, generator, executor, task, pool=pool).run()
    return store, generator, executor


def _by_name(scores: dict[str, float], default: float = 0.3):
    def accuracy(trial) -> float:
        if not trial.candidates:
            return 0.25  # the baselines
        if any(name in scores and scores[name] is None for name in trial.candidates):
            return None
        total = sum(scores.get(name, default) for name in trial.candidates)
        return total if len(trial.candidates) == 1 else min(1.0, total / 2)  # more is better

    return accuracy


def test_baseline_first_named_ensembles_and_fixed_examples(tmp_path: Path) -> None:
    scores = {"r1_1": 0.6, "r1_2": 0.2, "r1_3": 0.4, "r2_4": 0.7, "r2_5": 0.5, "r2_6": 0.1}
    ensembles = [
        {"name": "top-2", "k": 2},
        {"name": "diverse-rounds", "rule": "diverse_rounds"},
        {"name": "correctness", "rule": "correctness", "k": 1},
        {"name": "top-3 long", "k": 3, "steps": 8},
    ]
    store, generator, executor = _run(
        tmp_path,
        {"ensembles": ensembles, "fixed_examples": True, "final_seeds": 2, "ensemble_steps": 6},
        _by_name(scores),
        programs={"r1_3": CHECKS_ANSWER},
    )
    # the screening baseline is trained (and stored) before round 1 is even generated
    assert executor.order[0] == ("baseline", ())
    assert [s["baseline_done"] for s in generator.seen] == [True, True]
    baseline = screening_baseline(store)
    assert baseline is not None and baseline.config["grpo"]["max_steps"] == 5
    assert generator.seen[0]["examples"] == generator.seen[1]["examples"]  # fixed_examples
    # top-2 (r2_4, r1_1) is also diverse-rounds (best of each round): one trial, both names
    named = {t.attrs["name"]: t for t in store.trials(kind="ensemble")}
    assert set(named) == {"top-2 = diverse-rounds", "correctness", "top-3 long"}
    assert set(named["top-2 = diverse-rounds"].candidates) == {"r2_4", "r1_1"}
    assert named["correctness"].candidates == ("r1_3",)  # the only one that checks the answer
    assert named["top-3 long"].config["grpo"]["max_steps"] == 8
    assert named["correctness"].config["grpo"]["max_steps"] == 6
    # the best ensemble is re-trained over another seed with its own budget
    finals = store.trials(kind="final")
    assert len(finals) == 1 and finals[0].config["grpo"]["max_steps"] == 8
    assert finals[0].attrs["name"] == "top-3 long"
    # two baselines: screening budget (5) first, the finalists' (6) later
    steps = [t.config["grpo"]["max_steps"] for t in store.trials(kind="baseline")]
    assert steps == [5, 6]


def test_examples_change_per_round_by_default(tmp_path: Path) -> None:
    _, generator, _ = _run(tmp_path, {"ensemble_sizes": [1]}, _by_name({}))
    assert generator.seen[0]["examples"] != generator.seen[1]["examples"]


def test_dead_candidates_are_regenerated_up_to_the_attempts(tmp_path: Path) -> None:
    # r1_1 scores F1 = 0, so do its first two replacements (r1_4, r1_5): the slot is spent
    # after 3 attempts; r2_7 crashes (FAILED) and its replacement r2_9 lives.
    dead = {"r1_1": 0.0, "r1_4": 0.0, "r1_5": 0.0, "r2_7": None}
    search = {"replace_failed": True, "replace_attempts": 3, "ensemble_sizes": [1]}
    store, _, _ = _run(tmp_path, search, _by_name(dead))
    rounds = {1: [], 2: []}
    for trial in store.trials(kind="screen"):
        rounds[store.get_candidate(trial.candidates[0]).round].append(trial.candidates[0])
    assert rounds[1] == ["r1_1", "r1_2", "r1_3", "r1_4", "r1_5"]
    assert rounds[2] == ["r2_6", "r2_7", "r2_8", "r2_9"]


def test_without_the_switch_nothing_is_regenerated(tmp_path: Path) -> None:
    store, _, _ = _run(tmp_path, {"ensemble_sizes": [1]}, _by_name({"r1_1": 0.0}))
    assert len(store.trials(kind="screen")) == 6
