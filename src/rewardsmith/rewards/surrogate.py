"""Label-free surrogate rewards: format and length (arXiv 2505.19439, REFERENCE.md section 3).

None of these rewards reads the gold answer: ``answer`` (like every other dataset column)
arrives in ``**kwargs`` and is never looked at, so a trial can train on them alone.

* :func:`format_reward` ``R_f``: 1.0 when the completion carries a parsable final answer in the
  configured answer tag, else 0.0. The paper asks for a ``\\boxed{...}`` that SymPy parses; here
  the content of the **last** closed ``<solution>...</solution>`` pair, stripped, must be one
  number: optional sign, digits with optional thousands commas, optional decimals (``-1,234.5``,
  ``.5``), or a fraction of two such numbers (``3/4``). Units or words inside the tag fail.
* :func:`length_reward` ``R_l``: with ``x = L / L_max`` (``L`` in tokens) and turning point ``p``
  (0.5), ``R_l = 1 - (1 - x/p)^2`` for ``0 <= x <= p`` and ``R_l = 1 - 2((x - p)/(1 - p))^2``
  for ``p < x <= 1``: 0 for an empty completion, 1 at ``x = p``, -1 at ``x = 1``. A completion
  longer than ``L_max`` is clamped to ``x = 1`` (TRL never produces one when ``L_max`` is the
  trainer's ``max_completion_length``). ``L`` is ``len(completion_ids[i])`` when TRL passes
  ``completion_ids`` (it always does); called without them (evaluation, offline probes), ``L``
  is approximated by the number of words and punctuation marks (regex ``\\w+|[^\\w\\s]``), which
  undercounts sub-word tokens.
* :func:`format_length_reward`: ``R = w_f * R_f + R_l`` when the format is right, else
  ``min(0, R_l)``; ``w_f = 1.0`` as in the paper's equation (its released code uses 0.5).

Parameters live in the factories ``get_format_reward``, ``get_length_reward`` and
``get_format_length_reward``; each returns a small picklable callable whose ``__name__`` is the
reward's name. The registered defaults use ``p = 0.5``, ``L_max = 256`` and ``w_f = 1.0``.

>>> good = "<thinking>3 + 4 = 7</thinking>\\n<solution>7</solution>"
>>> format_reward(None, [good, "<solution>seven</solution>"])
[1.0, 0.0]
>>> get_length_reward(max_length=8)(None, [good], completion_ids=[[1, 2, 3, 4]])
[1.0]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rewardsmith.extraction import DEFAULT_TAGS, Tags
from rewardsmith.rewards.contract import completion_texts

DEFAULT_TURNING_POINT = 0.5
DEFAULT_MAX_LENGTH = 256
DEFAULT_FORMAT_WEIGHT = 1.0

_NUM = r"[-+\u2212]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)"
_PARSABLE = re.compile(rf"{_NUM}(?:\s*/\s*{_NUM})?")
_APPROX_TOKEN = re.compile(r"\w+|[^\w\s]")


def final_answer_text(text: str, tags: Tags = DEFAULT_TAGS) -> str | None:
    """The stripped content of the last closed solution-tag pair in ``text``, or ``None``.

    >>> final_answer_text("<solution>1</solution> then <solution> 2 </solution>")
    '2'
    >>> final_answer_text("<solution>7") is None
    True
    """
    end = text.rfind(tags.solution_end)
    if end == -1:
        return None
    start = text.rfind(tags.solution_start, 0, end)
    if start == -1:
        return None
    return text[start + len(tags.solution_start) : end].strip()


def is_parsable_number(text: str) -> bool:
    """Whether ``text`` is one number: sign, thousands commas, decimals, or a fraction ``a/b``.

    >>> [is_parsable_number(s) for s in ["-1,234.5", "3/4", ".5", "72 apples", "", "1/0"]]
    [True, True, True, False, False, False]
    """
    if not _PARSABLE.fullmatch(text):
        return False
    parts = [p.strip().replace(",", "").replace("\u2212", "-") for p in text.split("/")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        return False
    return len(values) == 1 or values[1] != 0.0


def format_score(text: str, tags: Tags = DEFAULT_TAGS) -> float:
    """``R_f`` for one completion text: 1.0 for a parsable number in the answer tag, else 0.0.

    >>> format_score("<solution>-3</solution>"), format_score("<solution>x</solution>")
    (1.0, 0.0)
    """
    answer = final_answer_text(text, tags)
    return 1.0 if answer is not None and is_parsable_number(answer) else 0.0


def length_score(
    length: float, max_length: float, turning_point: float = DEFAULT_TURNING_POINT
) -> float:
    """``R_l`` for a completion of ``length`` tokens (the piecewise formula; ``x`` clamped to 1).

    >>> [round(length_score(n, 100), 4) for n in (0, 25, 50, 65, 100, 150)]
    [0.0, 0.75, 1.0, 0.82, -1.0, -1.0]
    """
    x = min(max(length / max_length, 0.0), 1.0)
    p = turning_point
    if x <= p:
        return 1.0 - (1.0 - x / p) ** 2
    return 1.0 - 2.0 * ((x - p) / (1.0 - p)) ** 2


def token_lengths(texts: Sequence[str], completion_ids: Any = None) -> list[int]:
    """Token counts: ``len`` of each ``completion_ids`` entry when given, else the regex estimate.

    >>> token_lengths(["a b", "c"], completion_ids=[[5, 6, 7], [8]])
    [3, 1]
    >>> token_lengths(["It is 7."])
    [4]
    """
    if completion_ids is not None:
        if len(completion_ids) != len(texts):
            raise ValueError(f"{len(completion_ids)} completion_ids for {len(texts)} completions")
        return [len(ids) for ids in completion_ids]
    return [len(_APPROX_TOKEN.findall(text)) for text in texts]


class ParametrizedReward:
    """A reward's shared shape: a ``__name__``, its parameters, equality and hash on both."""

    default_name = ""

    def __init__(self, name: str | None = None, **params: Any) -> None:
        self.params = params
        self.__name__ = name or self.default_name
        self.__qualname__ = self.__name__

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args}, name={self.__name__!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and (other.params, other.__name__) == (
            self.params,
            self.__name__,
        )

    def __hash__(self) -> int:
        return hash((type(self), self.__name__, tuple(sorted(self.params.items()))))


class FormatReward(ParametrizedReward):
    """``R_f``: 1.0 when the completion's answer tag holds a parsable number, else 0.0."""

    default_name = "format_reward"

    def __call__(self, prompts: Any, completions: Sequence[Any], *_: Any, **kwargs: Any):
        tags = self.params["tags"]
        return [format_score(text, tags) for text in completion_texts(completions)]


class LengthReward(ParametrizedReward):
    """``R_l``: the piecewise length reward of :func:`length_score`."""

    default_name = "length_reward"

    def __call__(self, prompts: Any, completions: Sequence[Any], *_: Any, **kwargs: Any):
        texts = completion_texts(completions)
        lengths = token_lengths(texts, kwargs.get("completion_ids"))
        p, max_length = self.params["turning_point"], self.params["max_length"]
        return [length_score(n, max_length, p) for n in lengths]


class FormatLengthReward(ParametrizedReward):
    """``w_f * R_f + R_l`` when the format is right, else ``min(0, R_l)``."""

    default_name = "format_length_reward"

    def __call__(self, prompts: Any, completions: Sequence[Any], *_: Any, **kwargs: Any):
        texts = completion_texts(completions)
        lengths = token_lengths(texts, kwargs.get("completion_ids"))
        p, max_length = self.params["turning_point"], self.params["max_length"]
        w_f, tags = self.params["format_weight"], self.params["tags"]
        out = []
        for text, n in zip(texts, lengths, strict=True):
            r_l = length_score(n, max_length, p)
            out.append(w_f + r_l if format_score(text, tags) == 1.0 else min(0.0, r_l))
        return out


def _check_length_params(max_length: float, turning_point: float) -> None:
    if not max_length > 0:
        raise ValueError(f"max_length must be positive, got {max_length}")
    if not 0.0 < turning_point < 1.0:
        raise ValueError(f"turning_point must lie in (0, 1), got {turning_point}")


def get_format_reward(tags: Tags = DEFAULT_TAGS, name: str = "format_reward") -> FormatReward:
    """``format_reward`` for ``tags``, named ``name``."""
    return FormatReward(name, tags=tags)


def get_length_reward(
    max_length: int = DEFAULT_MAX_LENGTH,
    turning_point: float = DEFAULT_TURNING_POINT,
    name: str = "length_reward",
) -> LengthReward:
    """``length_reward`` with ``L_max = max_length`` tokens and turning point ``p``.

    Set ``max_length`` to the trainer's ``max_completion_length``, as the paper does.
    """
    _check_length_params(max_length, turning_point)
    return LengthReward(name, max_length=max_length, turning_point=turning_point)


def get_format_length_reward(
    max_length: int = DEFAULT_MAX_LENGTH,
    turning_point: float = DEFAULT_TURNING_POINT,
    format_weight: float = DEFAULT_FORMAT_WEIGHT,
    tags: Tags = DEFAULT_TAGS,
    name: str = "format_length_reward",
) -> FormatLengthReward:
    """``format_length_reward``; ``format_weight`` 1.0 is the paper's equation, 0.5 its code."""
    _check_length_params(max_length, turning_point)
    return FormatLengthReward(
        name,
        max_length=max_length,
        turning_point=turning_point,
        format_weight=format_weight,
        tags=tags,
    )


format_reward = get_format_reward()
length_reward = get_length_reward()
format_length_reward = get_format_length_reward()
