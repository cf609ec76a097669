"""Compare reward search with the related methods on the same task, model, budget and seeds.

Methods: the base-rewards-only baseline; label-free format + length rewards (arXiv 2505.19439);
the reflection recipe with its SFT stage (arXiv 2603.14041); OREAL's objective (arXiv
2502.06781); and, given a finished search, its best ensemble. Each method's own settings
(``rewards``, ``stages`` and the objective) come from its packaged recipe and are laid over the
user's base config, so everything else (task, model, LoRA, budget, seeds, evaluation) is shared.
Every trial is a stored, resumable trial; the policies are evaluated on the test split and
compared with the baseline of the same seed by McNemar tests (Holm-corrected across methods).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rewardsmith.config import RunConfig, load_config, parse_config
from rewardsmith.errors import ConfigError

log = logging.getLogger(__name__)

#: method name -> packaged recipe holding its rewards / stages / objective
METHOD_RECIPES = {"format_length": "format_length", "reflection": "reflection", "oreal": "oreal"}
_OBJECTIVE_KEYS = ("objective", "oreal_eta", "oreal_one_pos_one_neg", "beta")


def method_config(base: RunConfig, recipe: RunConfig) -> RunConfig:
    """``base`` with the method-defining sections of ``recipe`` (rewards, stages, objective)."""
    data = base.model_dump(mode="json")
    theirs = recipe.model_dump(mode="json")
    data["rewards"] = {**theirs["rewards"], "timeout_s": data["rewards"]["timeout_s"]}
    data["stages"] = theirs["stages"]
    data["grpo"].update({k: theirs["grpo"][k] for k in _OBJECTIVE_KEYS})
    return parse_config(data, source=f"{recipe.name} over the base config")


def best_ensemble_candidates(search_run: Path) -> list[Any]:
    """The candidates of the best ensemble (on the selection split) of a finished search."""
    from rewardsmith.store import RunStore

    store = RunStore.open(search_run)
    try:
        board = store.leaderboard(store.config().search.rank_metric, kinds=("ensemble",))
        if not board:
            raise ConfigError(f"{search_run} has no completed ensemble to compare")
        trial = board[0][0]
        return [store.get_candidate(n) for n in trial.candidates]
    finally:
        store.close()


def plan(store: Any, base: RunConfig, seeds: Sequence[int], search_run: Path | None) -> dict:
    """Enqueue every method x seed; return ``{method: [trial ids by seed]}``."""
    from rewardsmith.recipes import recipe_path

    configs = {"baseline": ("baseline", base)}
    for method, recipe in METHOD_RECIPES.items():
        configs[method] = (
            f"method:{method}",
            method_config(base, load_config(recipe_path(recipe))),
        )
    names: list[str] = []
    if search_run is not None:
        for candidate in best_ensemble_candidates(search_run):
            store.add_candidate(candidate, verdict={"accepted": True, "source": str(search_run)})
            names.append(candidate.name)
        configs["best_ensemble"] = ("ensemble", base)
    ids: dict[str, list[int]] = {}
    for method, (kind, cfg) in configs.items():
        cands = names if method == "best_ensemble" else []
        ids[method] = [store.enqueue_trial(kind, cands, seed=s, config=cfg) for s in seeds]
    return ids


@dataclass
class MethodRow:
    method: str
    seeds: int
    f1_mean: float
    f1_std: float
    acc_mean: float
    acc_std: float
    f1_ci: tuple[float, float] | None
    acc_ci: tuple[float, float] | None
    mcnemar_p: float | None
    mcnemar_p_holm: float | None
    failed: int


def summarise(store: Any, ids: dict[str, list[int]]) -> list[MethodRow]:
    """Test metrics per method (mean +- std over seeds) and McNemar vs the baseline."""
    from statsmodels.stats.multitest import multipletests

    from rewardsmith.evaluation import same_backend
    from rewardsmith.stats import mcnemar_test, seed_summary

    evals = {m: [store.evaluation(t, "test") for t in tids] for m, tids in ids.items()}
    baseline = evals["baseline"]
    rows, pvalues = [], []
    for method, found in evals.items():
        ok = [e for e in found if e is not None]
        f1 = [e.metrics["f1"] for e in ok]
        acc = [e.metrics["accuracy"] for e in ok]
        p = None
        pair = next(  # same seed, same generation backend
            (
                (e, b)
                for e, b in zip(found, baseline, strict=True)
                if e and b and same_backend(e.metrics, b.metrics)
            ),
            None,
        )
        if method != "baseline" and pair is not None:
            p = mcnemar_test(pair[0].correctness, pair[1].correctness).pvalue
            pvalues.append((len(rows), p))
        first = ok[0].metrics.get("ci", {}) if ok else {}
        f1_mean, f1_std = seed_summary(f1) if f1 else (float("nan"), 0.0)
        acc_mean, acc_std = seed_summary(acc) if acc else (float("nan"), 0.0)
        rows.append(
            MethodRow(
                method=method,
                seeds=len(ok),
                f1_mean=f1_mean,
                f1_std=f1_std,
                acc_mean=acc_mean,
                acc_std=acc_std,
                f1_ci=tuple(first["f1"]) if "f1" in first else None,
                acc_ci=tuple(first["accuracy"]) if "accuracy" in first else None,
                mcnemar_p=p,
                mcnemar_p_holm=None,
                failed=len(found) - len(ok),
            )
        )
    if pvalues:
        adjusted = multipletests([p for _, p in pvalues], method="holm")[1]
        for (index, _), p_adj in zip(pvalues, adjusted, strict=True):
            rows[index].mcnemar_p_holm = float(p_adj)
    return rows


def to_markdown(rows: Sequence[MethodRow]) -> str:
    """The comparison table as Markdown."""
    lines = [
        "| method | seeds | accuracy (test) | 95% CI acc (seed 1) | F1 (test) "
        "| McNemar p vs baseline (Holm) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        ci = f"[{r.acc_ci[0]:.3f}, {r.acc_ci[1]:.3f}]" if r.acc_ci else "-"
        p = f"{r.mcnemar_p:.4f} ({r.mcnemar_p_holm:.4f})" if r.mcnemar_p is not None else "-"
        lines.append(
            f"| {r.method} | {r.seeds} | {r.acc_mean:.3f} +- {r.acc_std:.3f} | {ci} | "
            f"{r.f1_mean:.3f} +- {r.f1_std:.3f} | {p} |"
        )
    return "\n".join(lines) + "\n"


def write_outputs(run_dir: Path, rows: Sequence[MethodRow]) -> dict[str, Path]:
    import json

    md = run_dir / "compare.md"
    md.write_text(to_markdown(rows), encoding="utf-8")
    js = run_dir / "compare.json"
    js.write_text(json.dumps([asdict(r) for r in rows], indent=2), encoding="utf-8")
    return {"markdown": md, "json": js}
