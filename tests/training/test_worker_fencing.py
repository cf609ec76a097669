"""A real trial worker whose attempt is superseded while it trains stops and writes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rewardsmith.execution import process_start
from rewardsmith.store import RunStore, TrialState
from rewardsmith.training.worker import STALE_EXIT, progress_path
from tests.training.conftest import tiny_config

pytestmark = pytest.mark.slow


def test_a_superseded_worker_stops_mid_training_without_writing(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    store = RunStore.create(tmp_path / "run", tiny_config(max_steps=30))
    trial_id = store.enqueue_trial("baseline")
    old = store.claim_trial(trial_id).attempt_token
    worker = subprocess.Popen(
        [sys.executable, "-m", "rewardsmith.training.worker", str(store.run_dir), str(trial_id)]
        + ["--token", old, "--parent-pid", str(os.getpid())],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    store.record_worker(trial_id, old, pid=worker.pid, start=process_start(worker.pid))
    progress = progress_path(store.run_dir, trial_id)
    deadline = time.monotonic() + 300
    while not progress.exists() and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert progress.exists(), worker.stderr.read()[-3000:]
    # as a resumed run would: the trial is recovered and claimed by a new attempt
    assert store.recover() == [trial_id]
    new = store.claim_trial(trial_id).attempt_token
    _, err = worker.communicate(timeout=120)
    assert worker.returncode == STALE_EXIT, err[-3000:]
    assert "stopping without writing" in err
    step = int(progress.read_text().split()[0])
    assert step < 30  # it stopped mid-training, not at the end
    trial = store.trial(trial_id)
    assert trial.state is TrialState.RUNNING and trial.attempt_token == new
    assert store.result(trial_id) is None and store.reward_monitors(trial_id) == []
    assert not (store.attempt_dir(trial_id, 1) / "adapter").exists()
    store.close()
