"""The paper's metrics, exactly as REFERENCE.md defines them, and the bootstrap CIs."""

import numpy as np
import pytest

from rewardsmith.evaluation import score_responses
from rewardsmith.metrics import bootstrap_ci, score_outcomes

OK = "<thinking>t</thinking><solution>{}</solution>"


def test_counts_and_formulas() -> None:
    # 3 correct, 1 wrong, 1 unextracted out of 5
    m = score_outcomes([1, 1, 1, 1, 0], [1, 1, 1, 0, 0])
    assert (m.tp, m.fp, m.fn, m.n) == (3, 1, 1, 5)
    p, r = 3 / 4, 3 / 4
    assert m.precision == pytest.approx(p)
    assert m.recall == pytest.approx(r)
    assert m.f1 == pytest.approx(2 * p * r / (p + r))
    assert m.accuracy == pytest.approx(0.6)
    assert m.extraction_rate == pytest.approx(0.8)
    assert m.errors == {"no_extraction": 1, "wrong": 1, "correct": 3}


def test_all_extracted_f1_identity() -> None:
    # every answer extracted: recall = 1 and F1 = 2acc/(1+acc)
    m = score_outcomes([True] * 10, [True] * 4 + [False] * 6)
    assert m.recall == 1.0
    assert m.f1 == pytest.approx(2 * 0.4 / 1.4)


def test_f1_is_always_a_function_of_accuracy() -> None:
    # REFERENCE: TP + FP + FN = total, so F1 = 2acc/(1+acc) whatever the extraction rate;
    # ranking by F1 is ranking by accuracy
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        extracted = rng.random(n) < rng.random()
        correct = extracted & (rng.random(n) < rng.random())
        m = score_outcomes(extracted, correct)
        assert m.f1 == pytest.approx(2 * m.accuracy / (1 + m.accuracy), abs=1e-12)


BLANK_CAPTURES = [
    # (solution content, counted as, why)
    (" ", "fn", "white space only is nothing extracted (the paper strips first)"),
    (",", "fn", "a comma only is empty once commas are dropped"),
    (" , ", "fn", "commas and spaces: empty after stripping and dropping commas"),
    ("\n,\n", "fn", "newlines are white space too"),
    ("13", "fp", "a real wrong answer is extracted and wrong"),
    ("1,2", "tp", "commas dropped: 12 is the gold"),
]


@pytest.mark.parametrize(("content", "counted", "why"), BLANK_CAPTURES)
def test_blank_captures_are_false_negatives(content: str, counted: str, why: str) -> None:
    result = score_responses([OK.format(content)], ["12"], ci=False)
    m = result.metrics
    assert {"tp": m.tp, "fp": m.fp, "fn": m.fn}[counted] == 1, why
    assert m.tp + m.fp + m.fn == 1


def test_nothing_extracted_is_zero_not_nan() -> None:
    m = score_outcomes([False] * 3, [False] * 3)
    assert (m.precision, m.recall, m.f1, m.accuracy) == (0.0, 0.0, 0.0, 0.0)


def test_correct_requires_extraction() -> None:
    # a 'correct' flag on an unextracted answer cannot count as a true positive
    m = score_outcomes([False], [True])
    assert (m.tp, m.fn) == (0, 1)


def test_score_responses_end_to_end() -> None:
    responses = [OK.format("12"), OK.format("12.0"), OK.format("13"), "no tags", OK.format("1,000")]
    golds = ["12", "12", "12", "12", "1000"]
    result = score_responses(responses, golds, ci=False)
    assert [r["correct"] for r in result.records] == [True, True, False, False, True]
    assert [r["exact"] for r in result.records] == [True, False, False, False, True]
    assert result.metrics.exact_match == pytest.approx(0.4)
    assert result.correct == [True, True, False, False, True]


def test_bootstrap_ci_fixed_vector() -> None:
    ext = np.ones(200, dtype=bool)
    cor = np.array([True] * 120 + [False] * 80)
    ci = bootstrap_ci(ext, cor, n_resamples=2000, seed=0)
    low, high = ci["accuracy"]
    # normal approximation: 0.6 +- 1.96 * sqrt(0.24/200) = [0.532, 0.668]
    assert low == pytest.approx(0.532, abs=0.015)
    assert high == pytest.approx(0.668, abs=0.015)
    f1_point = 2 * 0.6 / 1.6
    assert ci["f1"][0] < f1_point < ci["f1"][1]
    # seeded: identical on a second call
    assert bootstrap_ci(ext, cor, n_resamples=2000, seed=0) == ci


def test_bootstrap_degenerate_vector() -> None:
    ci = bootstrap_ci(np.ones(20, bool), np.ones(20, bool), n_resamples=200)
    assert ci["accuracy"] == (1.0, 1.0)
