"""The Ray executor on a local Ray (CPU, the tiny model): two trials, the Ray worker of one killed
mid-training, which is retried as a new attempt and completes; then a finalist evaluation as a
Ray task; and Ctrl-C mid-training, which cancels the task and leaves the trial PENDING. Ray
starts once for the module (a few seconds on two cores)."""

from __future__ import annotations

import _thread
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rewardsmith.config import RunConfig, parse_config
from rewardsmith.execution_runs import process_start
from rewardsmith.store import RunStore, TrialState
from rewardsmith.training.worker import progress_path
from tests.training.conftest import tiny_config

pytest.importorskip("ray")
from rewardsmith.execution_ray import RayExecutor  # noqa: E402 - after the importorskip

pytestmark = pytest.mark.slow


def _cfg(max_steps: int = 2) -> RunConfig:
    data = tiny_config(max_steps=max_steps, per_device_train_batch_size=4).model_dump(mode="json")
    data["task"]["options"] = {"n_val": 8, "n_test": 8}
    data["search"].update(executor="ray", gpus=0, cpus_per_trial=1, max_attempts=2)
    return parse_config(data, source="ray test recipe")


@pytest.fixture(scope="module")
def executor() -> Iterator[RayExecutor]:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray_executor = RayExecutor.from_config(_cfg())
    ray_executor.init_options = {"num_cpus": 2}
    with ray_executor:
        yield ray_executor


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def _kill_ray_worker_mid_training(run_dir: Path, trial_id: int, killed: list[str]) -> None:
    """Once ``trial_id`` has trained a step, SIGKILL the Ray worker running its trial worker."""
    deadline = time.monotonic() + 300
    with RunStore.open(run_dir) as store:
        while time.monotonic() < deadline:
            trial = store.trial(trial_id)
            if trial.state in (TrialState.COMPLETE, TrialState.FAILED):
                return
            running = trial.state == TrialState.RUNNING and trial.worker_pid is not None
            if running and progress_path(run_dir, trial_id).exists():
                ray_worker = _parent(trial.worker_pid)
                killed.append(Path(f"/proc/{ray_worker}/cmdline").read_text())
                os.kill(ray_worker, signal.SIGKILL)
                return
            time.sleep(0.2)


def test_trials_survive_a_killed_ray_worker(executor: RayExecutor, tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "run", _cfg())
    first, second = store.enqueue_trial("baseline", seed=0), store.enqueue_trial("baseline", seed=1)
    killed: list[str] = []
    killer = threading.Thread(
        target=_kill_ray_worker_mid_training, args=(store.run_dir, second, killed)
    )
    killer.start()
    progress: list[tuple[int, int, int]] = []
    try:
        executor.run(store, [first, second], lambda *p: progress.append(p))
    finally:
        killer.join()

    assert killed and "_run_worker" in killed[0]  # a Ray worker running our task was killed
    for trial_id, attempts in ((first, 1), (second, 2)):
        trial = store.trial(trial_id)
        assert trial.state == TrialState.COMPLETE, trial.fail_reason
        assert trial.attempts == attempts
        result = store.result(trial_id)
        assert Path(result.adapter_path).is_dir()
        assert f"attempt-{attempts}" in result.adapter_path
    deaths = [
        json.loads(x) for x in (store.logs_dir / "worker-failures.jsonl").read_text().splitlines()
    ]
    assert [d["job"] for d in deaths] == [f"trial-{second}"]
    assert "WorkerCrashedError" in deaths[0]["status"] or "SIGKILL" in deaths[0]["status"]
    assert {p[0] for p in progress} == {first, second}
    assert [p.status for p in executor.placements if p.trial_id == first] == ["ok"]
    log = (store.logs_dir / f"trial-{second}.log").read_text()
    assert log.count("==> trial") == 2 and "Ray node" in log

    done: list[int] = []
    executor.evaluate(store, [first], "test", done.append)
    assert done == [first]
    assert store.evaluation(first, "test") is not None
    store.close()


def test_ctrl_c_cancels_the_tasks_and_leaves_the_trials_resumable(
    executor: RayExecutor, tmp_path: Path
) -> None:
    # long enough that the trial is still training when Ctrl-C comes, even on a loaded machine
    store = RunStore.create(tmp_path / "run", _cfg(max_steps=200))
    trial_id = store.enqueue_trial("baseline", seed=0)
    workers: list[int] = []

    def interrupt_once_training() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            trial = store.trial(trial_id)
            if trial.worker_pid is not None and progress_path(store.run_dir, trial_id).exists():
                workers.append(trial.worker_pid)
                _thread.interrupt_main()  # what Ctrl-C does to the search
                return
            time.sleep(0.2)

    interrupter = threading.Thread(target=interrupt_once_training)
    interrupter.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            executor.run(store, [trial_id])
    finally:
        interrupter.join()

    trial = store.trial(trial_id)
    assert trial.state == TrialState.PENDING and trial.attempt_token is None  # resumable
    deadline = time.monotonic() + 30  # the cancelled Ray worker takes the trial worker with it
    while process_start(workers[0]) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert process_start(workers[0]) is None
    assert not (store.logs_dir / "worker-failures.jsonl").exists()  # not counted as a death
    store.close()
