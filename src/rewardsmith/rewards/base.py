"""The paper's three base rewards (arXiv 2605.02073), with its exact values.

* :func:`match_format_exactly`: +3.0 when the strict format pattern matches, else 0.0.
* :func:`match_format_approximately`: for each of the four tags, +0.5 when it occurs exactly
  once, else -1.0 (so from -4.0 to +2.0).
* :func:`check_answer`: the paper's extraction (strict capture, else the first number run after
  ``<solution>``); nothing extracted -> 0.0; after stripping and dropping commas, equal strings
  -> +3.0; else the ratio guess/true in [0.9, 1.1] -> +1.0, in [0.8, 1.2] -> +0.5, otherwise
  (or unparsable, or a zero gold answer) -> -1.5.

The registered defaults use the paper's ``<thinking>``/``<solution>`` tags; the
``get_*_reward(tags=...)`` factories build the same rewards for other tags. Each reward is a small
picklable callable whose ``__name__`` is the reward's name (TRL keys its metrics on it).

>>> good = "<thinking>48/2 = 24; 48 + 24 = 72</thinking>\\n<solution>72</solution>"
>>> match_format_exactly(None, [good]), match_format_approximately(None, [good])
([3.0], [2.0])
>>> check_answer(None, [good, "<solution>70</solution>"], ["72", "72"])
[3.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewardsmith.extraction import DEFAULT_TAGS, Tags, extract_paper, format_patterns, normalize
from rewardsmith.rewards.contract import completion_texts, per_sample


class _TagReward:
    """Shared shape of the base rewards: a name, the tags, and the TRL call signature."""

    default_name = ""

    def __init__(self, tags: Tags = DEFAULT_TAGS, name: str | None = None) -> None:
        self.tags = tags
        self.__name__ = name or self.default_name
        self.__qualname__ = self.__name__

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tags={self.tags!r}, name={self.__name__!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and (other.tags, other.__name__) == (
            self.tags,
            self.__name__,
        )

    def __hash__(self) -> int:
        return hash((type(self), self.tags, self.__name__))


class MatchFormatExactly(_TagReward):
    """+3.0 when the strict format pattern matches the completion, else 0.0."""

    default_name = "match_format_exactly"

    def __call__(self, prompts: Any, completions: Sequence[Any], *_: Any, **kwargs: Any):
        strict, _numbers = format_patterns(self.tags)
        return [3.0 if strict.search(t) else 0.0 for t in completion_texts(completions)]


class MatchFormatApproximately(_TagReward):
    """Per tag: +0.5 when it occurs exactly once, else -1.0."""

    default_name = "match_format_approximately"

    def __call__(self, prompts: Any, completions: Sequence[Any], *_: Any, **kwargs: Any):
        tags = self.tags.all()
        return [
            sum(0.5 if text.count(tag) == 1 else -1.0 for tag in tags)
            for text in completion_texts(completions)
        ]


def _gold(answer: Any) -> str:
    """The gold answer; a raw GSM8K answer field is cut to the text after ``####``."""
    text = str(answer)
    return text.rsplit("####", 1)[1] if "####" in text else text


def score_answer(guess: str | None, true: str) -> float:
    """The paper's answer score for one extracted guess against the gold answer.

    >>> score_answer("1,200", "1200"), score_answer("95", "100"), score_answer("85", "100")
    (3.0, 1.0, 0.5)
    >>> score_answer(None, "5"), score_answer("abc", "5"), score_answer("3", "0")
    (0.0, -1.5, -1.5)
    """
    if guess is None:
        return 0.0
    guess, true = normalize(guess), normalize(true)
    if guess == true:
        return 3.0
    try:
        ratio = float(guess) / float(true)
    except (ValueError, ZeroDivisionError):
        return -1.5
    if 0.9 <= ratio <= 1.1:
        return 1.0
    if 0.8 <= ratio <= 1.2:
        return 0.5
    return -1.5


class CheckAnswer(_TagReward):
    """The paper's correctness reward, see :func:`score_answer`."""

    default_name = "check_answer"

    def __call__(self, prompts: Any, completions: Sequence[Any], answer: Any, **kwargs: Any):
        texts = completion_texts(completions)
        golds = per_sample(answer, len(texts), "answer")
        return [
            score_answer(extract_paper(text, self.tags), _gold(gold))
            for text, gold in zip(texts, golds, strict=True)
        ]


def get_match_format_exactly_reward(
    tags: Tags = DEFAULT_TAGS, name: str = "match_format_exactly"
) -> MatchFormatExactly:
    """``match_format_exactly`` for ``tags``, named ``name``."""
    return MatchFormatExactly(tags, name)


def get_match_format_approximately_reward(
    tags: Tags = DEFAULT_TAGS, name: str = "match_format_approximately"
) -> MatchFormatApproximately:
    """``match_format_approximately`` for ``tags``, named ``name``."""
    return MatchFormatApproximately(tags, name)


def get_check_answer_reward(tags: Tags = DEFAULT_TAGS, name: str = "check_answer") -> CheckAnswer:
    """``check_answer`` for ``tags``, named ``name``."""
    return CheckAnswer(tags, name)


match_format_exactly = get_match_format_exactly_reward()
match_format_approximately = get_match_format_approximately_reward()
check_answer = get_check_answer_reward()
