"""The per-trial basics every analysis starts from: a metric's value (:func:`metric`), the rank
key (:func:`rank_key`), the display label (:func:`label`) and the best trial of a list
(:func:`best_trial`). Shared by :mod:`~rewardsmith.report.analysis` (which re-exports them) and
:mod:`~rewardsmith.report.hacking`.
"""

from __future__ import annotations

from typing import Any

from rewardsmith.report.data import TrialRecord


def metric(metrics: dict[str, Any] | None, name: str) -> float | None:
    """``metrics[name]`` as a float, or ``None`` when the metrics or the value are missing."""
    if not metrics or metrics.get(name) is None:
        return None
    return float(metrics[name])


def rank_key(trial: TrialRecord) -> tuple[float, float]:
    """Sort key, higher is better: selection (accuracy, F1), the paper's (F1, accuracy) order
    since F1 = 2acc/(1+acc); no metrics sorts last."""
    acc, f1 = metric(trial.selection, "accuracy"), metric(trial.selection, "f1")
    return (-1.0 if acc is None else acc, -1.0 if f1 is None else f1)


def label(trial: TrialRecord) -> str:
    """A short display name: the candidate, the ensemble configuration (``top-5``, else
    ``ensemble k=K``), ``baseline``, ``control``..."""
    if trial.kind == "screen":
        return trial.candidate_name or f"screen #{trial.id}"
    if trial.kind == "ensemble":
        return trial.name or f"ensemble k={trial.ensemble_k}"
    if trial.kind == "final":
        return f"final seed={trial.seed}"
    return trial.kind


def best_trial(trials: list[TrialRecord]) -> TrialRecord | None:
    """The completed trial with the best selection (accuracy, F1), or ``None``."""
    done = [t for t in trials if t.complete and t.selection]
    return max(done, key=rank_key) if done else None
