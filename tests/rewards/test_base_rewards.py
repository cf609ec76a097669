"""Exact values of the paper's three base rewards (REFERENCE.md section 1), table-driven."""

from __future__ import annotations

import pickle

import pytest

from rewardsmith.errors import ConfigError
from rewardsmith.extraction import Tags
from rewardsmith.rewards import BASE_REWARD_NAMES, REWARD_REGISTRY, get_reward
from rewardsmith.rewards.base import (
    check_answer,
    get_check_answer_reward,
    get_match_format_approximately_reward,
    get_match_format_exactly_reward,
    match_format_approximately,
    match_format_exactly,
)
from rewardsmith.rewards.contract import completion_text

GOOD = "<thinking>48/2 = 24; 48 + 24 = 72</thinking>\n<solution>72</solution>"


def _sol(answer: str) -> str:
    return f"<thinking>work</thinking>\n<solution>{answer}</solution>"


EXACTLY = [
    (GOOD, 3.0),  # the paper's format
    ("  \n" + GOOD + "\n  ", 3.0),  # surrounding white space is allowed
    ("<thinking>a</thinking>xyz<solution>72</solution>", 3.0),  # anything between the blocks
    (GOOD + " trailing", 0.0),  # text after </solution> on the same line
    (GOOD + "\ntrailing line", 3.0),  # MULTILINE: `$` matches at the end of the solution line
    ("Sure! " + GOOD, 0.0),  # text before <thinking> on its line
    ("Sure!\n" + GOOD, 3.0),  # MULTILINE: `^` matches at the start of the <thinking> line
    ("<thinking></thinking><solution>72</solution>", 0.0),  # reasoning needs a character
    ("<thinking>a</thinking><solution>72", 0.0),  # unclosed solution
    ("<solution>72</solution>", 0.0),  # no reasoning block
    ("", 0.0),  # empty completion
]


@pytest.mark.parametrize(("text", "expected"), EXACTLY)
def test_match_format_exactly(text, expected):
    assert match_format_exactly(None, [text]) == [expected]


APPROXIMATELY = [
    (GOOD, 2.0),  # four tags once: 4 x 0.5
    ("no tags at all", -4.0),  # four tags missing: 4 x -1.0
    ("", -4.0),  # empty completion
    ("<solution>7</solution>", -1.0),  # two tags once, two missing
    (GOOD + "<solution>72</solution>", -1.0),  # solution tags twice each
    ("<thinking><thinking></thinking><solution>1</solution>", 0.5),  # one tag doubled
]


@pytest.mark.parametrize(("text", "expected"), APPROXIMATELY)
def test_match_format_approximately(text, expected):
    assert match_format_approximately(None, [text]) == [expected]


CHECK = [
    (_sol("72"), "72", 3.0),  # exact
    (_sol(" 72 "), "72", 3.0),  # stripped before comparing
    (_sol("1,200"), "1200", 3.0),  # commas dropped
    (_sol("72"), "Natalia sold 72 clips.\n#### 72", 3.0),  # raw GSM8K answer field
    (_sol("72.0"), "72", 1.0),  # not string-equal; ratio 1.0
    (_sol("90"), "100", 1.0),  # ratio 0.9: inclusive lower bound of +1.0
    (_sol("110"), "100", 1.0),  # ratio 1.1: inclusive upper bound of +1.0
    (_sol("89"), "100", 0.5),  # ratio 0.89: the +0.5 band
    (_sol("80"), "100", 0.5),  # ratio 0.8: inclusive bound of +0.5
    (_sol("120"), "100", 0.5),  # ratio 1.2: inclusive bound of +0.5
    (_sol("79"), "100", -1.5),  # ratio 0.79: outside every band
    (_sol("121"), "100", -1.5),  # ratio 1.21
    (_sol("-100"), "100", -1.5),  # negative ratio
    (_sol("seventy-two"), "72", -1.5),  # strict capture that is not a number
    (_sol("."), "72", -1.5),  # unparsable number run
    (_sol("1"), "0", -1.5),  # zero gold answer: the ratio is undefined
    ("The answer is 72.", "72", 0.0),  # nothing extracted
    ("<thinking>a</thinking><solution></solution>", "72", 0.0),  # empty solution: nothing
    ("<solution>72 clips", "72", 3.0),  # fallback: first number run after <solution>
    ("<solution>-5</solution>", "-5", -1.5),  # fallback drops the minus sign (paper quirk)
    (_sol("-5"), "-5", 3.0),  # the strict capture keeps it
]


@pytest.mark.parametrize(("text", "gold", "expected"), CHECK)
def test_check_answer(text, gold, expected):
    assert check_answer(None, [text], [gold]) == [expected]


def test_conversational_and_plain_completions_score_the_same():
    conversational = [[{"role": "assistant", "content": GOOD}]]
    for reward in REWARD_REGISTRY.values():
        assert reward(None, conversational, answer=["72"]) == reward(None, [GOOD], answer=["72"])


def test_batches_and_trl_keyword_call():
    completions = [GOOD, "nothing", _sol("70")]
    scores = check_answer(prompts=None, completions=completions, answer=["72"] * 3, question=["q"])
    assert scores == [3.0, 0.0, 1.0]


def test_answer_column_must_align():
    with pytest.raises(ValueError, match="3 entries for 2"):
        check_answer(None, [GOOD, GOOD], ["1", "2", "3"])


def test_custom_tags():
    tags = Tags("<reasoning>", "</reasoning>", "<answer>", "</answer>")
    text = "<reasoning>r</reasoning><answer>5</answer>"
    assert get_match_format_exactly_reward(tags)(None, [text]) == [3.0]
    assert get_match_format_approximately_reward(tags)(None, [text]) == [2.0]
    assert get_check_answer_reward(tags)(None, [text], ["5"]) == [3.0]
    assert match_format_exactly(None, [text]) == [0.0]  # the default tags do not see it


def test_registry_names_and_pickling():
    assert set(BASE_REWARD_NAMES) <= set(REWARD_REGISTRY)
    for name in BASE_REWARD_NAMES:
        reward = get_reward(name)
        assert reward.__name__ == name
        clone = pickle.loads(pickle.dumps(reward))
        assert clone == reward and clone.__name__ == name
        assert clone(None, [GOOD], answer=["72"]) == reward(None, [GOOD], answer=["72"])
    renamed = get_check_answer_reward(name="check_answer_custom")
    assert renamed.__name__ == "check_answer_custom"


def test_unknown_reward_lists_valid_names():
    with pytest.raises(ConfigError, match="check_answer.*match_format_approximately"):
        get_reward("no_such_reward")


def test_completion_text_shapes():
    assert completion_text({"role": "assistant", "content": "x"}) == "x"
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"text": "b"}]}]
    assert completion_text(parts) == "ab"
    with_user = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    assert completion_text(with_user) == "a"
    with pytest.raises(TypeError):
        completion_text(42)
