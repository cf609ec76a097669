"""The reflection method's rewards (arXiv 2603.14041, REFERENCE.md section 5) and binary outcomes.

The method trains GRPO after an SFT stage with three rewards summed with weights **1/1/1**:
:func:`accuracy_reward`, :func:`reflection_format_reward` and :func:`reflection_reward`.

* :func:`reflection_reward` counts keywords of four reasoning behaviours in the lower-cased
  completion. A keyword counts every word that *starts* with it (``check`` counts ``checked``
  and the ``check`` of ``double-check``; ``test`` does not count ``latest``); multi-word keywords
  match across single spaces; within a group the longest keyword wins, so one span counts once.
  The groups (see :data:`KEYWORD_GROUPS`):

  - backtracking: backtrack, error, fix, mistake, re-evaluat(e), reevaluat(e), reconsider,
    rethink, wrong, incorrect, oops, revisit;
  - verification: verif(y), check, confirm, test, validat(e), sanity, make sure;
  - subgoals: step, stage, phase, subtask, sub-task, subgoal, sub-goal, subproblem, sub-problem;
  - backward reasoning: target, goal, requir(ed), work backward, working backward, backward.

  A group with ``n`` matches scores ``S = sum_{i=1..n} 0.5 / (1 + (i - 1) / 2.5)``;
  ``raw = sum of S over groups``; ``c = 0.8 ln(1 + raw)``; ``R = 1 - 1 / (1 + c^1.2)``. It lies in
  [0, 1), saturates, and ignores correctness: a model can game it by listing keywords.
* :func:`accuracy_reward`: 1.0 when the extracted answer matches the gold one, else 0.0, with
  :mod:`rewardsmith.extraction`'s ``paper`` (default) or ``flexible`` rule.
* :func:`reflection_format_reward`: 1.0 when the completion has the full response format (the
  strict pattern of ``match_format_exactly``: a non-empty reasoning block, then the solution
  block, at the end), else 0.0; the method's open-r1-style format check on our tags. It differs
  from the label-free ``format_reward``, which only asks for a parsable number in the answer tag.
* :func:`oreal_outcome_reward`: OREAL's binary outcome, +1.0 correct and -1.0 wrong (unparsable,
  missing, or truncated when the factory knows ``max_completion_length``), see
  :mod:`rewardsmith.training.oreal`.

>>> [round(r, 4) for r in reflection_reward(None, ["", "Let me verify."])]
[0.0, 0.2057]
>>> good = "<thinking>3 + 4</thinking>\\n<solution>7</solution>"
>>> accuracy_reward(None, [good, "<solution>8</solution>"], ["7", "7"])
[1.0, 0.0]
>>> oreal_outcome_reward(None, [good, "no answer"], ["#### 7", "#### 7"])
[1.0, -1.0]
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from rewardsmith.extraction import (
    DEFAULT_TAGS,
    EXTRACTION_MODES,
    Tags,
    answers_match,
    extract_answer,
    format_patterns,
)
from rewardsmith.rewards.contract import completion_texts, per_sample
from rewardsmith.rewards.surrogate import ParametrizedReward

KEYWORD_GROUPS: dict[str, tuple[str, ...]] = {
    "backtracking": (
        "backtrack", "error", "fix", "mistake", "re-evaluat", "reevaluat", "reconsider",
        "rethink", "wrong", "incorrect", "oops", "revisit",
    ),
    "verification": ("verif", "check", "confirm", "test", "validat", "sanity", "make sure"),
    "subgoals": (
        "step", "stage", "phase", "subtask", "sub-task", "subgoal", "sub-goal", "subproblem",
        "sub-problem",
    ),
    "backward_reasoning": (
        "target", "goal", "requir", "work backward", "working backward", "backward",
    ),
}  # fmt: skip


def _group_pattern(keywords: Sequence[str]) -> re.Pattern[str]:
    ordered = sorted(keywords, key=len, reverse=True)  # the longest keyword wins a span
    alternatives = "|".join(re.escape(k).replace(r"\ ", r"\s+") for k in ordered)
    return re.compile(rf"\b(?:{alternatives})\w*")


_GROUP_PATTERNS = {group: _group_pattern(kws) for group, kws in KEYWORD_GROUPS.items()}


def keyword_counts(text: str) -> dict[str, int]:
    """Matches per keyword group in the lower-cased ``text``.

    >>> keyword_counts("Step 1: check. Double-check the target; no errors.")
    {'backtracking': 1, 'verification': 2, 'subgoals': 1, 'backward_reasoning': 1}
    """
    lowered = text.lower()
    return {group: len(p.findall(lowered)) for group, p in _GROUP_PATTERNS.items()}


def group_score(n: int) -> float:
    """``S(n) = sum_{i=1..n} 0.5 / (1 + (i - 1) / 2.5)``: diminishing returns within a group.

    >>> [round(group_score(n), 4) for n in (0, 1, 2, 3)]
    [0.0, 0.5, 0.8571, 1.1349]
    """
    return sum((0.5 / (1.0 + (i - 1) / 2.5) for i in range(1, n + 1)), 0.0)


def reflection_score(text: str) -> float:
    """The reflection reward of one completion text, in [0, 1).

    >>> reflection_score("no keywords here"), round(reflection_score("verify"), 6)
    (0.0, 0.205701)
    """
    raw = sum(group_score(n) for n in keyword_counts(text).values())
    c = 0.8 * math.log1p(raw)
    return 1.0 - 1.0 / (1.0 + c**1.2)


class ReflectionReward(ParametrizedReward):
    """:func:`reflection_score` per completion; never reads ``answer``."""

    default_name = "reflection_reward"

    def __call__(self, prompts: Any, completions: Sequence[Any], *_: Any, **kwargs: Any):
        return [reflection_score(t) for t in completion_texts(completions)]


class ReflectionFormatReward(ParametrizedReward):
    """1.0 when the strict response format matches, else 0.0; never reads ``answer``."""

    default_name = "reflection_format_reward"

    def __call__(self, prompts: Any, completions: Sequence[Any], *_: Any, **kwargs: Any):
        strict, _numbers = format_patterns(self.params["tags"])
        return [1.0 if strict.search(t) else 0.0 for t in completion_texts(completions)]


def _gold(answer: Any) -> str:
    """The gold answer; a raw GSM8K answer field is cut to the text after ``####``."""
    text = str(answer)
    return text.rsplit("####", 1)[1] if "####" in text else text


class OutcomeReward(ParametrizedReward):
    """``correct`` when the extracted answer matches the gold one, else ``wrong``.

    With ``max_completion_length`` set and ``completion_ids`` passed, a completion of that many
    tokens whose last token is not in ``eos_token_ids`` is truncated and scores ``wrong``.
    """

    def __call__(self, prompts: Any, completions: Sequence[Any], answer: Any, **kwargs: Any):
        texts = completion_texts(completions)
        golds = per_sample(answer, len(texts), "answer")
        mode, tags = self.params["mode"], self.params["tags"]
        correct = [
            answers_match(extract_answer(text, mode, tags), _gold(gold), mode)
            for text, gold in zip(texts, golds, strict=True)
        ]
        for i in self._truncated(kwargs.get("completion_ids")):
            correct[i] = False
        return [self.params["correct"] if ok else self.params["wrong"] for ok in correct]

    def _truncated(self, completion_ids: Any) -> list[int]:
        limit, eos = self.params["max_completion_length"], self.params["eos_token_ids"]
        if limit is None or completion_ids is None:
            return []
        return [
            i
            for i, ids in enumerate(completion_ids)
            if len(ids) >= limit and (not ids or int(ids[-1]) not in eos)
        ]


def _check_mode(mode: str) -> None:
    if mode not in EXTRACTION_MODES:
        raise ValueError(f"unknown extraction mode {mode!r}; choose one of {EXTRACTION_MODES}")


def get_reflection_reward(name: str = "reflection_reward") -> ReflectionReward:
    """``reflection_reward`` named ``name`` (its keyword groups are :data:`KEYWORD_GROUPS`)."""
    return ReflectionReward(name)


def get_reflection_format_reward(
    tags: Tags = DEFAULT_TAGS, name: str = "reflection_format_reward"
) -> ReflectionFormatReward:
    """``reflection_format_reward`` for ``tags``, named ``name``."""
    return ReflectionFormatReward(name, tags=tags)


def get_accuracy_reward(
    mode: str = "paper", tags: Tags = DEFAULT_TAGS, name: str = "accuracy_reward"
) -> OutcomeReward:
    """``accuracy_reward``: 1.0 correct, 0.0 otherwise, with extraction ``mode``."""
    _check_mode(mode)
    return OutcomeReward(
        name, correct=1.0, wrong=0.0, mode=mode, tags=tags,
        max_completion_length=None, eos_token_ids=(),
    )  # fmt: skip


def get_oreal_outcome_reward(
    mode: str = "paper",
    tags: Tags = DEFAULT_TAGS,
    max_completion_length: int | None = None,
    eos_token_ids: Sequence[int] = (),
    name: str = "oreal_outcome_reward",
) -> OutcomeReward:
    """OREAL's binary reward: +1.0 correct, -1.0 wrong or (when the limit is given) truncated.

    ``OrealTrainer`` also forces truncated completions to wrong with the tokenizer's EOS ids, so
    inside it the limit is optional.
    """
    _check_mode(mode)
    return OutcomeReward(
        name, correct=1.0, wrong=-1.0, mode=mode, tags=tags,
        max_completion_length=max_completion_length, eos_token_ids=tuple(eos_token_ids),
    )  # fmt: skip


reflection_reward = get_reflection_reward()
reflection_format_reward = get_reflection_format_reward()
accuracy_reward = get_accuracy_reward()
oreal_outcome_reward = get_oreal_outcome_reward()
