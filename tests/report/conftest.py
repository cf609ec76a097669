"""A synthetic run for the report tests: three rounds, a failed trial, a hacking candidate."""

from __future__ import annotations

import numpy as np
import pytest

from rewardsmith.metrics import score_outcomes
from rewardsmith.report import CandidateRecord, ReportData, TrialRecord, VerdictRecord

BASE = ["match_format_exactly", "match_format_approximately", "check_answer"]
N_TEST = 80


def metrics_for(accuracy: float, extraction: float, n: int = 40, seed: int = 0) -> dict:
    """Metrics.to_dict() of a vector with the given accuracy and extraction rate."""
    extracted = [i < round(extraction * n) for i in range(n)]
    correct = [i < round(accuracy * n) for i in range(n)]
    return score_outcomes(extracted, correct, ci=True, n_resamples=200, seed=seed).to_dict()


def random_vector(accuracy: float, seed: int) -> list[bool]:
    return list(np.random.default_rng(seed).random(N_TEST) < accuracy)


def with_test(trial: TrialRecord, accuracy: float, seed: int) -> TrialRecord:
    vec = [bool(x) for x in random_vector(accuracy, seed)]
    trial.test_correct = vec
    trial.test = score_outcomes([True] * N_TEST, vec, ci=True, n_resamples=200).to_dict()
    return trial


def curve(values: list[float]) -> list[list[float]]:
    return [[float(i * 10), v] for i, v in enumerate(values)]


def flat_curves(reward: list[float]) -> dict:
    return {
        "reward": curve(reward),
        "format_rate": curve([0.2, 0.4, 0.6, 0.7, 0.8, 0.8]),
        "completion_length": curve([120, 110, 100, 95, 90, 90]),
    }


def candidate(name: str, rnd: int, accepted: bool = True, **kw) -> CandidateRecord:
    code = f"import re\n\ndef {name}(prompts, completions, answer, **kwargs):\n    return [0.0]\n"
    verdict = VerdictRecord(
        accepted=accepted,
        stage="accepted" if accepted else "probe",
        reason="" if accepted else "ZeroDivisionError: division by zero",
        flags=kw.pop("flags", []),
    )
    return CandidateRecord(
        name, kw.pop("description", f"{name} rewards things"), rnd, "offline", None, code, verdict
    )


def screen(tid: int, name: str, acc: float, ext: float, reward: list[float], **kw) -> TrialRecord:
    return TrialRecord(
        id=tid,
        kind="screen",
        rewards=BASE + [name],
        seed=3407,
        selection=metrics_for(acc, ext, seed=tid),
        curves=flat_curves(reward),
        durations={"train_s": 12.0, "eval_s": 3.0},
        **kw,
    )


def build_run() -> ReportData:
    rising = [0.5, 0.7, 1.0, 1.5, 2.5, 3.0]
    candidates = [
        candidate("good_reward", 1),
        candidate(
            "hack_reward", 1, description='<script src="https://evil.example/x.js"></script>'
        ),
        candidate("broken_reward", 1, accepted=False),
        candidate("better_reward", 2),
        candidate("loop_reward", 2),
        candidate("crash_reward", 2),
        candidate("late_reward", 3, accepted=False),
    ]
    trials = [
        with_test(
            TrialRecord(
                id=1,
                kind="baseline",
                rewards=list(BASE),
                selection=metrics_for(0.5, 0.9),
                curves=flat_curves([1, 1, 1, 1, 1, 1]),
            ),
            0.45,
            1,
        ),
        screen(2, "good_reward", 0.6, 1.0, [1, 1.2, 1.3, 1.4, 1.5, 1.5]),
        screen(3, "hack_reward", 0.3, 0.95, rising),
        screen(4, "better_reward", 0.65, 1.0, [1, 1.1, 1.3, 1.4, 1.6, 1.7]),
        screen(
            5,
            "loop_reward",
            0.55,
            0.1,
            [1, 1, 1, 1, 1, 1],
            samples=["the answer the answer " * 10, "", "the answer " * 20],
        ),
        TrialRecord(
            id=6,
            kind="screen",
            rewards=BASE + ["crash_reward"],
            state="FAILED",
            fail_reason="reward crash_reward failed on 40% of calls",
        ),
        with_test(
            TrialRecord(
                id=7, kind="control", rewards=BASE + ["r1", "r2"], selection=metrics_for(0.2, 0.5)
            ),
            0.2,
            2,
        ),
        with_test(
            TrialRecord(
                id=8,
                kind="ensemble",
                rewards=BASE + ["better_reward"],
                k=1,
                selection=metrics_for(0.66, 1.0),
            ),
            0.6,
            3,
        ),
        with_test(
            TrialRecord(
                id=9,
                kind="ensemble",
                rewards=BASE + ["better_reward", "good_reward"],
                weights=[1, 1, 1, 0.5, 0.5],
                selection=metrics_for(0.7, 1.0),
            ),
            0.8,
            4,
        ),
    ]
    for i, seed in enumerate((1, 2, 3)):
        trials.append(
            with_test(
                TrialRecord(id=10 + i, kind="final", rewards=list(trials[-1].rewards), seed=seed),
                0.78 + 0.01 * i,
                10 + i,
            )
        )
    return ReportData(
        run_id="run-test",
        created="2026-01-02T03:04:05+00:00",
        config={"rounds": 3, "candidates_per_round": 3},
        manifest={"rewardsmith": "0.1.0"},
        selection_split="val",
        candidates=candidates,
        trials=trials,
    )


@pytest.fixture(scope="module")
def run_data() -> ReportData:
    """Built once per module; tests must not mutate it."""
    return build_run()
