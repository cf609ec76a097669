"""The ranked summary the generator sees each round: Eureka-style reward reflection.

For every screened reward, best first on the selection split: name, description, round,
metrics with CIs, and a reflection: ~10 values sampled over training plus max/mean/min for the
total reward and each reward component, format and extraction rates, the error breakdown, and
fixed tips (success near zero -> rewrite; a component that never changes -> rescale or drop; one
component dominating -> rescale). What watching the reward during training found (audits that
scored corrupted completions above correct ones, failures, timeouts, no learning signal) comes
first, one line per kind (:func:`monitor_lines`), for completed and failed trials alike. Failed
trials carry their reason; the leaders carry their code. The summary is bounded (entries,
samples, characters) so prompts stay within a context.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from rewardsmith.generators.base import Rejection, SummaryEntry

N_SAMPLES = 10
CODE_FOR_TOP = 3
MAX_REFLECTION_CHARS = 1500
SCREEN_KINDS = ("screen", "manual")


def _sample(values: Sequence[float], n: int = N_SAMPLES) -> list[float]:
    if len(values) <= n:
        return list(values)
    step = (len(values) - 1) / (n - 1)
    return [values[round(i * step)] for i in range(n)]


def curve_stats(curve: Sequence[Sequence[float]]) -> dict[str, Any]:
    """Sampled values and max/mean/min of a ``[[step, value], ...]`` curve.

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
    }


def _curve_line(label: str, s: dict[str, Any]) -> str:
    return f"{label}: {s['samples']} (max {s['max']}, mean {s['mean']}, min {s['min']})"


def _tips(components: dict[str, dict[str, Any]], metrics: dict[str, Any]) -> list[str]:
    tips = []
    if metrics.get("accuracy", 1.0) < 0.05:
        tips.append("accuracy is near zero: rewrite this reward rather than tune it")
    for name, stats in components.items():
        if stats and stats["max"] - stats["min"] < 1e-6:
            tips.append(f"{name} never changes during training: rescale it or drop it")
    spans = {n: abs(s["mean"]) for n, s in components.items() if s}
    total = sum(spans.values())
    for name, span in spans.items():
        if total > 0 and span / total > 0.8 and len(spans) > 1:
            tips.append(f"{name} dominates the total reward: rescale the components")
    return tips


_FINDING_TEXT = {
    "failures": "failed too often",
    "timeouts": "timed out too often",
    "slow": "was slow",
    "no_signal": "gave no learning signal (zero spread within groups)",
}
MAX_DETAIL_CHARS = 200


def monitor_lines(monitors: Sequence[Any], reward: str) -> list[str]:
    """One line per kind of finding the reward monitors made about ``reward`` in training.

    ``monitors`` are :class:`~rewardsmith.store.RewardMonitorRecord` objects.

    >>> from rewardsmith.store import RewardMonitorRecord
    >>> found = {"kind": "garbage_above_correct", "step": 9, "detail": "scored 1/3 copies above"}
    >>> monitor_lines([RewardMonitorRecord("r", {"audits": 5}, (found,) * 3)], "r")
    ['in training, scored corrupted completions above correct ones in 3/5 audits (last at step 9: scored 1/3 copies above)']
    """  # noqa: E501 - doctest output
    lines = []
    for record in monitors:
        if record.reward != reward:
            continue
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for finding in record.findings:
            by_kind.setdefault(str(finding.get("kind")), []).append(finding)
        for kind, found in by_kind.items():
            last = found[-1]
            where = f"last at step {last.get('step')}: {str(last.get('detail'))[:MAX_DETAIL_CHARS]}"
            if kind == "garbage_above_correct":
                audits = f"{len(found)}/{record.summary.get('audits', '?')}"
                head = f"scored corrupted completions above correct ones in {audits} audits"
            else:
                head = f"{_FINDING_TEXT.get(kind, kind)} ({len(found)}x)"
            lines.append(f"in training, {head} ({where})")
    return lines


def reflection_text(
    metrics: dict[str, Any], curves: dict[str, Any], monitor: Sequence[str] = ()
) -> tuple[str, dict[str, Any]]:
    """(text, stats) describing one trial's training curves and evaluation; ``monitor`` lines
    (see :func:`monitor_lines`) come first."""
    components = {
        key.removesuffix("/mean"): curve_stats(value)
        for key, value in curves.items()
        if key.endswith("/mean") and not key.startswith("_")
    }
    stats: dict[str, Any] = {"components": components}
    lines = list(monitor)
    for name in ("reward", "format_rate", "completion_length", "frac_zero_std"):
        if name in curves:
            stats[name] = curve_stats(curves[name])
            lines.append(_curve_line(name, stats[name]))
    for name, s in components.items():
        if s:
            lines.append(_curve_line(f"component {name}", s))
    errors = metrics.get("errors") or {}
    lines.append(
        f"extraction rate {metrics.get('extraction_rate', 0):.3f}; errors: "
        f"{errors.get('correct', '?')} correct / {errors.get('wrong', '?')} wrong / "
        f"{errors.get('no_extraction', '?')} no answer"
    )
    failures = {
        k: v for k, v in (curves.get("_reward_failures") or {}).items() if v.get("failures")
    }
    for name, f in failures.items():
        lines.append(f"{name} failed {f['failures']}/{f['calls']} calls: {f.get('last_error')}")
    lines += [f"tip: {t}" for t in _tips(components, metrics)]
    return "\n".join(lines)[:MAX_REFLECTION_CHARS], stats


def _metric_summary(metrics: dict[str, Any]) -> dict[str, float]:
    out = {k: float(metrics[k]) for k in ("f1", "accuracy", "precision", "recall") if k in metrics}
    for key, (low, high) in (metrics.get("ci") or {}).items():
        out[f"{key}_ci_low"], out[f"{key}_ci_high"] = float(low), float(high)
    return out


def build_summary(store: Any, rank_metric: str = "f1") -> list[SummaryEntry]:
    """Ranked summary of all screened rewards so far (COMPLETE best first, then FAILED)."""
    entries = []
    ranked = store.leaderboard(rank_metric, kinds=SCREEN_KINDS)
    for rank, (trial, result) in enumerate(ranked):
        if len(trial.candidates) != 1:
            continue
        candidate = store.get_candidate(trial.candidates[0])
        monitor = monitor_lines(store.reward_monitors(trial.id), candidate.name)
        text, stats = reflection_text(result.metrics, result.curves, monitor)
        entries.append(
            SummaryEntry(
                name=candidate.name,
                description=candidate.description,
                round=candidate.round,
                metrics=_metric_summary(result.metrics),
                reflection=text,
                stats=stats,
                code=candidate.code if rank < CODE_FOR_TOP else None,
            )
        )
    for trial in store.trials(state="FAILED"):
        if trial.kind in SCREEN_KINDS and len(trial.candidates) == 1:
            candidate = store.get_candidate(trial.candidates[0])
            monitor = monitor_lines(store.reward_monitors(trial.id), candidate.name)
            entries.append(
                SummaryEntry(
                    name=candidate.name,
                    description=candidate.description,
                    round=candidate.round,
                    reflection="\n".join([f"training FAILED: {trial.fail_reason}", *monitor]),
                )
            )
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
