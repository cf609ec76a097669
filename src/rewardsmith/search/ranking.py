"""Noise-aware ranking of the screened candidates: paired with the baseline, over seeds.

A candidate's screening trials (kind ``screen`` or ``manual``, one candidate each) are grouped by
halving rung (``attrs["rung"]``, 0 when absent: full screening). A candidate is ranked on the
highest rung where it has a COMPLETE trial, over all its COMPLETE trials (seeds) at that rung:

* ``accuracy``: the mean selection accuracy over those seeds;
* ``delta``, ``ci``, ``p_mcnemar``: the paired comparison with the screening baseline
  (:func:`rewardsmith.search.baseline.screening_baseline`, same questions in the same order).
  With one seed: :func:`rewardsmith.stats.paired_difference` (Agresti-Min CI, McNemar). With
  several: ``delta`` is the mean paired delta over seeds and the CI a normal interval over the
  questions of the per-question difference (candidate correct, averaged over seeds, minus
  baseline correct), so it narrows with both the number of questions and of seeds; McNemar
  is that of the lowest-id (first) seed;
* ``score``: the lower bound of that CI (``search.screening.rank_by: paired``, the default);
  with ``rank_by: metric``, or when no baseline is usable (not trained yet, failed, or
  evaluated on other questions), the search's ``rank_metric`` (then accuracy) averaged over
  the seeds instead.

Order: a higher rung first; within a rung a higher ``score``, then a higher ``accuracy``, then
the name (so ties are deterministic). Candidates with no COMPLETE screening trial (all FAILED,
or not finished) come last, at their highest rung tried, with ``score`` -inf.

>>> RankedCandidate("a", 0, 1, 0.5, None, None, None, 0.5, (1,)).key() < RankedCandidate(
...     "b", 1, 1, 0.1, None, None, None, 0.1, (2,)).key()
False
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rewardsmith.search.baseline import screening_baseline
from rewardsmith.stats import paired_difference

SCREEN_KINDS = ("screen", "manual")
CONFIDENCE = 0.95


@dataclass(frozen=True)
class RankedCandidate:
    """One screened candidate's standing (see the module docstring for each field)."""

    name: str
    rung: int
    seeds: int
    accuracy: float
    delta: float | None
    ci: tuple[float, float] | None
    p_mcnemar: float | None
    score: float
    trial_ids: tuple[int, ...]

    @property
    def failed(self) -> bool:
        """True when the candidate has no COMPLETE screening trial."""
        return self.seeds == 0

    def key(self) -> tuple[Any, ...]:
        """Sort key, best first: finished, higher rung, score, accuracy, then name."""
        return (self.failed, -self.rung, -self.score, -self.accuracy, self.name)


def trial_rung(trial: Any) -> int:
    """A screening trial's halving rung (0 for full screening)."""
    rung = (trial.attrs or {}).get("rung")
    return rung if isinstance(rung, int) and not isinstance(rung, bool) else 0


def screen_trials(
    store: Any, names: Iterable[str] | None = None, kinds: Sequence[str] = SCREEN_KINDS
) -> dict[str, list[Any]]:
    """Each screened candidate's single-candidate screening trials (of ``kinds``), in id
    order."""
    wanted = None if names is None else set(names)
    out: dict[str, list[Any]] = {}
    for trial in store.trials():
        if trial.kind not in kinds or len(trial.candidates) != 1:
            continue
        name = trial.candidates[0]
        if wanted is None or name in wanted:
            out.setdefault(name, []).append(trial)
    return out


def _accuracy(result: Any) -> float:
    value = result.metrics.get("accuracy")
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    c = result.correctness
    return sum(c) / len(c) if c else 0.0


def _metric(result: Any, metric: str) -> float:
    value = result.metrics.get(metric)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return _accuracy(result)


def paired_stats(
    baseline: Sequence[int], runs: Sequence[Sequence[int]], confidence: float = CONFIDENCE
) -> tuple[float, tuple[float, float], float]:
    """(mean paired delta, its CI, McNemar p of the first run) of ``runs`` (0/1 correctness per
    question, one vector per seed) against ``baseline`` on the same questions.

    >>> d, ci, p = paired_stats([1, 0] * 50, [[1, 1] * 50, [1, 1] * 25 + [1, 0] * 25])
    >>> round(d, 3), tuple(round(x, 3) for x in ci), p < 0.001
    (0.375, (0.293, 0.457), True)
    """
    from scipy.stats import norm

    first = paired_difference(baseline, runs[0], confidence=confidence)
    if len(runs) == 1:
        return first.delta, (first.ci_low, first.ci_high), first.test.pvalue
    n = len(baseline)
    if any(len(r) != n for r in runs):
        raise ValueError("every run must be evaluated on the baseline's questions")
    diffs = [sum(r[q] for r in runs) / len(runs) - baseline[q] for q in range(n)]
    mean = sum(diffs) / n
    var = sum((d - mean) ** 2 for d in diffs) / max(n - 1, 1)
    half = float(norm.ppf(0.5 + confidence / 2)) * math.sqrt(var / n)
    return mean, (max(-1.0, mean - half), min(1.0, mean + half)), first.test.pvalue


def _standing(
    name: str,
    trials: Sequence[Any],
    results: dict[int, Any],
    base: Any,
    metric: str,
    rung: Any,
    paired: bool = True,
) -> RankedCandidate:
    done = [t for t in trials if t.id in results and (rung is None or trial_rung(t) == rung)]
    if not done:
        tried = [trial_rung(t) for t in trials if rung is None or trial_rung(t) == rung]
        top = max(tried, default=rung or 0)
        ids = tuple(t.id for t in trials if trial_rung(t) == top)
        return RankedCandidate(name, top, 0, 0.0, None, None, None, -math.inf, ids)
    top = max(trial_rung(t) for t in done)
    at_top = [t for t in done if trial_rung(t) == top]
    outs = [results[t.id] for t in at_top]
    accuracy = sum(_accuracy(r) for r in outs) / len(outs)
    ids = tuple(t.id for t in at_top)
    vectors = [r.correctness for r in outs]
    score = sum(_metric(r, metric) for r in outs) / len(outs)
    if base is not None and all(v and len(v) == len(base) for v in vectors):
        delta, ci, p = paired_stats(base, vectors)
        score = ci[0] if paired else score
        return RankedCandidate(name, top, len(outs), accuracy, delta, ci, p, score, ids)
    return RankedCandidate(name, top, len(outs), accuracy, None, None, None, score, ids)


def rank_candidates(
    store: Any,
    cfg: Any = None,
    *,
    rung: int | None = None,
    names: Iterable[str] | None = None,
    kinds: Sequence[str] = SCREEN_KINDS,
) -> list[RankedCandidate]:
    """The screened candidates (or ``names`` among them; screened by trials of ``kinds``) best
    first (see the module docstring).

    ``rung`` ranks on that rung's trials only (a halving promotion decision); a candidate with
    no trial at that rung is left out.
    """
    cfg = cfg if cfg is not None else store.config()
    metric = cfg.search.rank_metric
    by_name = screen_trials(store, names, kinds)
    if rung is not None:
        by_name = {n: ts for n, ts in by_name.items() if any(trial_rung(t) == rung for t in ts)}
    results = {}
    for trials in by_name.values():
        for t in trials:
            if getattr(t.state, "value", t.state) == "COMPLETE":
                result = store.result(t.id)
                if result is not None:
                    results[t.id] = result
    base_trial = screening_baseline(store)
    base_result = store.result(base_trial.id) if base_trial is not None else None
    base = base_result.correctness if base_result is not None else None
    paired = cfg.search.screening.rank_by == "paired"
    ranked = [
        _standing(name, trials, results, base or None, metric, rung, paired)
        for name, trials in by_name.items()
    ]
    return sorted(ranked, key=RankedCandidate.key)
