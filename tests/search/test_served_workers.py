"""Served trial workers (``search.reuse_workers``): one process runs trial after trial in its
slot, each trial exactly as a fresh process would run it, and a served worker that dies takes
only its current trial with it."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from rewardsmith.config import parse_config
from rewardsmith.execution import LocalProcessExecutor, make_executor
from rewardsmith.execution_serve import TrialServer
from rewardsmith.store import RunStore, TrialState
from rewardsmith.training.worker import progress_path
from tests.training.conftest import tiny_config

pytestmark = pytest.mark.slow


def _store(path: Path) -> RunStore:
    data = tiny_config(max_steps=2).model_dump(mode="json")
    data["task"]["options"] = {"n_val": 8, "n_test": 8}
    return RunStore.create(path, parse_config(data))


def _pids(store: RunStore, ids: list[int]) -> list[int]:
    return [store.trial(t).worker_pid for t in ids]


def _outcomes(store: RunStore, ids: list[int]) -> list[tuple]:
    out = []
    for t in ids:
        result = store.result(t)
        curves = {k: v for k, v in result.curves.items() if k != "_timings"}
        out.append((result.metrics["accuracy"], result.correctness, json.dumps(curves)))
    return out


def test_one_worker_serves_every_trial_of_its_slot_with_the_same_results(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    served, fresh = _store(tmp_path / "served"), _store(tmp_path / "fresh")
    ids = [s.enqueue_trial("baseline", seed=seed) for s in (served, fresh) for seed in (1, 2)]
    served_ids, fresh_ids = ids[:2], ids[2:]
    with LocalProcessExecutor(1) as executor:  # reuse_workers is the default
        executor.run(served, served_ids)
        (server,) = executor._servers.values()
        assert server.idle()  # kept for the next call
    assert server.process.poll() is not None  # closing the executor ended it
    LocalProcessExecutor(1, reuse_workers=False).run(fresh, fresh_ids)

    assert all(served.trial(t).state == TrialState.COMPLETE for t in served_ids)
    first, second = _pids(served, served_ids)
    assert first == second == server.pid
    assert len(set(_pids(fresh, fresh_ids))) == 2
    # what ran before in the process changes nothing: seeded trials give the same results
    assert _outcomes(served, served_ids) == _outcomes(fresh, fresh_ids)
    for t in served_ids:  # each trial's output goes to its own log
        text = (served.logs_dir / f"trial-{t}.log").read_text()
        assert f"==> trial {t} attempt 1" in text and "served worker" in text
    served.close()
    fresh.close()


def test_a_served_worker_killed_mid_trial_costs_only_that_attempt(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    store = _store(tmp_path / "run")
    ids = [store.enqueue_trial("baseline", seed=seed) for seed in (1, 2, 3)]
    killed: list[int] = []

    def kill_during_the_second_trial() -> None:
        while not progress_path(store.run_dir, ids[1]).exists():
            time.sleep(0.05)
        pid = RunStore.open(store.run_dir).trial(ids[1]).worker_pid
        killed.append(pid)
        os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_during_the_second_trial, daemon=True)
    killer.start()
    with make_executor(store.config()) as executor:  # reuse_workers is the default
        assert executor.reuse_workers
        executor.run(store, ids)
    killer.join(timeout=5)
    trials = [store.trial(t) for t in ids]
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert [t.attempts for t in trials] == [1, 2, 1]
    pids = _pids(store, ids)
    assert killed == [pids[0]]  # the worker of trial 1 was serving trial 2 when killed
    assert pids[1] == pids[2] != pids[0]  # a new worker took the retry and went on
    deaths = (store.run_dir / "logs" / "worker-failures.jsonl").read_text()
    assert f"trial-{ids[1]}" in deaths and "SIGKILL" in deaths
    store.close()


def test_a_worker_that_answers_out_of_turn_is_treated_as_dead(tmp_path: Path) -> None:
    """Only a broken worker answers for a trial it was not given; the executor does not trust
    it with another trial."""
    script = tmp_path / "liar.py"
    script.write_text(
        "import os, sys\n"
        "fd = int(sys.argv[sys.argv.index('--reply-fd') + 1])\n"
        "sys.stdin.readline()\n"
        "os.write(fd, b'999 0\\n')\n"
        "import time; time.sleep(60)\n"
    )
    sys_path = str(tmp_path)
    env = {**os.environ, "PYTHONPATH": sys_path}
    with (tmp_path / "log").open("ab") as log:
        server = TrialServer("liar", env, log, os.getpid())
    assert server.assign(7, ["run", "7"], str(tmp_path / "log"))
    deadline = time.monotonic() + 30
    while server.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.poll() == -signal.SIGKILL and not server.idle()
    server.close()
