"""The reflection method's rewards (arXiv 2603.14041, REFERENCE.md section 5), binary outcomes."""

from __future__ import annotations

import doctest
import math
import pickle

import pytest

import rewardsmith.rewards.reflection as reflection
from rewardsmith.rewards import get_reward
from rewardsmith.rewards.reflection import (
    KEYWORD_GROUPS,
    accuracy_reward,
    get_accuracy_reward,
    get_oreal_outcome_reward,
    group_score,
    keyword_counts,
    oreal_outcome_reward,
    reflection_format_reward,
    reflection_reward,
)

GOOD = "<thinking>3 + 4 = 7</thinking>\n<solution>7</solution>"

# (text, expected R); hand computation in the comment:
# one keyword:      raw = 0.5; c = 0.8 ln 1.5 = 0.324372; c^1.2 = 0.258972; R = 1 - 1/1.258972
# three in a group: S = 0.5 + 0.5/1.4 + 0.5/1.8 = 1.134921; c = 0.8 ln 2.134921 = 0.606744;
#                   c^1.2 = 0.549043; R = 1 - 1/1.549043
# two in a group:  S = 0.5 + 0.5/1.4 = 0.857143; c = 0.8 ln 1.857143 = 0.495231;
#                   c^1.2 = 0.430298; R = 1 - 1/1.430298
# one per group:    raw = 4 x 0.5 = 2; c = 0.8 ln 3 = 0.878890; c^1.2 = 0.856488; R = 1 - 1/1.856488
# 2 + 1 in groups:  raw = (0.5 + 0.357143) + 0.5 = 1.357143; c = 0.8 ln 2.357143 = 0.685960;
#                   c^1.2 = 0.636149; R = 1 - 1/1.636149
REFLECTION = [
    ("", 0.0),  # nothing at all
    ("The answer is 7.", 0.0),  # no keyword
    ("Let me verify.", 0.205701),  # one keyword
    ("VERIFY", 0.205701),  # counting is case-insensitive
    ("Check it, check it again, check.", 0.354440),  # three in the verification group
    ("verify; step; target; error", 0.461349),  # one in each of the four groups
    ("First step, next step, then verify.", 0.388809),  # two subgoals + one verification
    ("Double-check the checked value.", 0.300845),  # "check" twice: S = 0.5 + 0.5/1.4
    ("The latest testament", 0.205701),  # "test" starts "testament", never "latest"
    ("Work backwards from the goal.", 0.300845),  # one span "work backwards" + "goal": same group
]


def _r(raw: float) -> float:
    c = 0.8 * math.log1p(raw)
    return 1 - 1 / (1 + c**1.2)


def test_hand_computed_constants():
    # the literals in REFLECTION, recomputed from the formula
    assert _r(0.5) == pytest.approx(0.205701, abs=1e-6)
    assert _r(group_score(2)) == pytest.approx(0.300845, abs=1e-6)
    assert _r(group_score(3)) == pytest.approx(0.354440, abs=1e-6)
    assert _r(2.0) == pytest.approx(0.461349, abs=1e-6)
    assert _r(group_score(2) + 0.5) == pytest.approx(0.388809, abs=1e-6)


@pytest.mark.parametrize(("text", "expected"), REFLECTION)
def test_reflection_reward(text, expected):
    assert reflection_reward(None, [text]) == [pytest.approx(expected, abs=1e-6)]


COUNTS = [
    ("I made a mistake; let me re-evaluate and fix the errors.", {"backtracking": 4}),
    ("Verified. Confirming: tests pass, a sanity check.", {"verification": 5}),
    ("Stage 1, phase 2, a subtask and a sub-problem.", {"subgoals": 4}),
    ("The target requires it; working backwards.", {"backward_reasoning": 3}),
    ("Stepwise, then substeps? no: 'substeps' does not start with 'step'", {"subgoals": 2}),
]


@pytest.mark.parametrize(("text", "expected"), COUNTS)
def test_keyword_counts(text, expected):
    counts = keyword_counts(text)
    assert counts == {group: expected.get(group, 0) for group in KEYWORD_GROUPS}


def test_reflection_saturates_below_one():
    spam = " ".join(kw for kws in KEYWORD_GROUPS.values() for kw in kws) * 50
    (score,) = reflection_reward(None, [spam])
    assert 0.7 < score < 1.0


def test_group_score_diminishes():
    # the i-th match adds 0.5 / (1 + (i - 1) / 2.5): 0.5, then less and less
    gains = [group_score(n + 1) - group_score(n) for n in range(5)]
    assert gains[0] == 0.5 and all(a > b for a, b in zip(gains, gains[1:], strict=False))


FORMAT = [
    (GOOD, 1.0),  # the full response format
    ("<solution>7</solution>", 0.0),  # no reasoning block (format_reward would accept it)
    ("<thinking>r</thinking><solution>seven</solution>", 1.0),  # a format, not a number, check
    (GOOD + " trailing", 0.0),  # text after the solution on its line
    ("", 0.0),
]


@pytest.mark.parametrize(("text", "expected"), FORMAT)
def test_reflection_format_reward(text, expected):
    assert reflection_format_reward(None, [text]) == [expected]


# (completion, gold, paper-mode accuracy, flexible-mode accuracy)
ACCURACY = [
    (GOOD, "7", 1.0, 1.0),
    (GOOD, "#### 7", 1.0, 1.0),  # a raw GSM8K answer field is cut after ####
    ("<thinking>r</thinking><solution>1,200</solution>", "1200", 1.0, 1.0),
    ("<thinking>r</thinking><solution>8</solution>", "7", 0.0, 0.0),
    ("no answer at all", "7", 0.0, 0.0),
    ("<solution>-7 dollars</solution>", "-7", 0.0, 1.0),  # the paper drops the sign
    ("The answer is 3/4", "0.75", 0.0, 1.0),  # flexible reads phrases and fractions
]


@pytest.mark.parametrize(("text", "gold", "paper", "flexible"), ACCURACY)
def test_accuracy_reward(text, gold, paper, flexible):
    assert accuracy_reward(None, [text], [gold]) == [paper]
    assert get_accuracy_reward("flexible")(None, [text], answer=[gold]) == [flexible]


def test_accuracy_mode_is_checked():
    with pytest.raises(ValueError, match="unknown extraction mode"):
        get_accuracy_reward("fuzzy")


def test_oreal_outcome_reward_is_plus_minus_one():
    texts = [GOOD, "<thinking>r</thinking><solution>8</solution>", "nothing"]
    assert oreal_outcome_reward(None, texts, ["7"] * 3) == [1.0, -1.0, -1.0]


def test_oreal_outcome_reward_truncation():
    reward = get_oreal_outcome_reward(max_completion_length=4, eos_token_ids=[2])
    ids = [[5, 6, 7, 8], [5, 6, 7, 2], [5, 6]]  # hit the limit / ended with EOS / short
    assert reward(None, [GOOD] * 3, ["7"] * 3, completion_ids=ids) == [-1.0, 1.0, 1.0]
    # without the limit, nothing counts as truncated
    assert oreal_outcome_reward(None, [GOOD] * 3, ["7"] * 3, completion_ids=ids) == [1.0] * 3


@pytest.mark.parametrize(
    "name",
    ["reflection_reward", "reflection_format_reward", "accuracy_reward", "oreal_outcome_reward"],
)
def test_registered_names_and_pickling(name):
    reward = get_reward(name)
    assert reward.__name__ == name
    clone = pickle.loads(pickle.dumps(reward))
    assert clone == reward
    assert clone(None, [GOOD], answer=["7"]) == reward(None, [GOOD], answer=["7"])


def test_the_recipe_sum_with_weights_one():
    # weights 1/1/1: a correct, well-formatted answer with one "check" scores 1 + 1 + 0.205701
    text = "<thinking>3 + 4 = 7, check</thinking>\n<solution>7</solution>"
    parts = [f(None, [text], answer=["7"])[0] for f in
             (accuracy_reward, reflection_format_reward, reflection_reward)]  # fmt: skip
    assert sum(parts) == pytest.approx(2.205701, abs=1e-6)


def test_module_doctests():
    result = doctest.testmod(reflection)
    assert result.attempted > 0 and result.failed == 0
