"""Label-free rewards of arXiv 2505.19439 (REFERENCE.md section 3): exact values, no gold answer."""

from __future__ import annotations

import doctest
import pickle

import pytest

import rewardsmith.rewards.surrogate as surrogate
from rewardsmith.extraction import Tags
from rewardsmith.rewards import LABEL_FREE_REWARDS, REWARD_REGISTRY, get_reward
from rewardsmith.rewards.surrogate import (
    format_length_reward,
    format_reward,
    get_format_length_reward,
    get_format_reward,
    get_length_reward,
    length_reward,
    length_score,
    token_lengths,
)

GOOD = "<thinking>3 + 4 = 7</thinking>\n<solution>7</solution>"


def ids(n: int) -> list[int]:
    """A completion of ``n`` token ids."""
    return list(range(n))


FORMAT = [
    (GOOD, 1.0),  # the expected format
    ("<solution>7</solution>", 1.0),  # the reasoning block is not required
    ("<solution> -1,234.50 </solution>", 1.0),  # sign, thousands commas, decimals, white space
    ("<solution>3/4</solution>", 1.0),  # a fraction
    ("<solution>.5</solution>", 1.0),  # a leading decimal point
    ("<solution>+2</solution>", 1.0),  # an explicit plus sign
    ("<solution>72 apples</solution>", 0.0),  # units make it unparsable
    ("<solution>$72</solution>", 0.0),  # so does a currency sign
    ("<solution>seven</solution>", 0.0),  # words are not a number
    ("<solution></solution>", 0.0),  # empty answer
    ("<solution>1/0</solution>", 0.0),  # a zero denominator does not parse
    ("<solution>7", 0.0),  # unclosed tag
    ("7", 0.0),  # no tag at all
    ("\\boxed{7}", 0.0),  # the paper's wrapper is not our configured tag
    ("<solution>x</solution> <solution>7</solution>", 1.0),  # the last pair counts
    ("<solution>7</solution> <solution>x</solution>", 0.0),  # ... in both directions
    ("", 0.0),  # empty completion
]


@pytest.mark.parametrize(("text", "expected"), FORMAT)
def test_format_reward(text, expected):
    assert format_reward(None, [text]) == [expected]


def test_format_reward_custom_tags():
    tags = Tags("<reasoning>", "</reasoning>", "<answer>", "</answer>")
    assert get_format_reward(tags)(None, ["<answer>5</answer>", GOOD]) == [1.0, 0.0]


# L_max = 100 tokens, p = 0.5
LENGTH = [
    (0, 0.0),  # x = 0: 1 - (1 - 0)^2
    (25, 0.75),  # x = 0.25: 1 - (1 - 0.5)^2
    (50, 1.0),  # x = 0.5: the turning point
    (65, 0.82),  # x = 0.65: 1 - 2 (0.15 / 0.5)^2 = 1 - 2 * 0.09
    (75, 0.5),  # x = 0.75: 1 - 2 (0.25 / 0.5)^2
    (100, -1.0),  # x = 1: 1 - 2 (0.5 / 0.5)^2
    (150, -1.0),  # x = 1.5 is clamped to 1
]


@pytest.mark.parametrize(("n_tokens", "expected"), LENGTH)
def test_length_reward_counts_completion_ids(n_tokens, expected):
    reward = get_length_reward(max_length=100)
    # the text is irrelevant when TRL passes the token ids
    assert reward(None, ["x"], completion_ids=[ids(n_tokens)]) == [pytest.approx(expected)]


def test_length_reward_other_turning_point():
    reward = get_length_reward(max_length=100, turning_point=0.2)
    # x = 0.1: 1 - (1 - 0.1/0.2)^2 = 0.75; x = 0.6: 1 - 2 (0.4 / 0.8)^2 = 0.5
    assert reward(None, ["a", "b"], completion_ids=[ids(10), ids(60)]) == pytest.approx([0.75, 0.5])


def test_length_reward_without_ids_approximates_tokens():
    # "It is 7." -> It / is / 7 / . = 4 tokens; x = 4/8 = 0.5 -> 1.0
    assert token_lengths(["It is 7."]) == [4]
    assert get_length_reward(max_length=8)(None, ["It is 7."]) == [1.0]


def test_length_ids_must_align():
    with pytest.raises(ValueError, match="2 completion_ids for 1"):
        length_reward(None, ["x"], completion_ids=[ids(1), ids(2)])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"max_length": 0}, "max_length"), ({"turning_point": 1.0}, "turning_point")],
)
def test_length_parameters_are_checked(kwargs, field):
    with pytest.raises(ValueError, match=field):
        get_length_reward(**kwargs)


# L_max = 100; (text, tokens, w_f, expected)
FORMAT_LENGTH = [
    (GOOD, 50, 1.0, 2.0),  # format right: 1.0 * 1 + R_l(0.5) = 1 + 1
    (GOOD, 25, 1.0, 1.75),  # 1 + 0.75
    (GOOD, 100, 1.0, 0.0),  # 1 + (-1)
    (GOOD, 65, 0.5, 1.32),  # the released code's weight: 0.5 + 0.82
    ("no answer", 50, 1.0, 0.0),  # format wrong: min(0, 1.0)
    ("no answer", 100, 1.0, -1.0),  # format wrong: min(0, -1.0)
    ("<solution>7 apples</solution>", 75, 0.5, 0.0),  # format wrong: min(0, 0.5)
    ("no answer", 0, 1.0, 0.0),  # empty-length edge: min(0, 0)
]


@pytest.mark.parametrize(("text", "n_tokens", "w_f", "expected"), FORMAT_LENGTH)
def test_format_length_reward(text, n_tokens, w_f, expected):
    reward = get_format_length_reward(max_length=100, format_weight=w_f)
    assert reward(None, [text], completion_ids=[ids(n_tokens)]) == [pytest.approx(expected)]


def test_registered_defaults_match_the_paper():
    assert format_length_reward.params["format_weight"] == 1.0  # the paper's equation
    assert length_reward.params == {"max_length": 256, "turning_point": 0.5}
    # default L_max = 256: 128 tokens is the turning point
    assert format_length_reward(None, [GOOD], completion_ids=[ids(128)]) == [2.0]


class PoisonedAnswer:
    """A gold-answer column that fails the test on any use: iteration, indexing, str, len, ..."""

    def _touched(self, *args, **kwargs):
        raise AssertionError("a label-free reward read the gold answer")

    __getattr__ = __iter__ = __len__ = __getitem__ = __str__ = __repr__ = _touched
    __bool__ = __eq__ = __hash__ = __contains__ = __format__ = __index__ = __float__ = _touched


@pytest.mark.parametrize("name", sorted(LABEL_FREE_REWARDS))
def test_label_free_rewards_never_read_the_answer(name):
    reward = get_reward(name)
    completions = [GOOD, "Let me check: <solution>8</solution>", ""]
    scores = reward(
        prompts=None, completions=completions, answer=PoisonedAnswer(),
        completion_ids=[ids(5), ids(9), ids(0)],
    )  # fmt: skip
    assert len(scores) == 3 and all(isinstance(s, float) for s in scores)


def test_the_poison_really_fires():
    with pytest.raises(AssertionError, match="gold answer"):
        get_reward("check_answer")(None, [GOOD], answer=PoisonedAnswer())


def test_label_free_names_are_registered_and_exclude_gold_rewards():
    assert LABEL_FREE_REWARDS <= set(REWARD_REGISTRY)
    gold_readers = {"check_answer", "accuracy_reward", "oreal_outcome_reward"}
    assert gold_readers <= set(REWARD_REGISTRY) and not gold_readers & LABEL_FREE_REWARDS


@pytest.mark.parametrize("name", ["format_reward", "length_reward", "format_length_reward"])
def test_registered_names_and_pickling(name):
    reward = get_reward(name)
    assert reward.__name__ == name
    clone = pickle.loads(pickle.dumps(reward))
    assert clone == reward and clone.__name__ == name
    assert clone(None, [GOOD], completion_ids=[ids(7)]) == reward(
        None, [GOOD], completion_ids=[ids(7)]
    )


def test_factories_name_their_rewards():
    reward = get_format_length_reward(max_length=64, format_weight=0.5, name="fl_code")
    assert reward.__name__ == "fl_code" and reward != format_length_reward


def test_conversational_completions():
    chat = [[{"role": "assistant", "content": GOOD}]]
    assert format_length_reward(None, chat, completion_ids=[ids(128)]) == [2.0]


def test_module_doctests():
    result = doctest.testmod(surrogate)
    assert result.attempted > 0 and result.failed == 0


def test_length_score_is_continuous_at_the_turning_point():
    assert length_score(49.999, 100) == pytest.approx(length_score(50.001, 100), abs=1e-3)
