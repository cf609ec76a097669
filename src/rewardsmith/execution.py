"""Executors: how stored trials get run. The search loop only talks to :class:`Executor`.

:class:`LocalProcessExecutor` (the default) claims each trial in the store (a new attempt with
its own fencing token) and starts one ``rewardsmith.training.worker`` process for it,
``parallel`` at a time. What it guarantees, and how:

* **A worker never outlives its executor.** The worker arms ``PR_SET_PDEATHSIG`` (SIGKILL) before
  it imports anything heavy, then checks that its parent is still the executor's pid (passed on
  its command line), so a ``kill -9`` of the search takes its workers with it even when it
  lands while they start. Linux sends the signal when the *thread* that started the worker
  exits, so call :meth:`LocalProcessExecutor.run` from a thread that outlives its workers (it
  waits for them anyway).
* **A stale attempt writes nothing.** The worker passes its token with every write and checks
  it at each training step; once the trial was recovered or re-claimed it stops.
* **Each attempt has its own files** (``adapters/trial-<id>/attempt-<k>/``); the COMPLETE
  transaction records which ones count.
* **Workers that die are retried.** A worker that dies without recording its trial
  (``kill -9``, OOM killer, segfault) has its attempt released (back to PENDING) and retried,
  up to ``max_attempts`` deaths in one run of the executor; then the trial is FAILED with the
  exit status as reason. Ctrl-C kills the workers and releases their attempts, so ``--resume``
  re-runs exactly those.

For ``--resume``, :func:`end_stray_workers` ends workers of an earlier run that are somehow
still alive (recognised by pid *and* process start time, so a reused pid is never killed), and
:func:`hold_run` keeps two searches off one run directory. A distributed executor (Ray, a job
queue) implements the same one-method protocol against the same store.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from rewardsmith.errors import RewardsmithError
from rewardsmith.store import RunStore, TrialState
from rewardsmith.store.run_store import StaleAttemptError

log = logging.getLogger(__name__)

#: ``on_progress(trial_id, step, max_steps)``
ProgressFn = Callable[[int, int, int], None]
#: Held (``flock``) by the search that is running a run directory.
LOCK_FILE = "search.lock"


class RunInUseError(RewardsmithError):
    """Another live process is running a search on this run directory."""


class Executor(Protocol):
    """Runs stored trials to a final state (COMPLETE or FAILED)."""

    def run(
        self, store: RunStore, trial_ids: Sequence[int], on_progress: ProgressFn | None = None
    ) -> None: ...


@dataclass
class _Running:
    trial_id: int
    token: str
    process: subprocess.Popen
    log_file: IO[bytes]


class LocalProcessExecutor:
    """One worker process per trial on this machine, ``parallel`` at a time."""

    def __init__(self, parallel: int = 1, *, max_attempts: int = 2, poll_s: float = 0.5):
        self.parallel = max(1, parallel)
        self.max_attempts = max_attempts
        self.poll_s = poll_s

    def _spawn(self, store: RunStore, trial_id: int) -> _Running | None:
        """Claim ``trial_id`` and start its worker; None when the trial is not PENDING."""
        from rewardsmith.training.worker import progress_path

        trial = store.claim_trial(trial_id)
        if trial is None or trial.attempt_token is None:
            log.warning("trial %d is no longer PENDING; not starting it", trial_id)
            return None
        progress_path(store.run_dir, trial_id).unlink(missing_ok=True)  # an earlier attempt's
        log_file = (store.logs_dir / f"trial-{trial_id}.log").open("ab")
        cmd = [
            sys.executable,
            "-m",
            "rewardsmith.training.worker",
            str(store.run_dir),
            str(trial_id),
            "--token",
            trial.attempt_token,
            "--parent-pid",
            str(os.getpid()),
        ]
        process = subprocess.Popen(
            cmd, stdout=log_file, stderr=subprocess.STDOUT, env=self._env(), start_new_session=True
        )
        job = _Running(trial_id, trial.attempt_token, process, log_file)
        try:
            store.record_worker(
                trial_id, job.token, pid=process.pid, start=process_start(process.pid)
            )
        except StaleAttemptError:  # recovered by someone else in between: not ours any more
            _kill_group(process)
            log_file.close()
            return None
        return job

    def _env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # keep trial logs readable
        }
        # Share the cores between parallel workers: oversubscribed OpenMP threads spin and can
        # slow every trial down several-fold.
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // self.parallel)))
        return env

    def _settle(self, store: RunStore, job: _Running, deaths: dict[int, int]) -> bool:
        """After a worker exits: True when the trial needs nothing more from this executor (it
        is final, or another attempt owns it), False when it was released for a retry."""
        job.log_file.close()
        trial = store.trial(job.trial_id)
        if trial.state in (TrialState.COMPLETE, TrialState.FAILED):
            return True
        if trial.attempt_token != job.token:
            log.warning("trial %d: its attempt was taken over; leaving it", job.trial_id)
            return True
        code = job.process.returncode
        deaths[job.trial_id] = deaths.get(job.trial_id, 0) + 1
        if deaths[job.trial_id] >= self.max_attempts:
            reason = f"worker died {_describe_exit(code)} on {deaths[job.trial_id]} attempt(s)"
            try:
                store.fail_trial(job.trial_id, reason, token=job.token)
            except StaleAttemptError:
                return True
            log.warning("trial %d failed: %s", job.trial_id, reason)
            return True
        log.warning("trial %d: worker died %s; retrying", job.trial_id, _describe_exit(code))
        return not store.release_attempt(job.trial_id, job.token)

    def run(
        self, store: RunStore, trial_ids: Sequence[int], on_progress: ProgressFn | None = None
    ) -> None:
        """Run the PENDING trials among ``trial_ids`` to a final state (see the module doc)."""
        from rewardsmith.training.worker import progress_path

        queue = [t for t in trial_ids if store.trial(t).state == TrialState.PENDING]
        running: list[_Running] = []
        deaths: dict[int, int] = {}
        try:
            while queue or running:
                while queue and len(running) < self.parallel:
                    job = self._spawn(store, queue.pop(0))
                    if job is not None:
                        running.append(job)
                time.sleep(self.poll_s)
                for job in list(running):
                    if on_progress is not None:
                        _report(
                            progress_path(store.run_dir, job.trial_id), job.trial_id, on_progress
                        )
                    if job.process.poll() is None:
                        continue
                    running.remove(job)
                    if not self._settle(store, job, deaths):
                        queue.insert(0, job.trial_id)
        except BaseException:
            self._abort(store, running)
            raise

    def _abort(self, store: RunStore, running: list[_Running]) -> None:
        """Kill running workers and release their attempts (Ctrl-C, errors)."""
        for job in running:
            _kill_group(job.process)
            job.log_file.close()
            store.release_attempt(job.trial_id, job.token)


# ---------------------------------------------------------------- processes of earlier runs


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


# ---------------------------------------------------------------- helpers


def _report(path: Path, trial_id: int, on_progress: ProgressFn) -> None:
    try:
        step, max_steps = (int(x) for x in path.read_text().split())
    except (OSError, ValueError):
        return
    on_progress(trial_id, step, max_steps)


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


def _kill_group(process: subprocess.Popen) -> None:
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "(still running)"
    if code < 0:
        try:
            return f"(killed by {signal.Signals(-code).name})"
        except ValueError:
            return f"(killed by signal {-code})"
    return f"(exit code {code})"
