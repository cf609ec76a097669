"""Trials per hour through the local executor (1 and 2 slots) and the Ray executor (2 workers).

The same trials (the demo recipe's base-rewards baseline, seeds 0..N-1, ``--steps`` GRPO steps,
``--eval-limit`` validation questions) are run three times, each time into a run directory of
their own: by :class:`~rewardsmith.execution.LocalProcessExecutor` with one slot and with two
slots, a fresh worker process per trial (``reuse_workers: false``, as the Ray executor runs
them), with two slots whose served workers run trial after trial (``reuse_workers: true``, the
default), and by :class:`~rewardsmith.execution_ray.RayExecutor` on a local Ray with two CPUs
(``cpus_per_trial: 1``: two trials at a time). Printed: each variant's wall time from the first
trial started to the last one settled and its trials per hour, Ray's start-up apart (paid once
per search, not per trial), and the ratios. Each worker gets ``OMP_NUM_THREADS`` = cores /
trials at a time, so both two-at-a-time variants split the cores alike.

On the 2-core development machine, two trials at a time cannot be twice as fast as one (they
share two cores); the honest target is the Ray executor within 5% of the local executor at the
same parallelism and the same process per trial (ratio Ray 2 / local 2 >= 0.95). Served
workers / local 2 shows what paying the imports once per slot saves.

    .venv/bin/python bench/executor_scaling.py [--trials 8] [--steps 20] [--eval-limit 60] \
        [--model embedded] [--out-dir runs/bench-executor-scaling]

A check of the plumbing at a tiny size (a few minutes):

    .venv/bin/python bench/executor_scaling.py --trials 2 --steps 2 --eval-limit 8 \
        --model embedded:tiny --out-dir runs/bench-executor-tiny

Checked at that tiny size (2 trials, 2026-12-02, the 2-core machine shared with other jobs, so
the figures are noisy: local 1 was slowed by them): local 1 225.9 s, local 2 69.8 s, Ray 2 71.5 s
(+ 22.7 s starting Ray); Ray 2 / local 2 = 0.975x.

Defaults: 8 trials x 4 variants. Measured at the defaults (2026-12-02, the 2-core AVX2 machine,
alone on it; 16 minutes)::

     local 1:    82.8 trials/hour  (  347.9 s)
     local 2:   171.7 trials/hour  (  167.8 s)
    served 2:   213.7 trials/hour  (  134.7 s)
       ray 2:   166.5 trials/hour  (  173.0 s)   + 5.4 s starting Ray
    local 2 / local 1: 2.074x
    ray 2 / local 2:   0.970x  (target >= 0.95)
    served 2 / local 2: 1.245x

Each run starts afresh (the variant's run directory is replaced).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import time
from pathlib import Path

from rewardsmith.config import RunConfig, load_config, parse_config
from rewardsmith.execution import LocalProcessExecutor
from rewardsmith.recipes import recipe_path
from rewardsmith.store import RunStore, TrialState


def _config(args: argparse.Namespace) -> RunConfig:
    data = load_config(recipe_path("demo")).model_dump(mode="json")
    data["model"]["spec"] = args.model
    data["grpo"]["max_steps"] = args.steps
    data["eval"]["limit"] = args.eval_limit
    data["search"].update(gpus=0, cpus_per_trial=1, max_attempts=1)
    return parse_config(data, source="executor scaling bench")


def _trials(run_dir: Path, cfg: RunConfig, n: int) -> tuple[RunStore, list[int]]:
    shutil.rmtree(run_dir, ignore_errors=True)
    store = RunStore.create(run_dir, cfg)
    return store, [store.enqueue_trial("baseline", seed=seed) for seed in range(n)]


def _timed(executor: object, store: RunStore, trial_ids: list[int]) -> float:
    start = time.perf_counter()
    executor.run(store, trial_ids)  # type: ignore[attr-defined]
    seconds = time.perf_counter() - start
    failed = [t.id for t in store.trials() if t.state != TrialState.COMPLETE]
    if failed:
        raise SystemExit(f"trials {failed} did not complete: see {store.logs_dir}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20, help="GRPO steps per trial")
    parser.add_argument("--eval-limit", type=int, default=60, help="validation questions")
    parser.add_argument("--model", default="embedded", help="embedded or embedded:tiny")
    parser.add_argument("--out-dir", type=Path, default=Path("runs/bench-executor-scaling"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    cfg = _config(args)
    n = args.trials
    cores = len(os.sched_getaffinity(0))
    from rewardsmith.bootstrap import ensure_embedded_model

    if cfg.model.spec.startswith("embedded"):  # built once, before anything is timed
        ensure_embedded_model(cfg.model.spec.partition(":")[2] or "default")

    seconds: dict[str, float] = {}
    variants = (("local 1", 1, False), ("local 2", 2, False), ("served 2", 2, True))
    for label, parallel, reuse in variants:
        store, ids = _trials(args.out_dir / label.replace(" ", "-"), cfg, n)
        executor = LocalProcessExecutor(parallel, max_attempts=1, reuse_workers=reuse)
        with store, executor:
            seconds[label] = _timed(executor, store, ids)
        print(f"{label}: {seconds[label]:.1f} s", flush=True)

    from rewardsmith.execution_ray import RayExecutor

    store, ids = _trials(args.out_dir / "ray-2", cfg, n)
    with store, RayExecutor.from_config(cfg) as ray_executor:
        ray_executor.init_options = {"num_cpus": 2}
        start = time.perf_counter()
        ray_executor.connect()
        startup = time.perf_counter() - start
        seconds["ray 2"] = _timed(ray_executor, store, ids)
    print(f"ray 2: {seconds['ray 2']:.1f} s (+ {startup:.1f} s starting Ray)", flush=True)

    print(
        f"\n{n} trials of the demo recipe on {cfg.model.spec}, {args.steps} GRPO steps, "
        f"{args.eval_limit} validation questions; {cores} cores"
    )
    per_hour = {k: n * 3600 / v for k, v in seconds.items()}
    for label, rate in per_hour.items():
        print(f"{label:>8}: {rate:7.1f} trials/hour  ({seconds[label]:7.1f} s)")
    print(f"local 2 / local 1: {per_hour['local 2'] / per_hour['local 1']:.3f}x")
    print(f"ray 2 / local 2:   {per_hour['ray 2'] / per_hour['local 2']:.3f}x  (target >= 0.95)")
    print(f"ray 2 / local 1:   {per_hour['ray 2'] / per_hour['local 1']:.3f}x")
    print(f"served 2 / local 2: {per_hour['served 2'] / per_hour['local 2']:.3f}x")


if __name__ == "__main__":
    main()
