"""Run one stored trial in this process: ``python -m rewardsmith.training.worker RUN_DIR TRIAL_ID``.

The executor starts one such process per trial, so a trial's memory, threads and sandbox
workers die with it, and a ``kill -9`` loses only the trial in flight. The worker claims the
trial (PENDING -> RUNNING), trains and evaluates it, and writes the result and COMPLETE in one
transaction, or FAILED with the reason; either way with what the reward monitors found
(:meth:`RunStore.reward_monitors`). Progress goes to ``logs/trial-<id>.progress`` as
``step max_steps`` so the parent can draw a live bar without parsing logs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from rewardsmith.config import RunConfig, grpo_kwargs, lora_kwargs, parse_config
from rewardsmith.store import RewardMonitorRecord, RunStore, Trial, TrialResult
from rewardsmith.training.trial import Method, RewardSpec, TrialOutcome, run_trial

log = logging.getLogger(__name__)


def trial_rewards(store: RunStore, trial: Trial, cfg: RunConfig) -> list[RewardSpec]:
    """The rewards a trial trains with: base rewards (unless disabled) + its candidates."""
    from rewardsmith.rewards import BASE_REWARD_NAMES

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


def execute(store: RunStore, trial: Trial, *, pool: Any = None) -> TrialOutcome:
    """Train and evaluate a claimed trial; record COMPLETE or FAILED in the store."""
    from rewardsmith.tasks import get_task

    cfg = parse_config(trial.config, source=f"trial {trial.id}")
    out_dir = store.adapters_dir / f"trial-{trial.id}"
    progress_file = progress_path(store.run_dir, trial.id)

    def report(step: int, max_steps: int) -> None:
        progress_file.write_text(f"{step} {max_steps}\n")

    task = get_task(cfg.task.name, **cfg.task.task_kwargs())
    split = cfg.eval.selection
    outcome = run_trial(
        model_spec=cfg.model.spec,
        task=task,
        rewards=trial_rewards(store, trial, cfg),
        grpo_args=grpo_kwargs(cfg, output_dir=out_dir / "trainer", seed=trial.seed),
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
        progress=report,
        method=Method(
            sft_stages=tuple(s for s in cfg.stages if s.kind == "sft"),
            objective=cfg.grpo.objective,
            oreal_eta=cfg.grpo.oreal_eta,
            oreal_one_pos_one_neg=cfg.grpo.oreal_one_pos_one_neg,
            label_free=cfg.rewards.label_free,
        ),
        monitor=cfg.rewards.monitor,
    )
    _record(store, trial.id, outcome, split)
    return outcome


def _record(store: RunStore, trial_id: int, outcome: TrialOutcome, split: str) -> None:
    """Write the trial's result and COMPLETE, or FAILED with the reason; either way with what
    its reward monitors found."""
    monitors = [
        RewardMonitorRecord(name, m["summary"], tuple(m["findings"]))
        for name, m in outcome.monitors.items()
    ]
    if outcome.state != "COMPLETE":
        store.fail_trial(trial_id, outcome.reason or "unknown failure", monitors=monitors)
        return
    curves = {k: [list(p) for p in v] for k, v in outcome.curves.items()}
    curves["_reward_failures"] = outcome.reward_failures
    curves["_timings"] = {"train_s": outcome.train_seconds, "eval_s": outcome.eval_seconds}
    store.complete_trial(
        trial_id,
        TrialResult(
            metrics={**outcome.metrics, "split": split},
            correctness=tuple(int(c) for c in outcome.correct),
            curves=curves,
            eval_path=outcome.records_path,
            adapter_path=outcome.adapter_dir,
        ),
        monitors=monitors,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one stored rewardsmith trial.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("trial_id", type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    store = RunStore.open(args.run_dir)
    try:
        trial = store.claim_trial(args.trial_id)
        if trial is None:
            log.warning("trial %d is not PENDING; nothing to do", args.trial_id)
            return 0
        try:
            execute(store, trial)
        except Exception as exc:  # noqa: BLE001 - any crash of a trial is recorded as data
            log.exception("trial %d crashed", trial.id)
            store.fail_trial(trial.id, f"{type(exc).__name__}: {exc}"[:2000])
            return 1
        return 0
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
