"""What makes ``--resume`` safe without training anything: process identities, ending an earlier
run's stray workers (never a process that merely reused a pid), one search per run directory,
and workers that refuse to run for a dead parent or a superseded attempt.

The store-backed tests run on SQLite and on PostgreSQL, whose URL reaches the worker
subprocesses only through ``REWARDSMITH_STORE_URL``, as it does in a real search."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rewardsmith.config import parse_config
from rewardsmith.execution import RunInUseError, end_stray_workers, hold_run, process_start
from rewardsmith.store import RunStore, TrialState
from rewardsmith.training.worker import ORPHANED_EXIT, STALE_EXIT
from tests._postgres import fresh_database

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunStore]:
    monkeypatch.delenv("REWARDSMITH_STORE_URL", raising=False)
    with contextlib.ExitStack() as stack:
        if request.param == "postgresql":
            monkeypatch.setenv("REWARDSMITH_STORE_URL", stack.enter_context(fresh_database()))
        config = parse_config({"name": "resume-test"})
        yield stack.enter_context(RunStore.create(tmp_path / "run", config))


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen]:
    """A live process leading its own session, like a trial worker."""
    proc = subprocess.Popen(["sleep", "120"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def _running(store: RunStore, pid: int, start: str | None, host: str | None = None) -> int:
    """A RUNNING trial whose recorded worker is ``pid`` with identity ``start``."""
    trial_id = store.enqueue_trial("baseline", seed=len(store.trials()))
    token = store.claim_trial(trial_id).attempt_token
    worker = f"{host or socket.gethostname()}:{pid}"
    store.record_worker(trial_id, token, pid=pid, start=start, worker=worker)
    return trial_id


def test_process_start_tells_processes_apart(sleeper: subprocess.Popen) -> None:
    mine = process_start(os.getpid())
    assert mine and mine == process_start(os.getpid())
    assert process_start(sleeper.pid) not in (None, mine)
    zombie = subprocess.Popen(["true"])
    time.sleep(0.5)  # exited, not yet reaped
    assert process_start(zombie.pid) is None
    zombie.wait()
    assert process_start(zombie.pid) is None


def test_a_live_stray_worker_is_ended(store: RunStore, sleeper: subprocess.Popen) -> None:
    trial_id = _running(store, sleeper.pid, process_start(sleeper.pid))
    found = end_stray_workers(store, timeout_s=10)
    assert [(s.trial_id, s.pid, s.status) for s in found] == [(trial_id, sleeper.pid, "ended")]
    assert sleeper.wait(timeout=10) == -signal.SIGKILL
    assert store.trial(trial_id).state is TrialState.RUNNING  # recovering is the search's job


def test_a_reused_pid_is_never_killed(store: RunStore, sleeper: subprocess.Popen) -> None:
    boot = process_start(sleeper.pid).split(":")[0]
    reused = _running(store, sleeper.pid, f"{boot}:1")  # same pid, another process's start time
    elsewhere = _running(store, sleeper.pid, process_start(sleeper.pid), host="other-host")
    unrecorded = store.enqueue_trial("control")
    store.claim_trial(unrecorded)  # its executor died before starting a worker
    found = {s.trial_id: s.status for s in end_stray_workers(store, timeout_s=1)}
    assert found == {reused: "gone", elsewhere: "unknown", unrecorded: "gone"}
    assert sleeper.poll() is None  # still alive


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from rewardsmith.execution import hold_run

    with hold_run(Path(sys.argv[1])):
        print("HOLDING", flush=True)
        time.sleep(120)
    """
)


def test_one_search_per_run_directory(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "HOLDING"
        with pytest.raises(RunInUseError, match=f"pid {holder.pid}"), hold_run(tmp_path):
            pass
    finally:
        holder.kill()  # kill -9: the kernel releases the lock
        holder.wait()
        holder.stdout.close()
    with hold_run(tmp_path):
        assert (tmp_path / "search.lock").read_text().strip() == str(os.getpid())


def _worker(store: RunStore, trial_id: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rewardsmith.training.worker", str(store.run_dir), str(trial_id)]
        + list(args),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_worker_whose_parent_is_gone_exits_at_once(store: RunStore) -> None:
    trial_id = store.enqueue_trial("baseline")
    token = store.claim_trial(trial_id).attempt_token
    not_my_parent = os.getpid() + 1 if os.getppid() != os.getpid() + 1 else os.getpid() + 2
    done = _worker(store, trial_id, "--token", token, "--parent-pid", str(not_my_parent))
    assert done.returncode == ORPHANED_EXIT, done.stderr
    assert store.trial(trial_id).state is TrialState.RUNNING
    assert not store.attempt_dir(trial_id, 1).exists()


def test_a_worker_of_a_superseded_attempt_writes_nothing(store: RunStore) -> None:
    trial_id = store.enqueue_trial("baseline")
    old = store.claim_trial(trial_id).attempt_token
    store.recover()
    new = store.claim_trial(trial_id).attempt_token
    done = _worker(store, trial_id, "--token", old, "--parent-pid", str(os.getpid()))
    assert done.returncode == STALE_EXIT, done.stderr
    trial = store.trial(trial_id)
    assert trial.state is TrialState.RUNNING and trial.attempt_token == new
    assert store.result(trial_id) is None and not store.attempt_dir(trial_id, 1).exists()


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_a_worker_without_the_store_url_says_which_variable_to_set(
    store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    trial_id = store.enqueue_trial("baseline")
    token = store.claim_trial(trial_id).attempt_token
    monkeypatch.delenv("REWARDSMITH_STORE_URL")
    done = _worker(store, trial_id, "--token", token, "--parent-pid", str(os.getpid()))
    assert done.returncode != 0
    assert "set REWARDSMITH_STORE_URL" in done.stderr and store.url in done.stderr
    assert store.trial(trial_id).state is TrialState.RUNNING  # it wrote nothing
