"""GRPO trials end to end on the tiny model: recorded, failing cleanly, surviving kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rewardsmith.execution import LocalProcessExecutor
from rewardsmith.rewards.candidate import Candidate
from rewardsmith.store import RunStore, TrialState
from rewardsmith.training.worker import progress_path
from tests.conftest import run_cli
from tests.training.conftest import write_tiny_yaml

pytestmark = pytest.mark.slow

LENGTH_REWARD = '''
def target_length_reward(prompts, completions, answer, **kwargs):
    """Prefer completions of about 40 characters."""
    out = []
    for completion in completions:
        text = completion[0]["content"] if isinstance(completion, list) else completion
        out.append(1.0 - min(abs(len(text) - 40) / 40.0, 1.0))
    return out
'''

HANGS_IN_TRAINING = '''
def hanging_reward(prompts, completions, answer, **kwargs):
    """Hangs on the trainer's batch size (8), never on other sizes."""
    if len(completions) == 8:
        while True:
            pass
    return [0.0 for _ in completions]
'''


# Behaves for the trainer's first batch (8 completions), then pays 2.0 for broken tags: garbage
# above correct answers. Audits send at most 4 completions (audit_samples=1), so they do not
# count as trainer batches.
GARBAGE_AFTER_ONE = """
seen = []

def late_hack_reward(prompts, completions, answer, **kwargs):
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    if len(completions) == 8:
        seen.append(1)
    good = [1.0 if "<solution>" + a + "</solution>" in t else 0.0 for t, a in zip(texts, answer)]
    if len(seen) <= 1:
        return good
    return [g + 2.0 * ("</solution>" not in t) for g, t in zip(good, texts)]
"""


def _store(tmp_path: Path, cfg, *candidates: Candidate) -> RunStore:
    store = RunStore.create(tmp_path / "run", cfg)
    for candidate in candidates:
        store.add_candidate(candidate, verdict={"accepted": True})
    return store


def _candidate(name: str, code: str) -> Candidate:
    return Candidate(name=name, code=code, description=name, round=1, generator="test")


def test_train_cli_records_a_trial(tiny_model_dir: Path, tmp_path: Path) -> None:
    reward = tmp_path / "target_length_reward.py"
    reward.write_text(LENGTH_REWARD)
    config = write_tiny_yaml(tmp_path / "tiny.yaml")
    run_dir = tmp_path / "run"
    res = run_cli(
        "train",
        "--reward",
        str(reward),
        "--config",
        str(config),
        "--steps",
        "2",
        "--run-dir",
        str(run_dir),
    )
    assert res.returncode == 0, res.stderr + res.stdout
    assert "accuracy" in res.stdout
    store = RunStore.open(run_dir)
    (trial,) = store.trials()
    assert trial.state == TrialState.COMPLETE and trial.candidates == ("target_length_reward",)
    result = store.result(trial.id)
    assert result.metrics["n"] == 8 and len(result.correctness) == 8
    # per-reward curves over training, for the generator's feedback
    for key in (
        "reward",
        "completion_length",
        "frac_zero_std",
        "target_length_reward/mean",
        "check_answer/mean",
        "match_format_exactly/std",
    ):
        assert len(result.curves[key]) == 2, key
    assert Path(result.adapter_path, "adapter_config.json").is_file()
    records = [json.loads(x) for x in Path(result.eval_path).read_text().splitlines()]
    assert len(records) == 8
    manifest = store.manifest()
    assert manifest.splits_disjoint and set(manifest.fingerprints) == {"train", "val", "test"}


def test_train_cli_rejects_a_bad_reward(tiny_model_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\ndef bad(prompts, completions, answer, **kw):\n    return [0.0]\n")
    res = run_cli("train", "--reward", str(bad), "--run-dir", str(tmp_path / "r"))
    assert res.returncode == 1 and "rejected" in res.stderr and "Traceback" not in res.stderr


def test_hanging_reward_fails_the_trial_with_reason(tiny_cfg, tmp_path: Path) -> None:
    data = tiny_cfg.model_dump(mode="json")
    data["rewards"].update({"timeout_s": 0.5, "failure_threshold": 0.2})
    from rewardsmith.config import parse_config

    store = _store(tmp_path, parse_config(data), _candidate("hanging_reward", HANGS_IN_TRAINING))
    trial_id = store.enqueue_trial("screen", ["hanging_reward"])
    started = time.monotonic()
    LocalProcessExecutor(1).run(store, [trial_id])
    trial = store.trial(trial_id)
    assert trial.state == TrialState.FAILED
    assert "hanging_reward" in trial.fail_reason and "timed out" in trial.fail_reason.lower()
    assert time.monotonic() - started < 120


def _monitored_cfg(tiny_cfg, **monitor):
    from rewardsmith.config import parse_config

    data = tiny_cfg.model_dump(mode="json")
    data["grpo"]["max_steps"] = 4
    data["rewards"]["monitor"].update(
        {"window": 4, "min_calls": 2, "audit_every": 1, "audit_samples": 1, **monitor}
    )
    return parse_config(data)


def test_monitor_findings_fail_the_trial_and_reach_report_and_feedback(
    tiny_cfg, tmp_path: Path
) -> None:
    from rewardsmith.report.from_store import build_report_data
    from rewardsmith.search.feedback import build_summary

    cfg = _monitored_cfg(tiny_cfg, fail_after=2)
    store = _store(tmp_path, cfg, _candidate("late_hack_reward", GARBAGE_AFTER_ONE))
    trial_id = store.enqueue_trial("screen", ["late_hack_reward"])
    LocalProcessExecutor(1).run(store, [trial_id])
    trial = store.trial(trial_id)
    assert trial.state == TrialState.FAILED, trial.fail_reason
    assert "late_hack_reward misbehaved in training" in trial.fail_reason
    assert "garbage_above_correct x2" in trial.fail_reason
    (monitor,) = store.reward_monitors(trial_id)
    garbage = [f for f in monitor.findings if f["kind"] == "garbage_above_correct"]
    assert [f["step"] for f in garbage] == [2, 3], monitor.findings
    # stopped at step 3 of 4: the first audit passed, the next two failed
    assert monitor.summary["audits"] == 3 and monitor.summary["audits_failed"] == 2
    record = next(t for t in build_report_data(store).trials if t.id == trial_id)
    assert record.findings() == list(monitor.findings)
    (entry,) = build_summary(store)
    assert entry.reflection.startswith("training FAILED: reward late_hack_reward misbehaved")
    assert "in training, scored corrupted completions above correct ones in 2/3 audits" in (
        entry.reflection
    )


def test_monitor_findings_are_kept_with_a_complete_trial(tiny_cfg, tmp_path: Path) -> None:
    from rewardsmith.search.feedback import build_summary

    cfg = _monitored_cfg(tiny_cfg, fail_after=0)  # record only
    store = _store(tmp_path, cfg, _candidate("late_hack_reward", GARBAGE_AFTER_ONE))
    trial_id = store.enqueue_trial("screen", ["late_hack_reward"])
    LocalProcessExecutor(1).run(store, [trial_id])
    assert store.trial(trial_id).state == TrialState.COMPLETE
    (monitor,) = store.reward_monitors(trial_id)
    assert monitor.summary["audits_failed"] == 3 and monitor.summary["calls"] == 4
    result = store.result(trial_id)
    assert len(result.curves["late_hack_reward/mean"]) == 4  # TRL's metric name is unchanged
    assert result.curves["_reward_failures"]["late_hack_reward"]["calls"] == 4  # audits not counted
    (entry,) = build_summary(store)
    first_lines = entry.reflection.splitlines()[:2]  # the monitor's lines come first
    line = "in training, scored corrupted completions above correct ones in 3/4 audits"
    assert any(x.startswith(line) for x in first_lines), entry.reflection


def _kill_when_training(store: RunStore, trial_id: int, killed: list) -> None:
    path = progress_path(store.run_dir, trial_id)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not path.exists():
        time.sleep(0.05)
    trial = store.trial(trial_id)
    pid = int(trial.worker.rsplit(":", 1)[1])
    os.kill(pid, signal.SIGKILL)
    killed.append(pid)


def test_kill_9_of_a_trial_worker_is_retried(tiny_cfg, tmp_path: Path) -> None:
    store = _store(tmp_path, tiny_cfg, _candidate("target_length_reward", LENGTH_REWARD))
    trial_id = store.enqueue_trial("screen", ["target_length_reward"])
    killed: list[int] = []
    killer = threading.Thread(target=_kill_when_training, args=(store, trial_id, killed))
    killer.start()
    LocalProcessExecutor(1, max_attempts=2).run(store, [trial_id])
    killer.join()
    assert killed, "the worker was never killed"
    trial = store.trial(trial_id)
    assert trial.state == TrialState.COMPLETE and trial.attempts == 2
    assert store.result(trial_id).metrics["n"] == 8


def test_restart_after_kill_9_reruns_only_the_interrupted_trial(tiny_cfg, tmp_path: Path) -> None:
    store = _store(tmp_path, tiny_cfg, _candidate("target_length_reward", LENGTH_REWARD))
    done = store.enqueue_trial("screen", ["target_length_reward"])
    LocalProcessExecutor(1).run(store, [done])
    first = store.result(done)
    interrupted = store.enqueue_trial("baseline", [])
    # a worker killed mid-trial, with no parent left to notice: the store keeps it RUNNING
    worker = subprocess.Popen(
        [sys.executable, "-m", "rewardsmith.training.worker", str(store.run_dir), str(interrupted)]
    )
    path = progress_path(store.run_dir, interrupted)
    deadline = time.monotonic() + 120
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert store.trial(interrupted).state == TrialState.RUNNING
    # restart: recover, then run everything again
    reopened = RunStore.open(store.run_dir)
    assert reopened.recover() == [interrupted]
    LocalProcessExecutor(1).run(reopened, [done, interrupted])
    assert reopened.trial(interrupted).state == TrialState.COMPLETE
    assert reopened.trial(done).attempts == 1  # never re-run
    assert reopened.result(done) == first


def _initial_lora(cfg, seed: int, out: Path) -> dict:
    """The LoRA weights of a trial's trainer with ``seed``, before any step."""
    from rewardsmith.config import grpo_kwargs, lora_kwargs
    from rewardsmith.models import load_model
    from rewardsmith.rewards import get_reward
    from rewardsmith.tasks import get_task
    from rewardsmith.training.trainer import _trainer
    from rewardsmith.training.trial import Method

    loaded = load_model(cfg.model.spec, device="cpu")
    task = get_task(cfg.task.name, **cfg.task.task_kwargs())
    args = grpo_kwargs(cfg, output_dir=out, seed=seed, cuda=(False, False))
    funcs = [get_reward("check_answer")]
    trainer = _trainer(
        loaded.model, loaded.tokenizer, task, funcs, [1.0], args, lora_kwargs(cfg), Method(), []
    )
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" in n}


def test_lora_initialisation_follows_the_seed(tiny_cfg, tmp_path: Path) -> None:
    import torch

    first = _initial_lora(tiny_cfg, 11, tmp_path / "a")
    again = _initial_lora(tiny_cfg, 11, tmp_path / "b")
    other = _initial_lora(tiny_cfg, 12, tmp_path / "c")
    assert first and first.keys() == again.keys() == other.keys()
    assert all(torch.equal(first[n], again[n]) for n in first)  # same seed: same A and B
    a_names = [n for n in first if "lora_A" in n]
    assert a_names and all(not torch.equal(first[n], other[n]) for n in a_names)
