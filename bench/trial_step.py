"""GRPO step time with the base rewards in-process vs the same rewards through the sandbox.

The sandboxed variant runs with every layer the machine provides and the training monitor on
(the default), so the figure is what a search pays.

Runs the demo recipe's GRPO steps on the embedded model twice per round, alternating the two
variants (in-process registry rewards, then the identical reward code in sandbox workers), and
prints the median seconds per step of each and the ratio (target: sandboxed <= 1.05x).

    .venv/bin/python bench/trial_step.py [--steps 20] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from rewardsmith.config import grpo_kwargs, load_config, lora_kwargs
from rewardsmith.export import render_base_rewards
from rewardsmith.recipes import recipe_path
from rewardsmith.rewards import BASE_REWARD_NAMES
from rewardsmith.sandbox.pool import SandboxPool
from rewardsmith.tasks import get_task
from rewardsmith.training import trial as trial_module
from rewardsmith.training.trial import RewardSpec, run_trial

REWARD_SECONDS: list[float] = []


class TimedReward:
    """Wraps a reward function and adds the wall time of each call to REWARD_SECONDS."""

    def __init__(self, func):
        self.func = func
        self.__name__ = func.__name__

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.func(*args, **kwargs)
        finally:
            REWARD_SECONDS.append(time.perf_counter() - start)


def _timed_monitored(*args, **kwargs):
    funcs, monitors = _monitor(*args, **kwargs)
    return [TimedReward(f) for f in funcs], monitors


# Measure the reward calls inside real steps, as the trainer makes them: after the training
# monitor has wrapped each sandboxed reward (its bookkeeping and periodic audits included).
_monitor = trial_module.monitor_rewards
trial_module.monitor_rewards = _timed_monitored


def time_trial(cfg, task, rewards, steps: int, pool) -> tuple[float, float]:
    REWARD_SECONDS.clear()
    with tempfile.TemporaryDirectory() as out:
        outcome = run_trial(
            model_spec=cfg.model.spec,
            task=task,
            rewards=rewards,
            grpo_args=grpo_kwargs(cfg, output_dir=f"{out}/trainer", max_steps=steps),
            lora_args=lora_kwargs(cfg),
            out_dir=out,
            pool=pool,
            eval_limit=1,
        )
    assert outcome.state == "COMPLETE", outcome.reason
    return outcome.train_seconds / steps, sum(REWARD_SECONDS) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    cfg = load_config(recipe_path("demo"))
    task = get_task(cfg.task.name, **cfg.task.task_kwargs())
    code = "import re\n" + render_base_rewards()
    variants = {
        "in-process": [RewardSpec(n) for n in BASE_REWARD_NAMES],
        "sandboxed": [RewardSpec(n, code) for n in BASE_REWARD_NAMES],
    }
    steps: dict[str, list[float]] = {k: [] for k in variants}
    rewards: dict[str, list[float]] = {k: [] for k in variants}
    with SandboxPool() as pool:
        for _ in range(args.repeats):
            for label, specs in variants.items():
                step_s, reward_s = time_trial(cfg, task, specs, args.steps, pool)
                steps[label].append(step_s)
                rewards[label].append(reward_s)
    step_med = {k: statistics.median(v) for k, v in steps.items()}
    reward_med = {k: statistics.median(v) for k, v in rewards.items()}
    print(f"demo recipe, {args.steps} GRPO steps x {args.repeats} repeats per variant")
    for label in variants:
        print(
            f"{label:>11}: {step_med[label] * 1000:8.1f} ms/step, of which rewards "
            f"{reward_med[label] * 1000:6.2f} ms  (runs: {[round(t, 3) for t in steps[label]]})"
        )
    added = reward_med["sandboxed"] - reward_med["in-process"]
    print(
        "step-time ratio sandboxed / in-process: "
        f"{step_med['sandboxed'] / step_med['in-process']:.3f}x"
    )
    print(
        f"sandbox cost per step: {added * 1000:.2f} ms = "
        f"{1 + added / step_med['in-process']:.4f}x of an in-process step (noise-free estimate)"
    )


if __name__ == "__main__":
    main()
