"""Final statistics: paired McNemar tests with multiple-comparison corrections, seed summaries,
and the paired difference in accuracy of two policies evaluated on the same questions.

The paper (arXiv 2605.02073) compares its ensemble configurations pairwise with McNemar's test on
the per-question correctness vectors of the test split, Bonferroni-corrected (alpha = 0.05/21 for
7 configurations). This module does that with statsmodels and adds Holm's step-down correction,
which controls the same family-wise error rate and is never less powerful.

McNemar's test only looks at *discordant* questions: ``b`` = A right and B wrong, ``c`` = A wrong
and B right. With fewer than 25 discordant questions the exact two-sided binomial test is used,
otherwise the chi-square statistic with continuity correction (the usual rule of thumb).

>>> r = mcnemar_test([True] * 10 + [False] * 2, [False] * 10 + [True] * 2)
>>> (r.b, r.c, r.method, round(r.pvalue, 4))
(10, 2, 'exact', 0.0386)
>>> mean, std = seed_summary([0.78, 0.80, 0.79])
>>> round(mean, 4), round(std, 4)
(0.79, 0.01)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

#: Below this many discordant pairs the exact binomial test is used instead of chi-square.
EXACT_BELOW = 25


@dataclass(frozen=True)
class McNemarResult:
    """One McNemar test of A against B on paired correctness vectors.

    ``both`` = both right, ``b`` = only A right, ``c`` = only B right, ``neither`` = both wrong.
    ``statistic`` is min(b, c) for the exact test and the corrected chi-square otherwise.
    """

    n: int
    both: int
    b: int
    c: int
    neither: int
    statistic: float
    pvalue: float
    method: str  # "exact" or "chi2"

    @property
    def discordant(self) -> int:
        """Number of questions on which A and B disagree."""
        return self.b + self.c

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field plus ``discordant``."""
        return {
            "n": self.n,
            "both": self.both,
            "b": self.b,
            "c": self.c,
            "neither": self.neither,
            "statistic": self.statistic,
            "pvalue": self.pvalue,
            "method": self.method,
            "discordant": self.discordant,
        }


def _as_bool_array(values: Sequence[bool], what: str) -> np.ndarray:
    array = np.asarray(values, dtype=bool)
    if array.ndim != 1:
        raise ValueError(f"{what} must be a flat sequence of booleans")
    return array


def mcnemar_test(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> McNemarResult:
    """McNemar's test of two paired correctness vectors (statsmodels).

    Exact binomial when ``b + c < 25``, else chi-square with continuity correction. Identical
    vectors (no discordant pair) give p = 1. Vectors of different lengths raise ``ValueError``.

    >>> r = mcnemar_test([True, False, True], [True, False, True])
    >>> (r.b, r.c, r.pvalue)
    (0, 0, 1.0)
    """
    from statsmodels.stats.contingency_tables import mcnemar

    a = _as_bool_array(correct_a, "correct_a")
    b = _as_bool_array(correct_b, "correct_b")
    if len(a) != len(b):
        raise ValueError(f"correctness vectors differ in length ({len(a)} vs {len(b)})")
    both, only_a = int(np.sum(a & b)), int(np.sum(a & ~b))
    only_b, neither = int(np.sum(~a & b)), int(np.sum(~a & ~b))
    exact = only_a + only_b < EXACT_BELOW
    method = "exact" if exact else "chi2"
    if only_a + only_b == 0:  # no evidence either way; statsmodels would divide by zero
        return McNemarResult(len(a), both, 0, 0, neither, 0.0, 1.0, method)
    table = [[both, only_a], [only_b, neither]]
    res = mcnemar(table, exact=exact, correction=True)
    pvalue = min(1.0, float(res.pvalue))
    return McNemarResult(
        len(a), both, only_a, only_b, neither, float(res.statistic), pvalue, method
    )


@dataclass(frozen=True)
class PairComparison:
    """One pair of a :class:`PairwiseResult`: the test, adjusted p-values and the verdict.

    ``better`` names the side with more questions right among the discordant ones (``None`` on
    a tie); it is reported whether or not the difference is significant.
    """

    a: str
    b: str
    test: McNemarResult
    p_bonferroni: float
    p_holm: float
    significant_bonferroni: bool
    significant_holm: bool
    better: str | None

    @property
    def verdict(self) -> str:
        """``"<better> better (Bonferroni)"``, ``"... (Holm)"`` or ``"not significant"``."""
        if self.significant_bonferroni:
            return f"{self.better} better (Bonferroni)"
        if self.significant_holm:
            return f"{self.better} better (Holm)"
        return "not significant"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; the test is nested under ``test``."""
        return {
            "a": self.a,
            "b": self.b,
            "test": self.test.to_dict(),
            "p_bonferroni": self.p_bonferroni,
            "p_holm": self.p_holm,
            "significant_bonferroni": self.significant_bonferroni,
            "significant_holm": self.significant_holm,
            "better": self.better,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class PairwiseResult:
    """All pairwise McNemar tests among named configurations, corrected as one family."""

    names: tuple[str, ...]
    alpha: float
    comparisons: tuple[PairComparison, ...]

    @property
    def n_comparisons(self) -> int:
        """Size of the family of tests (k(k-1)/2 for k configurations)."""
        return len(self.comparisons)

    @property
    def bonferroni_alpha(self) -> float:
        """The per-test level under Bonferroni, alpha / number of comparisons."""
        return self.alpha / max(1, self.n_comparisons)

    def get(self, a: str, b: str) -> PairComparison:
        """The comparison of ``a`` and ``b`` in either order; ``KeyError`` when absent."""
        for comp in self.comparisons:
            if (comp.a, comp.b) in ((a, b), (b, a)):
                return comp
        raise KeyError(f"no comparison between {a!r} and {b!r}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the names, alpha, corrected alpha and every comparison."""
        return {
            "names": list(self.names),
            "alpha": self.alpha,
            "n_comparisons": self.n_comparisons,
            "bonferroni_alpha": self.bonferroni_alpha,
            "comparisons": [c.to_dict() for c in self.comparisons],
        }


def pairwise_mcnemar(
    named_vectors: Mapping[str, Sequence[bool]], *, alpha: float = 0.05
) -> PairwiseResult:
    """McNemar tests of every pair of ``named_vectors``, with Bonferroni and Holm adjustment.

    The family is all k(k-1)/2 pairs (21 for the paper's 7 configurations, so Bonferroni tests
    each at 0.05/21). Adjusted p-values come from statsmodels ``multipletests``; a pair is
    significant when its adjusted p-value is at most ``alpha``. All vectors must have the same
    length (``ValueError`` otherwise); fewer than two names give an empty result.

    >>> res = pairwise_mcnemar({"x": [True] * 30, "y": [False] * 30, "z": [True] * 30})
    >>> res.n_comparisons, res.get("x", "y").verdict, res.get("x", "z").verdict
    (3, 'x better (Bonferroni)', 'not significant')
    """
    lengths = {name: len(vec) for name, vec in named_vectors.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"correctness vectors differ in length: {lengths}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    names = tuple(named_vectors)
    pairs = list(combinations(names, 2))
    tests = [mcnemar_test(named_vectors[a], named_vectors[b]) for a, b in pairs]
    if not tests:
        return PairwiseResult(names, alpha, ())
    from statsmodels.stats.multitest import multipletests

    raw = [t.pvalue for t in tests]
    bonf_reject, bonf_p, _, _ = multipletests(raw, alpha=alpha, method="bonferroni")
    holm_reject, holm_p, _, _ = multipletests(raw, alpha=alpha, method="holm")
    comparisons = tuple(
        PairComparison(
            a=a,
            b=b,
            test=test,
            p_bonferroni=float(bonf_p[i]),
            p_holm=float(holm_p[i]),
            significant_bonferroni=bool(bonf_reject[i]),
            significant_holm=bool(holm_reject[i]),
            better=a if test.b > test.c else b if test.c > test.b else None,
        )
        for i, ((a, b), test) in enumerate(zip(pairs, tests, strict=True))
    )
    return PairwiseResult(names, alpha, comparisons)


@dataclass(frozen=True)
class PairedDifference:
    """Accuracy of B minus accuracy of A on the same ``n`` questions, with a CI and McNemar.

    ``delta`` is the observed difference (c - b) / n; ``ci_low``/``ci_high`` the Agresti-Min
    interval (see :func:`paired_difference`); ``test`` McNemar's test of A against B.
    """

    n: int
    delta: float
    ci_low: float
    ci_high: float
    confidence: float
    test: McNemarResult

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; the test is nested under ``test``."""
        return {
            "n": self.n,
            "delta": self.delta,
            "ci": [self.ci_low, self.ci_high],
            "confidence": self.confidence,
            "pvalue": self.test.pvalue,
            "test": self.test.to_dict(),
        }


def paired_difference(
    correct_a: Sequence[bool], correct_b: Sequence[bool], *, confidence: float = 0.95
) -> PairedDifference:
    """acc(B) - acc(A) on paired correctness vectors, with an Agresti-Min CI and McNemar's test.

    The interval is the adjusted Wald interval of Agresti and Min (2005, *Statistics in
    Medicine* 24:729) for a difference of matched proportions: add 0.5 to each cell of the 2x2
    table, then take the Wald interval of the adjusted table; clipped to [-1, 1]. Unlike the
    plain Wald interval it has close to nominal coverage for small ``n`` and does not collapse
    to a point when no question is discordant. Vectors of different lengths or empty vectors
    raise ``ValueError``.

    >>> d = paired_difference([True] * 2 + [False] * 10, [False] * 2 + [True] * 10)
    >>> round(d.delta, 3), round(d.ci_low, 3), round(d.ci_high, 3), round(d.test.pvalue, 4)
    (0.667, 0.165, 0.978, 0.0386)
    """
    from scipy.stats import norm

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    test = mcnemar_test(correct_a, correct_b)
    if test.n == 0:
        raise ValueError("paired_difference needs at least one question")
    n = test.n + 2.0
    only_a, only_b = (test.b + 0.5) / n, (test.c + 0.5) / n
    centre = only_b - only_a
    half = float(norm.ppf(0.5 + confidence / 2)) * math.sqrt(
        max(0.0, only_a + only_b - centre**2) / n
    )
    delta = (test.c - test.b) / test.n
    return PairedDifference(
        test.n, delta, max(-1.0, centre - half), min(1.0, centre + half), confidence, test
    )


def seed_summary(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) over seeds; one value has std 0.

    Empty input or a non-finite value raises ``ValueError``.

    >>> seed_summary([0.5])
    (0.5, 0.0)
    """
    data = [float(v) for v in values]
    if not data:
        raise ValueError("seed_summary needs at least one value")
    if not all(math.isfinite(v) for v in data):
        raise ValueError(f"seed_summary got a non-finite value: {data}")
    mean = float(np.mean(data))
    std = float(np.std(data, ddof=1)) if len(data) > 1 else 0.0
    return mean, std
