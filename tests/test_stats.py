"""McNemar tests, multiple-comparison corrections and seed summaries against known values."""

from __future__ import annotations

import doctest
import math

import pytest
from scipy.stats import binomtest, chi2

import rewardsmith.stats
from rewardsmith.stats import mcnemar_test, pairwise_mcnemar, seed_summary


def _paired(both: int, b: int, c: int, neither: int) -> tuple[list[bool], list[bool]]:
    """Vectors whose McNemar table is [[both, b], [c, neither]]."""
    a = [True] * both + [True] * b + [False] * c + [False] * neither
    bb = [True] * both + [False] * b + [True] * c + [False] * neither
    return a, bb


def test_exact_case_matches_hand_computed_binomial():
    # b=10, c=2: two-sided exact p = 2 * P(X <= 2 | n=12, p=1/2) = 2 * 79/4096
    a, b = _paired(5, 10, 2, 3)
    res = mcnemar_test(a, b)
    assert (res.n, res.both, res.b, res.c, res.neither) == (20, 5, 10, 2, 3)
    assert res.method == "exact"
    assert res.pvalue == pytest.approx(79 / 2048, abs=1e-12)
    assert res.pvalue == pytest.approx(binomtest(2, 12, 0.5).pvalue)
    assert round(res.pvalue, 4) == 0.0386
    assert res.statistic == 2


def test_chi_square_case_with_continuity_correction():
    # b=30, c=10: 40 discordant >= 25 -> chi2 = (|30-10| - 1)^2 / 40 = 9.025
    a, b = _paired(100, 30, 10, 60)
    res = mcnemar_test(a, b)
    assert res.method == "chi2"
    assert res.statistic == pytest.approx(9.025)
    assert res.pvalue == pytest.approx(chi2.sf(9.025, 1))
    assert res.pvalue == pytest.approx(0.002663, abs=1e-6)


def test_threshold_between_exact_and_chi_square():
    assert mcnemar_test(*_paired(0, 20, 4, 0)).method == "exact"  # 24 discordant
    assert mcnemar_test(*_paired(0, 20, 5, 0)).method == "chi2"  # 25 discordant


def test_identical_vectors_give_p_one():
    vec = [True, False, True, True, False] * 10
    res = mcnemar_test(vec, list(vec))
    assert res.pvalue == 1.0 and res.discordant == 0


def test_symmetry_swaps_b_and_c_but_keeps_p():
    a, b = _paired(3, 7, 1, 2)
    ab, ba = mcnemar_test(a, b), mcnemar_test(b, a)
    assert (ab.b, ab.c) == (ba.c, ba.b)
    assert ab.pvalue == pytest.approx(ba.pvalue)


def test_different_lengths_raise():
    with pytest.raises(ValueError, match="length"):
        mcnemar_test([True, False], [True])
    with pytest.raises(ValueError, match="length"):
        pairwise_mcnemar({"a": [True, False], "b": [True]})


def test_pairwise_with_seven_configurations_uses_alpha_over_21():
    vectors = {f"k{i}": [bool((j + i) % 3) for j in range(60)] for i in range(7)}
    res = pairwise_mcnemar(vectors)
    assert res.n_comparisons == 21
    assert res.bonferroni_alpha == pytest.approx(0.05 / 21)
    for comp in res.comparisons:
        assert comp.p_bonferroni == pytest.approx(min(1.0, comp.test.pvalue * 21))
        assert comp.significant_bonferroni == (comp.test.pvalue <= 0.05 / 21)


def test_bonferroni_and_holm_on_known_p_values(monkeypatch):
    # Holm on sorted p = (0.01, 0.02, 0.03) with m = 3: 0.03, max(0.03, 0.04) = 0.04, 0.04.
    known = {("a", "b"): 0.01, ("a", "c"): 0.03, ("b", "c"): 0.02}
    vectors = {"a": [True] * 4, "b": [False] * 4, "c": [True, False] * 2}
    real = mcnemar_test

    def fake(x, y):
        name = {tuple(v): k for k, v in vectors.items()}
        res = real(x, y)
        key = (name[tuple(x)], name[tuple(y)])
        return type(res)(**{**res.__dict__, "pvalue": known[key]})

    monkeypatch.setattr(rewardsmith.stats, "mcnemar_test", fake)
    res = pairwise_mcnemar(vectors, alpha=0.05)
    bonf = {(c.a, c.b): c.p_bonferroni for c in res.comparisons}
    holm = {(c.a, c.b): c.p_holm for c in res.comparisons}
    assert bonf == pytest.approx({("a", "b"): 0.03, ("a", "c"): 0.09, ("b", "c"): 0.06})
    assert holm == pytest.approx({("a", "b"): 0.03, ("a", "c"): 0.04, ("b", "c"): 0.04})
    verdicts = {(c.a, c.b): c.verdict for c in res.comparisons}
    assert verdicts[("a", "b")] == "a better (Bonferroni)"  # 0.03 <= 0.05 under both
    assert verdicts[("b", "c")] == "c better (Holm)"  # Bonferroni 0.06 > 0.05, Holm 0.04
    assert res.get("c", "a").significant_bonferroni is False


def test_pairwise_better_side_and_serialisation():
    a, b = _paired(10, 40, 2, 8)
    res = pairwise_mcnemar({"strong": a, "weak": b, "same": list(a)})
    assert res.get("strong", "weak").better == "strong"
    assert res.get("strong", "weak").significant_bonferroni
    assert res.get("strong", "same").better is None
    assert res.get("strong", "same").verdict == "not significant"
    out = res.to_dict()
    assert out["n_comparisons"] == 3 and len(out["comparisons"]) == 3
    with pytest.raises(KeyError):
        res.get("strong", "missing")


def test_pairwise_with_fewer_than_two_names_is_empty():
    assert pairwise_mcnemar({"only": [True]}).comparisons == ()
    assert pairwise_mcnemar({}).n_comparisons == 0


def test_seed_summary():
    mean, std = seed_summary([0.785, 0.80, 0.77])
    assert mean == pytest.approx(0.785)
    assert std == pytest.approx(0.015)  # sample std, ddof = 1
    assert seed_summary([0.7]) == (0.7, 0.0)
    with pytest.raises(ValueError):
        seed_summary([])
    with pytest.raises(ValueError):
        seed_summary([0.5, math.nan])


def test_doctests():
    result = doctest.testmod(rewardsmith.stats)
    assert result.attempted > 0 and result.failed == 0
