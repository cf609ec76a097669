"""The ranked summary the generator sees each round: Eureka-style reward reflection.

One entry per screened reward, in the order of the noise-aware ranking
(:func:`~rewardsmith.search.ranking.rank_candidates`: highest halving rung first, then the lower
CI bound of the difference from the baseline), those whose trials all FAILED last. An entry
describes the candidate's first trial at that rung: name, description, round, metrics with CIs,
and a reflection whose lines come in this order (a prompt that clips it keeps its start): what
the reward monitors found in training (:func:`monitor_lines`); how it was screened when not by
one full-budget run (:func:`screening_lines`); ``vs baseline: delta acc
+0.04 [CI -0.01, +0.09], McNemar p=0.21 ...``, the paired difference from the base-rewards-only
baseline on the same questions (:func:`baseline_line`; one line saying so when there is none);
tips about the candidate only, never the three base rewards, which the generator cannot change
(:func:`candidate_tips`); extraction rate, errors and reward failures; then ~10 sampled values
plus max/mean/min of the total reward, format rate, length, zero-std fraction and each
component's mean and spread (TRL's per-reward batch std), base rewards marked fixed.

GRPO normalises rewards within each group of completions of one prompt, so a component that
never varies gives no learning signal whatever its mean: the tips read the std curves and the
monitor's count of calls with within-group spread, not the means.

``SummaryEntry.stats`` holds the same facts for programmatic generators (the offline one reads
them): ``candidates`` (the names the generator wrote), ``constant`` (those whose batch std was 0
at every logged step), ``no_group_signal`` (those without within-group spread in any monitored
call), ``vs_baseline`` (:meth:`~rewardsmith.stats.PairedDifference.to_dict` plus
``baseline_trial`` and ``baseline_accuracy``; None without a baseline), ``failed`` (True for a
FAILED trial, with ``reason``), ``components``/``spread`` (curve statistics by reward name),
``ranking`` (the candidate's :class:`~rewardsmith.search.ranking.RankedCandidate` fields).
Every entry carries its code; prompts show only the leaders'. Everything is bounded.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from rewardsmith.generators.base import Rejection, SummaryEntry
from rewardsmith.rewards import BASE_REWARD_NAMES
from rewardsmith.search.evidence import (
    NO_BASELINE,
    baseline_line,
    compare_to_baseline,
    find_baseline,
    group_signal,
    monitor_lines,
    screening_lines,
)
from rewardsmith.store import TrialState

__all__ = [
    "NO_BASELINE",
    "baseline_line",
    "build_rejections",
    "build_summary",
    "group_signal",
    "monitor_lines",
    "reflection_text",
    "screening_lines",
]

N_SAMPLES = 10
MAX_REFLECTION_CHARS = 2000
SCREEN_KINDS = ("screen", "manual")
BASELINE_KIND = "baseline"
EPS = 1e-6
#: The candidate's mean spread relative to the base rewards' summed spread beyond which it
#: dominates the advantage, and below which it barely moves the policy.
DOMINATES_RATIO, NEGLIGIBLE_RATIO = 2.0, 0.05


def _sample(values: Sequence[float], n: int = N_SAMPLES) -> list[float]:
    if len(values) <= n:
        return list(values)
    step = (len(values) - 1) / (n - 1)
    return [values[round(i * step)] for i in range(n)]


def curve_stats(curve: Sequence[Sequence[float]]) -> dict[str, Any]:
    """Sampled values and max/mean/min (and the last value) of a ``[[step, value], ...]`` curve.

    >>> curve_stats([[1, 0.0], [2, 1.0], [3, 2.0]])["mean"]
    1.0
    """
    values = [float(v) for _, v in curve]
    if not values:
        return {}
    return {
        "samples": [round(v, 3) for v in _sample(values)],
        "max": round(max(values), 3),
        "mean": round(statistics.fmean(values), 3),
        "min": round(min(values), 3),
        "last": round(values[-1], 3),
    }


def _curve_line(label: str, s: dict[str, Any]) -> str:
    return f"{label}: {s['samples']} (max {s['max']}, mean {s['mean']}, min {s['min']})"


# ---------------------------------------------------------------------- tips


def _spread_tips(name: str, spread: dict[str, Any], base_spread: float | None) -> list[str]:
    samples = spread.get("samples") or []
    if spread and spread["max"] < EPS:
        return [
            f"{name} gave every completion in a batch the same score at every step (std 0): "
            "it adds no learning signal; make it tell completions apart, or drop the idea"
        ]
    tips = []
    tail = samples[-max(1, len(samples) // 4) :]
    if spread and samples and all(s < EPS for s in tail):
        tips.append(
            f"{name} stopped varying late in training: the policy saturated it; it may be too "
            "easy to satisfy"
        )
    if spread and base_spread:
        ratio = spread["mean"] / base_spread
        if ratio > DOMINATES_RATIO:
            tips.append(
                f"{name} spreads scores {ratio:.1f}x as much as the base rewards together "
                "(mean std): it dominates the advantage; scale it down so correctness counts"
            )
        elif ratio < NEGLIGIBLE_RATIO:
            tips.append(
                f"{name} spreads scores only {ratio:.2g}x as much as the base rewards "
                "together (mean std): scale it up or it barely moves the policy"
            )
    return tips


def candidate_tips(
    name: str,
    spreads: dict[str, dict[str, Any]],
    signal: tuple[int, int] | None,
    vs_baseline: dict[str, Any] | None,
) -> list[str]:
    """Tips about the candidate reward ``name`` only (never a base reward).

    ``spreads`` maps reward names to :func:`curve_stats` of their std curves; ``signal`` is
    :func:`group_signal`; ``vs_baseline`` the structured comparison (or None).
    """
    base = [spreads[b]["mean"] for b in BASE_REWARD_NAMES if spreads.get(b)]
    tips = _spread_tips(name, spreads.get(name) or {}, sum(base) if base else None)
    if signal is not None:
        with_signal, calls = signal
        if with_signal == 0:
            tips.append(
                f"{name} never differed between completions of the same prompt (0/{calls} "
                "calls): GRPO normalises within groups, so it gave no learning signal"
            )
        elif with_signal / calls < 0.2:
            tips.append(
                f"{name} differed within a group in only {with_signal}/{calls} calls: "
                "little learning signal; reward a property that varies between samples"
            )
    if vs_baseline is not None:
        delta, (low, high) = vs_baseline["delta"], vs_baseline["ci"]
        if high < 0:
            tips.append(f"{name} made accuracy worse than the base rewards alone: rewrite it")
        elif delta < 0:
            tips.append(
                f"{name} scored below the base rewards alone, within noise: its idea has not "
                "helped yet; try a different property rather than a different scale"
            )
        elif low > 0:
            tips.append(f"{name} beat the base rewards alone: keep its idea and refine it")
    return tips


# ---------------------------------------------------------------------- reflection


def _component_lines(means: dict, spreads: dict, candidates: Sequence[str]) -> list[str]:
    """Mean and spread lines per component, the candidates' first (clipping drops the rest)."""
    lines = []
    for name, s in sorted(means.items(), key=lambda item: item[0] not in candidates):
        if not s:
            continue
        role = "yours" if name in candidates else "base, fixed" if name in BASE_REWARD_NAMES else ""
        label = f"component {name}" + (f" ({role})" if role else "")
        lines.append(_curve_line(label, s))
        if spreads.get(name):
            lines.append(_curve_line(f"  spread (std) of {name}", spreads[name]))
    return lines


def _evaluation_lines(metrics: dict[str, Any], curves: dict[str, Any]) -> list[str]:
    errors = metrics.get("errors") or {}
    lines = [
        f"extraction rate {metrics.get('extraction_rate', 0):.3f}; errors: "
        f"{errors.get('correct', '?')} correct / {errors.get('wrong', '?')} wrong / "
        f"{errors.get('no_extraction', '?')} no answer"
    ]
    for name, f in (curves.get("_reward_failures") or {}).items():
        if f.get("failures"):
            lines.append(f"{name} failed {f['failures']}/{f['calls']} calls: {f.get('last_error')}")
    return lines


def reflection_text(
    metrics: dict[str, Any],
    curves: dict[str, Any],
    monitor: Sequence[str] = (),
    *,
    candidates: Sequence[str] = (),
    signal: dict[str, tuple[int, int]] | None = None,
    baseline: tuple[str, dict[str, Any] | None] | None = None,
) -> tuple[str, dict[str, Any]]:
    """(text, stats) describing one trial's training curves and evaluation (order: see the
    module docstring). Tips concern only ``candidates``; ``signal`` maps a candidate to
    :func:`group_signal`; ``baseline`` is :func:`compare_to_baseline`'s output (no baseline line
    when None)."""
    signal = signal or {}

    def by_suffix(suffix: str) -> dict[str, dict[str, Any]]:
        return {
            key.removesuffix(suffix): curve_stats(value)
            for key, value in curves.items()
            if key.endswith(suffix) and not key.startswith("_")
        }

    means, spreads = by_suffix("/mean"), by_suffix("/std")
    vs_baseline = baseline[1] if baseline else None
    stats: dict[str, Any] = {
        "components": means,
        "spread": spreads,
        "candidates": list(candidates),
        "constant": [c for c in candidates if spreads.get(c) and spreads[c]["max"] < EPS],
        "no_group_signal": [c for c in candidates if c in signal and signal[c][0] == 0],
        "vs_baseline": vs_baseline,
        "failed": False,
    }
    lines = list(monitor) + ([baseline[0]] if baseline else [])
    tips = []
    if metrics.get("accuracy", 1.0) < 0.05:
        tips.append("accuracy is near zero: rewrite this reward rather than tune it")
    for name in candidates:
        tips += candidate_tips(name, spreads, signal.get(name), vs_baseline)
    lines += [f"tip: {t}" for t in tips]
    lines += _evaluation_lines(metrics, curves)
    for name in ("reward", "format_rate", "completion_length", "frac_zero_std"):
        if name in curves:
            stats[name] = curve_stats(curves[name])
            lines.append(_curve_line(name, stats[name]))
    lines += _component_lines(means, spreads, candidates)
    return "\n".join(lines)[:MAX_REFLECTION_CHARS], stats


# ---------------------------------------------------------------------- the summary


def _metric_summary(metrics: dict[str, Any]) -> dict[str, float]:
    out = {k: float(metrics[k]) for k in ("f1", "accuracy", "precision", "recall") if k in metrics}
    for key, (low, high) in (metrics.get("ci") or {}).items():
        out[f"{key}_ci_low"], out[f"{key}_ci_high"] = float(low), float(high)
    return out


def _completed_entry(
    store: Any, trial: Any, result: Any, baselines: list, ranked: Any
) -> SummaryEntry:
    candidate = store.get_candidate(trial.candidates[0])
    records = store.reward_monitors(trial.id)
    signal = group_signal(records, candidate.name)
    text, stats = reflection_text(
        result.metrics,
        result.curves,
        monitor_lines(records, candidate.name) + screening_lines(trial, ranked),
        candidates=(candidate.name,),
        signal={candidate.name: signal} if signal else None,
        baseline=compare_to_baseline(trial, result, find_baseline(trial, result, baselines)),
    )
    stats["ranking"] = {k: v for k, v in asdict(ranked).items() if k != "name"}
    return SummaryEntry(
        name=candidate.name,
        description=candidate.description,
        round=candidate.round,
        metrics=_metric_summary(result.metrics),
        reflection=text,
        stats=stats,
        code=candidate.code,
    )


def _failed_entry(store: Any, trial: Any) -> SummaryEntry:
    candidate = store.get_candidate(trial.candidates[0])
    monitor = monitor_lines(store.reward_monitors(trial.id), candidate.name)
    stats = {"failed": True, "reason": trial.fail_reason, "candidates": [candidate.name]}
    return SummaryEntry(
        name=candidate.name,
        description=candidate.description,
        round=candidate.round,
        reflection="\n".join([f"training FAILED: {trial.fail_reason}", *monitor]),
        stats=stats,
        code=candidate.code,
    )


def build_summary(store: Any, rank_metric: str = "f1") -> list[SummaryEntry]:
    """Summary of all screened rewards so far, one entry per candidate in the order of
    :func:`~rewardsmith.search.ranking.rank_candidates` (those whose trials all FAILED last;
    candidates still in training are left out).

    Each completed entry is compared with the stored base-rewards-only baseline evaluated on
    the same questions (:func:`find_baseline`), when there is one; ``rank_metric`` orders the
    baselines to choose from.
    """
    from rewardsmith.search.ranking import rank_candidates

    baselines = store.leaderboard(rank_metric, kinds=(BASELINE_KIND,))
    trials = {t.id: t for t in store.trials()}
    entries = []
    for ranked in rank_candidates(store):
        if not ranked.failed:
            trial = trials[ranked.trial_ids[0]]
            result = store.result(trial.id)
            entries.append(_completed_entry(store, trial, result, baselines, ranked))
            continue
        failed = [trials[i] for i in ranked.trial_ids if trials[i].state == TrialState.FAILED]
        if failed:
            entries.append(_failed_entry(store, failed[-1]))
    return entries


def build_rejections(store: Any) -> list[Rejection]:
    """Candidates that validation rejected, with their stage and reason (oldest first)."""
    rejections = []
    verdicts = store.verdicts()
    for candidate in store.candidates():
        verdict = verdicts.get(candidate.name) or {}
        if verdict and not verdict.get("accepted", False):
            rejections.append(
                Rejection(
                    round=candidate.round,
                    generator=candidate.generator,
                    stage=str(verdict.get("stage", "")),
                    reason=str(verdict.get("reason", "")),
                    name=candidate.name,
                )
            )
    return rejections
