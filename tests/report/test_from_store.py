"""The report built from a real run store: every trial kind, a failed trial, test evaluations,
records files present, missing and malformed; and the report written from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rewardsmith.config import parse_config
from rewardsmith.metrics import score_outcomes
from rewardsmith.report import ReportData
from rewardsmith.report import analysis as an
from rewardsmith.report.from_store import (
    build_report_data,
    read_samples,
    resolve_path,
    write_run_report,
)
from rewardsmith.rewards.candidate import Candidate
from rewardsmith.store import RewardMonitorRecord, RunStore, TrialResult

BASE = ["match_format_exactly", "match_format_approximately", "check_answer"]
CONFIG = {
    "name": "report-test",
    "grpo": {"max_steps": 3, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1},
    "rewards": {"weights": {"check_answer": 2.0}},
    "search": {"rounds": 2, "candidates_per_round": 3, "ensemble_sizes": [1, 2], "control_k": 2},
}
N_SELECT, N_TEST = 40, 60
ACCEPTED = {"accepted": True, "stage": "accepted", "reason": "", "flags": []}
RESPONSES = [f"<thinking>step {i}</thinking><solution>{i}</solution>" for i in range(5)]


def reward_code(name: str) -> str:
    """A valid reward obeying TRL's contract."""
    signature = f"def {name}(prompts, completions, answer, **kwargs):\n"
    return signature + "    return [0.5] * len(completions)\n"


def outcome(accuracy: float, n: int, seed: int, split: str) -> tuple[dict, tuple[int, ...]]:
    """(metrics dict with the trial worker's ``split`` key, correctness vector)."""
    correct = np.random.default_rng(seed).random(n) < accuracy
    metrics = score_outcomes([True] * n, correct, ci=True, n_resamples=100, seed=seed).to_dict()
    return {**metrics, "split": split}, tuple(int(c) for c in correct)


GARBAGE = {
    "reward": "hack_reward",
    "kind": "garbage_above_correct",
    "step": 20,
    "detail": "scored 2/6 corrupted copies of correct completions above their originals",
    "value": 1 / 3,
}
FAILURES = {
    "reward": "late_reward",
    "kind": "failures",
    "step": 8,
    "detail": "failed 4/10 of its last calls: ValueError",
    "value": 0.4,
}


def finish(
    store: RunStore, trial_id: int, accuracy: float, *, split: str = "val", monitors=(), **kw
) -> None:
    """Claim and complete a trial with a fake result (no training)."""
    metrics, correct = outcome(accuracy, N_SELECT, trial_id, split)
    curves = {
        "reward": [[1, 0.5], [2, 0.9], [3, 1.4]],
        "check_answer/mean": [[1, 0.1], [2, 0.3], [3, 0.6]],
        "_reward_failures": {"x": {"calls": 3, "failures": 0, "last_error": None}},
        "_timings": {"train_s": 12.5, "eval_s": 3.0},
    }
    store.claim_trial(trial_id)
    store.complete_trial(
        trial_id,
        TrialResult(metrics=metrics, correctness=correct, curves=curves, **kw),
        monitors=monitors,
    )


def add_test(store: RunStore, trial_id: int, accuracy: float) -> None:
    metrics, correct = outcome(accuracy, N_TEST, 100 + trial_id, "test")
    store.add_evaluation(trial_id, "test", metrics, correct)


def build_store(run_dir: Path, selection: str = "val") -> dict[str, int]:
    """A run with every trial kind; returns trial ids by role. Nothing is trained."""
    cfg = parse_config({**CONFIG, "eval": {"selection": selection}})
    store = RunStore.create(run_dir, cfg)
    for name, rnd in (("good_reward", 1), ("hack_reward", 1), ("late_reward", 2)):
        store.add_candidate(
            Candidate(name, reward_code(name), f"{name} does things", rnd, "offline"),
            verdict=ACCEPTED,
        )
    store.add_candidate(Candidate("broken_reward", "x = 1\n", "no function", 2, "offline"))
    store.set_verdict("broken_reward", {"stage": "entry", "reason": "no reward function"})
    store.add_candidate(Candidate("manual_reward", reward_code("manual_reward"), "", 0, "manual"))
    records = run_dir / "evals" / "good.jsonl"
    lines = [{"question": f"q{i}", "gold": str(i), "response": r} for i, r in enumerate(RESPONSES)]
    records.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    ids = {
        "good": store.enqueue_trial("screen", ["good_reward"]),
        "hack": store.enqueue_trial("screen", ["hack_reward"]),
        "crash": store.enqueue_trial("screen", ["late_reward"]),
        "manual": store.enqueue_trial("manual", ["manual_reward"], {"manual_reward": 0.5}),
        "baseline": store.enqueue_trial("baseline", attrs={"max_steps": 30}),
        "control": store.enqueue_trial("control", ["hack_reward", "late_reward"]),
        "ensemble": store.enqueue_trial("ensemble", ["good_reward", "hack_reward"]),
        "final": store.enqueue_trial("final", ["good_reward", "hack_reward"], seed=7),
        "pending": store.enqueue_trial("ensemble", ["good_reward"]),
    }
    split = "test" if selection == "test" else "val"
    # eval_path relative to the run dir: the reader resolves it there
    finish(store, ids["good"], 0.7, split=split, eval_path="evals/good.jsonl")
    hack_monitor = RewardMonitorRecord("hack_reward", {"audits": 5, "audits_failed": 2}, (GARBAGE,))
    gone = str(run_dir / "evals" / "gone.jsonl")
    finish(store, ids["hack"], 0.4, split=split, eval_path=gone, monitors=[hack_monitor])
    store.claim_trial(ids["crash"])
    late_monitor = RewardMonitorRecord("late_reward", {"calls": 10}, (FAILURES,))
    store.fail_trial(
        ids["crash"], "reward late_reward failed on 40% of calls", monitors=[late_monitor]
    )
    for role, acc in (("manual", 0.5), ("baseline", 0.45), ("control", 0.3)):
        finish(store, ids[role], acc, split=split)
    finish(store, ids["ensemble"], 0.8, split=split)
    finish(store, ids["final"], 0.75, split=split)
    if selection != "test":
        for role, acc in (("baseline", 0.4), ("control", 0.3), ("ensemble", 0.8), ("final", 0.7)):
            add_test(store, ids[role], acc)
    store.close()
    return ids


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, dict[str, int], ReportData]:
    run_dir = tmp_path_factory.mktemp("runs") / "run-1"
    ids = build_store(run_dir)
    with RunStore.open(run_dir) as store:
        data = build_report_data(store)
    return run_dir, ids, data


def by_id(data: ReportData) -> dict:
    return {t.id: t for t in data.trials}


def test_candidates_and_verdicts(run):
    _, _, data = run
    assert data.run_id == "run-1" and data.selection_split == "val"
    assert [c.name for c in data.candidates] == [
        "good_reward",
        "hack_reward",
        "late_reward",
        "broken_reward",
        "manual_reward",
    ]
    good = data.candidate("good_reward")
    assert (
        good.round == 1 and good.generator == "offline" and good.code == reward_code("good_reward")
    )
    assert good.verdict.accepted and good.verdict.stage == "accepted"
    broken = data.candidate("broken_reward").verdict  # a verdict without "accepted"
    assert not broken.accepted and broken.reason == "no reward function"
    assert data.candidate("manual_reward").verdict is None
    assert data.manifest["config_hash"] and "config" not in data.manifest
    assert data.config["search"]["rounds"] == 2


def test_trials_kinds_states_and_rewards(run):
    _, ids, data = run
    trials = by_id(data)
    assert sorted(trials) == sorted(ids.values())
    manual = trials[ids["manual"]]
    assert manual.kind == "screen" and manual.candidate_name == "manual_reward"
    assert manual.rewards == BASE + ["manual_reward"]
    assert manual.weights == [1.0, 1.0, 2.0, 0.5]  # config weight of check_answer, trial weight
    crash = trials[ids["crash"]]
    assert (crash.state, crash.selection, crash.curves) == ("FAILED", None, {})
    assert crash.fail_reason == "reward late_reward failed on 40% of calls"
    assert trials[ids["pending"]].state == "PENDING" and trials[ids["pending"]].k == 1
    assert trials[ids["ensemble"]].k == 2 and trials[ids["control"]].k == 2
    assert trials[ids["final"]].seed == 7 and trials[ids["final"]].k == 2
    assert trials[ids["baseline"]].rewards == BASE and trials[ids["baseline"]].k is None


def test_metrics_come_from_results_and_test_evaluations(run):
    run_dir, ids, data = run
    trials = by_id(data)
    with RunStore.open(run_dir) as store:
        for trial_id, record in trials.items():
            result = store.result(trial_id)
            assert record.selection == (result.metrics if result else None)
            evaluation = store.evaluation(trial_id, "test")
            assert record.test == (evaluation.metrics if evaluation else None)
            expected = [bool(c) for c in evaluation.correctness] if evaluation else None
            assert record.test_correct == expected
    assert trials[ids["ensemble"]].selection["split"] == "val"
    assert trials[ids["ensemble"]].test["n"] == N_TEST
    assert trials[ids["good"]].test is None  # screens are not evaluated on test


def test_curves_durations_and_samples(run):
    _, ids, data = run
    good = by_id(data)[ids["good"]]
    assert set(good.curves) == {"reward", "check_answer/mean"}  # private entries dropped
    assert good.curves["reward"] == [[1.0, 0.5], [2.0, 0.9], [3.0, 1.4]]
    assert good.durations["train_s"] == 12.5 and good.durations["eval_s"] == 3.0
    assert good.durations["wall_s"] >= 0
    assert good.samples == RESPONSES[:3]
    assert by_id(data)[ids["hack"]].samples is None  # the records file is gone
    assert by_id(data)[ids["baseline"]].samples is None  # no records recorded


def test_analysis_sees_the_run(run):
    _, ids, data = run
    board = an.leaderboard(data)
    assert [row.name for row in board] == [
        "good_reward",
        "manual_reward",
        "hack_reward",
        "late_reward",
    ]
    assert board[-1].rank is None
    head = an.headline(data)
    assert head.best_ensemble.id == ids["ensemble"] and head.baseline.id == ids["baseline"]
    assert head.vs_baseline is not None and head.vs_baseline.n == N_TEST
    # the best ensemble's own run is one of its seeds, next to the final trials
    assert [t.id for t in head.finals] == [ids["ensemble"], ids["final"]]
    assert ReportData.from_dict(json.loads(json.dumps(data.to_dict()))) == data


def test_monitor_findings_reach_the_report(run):
    _, ids, data = run
    trials = by_id(data)
    assert trials[ids["hack"]].monitor == {
        "hack_reward": {"summary": {"audits": 5, "audits_failed": 2}, "findings": [GARBAGE]}
    }
    assert trials[ids["crash"]].findings() == [FAILURES]  # a FAILED trial keeps its findings
    assert trials[ids["good"]].monitor == {}
    rows = [(f.name, f.reward, f.kind, f.step) for f in an.monitor_findings(data)]
    assert rows == [
        ("hack_reward", "hack_reward", "garbage_above_correct", 20),
        ("late_reward", "late_reward", "failures", 8),
    ]
    reasons = {s.name: s.reasons for s in an.hacking_suspects(data)}
    assert "in training, hack_reward scored corrupted completions above correct ones in 2/5 " \
        "audits" in reasons["hack_reward"]  # fmt: skip


def test_write_run_report_defaults_to_the_run_directory(run):
    run_dir, ids, data = run
    with RunStore.open(run_dir) as store:
        paths = write_run_report(store)
    assert {k: p.parent for k, p in paths.items()} == dict.fromkeys(paths, run_dir / "report")
    html = paths["html"].read_text(encoding="utf-8")
    for text in ("good_reward", "manual_reward", "late_reward failed on 40% of calls"):
        assert text in html
    assert "<td>ensemble k=2</td>" in html and "best ensemble, 2 seeds" in html
    md = paths["markdown"].read_text(encoding="utf-8")
    assert "## Leaderboard" in md and "good_reward" in md
    panel = md.split("## Reward-hacking panel", 1)[1].split("## Training curves", 1)[0]
    assert "### Reward monitor findings during training" in panel
    assert "| hack_reward | COMPLETE | hack_reward | garbage_above_correct | 20 |" in panel
    assert "| late_reward | FAILED | late_reward | failures | 8 | failed 4/10" in panel
    raw = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert raw["summary"]["headline"]["best_ensemble"] == ids["ensemble"]
    findings = raw["summary"]["monitor_findings"]
    assert [(f["trial"], f["kind"]) for f in findings] == [
        (ids["hack"], "garbage_above_correct"),
        (ids["crash"], "failures"),
    ]
    assert ReportData.load(paths["json"]).trials == data.trials


def test_selection_on_test_uses_the_result_as_test_metrics(tmp_path):
    ids = build_store(tmp_path / "paper", selection="test")
    with RunStore.open(tmp_path / "paper") as store:
        data = build_report_data(store)
        ensemble = store.result(ids["ensemble"])
    assert data.selection_split == "test"
    record = by_id(data)[ids["ensemble"]]
    assert record.test == record.selection == ensemble.metrics
    assert record.test_correct == [bool(c) for c in ensemble.correctness]
    assert an.headline(data).vs_baseline.n == N_SELECT


def test_samples_never_crash_the_report(tmp_path):
    bad = tmp_path / "run" / "evals" / "bad.jsonl"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"response": "first"}\n\n{not json\n{"response": "late"}\n', encoding="utf-8")
    assert read_samples(str(bad), tmp_path / "run") == ["first"]  # stops at the broken line
    bad.write_bytes(b"\xff\xfe\x00garbage")
    assert read_samples(str(bad), tmp_path / "run") is None
    bad.write_text('["a list"]\n{"question": "no response"}\n', encoding="utf-8")
    assert read_samples(str(bad), tmp_path / "run") is None
    assert read_samples(None, tmp_path) is None and read_samples("", tmp_path) is None
    assert read_samples(str(tmp_path), tmp_path) is None  # a directory, not a file


def test_paths_of_a_moved_run_directory_resolve(tmp_path):
    run_dir = tmp_path / "moved" / "run-9"
    (run_dir / "evals").mkdir(parents=True)
    target = run_dir / "evals" / "e.jsonl"
    target.write_text("{}\n", encoding="utf-8")
    assert resolve_path("/elsewhere/runs/run-9/evals/e.jsonl", run_dir) == target
    assert resolve_path("runs/run-9/evals/e.jsonl", run_dir) == target
    assert resolve_path("evals/e.jsonl", run_dir) == target
    assert resolve_path("/elsewhere/runs/run-9/evals/other.jsonl", run_dir) is None
