"""Executors: how stored trials get run. The search loop only talks to :class:`Executor`.

:class:`LocalProcessExecutor` (the default; :func:`make_executor` builds the configured one)
claims each trial in the store (a new attempt with its own fencing token) and starts one
``rewardsmith.training.worker`` process for it in a free *slot*: a GPU (``search.gpus``, each
``search.trials_per_gpu`` times, the worker pinned to it with ``CUDA_VISIBLE_DEVICES``) or, with
no GPU, one of ``search.parallel`` CPU slots (see :mod:`rewardsmith.execution_gpu`). Evaluation
jobs (:meth:`LocalProcessExecutor.evaluate`: the finalists on test) run the same way, one
``rewardsmith.training.eval_worker`` process per trial. What it guarantees, and how:

* **A worker never outlives its executor.** The worker arms ``PR_SET_PDEATHSIG`` (SIGKILL) before
  it imports anything heavy, then checks that its parent is still the executor's pid (passed on
  its command line), so a ``kill -9`` of the search takes its workers with it even when it
  lands while they start. Linux sends the signal when the *thread* that started the worker
  exits, so call the executor from a thread that outlives its workers (it waits for them).
* **A stale attempt writes nothing.** The worker passes its token with every write and checks
  it at each training step; once the trial was recovered or re-claimed it stops.
* **Each attempt has its own files** (``adapters/trial-<id>/attempt-<k>/``); the COMPLETE
  transaction records which ones count.
* **Retries are bounded, whatever the cause.** A worker that exits without recording its trial
  (it crashed at start-up, was ``kill -9``-ed or OOM-killed, segfaulted) has its attempt
  released (back to PENDING) and retried; its death is written to ``logs/worker-failures.jsonl``
  so that the count survives ``--resume``. At ``max_attempts`` deaths the trial is FAILED with
  the exit status as reason. An evaluation job that stores no evaluation is retried the same
  way, then given up (logged; the search goes on without that evaluation). Ctrl-C kills the
  workers and releases their attempts without counting them, so ``--resume`` re-runs exactly
  those; so does a ``kill -9`` of the search (its workers die with it, and resuming recovers
  their trials).

For ``--resume``, :func:`end_stray_workers` ends workers of an earlier run that are still alive
and :func:`hold_run` keeps two searches off one run directory (both in
:mod:`rewardsmith.execution_runs`). A distributed executor (Ray, a job queue) implements the
same protocol against the same store.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from rewardsmith.execution_gpu import describe_slot, gpu_slots, worker_env
from rewardsmith.execution_runs import (
    LOCK_FILE,
    RunInUseError,
    StrayWorker,
    end_stray_workers,
    hold_run,
    kill_group,
    process_start,
)
from rewardsmith.store import RunStore, TrialState
from rewardsmith.store.run_store import StaleAttemptError

if TYPE_CHECKING:
    from rewardsmith.config import RunConfig

log = logging.getLogger(__name__)

__all__ = [
    "LOCK_FILE",
    "Executor",
    "LocalProcessExecutor",
    "RunInUseError",
    "StrayWorker",
    "end_stray_workers",
    "gpu_slots",
    "hold_run",
    "make_executor",
    "process_start",
]

#: ``on_progress(trial_id, step, max_steps)``
ProgressFn = Callable[[int, int, int], None]
#: Under ``logs/``: one JSON line per worker that ended without an outcome.
FAILURES_FILE = "worker-failures.jsonl"
TRIAL_WORKER = "rewardsmith.training.worker"
EVAL_WORKER = "rewardsmith.training.eval_worker"


class Executor(Protocol):
    """Runs stored trials to a final state (COMPLETE or FAILED), and evaluates finished ones."""

    def run(
        self, store: RunStore, trial_ids: Sequence[int], on_progress: ProgressFn | None = None
    ) -> None: ...

    def evaluate(
        self,
        store: RunStore,
        trial_ids: Sequence[int],
        split: str,
        on_done: Callable[[int], None] | None = None,
    ) -> None:
        """Evaluate each COMPLETE trial's recorded policy on ``split`` and store the evaluation
        (as :func:`rewardsmith.search.test_eval.evaluate_trial` does; a stored one is kept);
        ``on_done(trial_id)`` after each one stored. A job that keeps failing is given up and
        logged: the trial is left without that evaluation."""
        ...


def make_executor(cfg: RunConfig) -> Executor:
    """The executor ``cfg.search`` asks for: :class:`LocalProcessExecutor` over the GPU slots
    (:func:`~rewardsmith.execution_gpu.gpu_slots`), or the Ray executor (``executor: ray``)."""
    search = cfg.search
    if search.executor == "ray":
        from rewardsmith.execution_ray import RayExecutor

        return RayExecutor.from_config(cfg)
    slots = gpu_slots(search)
    log.info("local executor: %d slot(s): %s", len(slots), ", ".join(map(describe_slot, slots)))
    return LocalProcessExecutor(slots=slots, max_attempts=search.max_attempts)


@dataclass
class _Job:
    """A running worker: of a trial attempt (``token``), or of an evaluation (no token)."""

    trial_id: int
    process: subprocess.Popen
    log_file: IO[bytes]
    slot: int
    token: str | None = None


class LocalProcessExecutor:
    """One worker process per trial (or evaluation) on this machine, one per free slot.

    ``slots``: GPU ids and CPU slots (see :func:`~rewardsmith.execution_gpu.gpu_slots`); by
    default ``parallel`` CPU slots. ``worker_module``/``eval_module`` are the modules run with
    ``python -m`` (replaceable for tests); they get the same arguments as the real ones.
    """

    def __init__(
        self,
        parallel: int = 1,
        *,
        slots: Sequence[str | None] | None = None,
        max_attempts: int = 2,
        poll_s: float = 0.5,
        worker_module: str = TRIAL_WORKER,
        eval_module: str = EVAL_WORKER,
    ):
        self.slots: list[str | None] = list(slots) if slots else [None] * max(1, parallel)
        self.max_attempts = max(1, max_attempts)
        self.poll_s = poll_s
        self.worker_module = worker_module
        self.eval_module = eval_module

    # ------------------------------------------------------------ trials

    def run(
        self, store: RunStore, trial_ids: Sequence[int], on_progress: ProgressFn | None = None
    ) -> None:
        """Run the PENDING trials among ``trial_ids`` to a final state (see the module doc)."""
        from rewardsmith.training.worker import progress_path

        def tick(job: _Job) -> None:
            if on_progress is not None:
                _report(progress_path(store.run_dir, job.trial_id), job.trial_id, on_progress)

        queue = [t for t in trial_ids if store.trial(t).state == TrialState.PENDING]
        self._drive(
            store,
            queue,
            lambda trial_id, slot: self._start_trial(store, trial_id, slot),
            lambda job: self._settle_trial(store, job),
            tick,
        )

    def _start_trial(self, store: RunStore, trial_id: int, slot: int) -> _Job | None:
        """Claim ``trial_id`` and start its worker; None when there is nothing to run."""
        from rewardsmith.training.worker import progress_path

        failures = _Failures(store)
        deaths = failures.count(f"trial-{trial_id}")
        if deaths >= self.max_attempts:  # e.g. the search died before it could record FAILED
            reason = f"{deaths} worker(s) died without an outcome: {failures.last(trial_id)}"
            _fail(store, trial_id, reason, None)
            return None
        trial = store.claim_trial(trial_id)
        if trial is None or trial.attempt_token is None:
            log.warning("trial %d is no longer PENDING; not starting it", trial_id)
            return None
        progress_path(store.run_dir, trial_id).unlink(missing_ok=True)  # an earlier attempt's
        args = [str(store.run_dir), str(trial_id), "--token", trial.attempt_token]
        where = f"trial {trial_id} attempt {trial.attempts}"
        try:
            log_path = store.logs_dir / f"trial-{trial_id}.log"
            job = self._spawn(self.worker_module, args, log_path, slot, where, trial_id)
        except BaseException:
            store.release_attempt(trial_id, trial.attempt_token)
            raise
        job.token = trial.attempt_token
        try:
            store.record_worker(
                trial_id, job.token, pid=job.process.pid, start=process_start(job.process.pid)
            )
        except StaleAttemptError:  # recovered by someone else in between: not ours any more
            kill_group(job.process)
            job.log_file.close()
            return None
        return job

    def _settle_trial(self, store: RunStore, job: _Job) -> bool:
        """After a trial worker exits: True when the trial needs nothing more from this executor
        (it is final, or another attempt owns it), False when it was released for a retry."""
        trial = store.trial(job.trial_id)
        if trial.state in (TrialState.COMPLETE, TrialState.FAILED):
            return True
        if trial.attempt_token != job.token:
            log.warning("trial %d: its attempt was taken over; leaving it", job.trial_id)
            return True
        status = _describe_exit(job.process.returncode)
        deaths = _Failures(store).add(f"trial-{job.trial_id}", f"attempt {trial.attempts} {status}")
        if deaths >= self.max_attempts:
            _fail(store, job.trial_id, f"worker died {status} on {deaths} attempt(s)", job.token)
            return True
        log.warning("trial %d: worker died %s; retrying", job.trial_id, status)
        return not store.release_attempt(job.trial_id, job.token)

    # ------------------------------------------------------------ evaluations

    def evaluate(
        self,
        store: RunStore,
        trial_ids: Sequence[int],
        split: str,
        on_done: Callable[[int], None] | None = None,
    ) -> None:
        """Evaluate the trials among ``trial_ids`` not yet evaluated on ``split``, one worker
        process each (see :class:`Executor`)."""
        queue = []
        for trial_id in trial_ids:
            if store.trial(trial_id).state != TrialState.COMPLETE:
                log.warning("trial %d is not COMPLETE: nothing to evaluate", trial_id)
            elif store.evaluation(trial_id, split) is None:
                queue.append(trial_id)
        self._drive(
            store,
            queue,
            lambda trial_id, slot: self._start_eval(store, trial_id, split, slot),
            lambda job: self._settle_eval(store, job, split, on_done),
        )

    def _start_eval(self, store: RunStore, trial_id: int, split: str, slot: int) -> _Job | None:
        failures = _Failures(store).count(f"eval-{trial_id}-{split}")
        if failures >= self.max_attempts:
            log.error(
                "trial %d: evaluation on %s failed %d time(s) already; not retried (see %s)",
                trial_id,
                split,
                failures,
                store.logs_dir / f"eval-{trial_id}-{split}.log",
            )
            return None
        args = [str(store.run_dir), str(trial_id), split]
        log_path = store.logs_dir / f"eval-{trial_id}-{split}.log"
        where = f"trial {trial_id} evaluation on {split}"
        return self._spawn(self.eval_module, args, log_path, slot, where, trial_id)

    def _settle_eval(
        self, store: RunStore, job: _Job, split: str, on_done: Callable[[int], None] | None
    ) -> bool:
        """After an eval worker exits: True when done with it (stored, or given up)."""
        if store.evaluation(job.trial_id, split) is not None:
            if on_done is not None:
                on_done(job.trial_id)
            return True
        status = _describe_exit(job.process.returncode)
        failures = _Failures(store).add(f"eval-{job.trial_id}-{split}", f"worker {status}")
        log_path = store.logs_dir / f"eval-{job.trial_id}-{split}.log"
        if failures >= self.max_attempts:
            log.error(
                "trial %d: evaluation on %s failed %s on %d attempt(s); giving up (see %s)",
                job.trial_id,
                split,
                status,
                failures,
                log_path,
            )
            return True
        log.warning("trial %d: evaluation on %s failed %s; retrying", job.trial_id, split, status)
        return False

    # ------------------------------------------------------------ workers and slots

    def _drive(
        self,
        store: RunStore,
        queue: list[int],
        start: Callable[[int, int], _Job | None],
        settle: Callable[[_Job], bool],
        tick: Callable[[_Job], None] | None = None,
    ) -> None:
        """Start queued jobs in free slots until every job is settled; on any error or Ctrl-C
        kill the running workers (releasing their trial attempts) and re-raise."""
        running: list[_Job] = []
        try:
            while queue or running:
                while queue and len(running) < len(self.slots):
                    job = start(queue.pop(0), self._free_slot(running))
                    if job is not None:
                        running.append(job)
                time.sleep(self.poll_s)
                for job in list(running):
                    if tick is not None:
                        tick(job)
                    if job.process.poll() is None:
                        continue
                    running.remove(job)
                    job.log_file.close()
                    if not settle(job):
                        queue.insert(0, job.trial_id)
        except BaseException:
            self._abort(store, running)
            raise

    def _free_slot(self, running: Sequence[_Job]) -> int:
        """A free slot on the least busy GPU (slots are interleaved: first come first)."""
        taken = {job.slot for job in running}
        load = Counter(self.slots[job.slot] for job in running)
        free = [i for i in range(len(self.slots)) if i not in taken]
        return min(free, key=lambda i: (load[self.slots[i]], i))

    def _spawn(
        self, module: str, args: list[str], log_path: Path, slot: int, where: str, trial_id: int
    ) -> _Job:
        """Start ``python -m module args --parent-pid <us>`` in ``slot``, logging to
        ``log_path``."""
        device = describe_slot(self.slots[slot])
        log.info("%s: starting on %s", where, device)
        log_file = log_path.open("ab")
        log_file.write(f"==> {where} on {device}\n".encode())
        log_file.flush()
        cmd = [sys.executable, "-m", module, *args, "--parent-pid", str(os.getpid())]
        env = worker_env(self.slots[slot], len(self.slots))
        try:
            process = subprocess.Popen(
                cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        except BaseException:
            log_file.close()
            raise
        return _Job(trial_id, process, log_file, slot)

    def _abort(self, store: RunStore, running: list[_Job]) -> None:
        """Kill running workers and release their trial attempts (Ctrl-C, errors)."""
        for job in running:
            kill_group(job.process)
            job.log_file.close()
            if job.token is not None:
                store.release_attempt(job.trial_id, job.token)


class _Failures:
    """Workers that ended without an outcome, per job (``trial-<id>``, ``eval-<id>-<split>``),
    kept in ``logs/worker-failures.jsonl`` so that the bound on retries outlives the executor
    (a ``--resume`` does not start the count again)."""

    def __init__(self, store: RunStore) -> None:
        self.path = store.logs_dir / FAILURES_FILE

    def _entries(self, job: str) -> list[dict]:
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return []
        entries = []
        for line in lines:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a kill: it did not count
                continue
            if isinstance(entry, dict) and entry.get("job") == job:
                entries.append(entry)
        return entries

    def count(self, job: str) -> int:
        return len(self._entries(job))

    def last(self, trial_id: int) -> str:
        entries = self._entries(f"trial-{trial_id}")
        return entries[-1]["status"] if entries else "unknown"

    def add(self, job: str, status: str) -> int:
        """Record one more failure of ``job``; return how many it has had."""
        with self.path.open("a") as out:
            out.write(json.dumps({"job": job, "status": status, "at": time.time()}) + "\n")
            out.flush()
            os.fsync(out.fileno())
        return self.count(job)


def _fail(store: RunStore, trial_id: int, reason: str, token: str | None) -> None:
    try:
        store.fail_trial(trial_id, reason, token=token)
    except StaleAttemptError:
        return
    log.warning("trial %d failed: %s", trial_id, reason)


# ---------------------------------------------------------------- helpers


def _report(path: Path, trial_id: int, on_progress: ProgressFn) -> None:
    try:
        step, max_steps = (int(x) for x in path.read_text().split())
    except (OSError, ValueError):
        return
    on_progress(trial_id, step, max_steps)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "(still running)"
    if code < 0:
        try:
            return f"(killed by {signal.Signals(-code).name})"
        except ValueError:
            return f"(killed by signal {-code})"
    return f"(exit code {code})"
