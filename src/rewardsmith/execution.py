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
same protocol against the same store; the attempt and retry policy above (what to claim, when to
release, count or fail) is shared with it in :mod:`rewardsmith.execution_policy`.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import IO, TYPE_CHECKING, Any, Protocol

from rewardsmith import execution_policy as policy
from rewardsmith.execution_gpu import describe_slot, gpu_slots, worker_env
from rewardsmith.execution_policy import (
    EVAL_WORKER,
    FAILURES_FILE,
    TRIAL_WORKER,
    DoneFn,
    Launch,
    ProgressFn,
)
from rewardsmith.execution_runs import (
    LOCK_FILE,
    RunInUseError,
    StrayWorker,
    end_stray_workers,
    hold_run,
    kill_group,
    process_start,
)
from rewardsmith.execution_serve import TrialServer, close_all
from rewardsmith.store import RunStore
from rewardsmith.store.run_store import StaleAttemptError

if TYPE_CHECKING:
    from rewardsmith.config import RunConfig

log = logging.getLogger(__name__)

__all__ = [
    "FAILURES_FILE",
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


class Executor(Protocol):
    """Runs stored trials to a final state (COMPLETE or FAILED), and evaluates finished ones."""

    def run(
        self, store: RunStore, trial_ids: Sequence[int], on_progress: ProgressFn | None = None
    ) -> None: ...

    def evaluate(
        self, store: RunStore, trial_ids: Sequence[int], split: str, on_done: DoneFn | None = None
    ) -> None:
        """Evaluate each COMPLETE trial's recorded policy on ``split`` and store the evaluation
        (as :func:`rewardsmith.search.test_eval.evaluate_trial` does; a stored one is kept);
        ``on_done(trial_id)`` after each one stored. A job that keeps failing is given up and
        logged: the trial is left without that evaluation."""
        ...

    def close(self) -> None:
        """Release what the executor holds (served workers, a Ray connection it made)."""
        ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc_info: object) -> None: ...


def make_executor(cfg: RunConfig) -> Executor:
    """The executor ``cfg.search`` asks for: :class:`LocalProcessExecutor` over the GPU slots
    (:func:`~rewardsmith.execution_gpu.gpu_slots`), or the Ray executor (``executor: ray``)."""
    search = cfg.search
    if search.executor == "ray":
        from rewardsmith.execution_ray import RayExecutor

        return RayExecutor.from_config(cfg)
    slots = gpu_slots(search)
    log.info("local executor: %d slot(s): %s", len(slots), ", ".join(map(describe_slot, slots)))
    return LocalProcessExecutor(
        slots=slots, max_attempts=search.max_attempts, reuse_workers=search.reuse_workers
    )


@dataclass
class _Job:
    """A running worker: of a trial attempt (``token``), or of an evaluation (no token)."""

    trial_id: int
    process: subprocess.Popen | TrialServer
    log_file: IO[bytes]
    slot: int
    token: str | None = None


class LocalProcessExecutor:
    """One worker process per trial (or evaluation) on this machine, one per free slot.

    ``slots``: GPU ids and CPU slots (see :func:`~rewardsmith.execution_gpu.gpu_slots`); by
    default ``parallel`` CPU slots. ``reuse_workers``: each slot keeps one served trial worker
    that runs trial after trial (:mod:`rewardsmith.execution_serve`); else one process per
    trial (evaluation jobs go to the same served workers). ``worker_module``/``eval_module`` are the
    modules run with ``python -m`` (replaceable for tests); they get the same arguments as the
    real ones.
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
        reuse_workers: bool = True,
    ):
        self.slots: list[str | None] = list(slots) if slots else [None] * max(1, parallel)
        self.reuse_workers = reuse_workers
        self._servers: dict[int, TrialServer] = {}  # slot -> its served trial worker
        weakref.finalize(self, close_all, self._servers)
        self.max_attempts = max(1, max_attempts)
        self.poll_s = poll_s
        self.worker_module = worker_module
        self.eval_module = eval_module

    # ------------------------------------------------------------ trials and evaluations

    def run(
        self, store: RunStore, trial_ids: Sequence[int], on_progress: ProgressFn | None = None
    ) -> None:
        """Run the PENDING trials among ``trial_ids`` to a final state (see the module doc)."""
        self._drive(
            store,
            policy.trials_to_run(store, trial_ids),
            lambda trial_id, slot: self._start_trial(store, trial_id, slot),
            lambda job: policy.settle_trial(
                store, job.trial_id, job.token, _exit(job), self.max_attempts
            ),
            policy.progress_ticker(store, on_progress),
        )

    def _start_trial(self, store: RunStore, trial_id: int, slot: int) -> _Job | None:
        """Claim ``trial_id`` and start its worker; None when there is nothing to run."""
        submit = partial(self._spawn, self.worker_module, slot)
        job = policy.start_trial(store, trial_id, self.max_attempts, submit)
        if job is None or job.token is None:
            return None
        try:
            store.record_worker(
                trial_id, job.token, pid=job.process.pid, start=process_start(job.process.pid)
            )
        except StaleAttemptError:  # recovered by someone else in between: not ours any more
            kill_group(job.process)
            job.log_file.close()
            return None
        return job

    def evaluate(
        self, store: RunStore, trial_ids: Sequence[int], split: str, on_done: DoneFn | None = None
    ) -> None:
        """Evaluate the trials among ``trial_ids`` not yet evaluated on ``split``, one worker
        process each (see :class:`Executor`)."""
        max_attempts = self.max_attempts
        self._drive(
            store,
            policy.evaluations_to_run(store, trial_ids, split),
            lambda trial_id, slot: policy.start_eval(
                store, trial_id, split, max_attempts, partial(self._spawn, self.eval_module, slot)
            ),
            lambda job: policy.settle_eval(
                store, job.trial_id, split, _exit(job), max_attempts, on_done
            ),
        )

    # ------------------------------------------------------------ workers and slots

    def _drive(
        self,
        store: RunStore,
        queue: list[int],
        start: Callable[[int, int], _Job | None],
        settle: Callable[[_Job], bool],
        tick: Callable[[int], None] | None = None,
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
                        tick(job.trial_id)
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

    def _spawn(self, module: str, slot: int, launch: Launch) -> _Job:
        """Start ``python -m module args --parent-pid <us>`` in ``slot``, logging to the
        launch's log (a :data:`~rewardsmith.execution_policy.Submit` once given ``module`` and
        ``slot``); a trial goes to the slot's served worker instead, with ``reuse_workers``."""
        device = describe_slot(self.slots[slot])
        log.info("%s: starting on %s", launch.where, device)
        log_file = launch.log_path.open("ab")
        env = worker_env(self.slots[slot], len(self.slots))
        try:
            kind = self._served_kind(module)
            if kind is not None:
                process: Any = self._serve(slot, env, log_file, launch, device, kind)
            else:
                log_file.write(f"==> {launch.where} on {device}\n".encode())
                log_file.flush()
                cmd = [sys.executable, "-m", module, *launch.args, "--parent-pid", str(os.getpid())]
                process = subprocess.Popen(
                    cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True
                )
        except BaseException:
            log_file.close()
            raise
        return _Job(launch.trial_id, process, log_file, slot, launch.token)

    def _served_kind(self, module: str) -> str | None:
        """``trial`` or ``eval`` when a served worker runs jobs of ``module``, else None (served
        workers off, or a replaced module: tests' stand-ins run one job per process)."""
        if not self.reuse_workers or self.worker_module != TRIAL_WORKER:
            return None
        return {TRIAL_WORKER: "trial", EVAL_WORKER: "eval"}.get(module)

    def _serve(
        self,
        slot: int,
        env: dict[str, str],
        log_file: IO[bytes],
        launch: Launch,
        device: str,
        kind: str,
    ) -> TrialServer:
        """Hand the launch to ``slot``'s served worker, started first when there is none that
        can take it (dead, or started from another thread: its parent-death signal follows the
        thread that started it)."""
        server = self._servers.get(slot)
        usable = server is not None and server.idle() and server.thread == threading.get_ident()
        if usable and self._assign(server, launch, log_file, device, kind, "served worker"):
            return server
        if server is not None:  # dead, busy elsewhere, or started from another thread
            server.close()
        server = self._servers[slot] = TrialServer(TRIAL_WORKER, env, log_file, os.getpid())
        self._assign(server, launch, log_file, device, kind, "a new served worker")
        return server  # one that cannot take it is reported dead by its poll()

    @staticmethod
    def _assign(
        server: TrialServer,
        launch: Launch,
        log_file: IO[bytes],
        device: str,
        kind: str,
        served: str,
    ) -> bool:
        log_file.write(f"==> {launch.where} on {device} ({served} {server.pid})\n".encode())
        log_file.flush()
        return server.assign(launch.trial_id, launch.args, str(launch.log_path), kind)

    def close(self) -> None:
        """End the served workers (they are also ended when the executor is collected, and die
        with this process)."""
        close_all(self._servers)

    def __enter__(self) -> LocalProcessExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _abort(self, store: RunStore, running: list[_Job]) -> None:
        """Kill running workers and release their trial attempts (Ctrl-C, errors)."""
        for job in running:
            kill_group(job.process)
            job.log_file.close()
            if job.token is not None:
                store.release_attempt(job.trial_id, job.token)


def _exit(job: _Job) -> str:
    return policy.describe_exit(job.process.returncode)
