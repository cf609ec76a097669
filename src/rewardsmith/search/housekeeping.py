"""Disk housekeeping: delete the files that no later step of a search can read.

* **Superseded attempts.** Each attempt of a trial writes under its own
  ``adapters/trial-N/attempt-K`` (:meth:`~rewardsmith.store.RunStore.attempt_dir`), so a retried
  trial (a killed worker, a resumed run) leaves its earlier attempts' directories behind. Once
  the trial is finished only one is kept: the attempt whose files the store recorded (COMPLETE)
  or the last attempt (FAILED: its partial output is what explains the failure).
* **Halving checkpoints.** A rung keeps a trainer checkpoint (optimizer, scheduler and RNG state)
  beside its adapter for the next rung to continue
  (:data:`~rewardsmith.training.continuation.RESUME_DIR`). It is deleted once no rung can
  continue it: its candidate was not promoted, or the trial that continues it is COMPLETE. The
  adapter itself always stays (report, export and test evaluation read it).

Only local files are touched: the run directory and a local (shared) artifact root. Files under a
remote artifact root (``s3://``...) are left to that store's own lifecycle rules. Call
:func:`tidy` when no worker of the run is alive (the search calls it at its end, after its
trials and evaluations): a live attempt's directory is never in a finished trial's past.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from typing import Any

from rewardsmith import artifacts
from rewardsmith.store import TrialState

log = logging.getLogger(__name__)

_ATTEMPT = re.compile(r"(?:^|/)trial-(\d+)/attempt-(\d+)(?:/|$)")


def recorded_attempt(uri: str | None) -> int | None:
    """The attempt number in a recorded artifact path or URI, None when it names none.

    >>> recorded_attempt("s3://b/run/adapters/trial-4/attempt-2/adapter")
    2
    >>> recorded_attempt("/x/evals/trial-4-test.jsonl") is None
    True
    """
    match = _ATTEMPT.search(uri or "")
    return None if match is None else int(match.group(2))


def _kept_attempt(store: Any, trial: Any) -> int | None:
    """The attempt whose directory a finished trial keeps; None keeps them all (unfinished,
    or a COMPLETE trial whose recorded files name no attempt)."""
    if trial.state == TrialState.FAILED:
        return trial.attempts
    if trial.state != TrialState.COMPLETE:
        return None
    result = store.result(trial.id)
    return recorded_attempt(result.adapter_path if result else None)


def prune_attempts(store: Any) -> int:
    """Delete the directories of superseded attempts of finished trials; return how many."""
    removed = 0
    for trial in store.trials():
        keep = _kept_attempt(store, trial)
        if keep is None:
            continue
        trial_dir = store.attempt_dir(trial.id, keep).parent
        if not trial_dir.is_dir():
            continue
        for attempt in trial_dir.glob("attempt-*"):
            if attempt.name != f"attempt-{keep}" and attempt.is_dir():
                shutil.rmtree(attempt, ignore_errors=True)
                log.info("trial %d: removed superseded %s", trial.id, attempt.name)
                removed += 1
    return removed


def prune_checkpoints(store: Any) -> int:
    """Delete the halving checkpoints that no rung will continue; return how many."""
    from rewardsmith.training.continuation import RESUME_DIR

    trials = store.trials(kind="screen")
    continued = {t.attrs.get("continues") for t in trials if t.state == TrialState.COMPLETE} - {
        None
    }
    removed = 0
    for trial in trials:
        if trial.state != TrialState.COMPLETE or trial.attrs.get("rung") is None:
            continue
        if trial.attrs.get("promoted") is not False and trial.id not in continued:
            continue
        result = store.result(trial.id)
        uri = result.adapter_path if result else None
        if not uri or artifacts.is_remote(uri):
            continue
        checkpoint = Path(uri.removeprefix("file://")) / RESUME_DIR
        if checkpoint.is_dir():
            shutil.rmtree(checkpoint, ignore_errors=True)
            log.info("trial %d: removed its rung checkpoint (no rung continues it)", trial.id)
            removed += 1
    return removed


def tidy(store: Any) -> dict[str, int]:
    """Both prunings; the counts of what was removed, by kind."""
    return {"attempts": prune_attempts(store), "checkpoints": prune_checkpoints(store)}
