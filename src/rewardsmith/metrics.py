"""The paper's metrics (arXiv 2605.02073), exactly, plus bootstrap confidence intervals.

Per question an answer is *extracted* (or not) and *correct* (or not); a capture that is empty
after stripping and dropping commas (``" "``, ``","``) counts as nothing extracted
(:func:`rewardsmith.extraction.is_extracted`):
TP = extracted and correct, FP = extracted and wrong, FN = nothing extracted.
precision = TP / max(1, TP+FP); recall = TP / max(1, TP+FN); F1 = 2PR / max(1e-9, P+R);
accuracy = TP / total.

Since every question is exactly one of TP, FP or FN (TP + FP + FN = total), F1 reduces to
2TP / (TP + total) = 2acc / (1 + acc) **always**, whatever the extraction rate: F1 is a
monotone function of accuracy, so ranking by F1 is ranking by accuracy, and F1 says nothing
about format compliance that accuracy does not. rewardsmith reports accuracy first and F1
beside it, for comparison with the paper's numbers.

``exact_match`` is the share of questions whose normalised extracted string equals the gold
string with no numeric tolerance (``12.0`` vs ``12`` counts as correct, not as exact).

>>> m = score_outcomes(extracted=[True, True, False, True], correct=[True, False, False, True])
>>> (m.tp, m.fp, m.fn, round(m.accuracy, 3), round(m.f1, 3))
(2, 1, 1, 0.5, 0.667)
>>> round(2 * m.accuracy / (1 + m.accuracy), 3)  # F1 = 2acc/(1+acc)
0.667
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class Metrics:
    """Metrics of one evaluation; ``ci`` maps a metric name to its (low, high) 95% interval.

    ``f1`` always equals ``2 * accuracy / (1 + accuracy)`` (see the module docstring)."""

    n: int
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    accuracy: float
    exact_match: float
    extraction_rate: float
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def errors(self) -> dict[str, int]:
        """Error breakdown: no extraction / wrong / correct."""
        return {"no_extraction": self.fn, "wrong": self.fp, "correct": self.tp}

    @classmethod
    def from_dict(cls, data: dict) -> Metrics:
        """Rebuild from :meth:`to_dict` output (extra keys, e.g. ``errors``, are ignored)."""
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        fields["ci"] = {k: tuple(v) for k, v in (data.get("ci") or {}).items()}
        return cls(**fields)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["ci"] = {k: list(v) for k, v in self.ci.items()}
        out["errors"] = self.errors
        return out


def _prf(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> tuple[np.ndarray, ...]:
    precision = tp / np.maximum(1, tp + fp)
    recall = tp / np.maximum(1, tp + fn)
    f1 = 2 * precision * recall / np.maximum(1e-9, precision + recall)
    return precision, recall, f1


def score_outcomes(
    extracted: Sequence[bool],
    correct: Sequence[bool],
    exact: Sequence[bool] | None = None,
    *,
    ci: bool = False,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Metrics:
    """Compute the paper's metrics from per-question extraction and correctness flags."""
    ext = np.asarray(extracted, dtype=bool)
    cor = np.asarray(correct, dtype=bool) & ext
    n = len(ext)
    if len(cor) != n:
        raise ValueError("extracted and correct must have the same length")
    tp, fp, fn = int(cor.sum()), int((ext & ~cor).sum()), int((~ext).sum())
    p, r, f1 = (float(x) for x in _prf(np.array(tp), np.array(fp), np.array(fn)))
    exact_rate = float(np.mean(exact)) if exact is not None and n else 0.0
    intervals = bootstrap_ci(ext, cor, n_resamples=n_resamples, seed=seed) if ci and n else {}
    return Metrics(
        n=n,
        tp=tp,
        fp=fp,
        fn=fn,
        precision=p,
        recall=r,
        f1=f1,
        accuracy=tp / n if n else 0.0,
        exact_match=exact_rate,
        extraction_rate=float(ext.mean()) if n else 0.0,
        ci=intervals,
    )


def bootstrap_ci(
    extracted: np.ndarray,
    correct: np.ndarray,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap 95% CIs for F1 and accuracy over questions (scipy.stats.bootstrap).

    Questions are resampled with replacement, keeping each question's (extracted, correct) pair.
    """
    from scipy.stats import bootstrap

    ext = np.asarray(extracted, dtype=float)
    cor = np.asarray(correct, dtype=float)
    if len(ext) < 2:  # nothing to resample: the interval is the point itself
        point = score_outcomes(ext.astype(bool), cor.astype(bool))
        return {"f1": (point.f1, point.f1), "accuracy": (point.accuracy, point.accuracy)}

    def f1_stat(e: np.ndarray, c: np.ndarray, axis: int = -1) -> np.ndarray:
        tp = c.sum(axis=axis)
        fp = (e - c).sum(axis=axis)
        fn = (1 - e).sum(axis=axis)
        return _prf(tp, fp, fn)[2]

    def acc_stat(c: np.ndarray, axis: int = -1) -> np.ndarray:
        return c.mean(axis=axis)

    rng = np.random.default_rng(seed)
    common = dict(
        n_resamples=n_resamples, confidence_level=confidence, method="percentile", vectorized=True
    )
    f1_res = bootstrap((ext, cor), f1_stat, paired=True, random_state=rng, **common)
    acc_res = bootstrap((cor,), acc_stat, random_state=rng, **common)
    return {
        "f1": _interval(f1_res.confidence_interval),
        "accuracy": _interval(acc_res.confidence_interval),
    }


def _interval(ci: object) -> tuple[float, float]:
    low, high = float(ci.low), float(ci.high)  # type: ignore[attr-defined]
    # A constant sample gives a NaN-free but degenerate interval; keep it as [x, x].
    return (low if np.isfinite(low) else high, high if np.isfinite(high) else low)
