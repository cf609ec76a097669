"""Executors: how stored trials get run. The search loop only talks to :class:`Executor`.

:class:`LocalProcessExecutor` (the default) starts one ``rewardsmith.training.worker`` process per
trial, ``parallel`` at a time. A worker that dies without recording its trial (``kill -9``, OOM
killer, segfault) has its trial put back to PENDING and retried, up to ``max_attempts``; then
the trial is FAILED with the exit status as reason. Ctrl-C kills the workers and puts their
trials back to PENDING, so ``--resume`` re-runs exactly those. A distributed executor (Ray, a
job queue) implements the same one-method protocol against the same store.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rewardsmith.store import RunStore, TrialState

log = logging.getLogger(__name__)

#: ``on_progress(trial_id, step, max_steps)``
ProgressFn = Callable[[int, int, int], None]


class Executor(Protocol):
    """Runs stored trials to a final state (COMPLETE or FAILED)."""

    def run(
        self, store: RunStore, trial_ids: Sequence[int], on_progress: ProgressFn | None = None
    ) -> None: ...


@dataclass
class _Running:
    trial_id: int
    process: subprocess.Popen
    log_file: object


class LocalProcessExecutor:
    """One worker process per trial on this machine, ``parallel`` at a time."""

    def __init__(self, parallel: int = 1, *, max_attempts: int = 2, poll_s: float = 0.5):
        self.parallel = max(1, parallel)
        self.max_attempts = max_attempts
        self.poll_s = poll_s

    def _spawn(self, store: RunStore, trial_id: int) -> _Running:
        log_path = store.logs_dir / f"trial-{trial_id}.log"
        log_file = log_path.open("ab")
        cmd = [
            sys.executable,
            "-m",
            "rewardsmith.training.worker",
            str(store.run_dir),
            str(trial_id),
        ]
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # keep trial logs readable
        }
        # Share the cores between parallel workers: oversubscribed OpenMP threads spin and can
        # slow every trial down several-fold.
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // self.parallel)))
        process = subprocess.Popen(
            cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        return _Running(trial_id, process, log_file)

    def _settle(self, store: RunStore, job: _Running) -> bool:
        """After a worker exits: True when the trial is final, False when it was requeued."""
        job.log_file.close()
        trial = store.trial(job.trial_id)
        if trial.state in (TrialState.COMPLETE, TrialState.FAILED):
            return True
        code = job.process.returncode
        if trial.state == TrialState.RUNNING and trial.worker:
            store.recover(worker=trial.worker)
        trial = store.trial(job.trial_id)
        if trial.attempts >= self.max_attempts:
            reason = f"worker died {_describe_exit(code)} on {trial.attempts} attempt(s)"
            store.fail_trial(job.trial_id, reason)
            log.warning("trial %d failed: %s", job.trial_id, reason)
            return True
        log.warning("trial %d: worker died %s; retrying", job.trial_id, _describe_exit(code))
        return False

    def run(
        self, store: RunStore, trial_ids: Sequence[int], on_progress: ProgressFn | None = None
    ) -> None:
        from rewardsmith.training.worker import progress_path

        queue = [t for t in trial_ids if store.trial(t).state == TrialState.PENDING]
        running: list[_Running] = []
        try:
            while queue or running:
                while queue and len(running) < self.parallel:
                    running.append(self._spawn(store, queue.pop(0)))
                time.sleep(self.poll_s)
                for job in list(running):
                    if on_progress is not None:
                        _report(
                            progress_path(store.run_dir, job.trial_id), job.trial_id, on_progress
                        )
                    if job.process.poll() is None:
                        continue
                    running.remove(job)
                    if not self._settle(store, job):
                        queue.insert(0, job.trial_id)
        except BaseException:
            self._abort(store, running)
            raise

    def _abort(self, store: RunStore, running: list[_Running]) -> None:
        """Kill running workers and put their trials back to PENDING (Ctrl-C, errors)."""
        for job in running:
            _kill_group(job.process)
            job.log_file.close()
            trial = store.trial(job.trial_id)
            if trial.state == TrialState.RUNNING and trial.worker:
                store.recover(worker=trial.worker)


def _report(path: Path, trial_id: int, on_progress: ProgressFn) -> None:
    try:
        step, max_steps = (int(x) for x in path.read_text().split())
    except (OSError, ValueError):
        return
    on_progress(trial_id, step, max_steps)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
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
