"""A miniature search end to end: killed with kill -9 mid-round, resumed, reported, exported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rewardsmith.store import RunStore, StoreError, TrialState
from tests.conftest import run_cli
from tests.training.conftest import mini_search, write_yaml

pytestmark = pytest.mark.slow


def _mini_recipe(path: Path) -> Path:
    data = mini_search(
        questions=16,
        grpo={"max_steps": 2},
        rounds=2,
        candidates_per_round=2,
        ensemble_sizes=[1, 2],
        ensemble_steps=2,
        final_seeds=2,
    )
    return write_yaml(path, data)


def _wait_for(predicate, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.2)


def _states(run_dir: Path) -> dict[int, TrialState]:
    if not (run_dir / "store.db").exists():
        return {}
    try:
        store = RunStore.open(run_dir)
    except StoreError:  # the search is still creating the store
        return {}
    try:
        return {t.id: t.state for t in store.trials()}
    finally:
        store.close()


def test_search_killed_and_resumed(tiny_model_dir: Path, tmp_path: Path) -> None:
    recipe = _mini_recipe(tmp_path / "mini.yaml")
    run_dir = tmp_path / "run"
    search = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rewardsmith",
            "search",
            "--config",
            str(recipe),
            "--run-dir",
            str(run_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    # kill -9 the whole run (search + trial worker) while the second screening trial trains
    _wait_for(
        lambda: (
            list(_states(run_dir).values()).count(TrialState.COMPLETE) >= 1
            and TrialState.RUNNING in _states(run_dir).values()
        )
    )
    os.killpg(search.pid, signal.SIGKILL)
    search.wait()
    before = RunStore.open(run_dir)
    finished = {t.id: before.result(t.id) for t in before.trials(state="COMPLETE")}
    assert finished and any(t.state == TrialState.RUNNING for t in before.trials())
    before.close()

    res = run_cli("search", "--resume", str(run_dir))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "report:" in res.stdout

    store = RunStore.open(run_dir)
    trials = store.trials()
    assert all(t.state == TrialState.COMPLETE for t in trials), [
        (t.id, t.fail_reason) for t in trials
    ]
    kinds = [t.kind for t in trials]
    assert kinds.count("screen") == 4
    assert {"baseline", "control", "ensemble", "final"} <= set(kinds)
    assert kinds.count("ensemble") == 2
    for trial_id, result in finished.items():  # nothing completed was lost or trained twice
        assert store.result(trial_id) == result
        assert store.trial(trial_id).attempts == 1
    assert len({t.candidates for t in trials if t.kind == "screen"}) == 4
    rounds = {store.get_candidate(t.candidates[0]).round for t in trials if t.kind == "screen"}
    assert rounds == {1, 2}
    # the finalists were evaluated on the (whole) test split
    for trial in trials:
        if trial.kind in ("baseline", "control", "ensemble", "final"):
            evaluation = store.evaluation(trial.id, "test")
            assert evaluation is not None and len(evaluation.correctness) == 16
    report = json.loads((run_dir / "report" / "report.json").read_text())
    assert len(report["data"]["trials"]) == len(trials)
    assert "data:image/png;base64" in (run_dir / "report" / "report.html").read_text()
    store.close()

    out = tmp_path / "rewards.py"
    res = run_cli("export", str(run_dir), "--top", "2", "-o", str(out))
    assert res.returncode == 0, res.stderr
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['rewardsmith'] = None; "
            f"sys.path.insert(0, {str(tmp_path)!r}); import rewards; "
            "print(len(rewards.REWARD_FUNCS))",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "5"  # 3 base rewards + the top 2
