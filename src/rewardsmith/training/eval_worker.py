"""Evaluate one finished trial's policy on a split, in this process.

``python -m rewardsmith.training.eval_worker RUN_DIR TRIAL_ID SPLIT [--parent-pid P]``

The executor starts one such process per evaluation job (the finalists on test), in a slot of
its own (pinned to one GPU like a trial worker), so that a model that runs out of memory or
crashes takes only this job down, and several finalists are evaluated at once.

Contract:

* With ``--parent-pid`` the worker arms the parent-death signal first, as a trial worker does
  (:func:`rewardsmith.training.worker.die_with_parent`): it never outlives its executor.
* It evaluates the policy that the trial's COMPLETE transaction recorded and stores the
  evaluation with :func:`rewardsmith.search.test_eval.evaluate_trial` (records in a file of
  this attempt's own; the first stored evaluation wins). An evaluation already stored is kept.
* Exit status 0 when the evaluation is stored; otherwise 1, the reason in the log. The
  executor decides from the store, not from the status, whether the job is done.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rewardsmith.training.worker import die_with_parent

if TYPE_CHECKING:  # imported where used: the parent-death signal is armed before they load
    from rewardsmith.store import RunStore

log = logging.getLogger(__name__)


def evaluate_stored(store: RunStore, trial_id: int, split: str) -> None:
    """Store ``trial_id``'s evaluation on ``split`` unless there is one already."""
    from rewardsmith.config import parse_config
    from rewardsmith.search.test_eval import evaluate_trial
    from rewardsmith.tasks import get_task

    if store.evaluation(trial_id, split) is not None:
        log.info("trial %d is evaluated on %s already", trial_id, split)
        return
    trial = store.trial(trial_id)
    cfg = parse_config(trial.config, source=f"trial {trial_id}")
    task = get_task(cfg.task.name, **cfg.task.task_kwargs())
    stored = evaluate_trial(store, trial, split, task)
    log.info("trial %d on %s: accuracy %s", trial_id, split, stored.metrics.get("accuracy"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate one finished rewardsmith trial.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("trial_id", type=int)
    parser.add_argument("split", help="the task split to evaluate on, e.g. test")
    parser.add_argument("--parent-pid", type=int, help="die with this parent process")
    args = parser.parse_args(argv)
    if args.parent_pid is not None:
        die_with_parent(args.parent_pid)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("rewardsmith").setLevel(logging.INFO)  # ours, not the libraries' chatter
    from rewardsmith.store import RunStore

    store = RunStore.open(args.run_dir)
    try:
        evaluate_stored(store, args.trial_id, args.split)
    except Exception:  # noqa: BLE001 - reported to the executor by the exit status and the log
        log.exception("trial %d: evaluation on %s failed", args.trial_id, args.split)
        return 1
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
