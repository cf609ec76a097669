"""Answer extraction and comparison: the paper's exact rule and a documented flexible rule.

Both the base reward ``check_answer`` and the evaluation metric read the final answer out of a
completion. The *paper* mode reproduces arXiv 2605.02073 exactly, warts included:

1. the strict format pattern's capture (``<thinking>…</thinking> … <solution>(…)</solution>`` at
   the end of the text), else
2. the first run of digits, dots and commas after an opening ``<solution>`` tag, else nothing.

Note the fallback drops a leading minus sign and any units; that is what the paper measured.

The *flexible* mode is for users who want a fairer read of a model's answer:

1. the content of the **last** ``<solution>…</solution>`` pair (or of an unclosed last
   ``<solution>`` tag), else the last ``\\boxed{…}``, else the text after the last ``####``, else
   the text after a final "answer is"/"answer:" phrase;
2. within that span, the last signed number (``-3``, ``1,234.50``, ``.5``, ``3/4``) with currency
   signs, units and trailing punctuation ignored; a span without a number is kept as text.

Comparison (:func:`answers_match`) normalises both sides (strip, drop commas) and accepts equal
strings or floats within 1e-6, as the paper does; the flexible comparison also accepts fractions
and, when `math-verify` is installed, symbolic equivalence.

>>> extract_answer("<thinking>3+4</thinking>\\n<solution>7</solution>")
'7'
>>> extract_answer("<solution>-1,200 dollars</solution>", mode="flexible")
'-1,200'
>>> answers_match("1,200", "1200.0")
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

ExtractionMode = Literal["paper", "flexible"]
EXTRACTION_MODES: tuple[str, ...] = ("paper", "flexible")


@dataclass(frozen=True)
class Tags:
    """The four tags of the response format (the paper's ``<thinking>``/``<solution>``)."""

    reasoning_start: str = "<thinking>"
    reasoning_end: str = "</thinking>"
    solution_start: str = "<solution>"
    solution_end: str = "</solution>"

    def all(self) -> tuple[str, str, str, str]:
        return (self.reasoning_start, self.reasoning_end, self.solution_start, self.solution_end)


DEFAULT_TAGS = Tags()
_PATTERN_CACHE: dict[Tags, tuple[re.Pattern[str], re.Pattern[str]]] = {}


def format_patterns(tags: Tags = DEFAULT_TAGS) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Return the paper's (strict format, solution-number fallback) patterns for ``tags``."""
    if tags not in _PATTERN_CACHE:
        rs, re_, ss, se = (re.escape(t) for t in tags.all())
        strict = re.compile(
            rf"^[\s]{{0,}}{rs}.+?{re_}.*?{ss}(.+?){se}[\s]{{0,}}$", flags=re.MULTILINE | re.DOTALL
        )
        numbers = re.compile(rf"{ss}.*?([\d\.\,]{{1,}})", flags=re.MULTILINE | re.DOTALL)
        _PATTERN_CACHE[tags] = (strict, numbers)
    return _PATTERN_CACHE[tags]


def normalize(text: str) -> str:
    """Strip white space and drop thousands separators, as the paper does before comparing."""
    return text.strip().replace(",", "")


def extract_paper(text: str, tags: Tags = DEFAULT_TAGS) -> str | None:
    """The paper's extraction: strict capture, else the first number run after ``<solution>``."""
    strict, numbers = format_patterns(tags)
    match = strict.search(text)
    if match is not None:
        return match.group(1)
    match = numbers.search(text)
    return match.group(1) if match is not None else None


_NUMBER = re.compile(r"(?:[-\u2212]\s?)?(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:\s?/\s?\d+)?")
_BOXED = re.compile(r"\\boxed\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")
_ANSWER_PHRASE = re.compile(r"answer\s*(?:is|:|=)\s*(.+)$", flags=re.IGNORECASE | re.DOTALL)


def _answer_span(text: str, tags: Tags) -> str | None:
    ss, se = tags.solution_start, tags.solution_end
    start = text.rfind(ss)
    if start != -1:
        body = text[start + len(ss) :]
        end = body.find(se)
        return body if end == -1 else body[:end]
    boxed = _BOXED.findall(text)
    if boxed:
        return boxed[-1]
    if "####" in text:
        return text.rsplit("####", 1)[1]
    phrase = _ANSWER_PHRASE.search(text)
    return phrase.group(1) if phrase else None


def extract_flexible(text: str, tags: Tags = DEFAULT_TAGS) -> str | None:
    """The flexible extraction documented in the module docstring."""
    span = _answer_span(text, tags)
    if span is None:
        return None
    numbers = _NUMBER.findall(span)
    if numbers:
        return numbers[-1].replace("\u2212", "-").replace(" ", "")
    span = span.strip()
    return span or None


def is_extracted(answer: str | None) -> bool:
    """Whether a capture counts as an extracted answer: non-empty after :func:`normalize`.

    The paper's metric counts a capture of only white space or commas as nothing extracted
    (a false negative, not a false positive).

    >>> [is_extracted(a) for a in ("7", " ", ",", " , ", None)]
    [True, False, False, False, False]
    """
    return answer is not None and normalize(answer) != ""


def extract_answer(
    text: str, mode: ExtractionMode = "paper", tags: Tags = DEFAULT_TAGS
) -> str | None:
    """Extract the final answer from ``text`` with the ``paper`` or ``flexible`` rule.

    A capture that is empty after :func:`normalize` (``" "``, ``","``) is ``None``: nothing
    extracted, as the paper's metric counts it. (The base reward ``check_answer`` reads the raw
    capture of :func:`extract_paper` instead, and scores such a capture as unparsable.)
    """
    if mode == "paper":
        answer = extract_paper(text, tags)
    elif mode == "flexible":
        answer = extract_flexible(text, tags)
    else:
        raise ValueError(f"unknown extraction mode {mode!r}; choose one of {EXTRACTION_MODES}")
    return answer if is_extracted(answer) else None


def _to_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return float(Fraction(text.replace(" ", "")))
    except (ValueError, ZeroDivisionError):
        return None


def answers_match(predicted: str | None, gold: str, mode: ExtractionMode = "paper") -> bool:
    """Whether an extracted answer equals the gold one (after :func:`normalize`).

    Paper mode: equal strings, or both parse as floats within 1e-6. Flexible mode adds fractions
    (``3/4`` == ``0.75``) and a math-verify symbolic check when that package is available.
    """
    if predicted is None:
        return False
    pred, true = normalize(predicted), normalize(gold)
    if pred == true:
        return True
    if mode == "paper":
        try:
            return abs(float(pred) - float(true)) < 1e-6
        except ValueError:
            return False
    pred_num, true_num = _to_number(pred), _to_number(true)
    if pred_num is not None and true_num is not None:
        return abs(pred_num - true_num) < 1e-6
    return _math_verify_equal(pred, true)


def _math_verify_equal(pred: str, true: str) -> bool:
    try:
        from math_verify import parse, verify
    except ImportError:  # optional: the flexible rule still works without it
        return False
    try:
        return bool(verify(parse(true), parse(pred)))
    except Exception:  # noqa: BLE001 - math-verify raises many parser errors; no match then
        return False
