"""Run one stored trial in this process.

``python -m rewardsmith.training.worker RUN_DIR TRIAL_ID [--token T --parent-pid P]``

The executor claims the trial (a new attempt with token ``T``) and starts one such process per
trial, so a trial's memory, threads and sandbox workers die with it, and a ``kill -9`` loses only
the trial in flight; or, with ``search.reuse_workers``, one ``--serve`` process per slot that runs
trial after trial (:mod:`rewardsmith.training.serve`). Without ``--token`` the worker claims the
trial itself (PENDING -> RUNNING).

Contract:

* With ``--parent-pid`` the worker arms a parent-death signal (SIGKILL) before importing
  anything heavy, and exits at once (status :data:`ORPHANED_EXIT`) when its parent is no longer
  ``P``: a worker never outlives the executor that started it.
* It trains and evaluates the trial into the attempt's own directory
  (:meth:`RunStore.attempt_dir`), and writes the result and COMPLETE in one transaction, or
  FAILED with the reason; either way with what the reward monitors found
  (:meth:`RunStore.reward_monitors`). Every write passes the attempt's token.
* At each training step it checks that its attempt is still the trial's current one; once it
  is not (the run was resumed elsewhere and the trial recovered), it stops and exits with
  :data:`STALE_EXIT`, having written nothing to the store.

Progress goes to ``logs/trial-<id>.progress`` as ``step max_steps`` so the parent can draw a live
bar without parsing logs.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: the parent-death signal is armed before they load
    from rewardsmith.config import RunConfig
    from rewardsmith.store import RunStore, Trial
    from rewardsmith.training.trial import RewardSpec, TrialOutcome

log = logging.getLogger(__name__)

#: Exit status of a worker whose parent died before its parent-death signal was armed.
ORPHANED_EXIT = 75
#: Exit status of a worker whose attempt stopped being current: it wrote nothing.
STALE_EXIT = 76
_PR_SET_PDEATHSIG = 1


class AttemptSuperseded(BaseException):  # noqa: N818 - a stop signal, not an error
    """Raised inside training when the attempt is no longer current. A BaseException, like
    KeyboardInterrupt, so that no ``except Exception`` on the way turns it into a result."""


def die_with_parent(expected_parent: int) -> None:
    """SIGKILL this process when its parent dies; exit now if the parent is already gone.

    Armed after the parent may have died, the signal would never come (the worker was
    re-parented), hence the ``getppid()`` check afterwards. Without ``prctl`` (not Linux) only
    the check is done.
    """
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            log.warning("cannot arm the parent-death signal: errno %d", ctypes.get_errno())
    except (OSError, AttributeError) as exc:
        log.warning("cannot arm the parent-death signal: %s", exc)
    if os.getppid() != expected_parent:
        os._exit(ORPHANED_EXIT)


def trial_rewards(store: RunStore, trial: Trial, cfg: RunConfig) -> list[RewardSpec]:
    """The rewards a trial trains with: base rewards (unless disabled) + its candidates."""
    from rewardsmith.rewards import BASE_REWARD_NAMES
    from rewardsmith.training.trial import RewardSpec

    weights = {**cfg.rewards.weights, **trial.weights}
    builtin = list(BASE_REWARD_NAMES) if cfg.rewards.use_base_rewards else []
    builtin += [n for n in cfg.rewards.builtin if n not in builtin]
    specs = [RewardSpec(n, None, weights.get(n, 1.0)) for n in builtin]
    for name in trial.candidates:
        candidate = store.get_candidate(name)
        specs.append(RewardSpec(name, candidate.code, weights.get(name, 1.0)))
    return specs


def progress_path(run_dir: Path, trial_id: int) -> Path:
    return run_dir / "logs" / f"trial-{trial_id}.progress"


def _progress(store: RunStore, trial: Trial, stop_at: int | None = None) -> Any:
    """The per-step callback: stop a superseded attempt, else write the progress file (a
    halving rung that stops at ``stop_at`` of a longer schedule reports ``step/stop_at``)."""
    token = trial.attempt_token
    progress_file = progress_path(store.run_dir, trial.id)

    def report(step: int, max_steps: int) -> None:
        if token is not None and not store.attempt_is_current(trial.id, token):
            raise AttemptSuperseded(f"trial {trial.id}: attempt {trial.attempts} superseded")
        progress_file.write_text(f"{step} {min(max_steps, stop_at or max_steps)}\n")

    return report


def execute(store: RunStore, trial: Trial, *, pool: Any = None) -> TrialOutcome:
    """Train and evaluate a claimed trial; record COMPLETE or FAILED in the store, for the
    trial's current attempt only (:class:`StaleAttemptError` when it is not current)."""
    from rewardsmith.config import grpo_kwargs, lora_kwargs, parse_config
    from rewardsmith.tasks import get_task
    from rewardsmith.training.continuation import plan
    from rewardsmith.training.trial import Method, run_trial

    cfg = parse_config(trial.config, source=f"trial {trial.id}")
    run = plan(store, trial, cfg.grpo.max_steps)  # a halving rung: part of a longer run
    out_dir = store.attempt_dir(trial.id, trial.attempts)
    task = get_task(cfg.task.name, **cfg.task.task_kwargs())
    split = cfg.eval.selection
    outcome = run_trial(
        model_spec=cfg.model.spec,
        task=task,
        rewards=trial_rewards(store, trial, cfg),
        grpo_args=grpo_kwargs(
            cfg, output_dir=out_dir / "trainer", seed=trial.seed, max_steps=run.max_steps
        ),
        lora_args=lora_kwargs(cfg),
        out_dir=out_dir,
        pool=pool,
        reward_timeout_s=cfg.rewards.timeout_s,
        failure_threshold=cfg.rewards.failure_threshold,
        eval_split=split,
        eval_limit=cfg.eval.limit if split != "test" else None,
        eval_batch_size=cfg.eval.batch_size,
        eval_max_new_tokens=cfg.eval.max_new_tokens,
        extraction=cfg.eval.extraction,
        progress=_progress(store, trial, run.stop_at),
        method=Method(
            sft_stages=tuple(s for s in cfg.stages if s.kind == "sft"),
            objective=cfg.grpo.objective,
            oreal_eta=cfg.grpo.oreal_eta,
            oreal_one_pos_one_neg=cfg.grpo.oreal_one_pos_one_neg,
            label_free=cfg.rewards.label_free,
        ),
        monitor=cfg.rewards.monitor,
        eval_backend=cfg.eval.backend,
        eval_gpu_memory=cfg.eval.gpu_memory_utilization,
        stop_at=run.stop_at,
        resume_from=run.resume_from,
    )
    outcome.curves = run.whole_curves(outcome.curves)
    _record(store, trial, outcome, split)
    return outcome


def _record(store: RunStore, trial: Trial, outcome: TrialOutcome, split: str) -> None:
    """Write the trial's result and COMPLETE, or FAILED with the reason; either way with what
    its reward monitors found, and only while ``trial``'s attempt is current."""
    from rewardsmith.search.compute import (
        COMPUTE_KEY,
        compute_record,
        cuda_devices_used,
        trained_steps,
    )
    from rewardsmith.store import RewardMonitorRecord, TrialResult

    monitors = [
        RewardMonitorRecord(name, m["summary"], tuple(m["findings"]))
        for name, m in outcome.monitors.items()
    ]
    token = trial.attempt_token
    if outcome.state != "COMPLETE":
        reason = outcome.reason or "unknown failure"
        store.fail_trial(trial.id, reason, monitors=monitors, token=token)
        return
    curves = {k: [list(p) for p in v] for k, v in outcome.curves.items()}
    curves["_reward_failures"] = outcome.reward_failures
    curves[COMPUTE_KEY] = compute_record(
        trained_steps(trial, _continued(store, trial)),
        outcome.train_seconds,
        outcome.eval_seconds,
        gpu_devices=cuda_devices_used(),
    )
    store.complete_trial(
        trial.id,
        TrialResult(
            metrics={**outcome.metrics, "split": split},
            correctness=tuple(int(c) for c in outcome.correct),
            curves=curves,
            eval_path=outcome.records_path,
            adapter_path=outcome.adapter_dir,
        ),
        monitors=monitors,
        token=token,
    )


def _continued(store: RunStore, trial: Trial) -> Trial | None:
    """The trial whose run ``trial`` continues (a halving rung), or None."""
    continues = trial.attrs.get("continues")
    return store.trial(continues) if isinstance(continues, int) else None


def _attempt(store: RunStore, trial_id: int, token: str | None) -> Trial | None:
    """The attempt to run: ``token``'s when it is current, else a fresh claim (no token)."""
    from rewardsmith.execution import process_start

    if token is None:
        trial = store.claim_trial(trial_id)
        if trial is not None and trial.attempt_token is not None:
            pid = os.getpid()
            store.record_worker(trial_id, trial.attempt_token, pid=pid, start=process_start(pid))
        return trial
    trial = store.trial(trial_id)
    return trial if store.attempt_is_current(trial_id, token) else None


def _run(store: RunStore, trial_id: int, token: str | None) -> int:
    from rewardsmith.store.run_store import StaleAttemptError

    trial = _attempt(store, trial_id, token)
    if trial is None:
        log.warning("trial %d: no current attempt to run (not PENDING, or superseded)", trial_id)
        return 0 if token is None else STALE_EXIT
    try:
        execute(store, trial)
    except (AttemptSuperseded, StaleAttemptError) as exc:
        log.warning("trial %d: stopping without writing: %s", trial.id, exc)
        return STALE_EXIT
    except Exception as exc:  # noqa: BLE001 - any crash of a trial is recorded as data
        log.exception("trial %d crashed", trial.id)
        reason = f"{type(exc).__name__}: {exc}"[:2000]
        try:
            store.fail_trial(trial.id, reason, token=trial.attempt_token)
        except StaleAttemptError:
            return STALE_EXIT
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one stored rewardsmith trial.")
    parser.add_argument("run_dir", type=Path, nargs="?")
    parser.add_argument("trial_id", type=int, nargs="?")
    parser.add_argument("--token", help="the attempt's token (the executor claimed the trial)")
    parser.add_argument("--parent-pid", type=int, help="die with this parent process")
    parser.add_argument(
        "--serve", action="store_true", help="run the trials given on stdin, one after another"
    )
    parser.add_argument("--reply-fd", type=int, help="with --serve: where to answer each trial")
    args = parser.parse_args(argv)
    if args.serve != (args.run_dir is None) or (args.serve and args.reply_fd is None):
        parser.error("give RUN_DIR TRIAL_ID, or --serve with --reply-fd")
    if args.parent_pid is not None:
        die_with_parent(args.parent_pid)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.serve:
        from rewardsmith.training.serve import serve

        return serve(args.reply_fd, _run)
    from rewardsmith.store import RunStore

    store = RunStore.open(args.run_dir)
    try:
        return _run(store, args.trial_id, args.token)
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
