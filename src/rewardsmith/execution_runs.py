"""Processes of earlier runs: is a recorded worker still alive, and who holds a run directory.

For ``--resume``, :func:`end_stray_workers` ends workers of an earlier run that are somehow
still alive (recognised by pid *and* process start time, so a reused pid is never killed), and
:func:`hold_run` keeps two searches off one run directory.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rewardsmith.errors import RewardsmithError
from rewardsmith.store import RunStore, TrialState

log = logging.getLogger(__name__)

#: Held (``flock``) by the search that is running a run directory.
LOCK_FILE = "search.lock"


class RunInUseError(RewardsmithError):
    """Another live process is running a search on this run directory."""


def process_start(pid: int) -> str | None:
    """``"<boot id>:<start time>"`` of process ``pid`` (start time in clock ticks since boot,
    field 22 of ``/proc/<pid>/stat``); None when it does not exist, is a zombie, or there is no
    ``/proc``. Two processes with the same pid never have the same value."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": comm may hold spaces
    if fields[0] in ("Z", "X"):  # dead, waiting for its parent to reap it
        return None
    return f"{boot}:{fields[19]}"  # fields[0] is field 3 of the file, so field 22 is [19]


@dataclass(frozen=True)
class StrayWorker:
    """A worker recorded as running a trial when a run is resumed, and what became of it:
    ``"ended"`` (it was alive and was killed), ``"gone"`` (already dead, or never recorded:
    its executor died before starting it, so it cannot have outlived it) or ``"unknown"``
    (on another host, or without a recorded start identity: not checkable)."""

    trial_id: int
    worker: str | None
    pid: int | None
    status: str


def end_stray_workers(store: RunStore, *, timeout_s: float = 30.0) -> list[StrayWorker]:
    """Kill the still-alive workers of RUNNING trials (an earlier run's) on this host; return
    what was found for each RUNNING trial. Call it before recovering the trials, while holding
    the run (:func:`hold_run`), so that no live executor owns them.

    A worker counts as alive only when both its pid and its recorded start identity match a
    live process (see :func:`process_start`). A worker on another host cannot be checked; its
    attempt is fenced instead (recovery makes it stale, so it writes nothing).
    """
    host = socket.gethostname()
    found = []
    for trial in store.trials(state=TrialState.RUNNING):
        pid = trial.worker_pid
        if pid is None:
            found.append(StrayWorker(trial.id, trial.worker, pid, "gone"))
            continue
        if not trial.worker_start or trial.worker != f"{host}:{pid}":
            found.append(StrayWorker(trial.id, trial.worker, pid, "unknown"))
            continue
        if process_start(pid) != trial.worker_start:
            found.append(StrayWorker(trial.id, trial.worker, pid, "gone"))
            continue
        _signal_group(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout_s
        while process_start(pid) == trial.worker_start and time.monotonic() < deadline:
            time.sleep(0.05)
        log.warning("ended worker %s of trial %d, left from an earlier run", trial.worker, trial.id)
        found.append(StrayWorker(trial.id, trial.worker, pid, "ended"))
    return found


@contextmanager
def hold_run(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir`` for this process (an exclusive ``flock`` on ``search.lock``, released by
    the kernel even on ``kill -9``); :class:`RunInUseError` when another process holds it."""
    path = Path(run_dir) / LOCK_FILE
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunInUseError(
                f"run {run_dir} is in use by another search (pid {holder}); "
                "stop it or wait for it to finish, then resume"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _signal_group(pid: int, sig: int) -> None:
    """Signal the process group led by ``pid`` (workers lead their own), else ``pid`` alone."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    except PermissionError:
        log.warning("not allowed to signal worker %d", pid)


def kill_group(process: subprocess.Popen) -> None:
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()
