"""The attempt and retry policy every executor follows, whatever runs its workers.

An executor (:class:`~rewardsmith.execution.LocalProcessExecutor`: a worker process per slot;
:class:`~rewardsmith.execution_ray.RayExecutor`: a Ray task per trial) owns the mechanics:
starting a worker, noticing that it ended, describing how it ended. What to run, when to claim,
release or fail a trial, and when to give up on an evaluation is decided here, against the store,
so that every executor counts deaths and bounds retries the same way:

* :func:`trials_to_run` / :func:`evaluations_to_run`: the queue of jobs.
* :func:`start_trial` / :func:`start_eval`: the checks before a job starts (deaths already used
  up fail the trial, or give the evaluation up), the claim of a new attempt, and the hand-over to
  the executor's ``submit`` (the attempt is released again when that raises).
* :func:`settle_trial` / :func:`settle_eval`: after a job ends, whether the executor is done with
  it or should queue it again; a job that ended without an outcome is counted in
  ``logs/worker-failures.jsonl`` (:class:`Failures`), so that the bound outlives the executor.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from rewardsmith.store import RunStore, TrialState
from rewardsmith.store.run_store import StaleAttemptError

log = logging.getLogger(__name__)

#: ``on_progress(trial_id, step, max_steps)``
ProgressFn = Callable[[int, int, int], None]
#: ``on_done(trial_id)``: after an evaluation was stored.
DoneFn = Callable[[int], None]
#: Under ``logs/``: one JSON line per worker that ended without an outcome.
FAILURES_FILE = "worker-failures.jsonl"
TRIAL_WORKER = "rewardsmith.training.worker"
EVAL_WORKER = "rewardsmith.training.eval_worker"

J = TypeVar("J")


@dataclass(frozen=True)
class Launch:
    """A worker to start for ``trial_id``: ``python -m <module> args`` (the executor knows the
    module and adds ``--parent-pid``), logging to ``log_path``; ``where`` names the job in the
    logs; ``token``: the trial attempt's, None for an evaluation."""

    trial_id: int
    args: list[str]
    log_path: Path
    where: str
    token: str | None = None


#: ``submit(launch)``: start the worker and return the executor's handle on it.
Submit = Callable[[Launch], J]


# ---------------------------------------------------------------- queues


def trials_to_run(store: RunStore, trial_ids: Sequence[int]) -> list[int]:
    """The PENDING trials among ``trial_ids``, in order."""
    return [t for t in trial_ids if store.trial(t).state == TrialState.PENDING]


def evaluations_to_run(store: RunStore, trial_ids: Sequence[int], split: str) -> list[int]:
    """The COMPLETE trials among ``trial_ids`` not yet evaluated on ``split`` (a trial that is
    not COMPLETE is logged and left out)."""
    queue = []
    for trial_id in trial_ids:
        if store.trial(trial_id).state != TrialState.COMPLETE:
            log.warning("trial %d is not COMPLETE: nothing to evaluate", trial_id)
        elif store.evaluation(trial_id, split) is None:
            queue.append(trial_id)
    return queue


def progress_ticker(
    store: RunStore, on_progress: ProgressFn | None
) -> Callable[[int], None] | None:
    """``tick(trial_id)``: pass a running trial's progress file on to ``on_progress``."""
    if on_progress is None:
        return None
    from rewardsmith.training.worker import progress_path

    return lambda trial_id: report_progress(
        progress_path(store.run_dir, trial_id), trial_id, on_progress
    )


# ---------------------------------------------------------------- trials


def may_start_trial(store: RunStore, trial_id: int, max_attempts: int) -> bool:
    """False (and the trial FAILED) when its workers already died ``max_attempts`` times."""
    failures = Failures(store)
    deaths = failures.count(f"trial-{trial_id}")
    if deaths >= max_attempts:  # e.g. the search died before it could record FAILED
        reason = f"{deaths} worker(s) died without an outcome: {failures.last(trial_id)}"
        fail_trial(store, trial_id, reason, None)
        return False
    return True


def start_trial(
    store: RunStore,
    trial_id: int,
    max_attempts: int,
    submit: Submit[J],
    *,
    worker: str | None = None,
) -> J | None:
    """Claim ``trial_id`` (a new attempt; ``worker`` as in
    :meth:`~rewardsmith.store.RunStore.claim_trial`) and ``submit`` its worker; None when there
    is nothing to run. The attempt is released when ``submit`` raises."""
    from rewardsmith.training.worker import progress_path

    if not may_start_trial(store, trial_id, max_attempts):
        return None
    trial = store.claim_trial(trial_id, worker=worker)
    if trial is None or trial.attempt_token is None:
        log.warning("trial %d is no longer PENDING; not starting it", trial_id)
        return None
    progress_path(store.run_dir, trial_id).unlink(missing_ok=True)  # an earlier attempt's
    launch = Launch(
        trial_id,
        [str(store.run_dir), str(trial_id), "--token", trial.attempt_token],
        store.logs_dir / f"trial-{trial_id}.log",
        f"trial {trial_id} attempt {trial.attempts}",
        trial.attempt_token,
    )
    try:
        return submit(launch)
    except BaseException:
        store.release_attempt(trial_id, trial.attempt_token)
        raise


def settle_trial(
    store: RunStore,
    trial_id: int,
    token: str | None,
    status: str,
    max_attempts: int,
    *,
    on_outcome: Callable[[str], None] | None = None,
) -> bool:
    """After the worker of attempt ``token`` ended (``status``: how): True when the trial needs
    nothing more from the executor (it is final, or another attempt owns it), False when it was
    released for a retry. A death is counted; at ``max_attempts`` deaths the trial is FAILED.
    ``on_outcome("ok")`` when the trial is final, ``on_outcome(status)`` for a death."""
    trial = store.trial(trial_id)
    if trial.state in (TrialState.COMPLETE, TrialState.FAILED):
        if on_outcome is not None:
            on_outcome("ok")
        return True
    if trial.attempt_token != token:
        log.warning("trial %d: its attempt was taken over; leaving it", trial_id)
        return True
    if on_outcome is not None:
        on_outcome(status)
    deaths = Failures(store).add(f"trial-{trial_id}", f"attempt {trial.attempts} {status}")
    if deaths >= max_attempts:
        fail_trial(store, trial_id, f"worker died {status} on {deaths} attempt(s)", token)
        return True
    log.warning("trial %d: worker died %s; retrying", trial_id, status)
    return not store.release_attempt(trial_id, token or "")


# ---------------------------------------------------------------- evaluations


def eval_log(store: RunStore, trial_id: int, split: str) -> Path:
    """The log of ``trial_id``'s evaluation jobs on ``split``."""
    return store.logs_dir / f"eval-{trial_id}-{split}.log"


def may_start_eval(store: RunStore, trial_id: int, split: str, max_attempts: int) -> bool:
    """False (logged) when the evaluation already failed ``max_attempts`` times."""
    failures = Failures(store).count(f"eval-{trial_id}-{split}")
    if failures >= max_attempts:
        log.error(
            "trial %d: evaluation on %s failed %d time(s) already; not retried (see %s)",
            *(trial_id, split, failures, eval_log(store, trial_id, split)),
        )
        return False
    return True


def start_eval(
    store: RunStore, trial_id: int, split: str, max_attempts: int, submit: Submit[J]
) -> J | None:
    """``submit`` the evaluation of ``trial_id`` on ``split``; None when it was given up."""
    if not may_start_eval(store, trial_id, split, max_attempts):
        return None
    args = [str(store.run_dir), str(trial_id), split]
    where = f"trial {trial_id} evaluation on {split}"
    return submit(Launch(trial_id, args, eval_log(store, trial_id, split), where))


def settle_eval(
    store: RunStore,
    trial_id: int,
    split: str,
    status: str,
    max_attempts: int,
    on_done: DoneFn | None,
    *,
    on_outcome: Callable[[str], None] | None = None,
) -> bool:
    """After an evaluation job ended (``status``: how): True when done with it (stored, then
    ``on_done(trial_id)``; or given up at ``max_attempts`` failures, logged), False for a retry.
    ``on_outcome`` as in :func:`settle_trial`."""
    if store.evaluation(trial_id, split) is not None:
        if on_outcome is not None:
            on_outcome("ok")
        if on_done is not None:
            on_done(trial_id)
        return True
    if on_outcome is not None:
        on_outcome(status)
    failures = Failures(store).add(f"eval-{trial_id}-{split}", f"worker {status}")
    if failures >= max_attempts:
        log.error(
            "trial %d: evaluation on %s failed %s on %d attempt(s); giving up (see %s)",
            *(trial_id, split, status, failures, eval_log(store, trial_id, split)),
        )
        return True
    log.warning("trial %d: evaluation on %s failed %s; retrying", trial_id, split, status)
    return False


# ---------------------------------------------------------------- failures


class Failures:
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


def fail_trial(store: RunStore, trial_id: int, reason: str, token: str | None) -> None:
    """Record the trial FAILED (fenced by ``token``; nothing when the attempt is stale)."""
    try:
        store.fail_trial(trial_id, reason, token=token)
    except StaleAttemptError:
        return
    log.warning("trial %d failed: %s", trial_id, reason)


# ---------------------------------------------------------------- helpers


def report_progress(path: Path, trial_id: int, on_progress: ProgressFn) -> None:
    """``on_progress(trial_id, step, max_steps)`` from a trial's progress file, if readable."""
    try:
        step, max_steps = (int(x) for x in path.read_text().split())
    except (OSError, ValueError):
        return
    on_progress(trial_id, step, max_steps)


def describe_exit(code: int | None) -> str:
    """A worker's exit status in words: ``(exit code 1)``, ``(killed by SIGKILL)``."""
    if code is None:
        return "(still running)"
    if code < 0:
        try:
            return f"(killed by {signal.Signals(-code).name})"
        except ValueError:
            return f"(killed by signal {-code})"
    return f"(exit code {code})"
