"""Does the feedback-driven search beat a random search at the same number of trials and seeds?

On the demo task (synthetic problems, the embedded model, the offline generator) and for each
search seed:

1. the base-rewards-only baseline is trained first, with the screening config;
2. round 1 is generated and screened once: both arms draw it from round 1's sampler with the
   same seed, so it is shared (the run store is copied after it);
3. the **feedback** arm runs rounds 2..R as the search does: the generator sees the ranked
   summary (:func:`rewardsmith.search.feedback.build_summary`, baseline deltas included); the
   **random** arm runs the same rounds with the summary hidden, so every round draws fresh
   genomes from round 1's sampler (seeded per round).

Then it prints, per arm, the best and the mean validation accuracy of its screened candidates
(all rounds, and rounds 2..R only, where the arms differ), each as a mean over seeds with a 95%
t-interval, the baseline's accuracy, and the per-seed feedback - random differences. Failed
trials count as missing and are reported. Run directories are kept under ``--out-dir``; running
the script again with the same options resumes where it stopped.

    .venv/bin/python bench/search_vs_random.py [--seeds 1 2 3] [--rounds 3] [--per-round 2] \
        [--steps 20] [--eval-limit 60] [--model embedded]

With these defaults (3 seeds x (baseline + 2 shared + 2 x 4) = 33 trials) it took 21 minutes on
the shared 2-core development machine (2026-12-02, ``OMP_NUM_THREADS=1``, ``nice -n 10``): both
arms 0.136 mean and 0.161 (feedback) / 0.172 (random) best validation accuracy against a 0.156
baseline; no difference beyond one question of 60. At this budget the benchmark is
underpowered: raise ``--steps``, ``--eval-limit`` and ``--per-round`` to resolve smaller effects.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sqlite3
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from _printer import Printer  # bench/: the scripts' directory is on sys.path

from rewardsmith.config import load_config, parse_config
from rewardsmith.execution import make_executor
from rewardsmith.generators import OfflineGenerator
from rewardsmith.recipes import recipe_path
from rewardsmith.sandbox.pool import SandboxPool
from rewardsmith.search.loop import Search
from rewardsmith.store import RunStore, build_manifest
from rewardsmith.store.run_store import SUBDIRS
from rewardsmith.tasks import get_task

ARMS = ("feedback", "random")


class RoundOneSampler:
    """The offline generator shown no feedback: every round draws from round 1's sampler."""

    name = "offline"

    def __init__(self, inner: OfflineGenerator) -> None:
        self.inner = inner
        self.rejections = inner.rejections

    def propose(self, round: int, n: int, context: Any) -> list:
        return self.inner.propose(round, n, replace(context, summary=(), rejections=()))


def bench_config(args: argparse.Namespace, seed: int) -> Any:
    data = load_config(recipe_path("demo")).model_dump(mode="json")
    data["name"] = f"search-vs-random-{seed}"
    data["seed"] = seed
    data["model"]["spec"] = args.model
    data["grpo"]["max_steps"] = args.steps
    data["eval"]["limit"] = args.eval_limit
    # Finalists are not trained here; the smallest plan keeps the config valid for any size.
    data["search"].pop("ensembles", None)
    data["search"].update(
        rounds=args.rounds,
        candidates_per_round=args.per_round,
        ensemble_sizes=[1],
        control_k=1,
        screening={"mode": "full"},  # every candidate at the full budget, as measured in README
    )
    return parse_config(data, source="bench/search_vs_random.py")


def open_store(run_dir: Path, cfg: Any, task: Any) -> RunStore:
    if (run_dir / "store.db").is_file():
        return RunStore.open(run_dir)
    manifest = build_manifest(cfg, task=task, run_id=run_dir.name)
    return RunStore.create(run_dir, cfg, manifest=manifest)


def copy_store(source: RunStore, target: Path) -> RunStore:
    """A copy of ``source``'s database in ``target`` (SQLite's online backup)."""
    target.mkdir(parents=True)
    for sub in SUBDIRS:
        (target / sub).mkdir()
    src = sqlite3.connect(source.run_dir / "store.db")
    dst = sqlite3.connect(target / "store.db")
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return RunStore.open(target)


def run_rounds(search: Search, rounds: range) -> None:
    for round_ in rounds:
        search.observer.phase(f"round {round_}")
        search.screen(search.fill_round(round_))


def run_seed(args: argparse.Namespace, seed: int, pool: Any, started: float) -> dict[str, Path]:
    """Baseline, shared round 1, then both arms' later rounds; the arms' run directories."""
    cfg = bench_config(args, seed)
    task = get_task(cfg.task.name, **cfg.task.task_kwargs())
    executor = make_executor(cfg)  # the GPU slots (search.gpus), else search.parallel CPU ones
    dirs = {arm: args.out_dir / f"seed{seed}-{arm}" for arm in ARMS}
    store = open_store(dirs["feedback"], cfg, task)
    search = Search(store, OfflineGenerator(seed=seed), executor, task,
                    observer=Printer(f"seed {seed}", started), pool=pool)  # fmt: skip
    if hasattr(search, "baseline"):  # the search trains it before round 1
        search.baseline()
    else:
        baseline = store.enqueue_trial("baseline", [], attrs={"role": "screening"})
        executor.run(store, [baseline])
        search.observer.trial_done(store.trial(baseline), store.result(baseline))
    run_rounds(search, range(1, 2))
    if not (dirs["random"] / "store.db").is_file():
        copy_store(store, dirs["random"]).close()
    run_rounds(search, range(2, args.rounds + 1))
    store.close()
    with RunStore.open(dirs["random"]) as other:
        blind = Search(other, RoundOneSampler(OfflineGenerator(seed=seed)), executor, task,
                       observer=Printer(f"seed {seed} random", started), pool=pool)  # fmt: skip
        run_rounds(blind, range(2, args.rounds + 1))
    return dirs


def arm_figures(run_dir: Path) -> dict[str, Any]:
    """Validation accuracies of the arm's screened candidates, and its baseline's."""
    with RunStore.open(run_dir) as store:
        rounds = {c.name: c.round for c in store.candidates()}
        scores, failed = [], 0
        for trial in store.trials(kind="screen"):
            result = store.result(trial.id)
            if result is None:
                failed += 1
                continue
            scores.append((rounds[trial.candidates[0]], float(result.metrics["accuracy"])))
        (base,) = [store.result(t.id) for t in store.trials(kind="baseline")]
    late = [acc for round_, acc in scores if round_ >= 2]
    every = [acc for _, acc in scores]
    return {
        "best": max(every, default=math.nan),
        "mean": statistics.fmean(every) if every else math.nan,
        "best_late": max(late, default=math.nan),
        "mean_late": statistics.fmean(late) if late else math.nan,
        "trials": len(scores) + failed,
        "failed": failed,
        "baseline": float(base.metrics["accuracy"]) if base else math.nan,
        "scores": scores,
    }


def t_interval(values: list[float]) -> str:
    """``mean [low, high]``: a 95% t-interval over seeds (just the mean for one seed)."""
    from scipy.stats import t

    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "n/a"
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.3f}"
    half = t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return f"{mean:.3f} [{mean - half:.3f}, {mean + half:.3f}]"


def report(figures: dict[int, dict[str, dict[str, Any]]]) -> str:
    seeds = sorted(figures)
    lines = [f"{'':28}" + "".join(f"{arm:>26}" for arm in ARMS)]
    labels = {
        "best": "best val acc (all rounds)",
        "mean": "mean val acc (all rounds)",
        "best_late": "best val acc (rounds 2+)",
        "mean_late": "mean val acc (rounds 2+)",
    }
    for key, label in labels.items():
        cells = [t_interval([figures[s][arm][key] for s in seeds]) for arm in ARMS]
        lines.append(f"{label:28}" + "".join(f"{c:>26}" for c in cells))
    trials = [sum(figures[s][arm]["trials"] for s in seeds) for arm in ARMS]
    failed = [sum(figures[s][arm]["failed"] for s in seeds) for arm in ARMS]
    lines.append(f"{'screened (failed)':28}" + "".join(
        f"{f'{n} ({k})':>26}" for n, k in zip(trials, failed, strict=True)))  # fmt: skip
    lines.append(f"baseline val acc (base rewards only): "
                 f"{t_interval([figures[s]['feedback']['baseline'] for s in seeds])}")  # fmt: skip
    for key in labels:
        diffs = [figures[s]["feedback"][key] - figures[s]["random"][key] for s in seeds]
        shown = ", ".join(f"{d:+.3f}" for d in diffs)
        lines.append(f"feedback - random, {labels[key]}: {t_interval(diffs)} (per seed: {shown})")
    lines.append(f"over {len(seeds)} search seeds {seeds}; 95% t-intervals over seeds")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-round", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20, help="GRPO steps per trial")
    parser.add_argument("--eval-limit", type=int, default=60, help="validation questions")
    parser.add_argument("--model", default="embedded", help="embedded or embedded:tiny")
    parser.add_argument("--out-dir", type=Path, default=Path("runs/bench-search-vs-random"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"settings: {vars(args)}", flush=True)
    figures = {}
    with SandboxPool() as pool:
        for seed in args.seeds:
            dirs = run_seed(args, seed, pool, started)
            figures[seed] = {arm: arm_figures(dirs[arm]) for arm in ARMS}
    text = report(figures)
    print(text)
    print(f"total {(time.monotonic() - started) / 60:.1f} min")
    out = args.out_dir / "results.json"
    out.write_text(json.dumps({"settings": {k: str(v) for k, v in vars(args).items()},
                               "figures": figures, "table": text}, indent=1))  # fmt: skip
    print(f"written: {out}")


if __name__ == "__main__":
    main()
