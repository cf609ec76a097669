"""Kill drill: ``kill -9`` the search at seeded random moments, resume each time, and end with
exactly the leaderboard of an uninterrupted run.

The moments are drawn from a seeded RNG: how many trials to let finish first (0 or 1), a fraction
of the next trial attempt's progress (read from its progress file: 0 = still loading, up to 1 =
trained, evaluating) and a short delay; three times during training, then once during the
finalists' test evaluation. Only the search process
is killed: its trial worker must die with it (parent-death signal), so no resume ever finds a
live worker to end. Afterwards every trial, result, training curve, evaluation response and test
evaluation must equal the uninterrupted run's, and every recorded path must be the completing
attempt's own. The uninterrupted run goes alongside, to share the two cores: its results do not
depend on timing (seeded training, fixed thread counts).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rewardsmith.execution import process_start
from rewardsmith.store import RunStore, StoreError, TrialState
from rewardsmith.training.worker import progress_path
from tests.training.conftest import mini_search, write_yaml

pytestmark = pytest.mark.slow

SEED = 11  # moments: trial 2 evaluating, trial 3 mid-training, its re-run loading
TRAINING_KILLS = 3
FINALISTS = 5  # baseline, control, ensemble and both single rewards (the top 3) on test


def _recipe(path: Path) -> Path:
    """The smallest whole search: 2 screens, baseline, control, one ensemble, test evaluation."""
    grpo = {"max_steps": 2, "per_device_train_batch_size": 4}
    data = mini_search(questions=8, grpo=grpo, candidates_per_round=2, ensemble_steps=2)
    return write_yaml(path, data)


@pytest.fixture
def searches() -> Iterator[list[subprocess.Popen]]:
    """The searches a test starts; whatever is still running at the end is killed."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _start(started: list[subprocess.Popen], log: Path, *args: str) -> subprocess.Popen:
    with log.open("w") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "rewardsmith", "search", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started.append(proc)
    return proc


def _open(run_dir: Path) -> RunStore | None:
    if not (run_dir / "store.db").exists():
        return None
    try:
        return RunStore.open(run_dir)
    except StoreError:  # the search is still creating the store
        return None


def _count_complete(run_dir: Path) -> int:
    store = _open(run_dir)
    if store is None:
        return 0
    try:
        return len(store.trials(state="COMPLETE"))
    finally:
        store.close()


def _progress(run_dir: Path, trial_id: int) -> float:
    try:
        step, max_steps = (int(x) for x in progress_path(run_dir, trial_id).read_text().split())
    except (OSError, ValueError):
        return 0.0
    return step / max(1, max_steps)


def _moment(
    run_dir: Path, search: subprocess.Popen, complete: int, fraction: float, seen: set[str]
) -> Any:
    """Wait until ``complete`` trials are COMPLETE and a trial attempt with a recorded worker,
    other than the attempts ``seen`` (killed already: left RUNNING until the resumed search
    recovers them), reaches ``fraction`` of its progress; None when the search ends first."""
    deadline = time.monotonic() + 600
    while search.poll() is None and time.monotonic() < deadline:
        store = _open(run_dir)
        if store is not None:
            try:
                trials = store.trials()
            finally:
                store.close()
            done = sum(t.state is TrialState.COMPLETE for t in trials)
            running = [
                t
                for t in trials
                if t.state is TrialState.RUNNING
                and t.worker_start
                and t.attempt_token not in seen
                and done >= complete
            ]
            for trial in running:
                if _progress(run_dir, trial.id) >= fraction:
                    return trial
        time.sleep(0.1)
    return None


def _kill(search: subprocess.Popen) -> None:
    os.kill(search.pid, signal.SIGKILL)  # the search only: its worker must follow by itself
    search.wait()


def _gone(pid: int, start: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while process_start(pid) == start:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _kill_in_training(
    run_dir: Path, search: subprocess.Popen, rng: random.Random, seen: set[str]
) -> int | None:
    """Kill the search at a random moment of a new trial attempt; return the trial when that
    attempt was still running (the delay may carry the kill past its end)."""
    complete = _count_complete(run_dir) + rng.randrange(2)
    fraction, delay = rng.random(), rng.uniform(0.0, 1.5)
    trial = _moment(run_dir, search, complete, fraction, seen)
    assert trial is not None, "the search ended before the kill moment"
    time.sleep(delay)
    _kill(search)
    seen.add(trial.attempt_token)
    assert _gone(trial.worker_pid, trial.worker_start), "the worker outlived its search"
    with RunStore.open(run_dir) as store:
        after = store.trial(trial.id)
    still_running = after.state is TrialState.RUNNING and after.attempt_token == trial.attempt_token
    return trial.id if still_running else None


def _kill_in_test_evaluation(run_dir: Path, search: subprocess.Popen) -> bool:
    """Kill the search once the finalists' test evaluation has begun; False when it ended."""
    deadline = time.monotonic() + 900
    while search.poll() is None and time.monotonic() < deadline:
        store = _open(run_dir)
        if store is not None:
            try:
                done = len(store.evaluations("test"))
            finally:
                store.close()
            if 1 <= done < FINALISTS:
                _kill(search)
                return True
        time.sleep(0.1)
    return False


def _responses(path: str | None) -> list[str]:
    lines = Path(path).read_text().splitlines() if path else []
    return [json.loads(line)["response"] for line in lines if line.strip()]


def _outcomes(store: RunStore) -> dict[tuple, Any]:
    """Everything the run decided, keyed by what each trial trains (not by path or time)."""
    out: dict[tuple, Any] = {}
    for trial in store.trials():
        result = store.result(trial.id)
        curves = {k: v for k, v in result.curves.items() if k != "_timings"}
        test = store.evaluation(trial.id, "test")
        out[(trial.kind, trial.candidates, trial.seed)] = (
            trial.state,
            result.metrics,
            result.correctness,
            curves,
            _responses(result.eval_path),
            None if test is None else (test.metrics, test.correctness),
            None if test is None else _responses(test.records_path),
        )
    out[("leaderboard",)] = [(t.kind, t.candidates) for t, _ in store.leaderboard(kinds=None)]
    return out


def _assert_paths_are_the_completing_attempts(store: RunStore) -> None:
    for trial in store.trials():
        result = store.result(trial.id)
        attempt = store.attempt_dir(trial.id, trial.attempts).resolve()
        for path in (result.adapter_path, result.eval_path):
            assert Path(path).resolve().is_relative_to(attempt), (trial.id, path)
            assert Path(path).exists(), path


def test_kill_drill_ends_with_the_uninterrupted_leaderboard(
    tiny_model_dir: Path, tmp_path: Path, searches: list[subprocess.Popen]
) -> None:
    recipe = _recipe(tmp_path / "drill.yaml")
    reference_log = tmp_path / "reference.log"
    reference_run = _start(
        searches, reference_log, "--config", str(recipe), "--run-dir", str(tmp_path / "reference")
    )
    rng = random.Random(SEED)
    run_dir = tmp_path / "drilled"
    logs = [tmp_path / "search-0.log"]
    search = _start(searches, logs[0], "--config", str(recipe), "--run-dir", str(run_dir))
    interrupted: list[int | None] = []
    seen: set[str] = set()
    for kill in range(TRAINING_KILLS):
        interrupted.append(_kill_in_training(run_dir, search, rng, seen))
        logs.append(tmp_path / f"search-{kill + 1}.log")
        search = _start(searches, logs[-1], "--resume", str(run_dir))
    assert _kill_in_test_evaluation(run_dir, search), "the search ended before the last kill"
    logs.append(tmp_path / "search-final.log")
    search = _start(searches, logs[-1], "--resume", str(run_dir))
    assert search.wait(timeout=900) == 0, logs[-1].read_text()[-3000:]
    assert reference_run.wait(timeout=900) == 0, reference_log.read_text()[-3000:]

    outputs = [log.read_text() for log in logs]
    assert "report:" in outputs[-1]
    assert not any("ended worker" in out for out in outputs)  # none outlived its search
    interrupted = [i for i in interrupted if i is not None]
    assert interrupted, "no kill landed inside a trial attempt"
    found_none = sum("no worker of the earlier run is still alive" in out for out in outputs)
    assert found_none >= len(interrupted)

    with RunStore.open(tmp_path / "reference") as reference, RunStore.open(run_dir) as drilled:
        assert all(t.state is TrialState.COMPLETE for t in drilled.trials())
        for trial_id in set(interrupted):
            assert drilled.trial(trial_id).attempts >= 2
        assert _outcomes(drilled) == _outcomes(reference)
        assert len(drilled.evaluations("test")) == FINALISTS
        _assert_paths_are_the_completing_attempts(drilled)
        for trial in drilled.trials():  # no worker of any attempt is left running
            assert process_start(trial.worker_pid) != trial.worker_start
