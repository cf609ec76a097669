"""GPU slots of the local executor, each worker's environment, and bounded retries.

The multi-GPU host is faked: ``CUDA_VISIBLE_DEVICES`` lists four GPUs and the workers are a
small script (the real module's command line and store contract) that writes down the
environment it was started with, then records its trial.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path

import pytest

from rewardsmith.config import parse_config
from rewardsmith.errors import ConfigError
from rewardsmith.execution import FAILURES_FILE, LocalProcessExecutor, make_executor
from rewardsmith.execution_gpu import gpu_slots, visible_gpus, worker_env
from rewardsmith.store import RunStore, TrialState

# A stand-in worker: ``python -m MODULE RUN_DIR TRIAL_ID (--token T | SPLIT) --parent-pid P``.
# What it does is read from RUN_DIR/fake-plan.json: "actions" (by start, in order), else
# "default": die (exit 3 at once, before touching the store), hang (report progress, sleep),
# complete (record the trial COMPLETE with its token) or evaluate (store an evaluation).
FAKE_WORKER = """
import json, os, sys, time
run_dir, trial_id = sys.argv[1], int(sys.argv[2])
start = time.monotonic()
plan = json.load(open(os.path.join(run_dir, "fake-plan.json")))
starts = os.path.join(run_dir, "fake-starts.jsonl")
n = sum(1 for _ in open(starts)) if os.path.exists(starts) else 0
actions = plan.get("actions", [])
action = actions[n] if n < len(actions) else plan["default"]
entry = {"trial": trial_id, "argv": sys.argv[1:], "env": dict(os.environ), "start": start}
with open(starts, "a") as out:
    out.write(json.dumps(entry) + "\\n")
if action == "die":
    os._exit(3)
if action == "hang":
    path = os.path.join(run_dir, "logs", f"trial-{trial_id}.progress")
    open(path, "w").write("1 10\\n")
    time.sleep(120)
from rewardsmith.store import RunStore, TrialResult
store = RunStore.open(run_dir)
if action == "complete":
    time.sleep(plan.get("hold_s", 0))
    token = sys.argv[sys.argv.index("--token") + 1]
    metrics = {"accuracy": 0.5, "f1": 0.5, "split": "validation"}
    store.complete_trial(trial_id, TrialResult(metrics, (1, 0)), token=token)
elif action == "evaluate":
    store.add_evaluation(trial_id, sys.argv[3], {"accuracy": 1.0, "split": sys.argv[3]}, [1])
with open(os.path.join(run_dir, "fake-ends.jsonl"), "a") as out:
    out.write(json.dumps({"trial": trial_id, "end": time.monotonic()}) + "\\n")
store.close()
"""

LAUNCHER_VARS = {
    "RANK": "3",
    "LOCAL_RANK": "3",
    "WORLD_SIZE": "8",
    "LOCAL_WORLD_SIZE": "8",
    "GROUP_RANK": "0",
    "MASTER_ADDR": "10.0.0.1",
    "MASTER_PORT": "29500",
    "TORCHELASTIC_RUN_ID": "abc",
    "ACCELERATE_MIXED_PRECISION": "bf16",
    "OMPI_COMM_WORLD_SIZE": "8",
}


@pytest.fixture(name="fake_worker")
def fake_worker_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The stand-in worker's module name (importable by the workers through PYTHONPATH)."""
    folder = tmp_path / "fake_modules"
    folder.mkdir()
    (folder / "fake_worker.py").write_text(FAKE_WORKER)
    paths = [str(folder), *sys.path]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    return "fake_worker"


def _search(**search: object):
    return parse_config({"search": search}).search


def _store(tmp_path: Path, plan: dict, **search: object) -> RunStore:
    store = RunStore.create(tmp_path / "run", parse_config({"search": search}))
    (store.run_dir / "fake-plan.json").write_text(json.dumps(plan))
    return store


def _starts(store: RunStore) -> list[dict]:
    path = store.run_dir / "fake-starts.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


# ------------------------------------------------------------------ gpu_slots


VISIBLE = ["0", "1", "2", "3"]


@pytest.mark.parametrize(
    ("search", "visible", "slots"),
    [
        ({}, VISIBLE, VISIBLE),  # auto: every visible GPU
        ({"trials_per_gpu": 2}, ["0", "1"], ["0", "1", "0", "1"]),  # interleaved
        ({"gpus": 2}, VISIBLE, ["0", "1"]),  # a count: the first n
        ({"gpus": [1, 3]}, VISIBLE, ["1", "3"]),  # ids
        ({"gpus": [1]}, ["4", "6"], ["6"]),  # ids number the visible GPUs (cuda:N)
        ({"parallel": 3}, [], [None, None, None]),  # no GPU: parallel CPU slots
        ({"gpus": 0, "parallel": 2}, VISIBLE, ["", ""]),  # explicitly none: GPUs hidden
    ],
)
def test_gpu_slots(search: dict, visible: list[str], slots: list) -> None:
    assert gpu_slots(_search(**search), visible) == slots


def test_auto_uses_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4, GPU-8f2c,-1,5")  # CUDA stops at -1
    assert visible_gpus() == ["4", "GPU-8f2c"]
    assert gpu_slots(_search(trials_per_gpu=2)) == ["4", "GPU-8f2c", "4", "GPU-8f2c"]
    assert gpu_slots(_search(gpus=[1])) == ["GPU-8f2c"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpu_slots(_search(parallel=2)) == [None, None]


@pytest.mark.parametrize(
    ("gpus", "message"),
    [
        (3, "3 GPU(s) asked for, but 2 GPU(s) are visible (4, 6) with CUDA_VISIBLE_DEVICES='4,6'"),
        ([0, 2], "no GPU with id 2 here: 2 GPU(s) are visible"),
    ],
)
def test_more_gpus_than_visible_is_a_clear_error(
    gpus: object, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    with pytest.raises(ConfigError, match="^search.gpus: ") as error:
        gpu_slots(_search(gpus=gpus))
    assert message in str(error.value)


def test_worker_env_pins_one_gpu_and_drops_the_launcher() -> None:
    base = {**LAUNCHER_VARS, "CUDA_VISIBLE_DEVICES": "0,1,2,3", "HOME": "/home/x"}
    env = worker_env("2", 8, base)
    assert env["CUDA_VISIBLE_DEVICES"] == "2" and env["HOME"] == "/home/x"
    assert not set(LAUNCHER_VARS) & set(env)
    assert worker_env(None, 1, base)["CUDA_VISIBLE_DEVICES"] == "0,1,2,3"  # CPU slot: as is
    assert worker_env("", 1, base)["CUDA_VISIBLE_DEVICES"] == ""  # gpus: 0
    assert worker_env(None, 2, {"OMP_NUM_THREADS": "7"})["OMP_NUM_THREADS"] == "7"


# ------------------------------------------------------------------ a faked 4-GPU host


def test_each_worker_gets_its_own_gpu_on_a_multi_gpu_host(
    tmp_path: Path, fake_worker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for name, value in LAUNCHER_VARS.items():  # as if the search ran under torchrun/accelerate
        monkeypatch.setenv(name, value)
    plan = {"default": "complete", "hold_s": 1.0}
    store = _store(tmp_path, plan, gpus=[0, 1, 2, 3], trials_per_gpu=2)
    ids = [store.enqueue_trial("baseline", seed=s) for s in range(9)]
    executor = make_executor(store.config())
    assert isinstance(executor, LocalProcessExecutor) and len(executor.slots) == 8
    executor.worker_module, executor.poll_s = fake_worker, 0.05
    executor.reuse_workers = False  # the stand-in runs one trial per process
    executor.run(store, ids)

    assert all(store.trial(t).state is TrialState.COMPLETE for t in ids)
    starts = sorted(_starts(store), key=lambda s: s["start"])
    assert sorted(s["trial"] for s in starts) == ids  # one worker per trial, no retries
    for s in starts:
        env = s["env"]
        assert env["CUDA_VISIBLE_DEVICES"] in {"0", "1", "2", "3"}
        assert not set(LAUNCHER_VARS) & set(env), "a distributed-launch variable leaked"
        assert env["OMP_NUM_THREADS"] == str(max(1, len(os.sched_getaffinity(0)) // 8))
        log = (store.logs_dir / f"trial-{s['trial']}.log").read_text()
        assert f"on GPU {env['CUDA_VISIBLE_DEVICES']}" in log
    # the first eight start at once, two on each GPU; never more than two share one
    assert Counter(s["env"]["CUDA_VISIBLE_DEVICES"] for s in starts[:8]) == dict.fromkeys(
        ["0", "1", "2", "3"], 2
    )
    ends = {
        e["trial"]: e["end"]
        for e in map(json.loads, (store.run_dir / "fake-ends.jsonl").read_text().splitlines())
    }
    for gpu in "0123":
        spans = [
            (s["start"], ends[s["trial"]])
            for s in starts
            if s["env"]["CUDA_VISIBLE_DEVICES"] == gpu
        ]
        for start, _ in spans:
            assert sum(a <= start < b for a, b in spans) <= 2
    store.close()


# ------------------------------------------------------------------ bounded retries


def test_a_worker_that_dies_before_claiming_is_retried_then_failed(
    tmp_path: Path, fake_worker: str
) -> None:
    store = _store(tmp_path, {"default": "die"})
    trial_id = store.enqueue_trial("baseline")
    LocalProcessExecutor(
        max_attempts=3, poll_s=0.05, worker_module=fake_worker, reuse_workers=False
    ).run(store, [trial_id])
    trial = store.trial(trial_id)
    assert trial.state is TrialState.FAILED
    assert trial.fail_reason == "worker died (exit code 3) on 3 attempt(s)"
    assert len(_starts(store)) == 3 and trial.attempts == 3
    store.close()


def test_deaths_count_across_a_resume(tmp_path: Path, fake_worker: str) -> None:
    """Attempt 1 dies; attempt 2 is interrupted (Ctrl-C: not the trial's fault); the resumed
    executor starts from the recorded death, so one more death ends it. Counting deaths per
    executor (before) gave every resume ``max_attempts`` more: four workers here."""
    store = _store(tmp_path, {"actions": ["die", "hang"], "default": "die"})
    trial_id = store.enqueue_trial("baseline")

    def interrupt(trial_id: int, step: int, max_steps: int) -> None:
        raise KeyboardInterrupt

    executor = LocalProcessExecutor(
        max_attempts=2, poll_s=0.05, worker_module=fake_worker, reuse_workers=False
    )
    with pytest.raises(KeyboardInterrupt):
        executor.run(store, [trial_id], interrupt)
    assert store.trial(trial_id).state is TrialState.PENDING  # released, to be resumed
    resumed = RunStore.open(store.run_dir)
    LocalProcessExecutor(
        max_attempts=2, poll_s=0.05, worker_module=fake_worker, reuse_workers=False
    ).run(resumed, [trial_id])
    trial = resumed.trial(trial_id)
    assert trial.state is TrialState.FAILED
    assert trial.fail_reason == "worker died (exit code 3) on 2 attempt(s)"
    assert len(_starts(store)) == 3
    deaths = (store.logs_dir / FAILURES_FILE).read_text().splitlines()
    assert [json.loads(x)["status"] for x in deaths] == [
        "attempt 1 (exit code 3)",
        "attempt 3 (exit code 3)",
    ]
    store.close()
    resumed.close()


def test_a_trial_at_its_bound_is_failed_without_a_worker(tmp_path: Path, fake_worker: str) -> None:
    """The search died after the last death was written but before FAILED was: on resume the
    trial is PENDING, and is failed rather than started again."""
    store = _store(tmp_path, {"default": "complete"})
    trial_id = store.enqueue_trial("baseline")
    line = {"job": f"trial-{trial_id}", "status": "attempt 2 (killed by SIGKILL)", "at": 0}
    (store.logs_dir / FAILURES_FILE).write_text(json.dumps(line) + "\n" + json.dumps(line) + "\n")
    LocalProcessExecutor(
        max_attempts=2, poll_s=0.05, worker_module=fake_worker, reuse_workers=False
    ).run(store, [trial_id])
    trial = store.trial(trial_id)
    assert trial.state is TrialState.FAILED and _starts(store) == []
    assert "killed by SIGKILL" in trial.fail_reason
    store.close()
