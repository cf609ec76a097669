"""Does successive halving pick the same leaders as full screening, for fewer GRPO steps?

On the demo task (synthetic problems, the embedded model) with one fixed pool of offline
candidates (generated and validated once, round 1 of the offline generator), three screening
protocols are compared, each repeated for several seeds of the whole procedure:

* **reference**: every candidate trained for the full screening budget (``--steps``) with every
  procedure seed, ranked by its mean validation accuracy over those seeds: the best estimate of
  the true order that this budget can buy;
* **paper** (arXiv 2605.02073's protocol): every candidate at the full budget, one seed, ranked by
  validation accuracy. For procedure seed s its runs *are* the reference's seed-s runs (shared,
  not re-trained), so the paper protocol is compared with a reference that contains its own runs:
  its agreement is optimistic;
* **halving**: ``search.screening.mode: halving`` with its default settings (eta, rungs, seeds at
  the top), run by the search's own screening step after the screening baseline, and ranked by
  the search's noise-aware ranking (:func:`rewardsmith.search.ranking.rank_candidates`). Its
  trials are trained anew in a run directory of their own (nothing shared with the reference).

Printed per protocol: GRPO steps per procedure (the screening baseline, which every search
trains, is left out and shown apart) and their ratio to the paper protocol's; how many of the
reference top-3 its top 3 contain (mean and range over procedure seeds); Kendall's tau-b between
its full order and the reference's (scipy); and the trials' summed wall time. The target: halving
selects at least as many of the reference top-3 as the paper protocol with at most 50% of its
steps. Run directories are kept under ``--out-dir``; running again with the same options (and
the same rewardsmith: trials are matched by their config's hash, so a new config field means
new trials) resumes; ``--measure-only`` prints the table from them without training.

    OMP_NUM_THREADS=1 .venv/bin/python bench/screening_efficiency.py [--pool 12] [--steps 27] \
        [--repeats 3] [--eval-limit 100] [--preset default] [--parallel 2]

A check of the plumbing at a tiny size (the tiny model learns nothing; minutes):

    .venv/bin/python bench/screening_efficiency.py --pool 4 --steps 4 --repeats 1 --preset tiny \
        --eval-limit 8 --out-dir runs/bench-screening-tiny

Defaults (the size chosen for the 2-core machine): 12 candidates, a 27-step budget, 100
validation questions, procedure seeds 1..3, two trials at a time. Halving's defaults (eta 3, three
rungs) then train rungs of 3, 9 and 27 steps for 12, 4 and 2 candidates: 18 trials and 96 GRPO
steps per procedure seed against the paper protocol's 12 trials and 324 steps (0.30 of them);
with the reference's 36 trials and one screening baseline per seed, 93 trials in all.

Measured at these defaults (2026-12-02, the 2-core AVX2 machine, 46 minutes; trials ran in a
fresh process each, and other test runs shared the machine during halving seeds 1 and 2, which
inflates halving's wall time; one reference run, r1_refl_band_rep_consist seed 2, was FAILED by
the training monitor and counts as accuracy 0)::

    protocol    GRPO steps  vs paper        top-3 hits             Kendall tau   trial wall time
    reference          945      3.00 3.00 [3.00, 3.00]       1.00 [1.00, 1.00]          41.7 min
    paper              315      1.00 2.00 [1.00, 3.00]       0.56 [0.37, 0.68]          13.9 min
    halving             96      0.30 2.00 [2.00, 2.00]       0.54 [0.22, 0.71]          12.3 min

Halving meets the target (as many of the reference top 3 as the paper protocol, 2 of 3 on
average and never fewer than 2, for 0.30 of its GRPO steps) with the same rank agreement. Its
wall time falls far less than its steps (0.88x) because it runs 18 trials per seed against 12,
and on a CPU each trial pays ~12 s of process start and imports plus a 100-question evaluation:
served workers (``search.reuse_workers``, added after this run) remove most of the first.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import time
from pathlib import Path
from typing import Any

from _printer import Printer  # bench/: the scripts' directory is on sys.path

from rewardsmith.config import load_config, parse_config
from rewardsmith.execution import make_executor
from rewardsmith.generators import OfflineGenerator
from rewardsmith.recipes import recipe_path
from rewardsmith.sandbox.pool import SandboxPool
from rewardsmith.search.compute import store_compute, summarize
from rewardsmith.search.loop import Search
from rewardsmith.search.ranking import rank_candidates
from rewardsmith.store import RunStore, TrialState, build_manifest
from rewardsmith.tasks import get_task

PROTOCOLS = ("reference", "paper", "halving")
TOP = 3


def bench_config(args: argparse.Namespace, *, seed: int, halving: bool) -> Any:
    data = load_config(recipe_path("demo")).model_dump(mode="json")
    data["name"] = f"screening-{'halving' if halving else 'full'}-{seed}"
    data["seed"] = seed
    data["model"]["spec"] = "embedded" if args.preset == "default" else f"embedded:{args.preset}"
    data["grpo"]["max_steps"] = args.steps
    data["eval"]["limit"] = args.eval_limit
    data["search"].pop("ensembles", None)  # no finalists here; the smallest plan stays valid
    data["search"].update(
        rounds=1,
        candidates_per_round=args.pool,
        ensemble_sizes=[1],
        control_k=1,
        parallel=args.parallel,
        screening={"mode": "halving" if halving else "full"},
    )
    return parse_config(data, source="bench/screening_efficiency.py")


def open_store(run_dir: Path, cfg: Any, task: Any) -> RunStore:
    if (run_dir / "store.db").is_file():
        return RunStore.open(run_dir)
    manifest = build_manifest(cfg, task=task, run_id=run_dir.name)
    return RunStore.create(run_dir, cfg, manifest=manifest)


def run_reference(args: argparse.Namespace, pool: Any, started: float) -> list[str]:
    """The candidate pool (round 1 of the offline generator), each trained at the full budget
    with every procedure seed."""
    cfg = bench_config(args, seed=args.seeds[0], halving=False)
    task = get_task(cfg.task.name, **cfg.task.task_kwargs())
    executor = make_executor(cfg)
    with open_store(args.out_dir / "reference", cfg, task) as store:
        search = Search(store, OfflineGenerator(seed=args.pool_seed), executor, task,
                        observer=Printer("reference", started), pool=pool)  # fmt: skip
        names = search.fill_round(1, args.pool)
        if len(names) < args.pool:
            raise SystemExit(f"only {len(names)} of {args.pool} candidates passed validation")
        ids = [store.enqueue_trial("screen", [n], seed=s) for s in args.seeds for n in names]
        pending = [i for i in ids if store.trial(i).state == TrialState.PENDING]
        executor.run(store, pending)
        for trial_id in pending:
            search.observer.trial_done(store.trial(trial_id), store.result(trial_id))
    return names


def run_halving(args: argparse.Namespace, seed: int, names: list[str], pool: Any,
                started: float) -> Path:  # fmt: skip
    """The search's screening baseline, then halving over the same pool with seed ``seed``."""
    cfg = bench_config(args, seed=seed, halving=True)
    task = get_task(cfg.task.name, **cfg.task.task_kwargs())
    run_dir = args.out_dir / f"halving-seed{seed}"
    with RunStore.open(args.out_dir / "reference") as ref, open_store(run_dir, cfg, task) as store:
        verdicts = ref.verdicts()
        for name in names:
            store.add_candidate(ref.get_candidate(name), verdict=verdicts.get(name))
        search = Search(store, OfflineGenerator(seed=args.pool_seed), make_executor(cfg), task,
                        observer=Printer(f"halving seed {seed}", started), pool=pool)  # fmt: skip
        search.baseline()
        search.screen(names)
        if not any(t.attrs.get("rung") for t in store.trials(kind="screen")):
            raise SystemExit("no trial above rung 0: is search.screening.mode halving wired?")
    return run_dir


def accuracies(store: RunStore, seed: int | None = None) -> dict[str, list[float]]:
    """Validation accuracy of each candidate's full-budget screen trials (of ``seed`` only).

    A FAILED run (a crash, or the training monitor caught the reward hacking) counts as
    accuracy 0: the search ranks a failed candidate last too."""
    out: dict[str, list[float]] = {}
    for trial in store.trials(kind="screen"):
        if seed is not None and trial.seed != seed:
            continue
        if trial.state not in (TrialState.COMPLETE, TrialState.FAILED):
            continue
        result = store.result(trial.id)
        acc = 0.0 if result is None else float(result.metrics.get("accuracy", 0.0))
        out.setdefault(trial.candidates[0], []).append(acc)
    return out


def order(scores: dict[str, float]) -> list[str]:
    """Names best first (missing scores last, ties by name)."""
    return sorted(scores, key=lambda n: (math.isnan(scores[n]), -scores[n], n))


def agreement(ranked: list[str], reference: dict[str, float]) -> tuple[int, float]:
    """(how many of the reference top 3 are in ``ranked``'s top 3, Kendall's tau-b between
    ``ranked``'s order and the reference's mean accuracies, whose ties tau-b accounts for)."""
    from scipy.stats import kendalltau

    hits = len(set(ranked[:TOP]) & set(order(reference)[:TOP]))
    position = {name: i for i, name in enumerate(ranked)}
    names = sorted(reference)
    tau = kendalltau([-reference[n] for n in names], [position[n] for n in names]).statistic
    return hits, float(tau)


def trial_cost(store: RunStore, trial_ids: list[int]) -> tuple[int, float]:
    summary = summarize(store_compute(store, trial_ids=trial_ids))
    return summary.total.steps, summary.total.wall_s


def measure(args: argparse.Namespace, names: list[str], halving_dirs: dict[int, Path]) -> dict:
    """Steps, wall time, top-3 hits and Kendall tau of every protocol and procedure seed."""
    figures: dict[str, dict[int, dict[str, Any]]] = {p: {} for p in PROTOCOLS}
    with RunStore.open(args.out_dir / "reference") as ref:
        means = {n: statistics.fmean(v) for n, v in accuracies(ref).items() if n in names}
        reference = order(means)
        screens = [t for t in ref.trials(kind="screen") if t.state == TrialState.COMPLETE]
        steps, wall = trial_cost(ref, [t.id for t in screens])
        for seed in args.seeds:
            figures["reference"][seed] = {"steps": steps, "wall_s": wall, "hits": TOP, "tau": 1.0}
            one = {n: v[0] for n, v in accuracies(ref, seed).items() if n in names}
            ids = [t.id for t in screens if t.seed == seed]
            hits, tau = agreement(order(one), means)
            steps_s, wall_s = trial_cost(ref, ids)
            figures["paper"][seed] = {"steps": steps_s, "wall_s": wall_s, "hits": hits,
                                      "tau": tau, "top": order(one)[:TOP]}  # fmt: skip
    for seed, run_dir in halving_dirs.items():
        with RunStore.open(run_dir) as store:
            ranked = [r.name for r in rank_candidates(store)]
            ids = [t.id for t in store.trials(kind="screen")]
            base = [t.id for t in store.trials(kind="baseline")]
            hits, tau = agreement(ranked, means)
            steps, wall = trial_cost(store, ids)
            figures["halving"][seed] = {"steps": steps, "wall_s": wall, "hits": hits, "tau": tau,
                                        "top": ranked[:TOP], "trials": len(ids),
                                        "baseline_steps": trial_cost(store, base)[0]}  # fmt: skip
    return {"reference_order": reference, "reference_accuracy": means, "figures": figures}


def spread(values: list[float], digits: int) -> str:
    """``mean [min, max]`` over procedure seeds."""
    mean = statistics.fmean(values)
    return f"{mean:.{digits}f} [{min(values):.{digits}f}, {max(values):.{digits}f}]"


def report(result: dict, seeds: list[int]) -> str:
    figures = result["figures"]
    paper_steps = statistics.fmean(figures["paper"][s]["steps"] for s in seeds)
    head = f"{'protocol':10}{'GRPO steps':>12}{'vs paper':>10}{'top-3 hits':>18}"
    lines = [head + f"{'Kendall tau':>24}{'trial wall time':>18}"]
    for name in PROTOCOLS:
        rows = [figures[name][s] for s in seeds]
        steps = statistics.fmean(r["steps"] for r in rows)
        wall = statistics.fmean(r["wall_s"] for r in rows) / 60
        cells = [f"{steps:12.0f}", f"{steps / paper_steps:10.2f}"]
        cells.append(f"{spread([r['hits'] for r in rows], 2):>18}")
        cells.append(f"{spread([r['tau'] for r in rows], 2):>24}")
        lines.append(f"{name:10}" + "".join(cells) + f"{wall:14.1f} min")
    top = ", ".join(result["reference_order"][:TOP])
    lines.append(f"reference top {TOP}: {top} (mean val accuracy over seeds {seeds})")
    for seed in seeds:
        p, h = figures["paper"][seed], figures["halving"][seed]
        lines.append(
            f"seed {seed}: paper top {TOP} {p['top']}; halving top {TOP} {h['top']} "
            f"({h['trials']} trials; baseline {h['baseline_steps']} steps apart)"
        )
    lines.append(
        "steps and wall time per procedure seed (mean over seeds); the reference's are its whole "
        "cost, the same for every seed. The paper protocol's runs are the reference's seed-s "
        "runs (shared), so its agreement with the reference is optimistic. Target: halving hits "
        ">= paper hits with <= 0.50 of its steps."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=12, help="candidates in the fixed pool")
    parser.add_argument("--steps", type=int, default=27, help="full screening budget")
    parser.add_argument("--repeats", type=int, default=3, help="procedure seeds 1..N")
    parser.add_argument("--eval-limit", type=int, default=100, help="validation questions")
    parser.add_argument("--preset", default="default", help="embedded model preset (or tiny)")
    parser.add_argument("--parallel", type=int, default=2, help="trials at a time")
    parser.add_argument("--pool-seed", type=int, default=0, help="offline generator seed")
    parser.add_argument("--out-dir", type=Path, default=Path("runs/bench-screening-efficiency"))
    parser.add_argument(
        "--measure-only", action="store_true", help="train nothing: the table from --out-dir"
    )
    args = parser.parse_args()
    args.seeds = list(range(1, args.repeats + 1))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.measure_only:
        with RunStore.open(args.out_dir / "reference") as ref:
            names = [n for n, v in ref.verdicts(1).items() if (v or {}).get("accepted")]
        dirs = {seed: args.out_dir / f"halving-seed{seed}" for seed in args.seeds}
        print(report(measure(args, names, dirs), args.seeds))
        return
    args.out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"settings: {vars(args)}", flush=True)
    elapsed: dict[str, float] = {}
    with SandboxPool() as pool:
        names = run_reference(args, pool, started)
        elapsed["reference (and paper)"] = time.monotonic() - started
        halving_dirs = {}
        for seed in args.seeds:
            halving_dirs[seed] = run_halving(args, seed, names, pool, started)
        elapsed["halving"] = time.monotonic() - started - elapsed["reference (and paper)"]
    result = measure(args, names, halving_dirs)
    text = report(result, args.seeds)
    print(text)
    print("elapsed: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in elapsed.items())
          + f", total {(time.monotonic() - started) / 60:.1f} min")  # fmt: skip
    out = args.out_dir / "results.json"
    settings = {k: str(v) for k, v in vars(args).items()}
    out.write_text(json.dumps({"settings": settings, **result, "table": text}, indent=1))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
