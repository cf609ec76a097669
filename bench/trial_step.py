"""GRPO step time with the base rewards in-process vs the same rewards through the sandbox.

The sandboxed variant runs with every layer the machine provides and the training monitor on
(the default), so the figure is what a search pays.

Runs the demo recipe's GRPO steps on the embedded model: first one short untimed trial of each
variant (warms caches), then ``--repeats`` rounds of both variants, in alternating order
(in-process first in odd rounds, sandboxed first in even ones) so that drift on a noisy machine
falls on both. Both variants train the same trajectory
(same seed, same reward values), so each round compares equal work. Prints the median seconds
per step of each, the step-time ratio (target: sandboxed <= 1.05x) as the ratio of medians and
as the median of the rounds' ratios, and the reward calls' own cost per step (timed around each
call, so free of the step-to-step noise). Every sandboxed trial gets a fresh sandbox pool, as a
search trial does: its workers start while the model loads, and whatever of that start-up the
first calls still wait for is in the figures (also printed on its own).

    .venv/bin/python bench/trial_step.py [--steps 20] [--repeats 3]

``--only in-process|sandboxed`` runs one trial of one variant and prints its figures, for timing
whole processes against each other with an outside tool such as ``hyperfine``::

    hyperfine -w1 -r5 '.venv/bin/python bench/trial_step.py --only in-process' \\
        '.venv/bin/python bench/trial_step.py --only sandboxed'

Measured with ``--steps 20 --repeats 6`` (2026-12-02, a 2-core AVX-512 machine, alone on it but
noisy: rounds ranged 0.86-1.23x; every sandbox layer and the monitor on)::

     in-process:    865.5 ms/step, of which rewards   0.19 ms
      sandboxed:    870.7 ms/step, of which rewards   5.67 ms
    step-time ratio sandboxed / in-process: 1.006x of the medians; 1.019x median of the 6
    rounds' ratios (min 0.857, max 1.227)
    sandbox cost per step: 5.48 ms = 1.0063x of an in-process step (noise-free estimate)
    of the sandboxed rewards' cost, their first calls (waiting for workers started ahead,
    loading the code): 36.1 ms per trial

The same day, whole processes of ``--only sandboxed`` against ``--only in-process`` (20 steps,
six pairs in turn after a warm-up, model load and evaluation included): median wall-time ratio
1.034x (0.93-1.24x).
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


def time_trial(cfg, task, rewards, steps: int) -> tuple[float, float, float]:
    """(seconds per step, reward seconds per step, seconds of the first call of each reward)."""
    REWARD_SECONDS.clear()
    with tempfile.TemporaryDirectory() as out, SandboxPool() as pool:
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
    first = sum(REWARD_SECONDS[: len(rewards)])
    return outcome.train_seconds / steps, sum(REWARD_SECONDS) / steps, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="GRPO steps per timed trial")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of both variants")
    parser.add_argument(
        "--only",
        choices=["in-process", "sandboxed"],
        help="time one trial of this variant and exit (for whole-process timing)",
    )
    args = parser.parse_args()
    cfg = load_config(recipe_path("demo"))
    task = get_task(cfg.task.name, **cfg.task.task_kwargs())
    code = "import re\n" + render_base_rewards()
    variants = {
        "in-process": [RewardSpec(n) for n in BASE_REWARD_NAMES],
        "sandboxed": [RewardSpec(n, code) for n in BASE_REWARD_NAMES],
    }
    if args.only:
        step_s, reward_s, first_s = time_trial(cfg, task, variants[args.only], args.steps)
        print(
            f"{args.only}: {args.steps} GRPO steps, {step_s * 1000:.1f} ms/step, of which "
            f"rewards {reward_s * 1000:.2f} ms (first calls {first_s * 1000:.1f} ms)"
        )
        return
    steps: dict[str, list[float]] = {k: [] for k in variants}
    rewards: dict[str, list[float]] = {k: [] for k in variants}
    labels = list(variants)
    firsts: list[float] = []
    for label in labels:  # warm-up, untimed
        time_trial(cfg, task, variants[label], 2)
    for round_ in range(args.repeats):
        for label in labels if round_ % 2 == 0 else labels[::-1]:
            step_s, reward_s, first_s = time_trial(cfg, task, variants[label], args.steps)
            steps[label].append(step_s)
            rewards[label].append(reward_s)
            if label == "sandboxed":
                firsts.append(first_s)
    step_med = {k: statistics.median(v) for k, v in steps.items()}
    reward_med = {k: statistics.median(v) for k, v in rewards.items()}
    paired = [s / i for s, i in zip(steps["sandboxed"], steps["in-process"], strict=True)]
    print(f"demo recipe, {args.steps} GRPO steps x {args.repeats} repeats per variant")
    for label in variants:
        print(
            f"{label:>11}: {step_med[label] * 1000:8.1f} ms/step, of which rewards "
            f"{reward_med[label] * 1000:6.2f} ms  (runs: {[round(t, 3) for t in steps[label]]})"
        )
    added = reward_med["sandboxed"] - reward_med["in-process"]
    print(
        "step-time ratio sandboxed / in-process: "
        f"{step_med['sandboxed'] / step_med['in-process']:.3f}x of the medians; "
        f"{statistics.median(paired):.3f}x median of the {len(paired)} rounds' ratios "
        f"(min {min(paired):.3f}, max {max(paired):.3f})"
    )
    print(
        f"sandbox cost per step: {added * 1000:.2f} ms = "
        f"{1 + added / step_med['in-process']:.4f}x of an in-process step (noise-free estimate)"
    )
    print(
        f"of the sandboxed rewards' cost, their first calls (waiting for workers started ahead, "
        f"loading the code): {statistics.median(firsts) * 1000:.1f} ms per trial"
    )


if __name__ == "__main__":
    main()
