"""The offline proposer's library of reward primitives, each a template that writes source code.

A primitive scores one completion (``text``) against the gold answer (``gold``, may be None) and
returns a float, usually in [-1, 1]. Its numeric parameters (thresholds, scales) are inlined as
literals when rendered, so the generated program is self-contained, deterministic, and imports
only ``math`` and ``re``. :mod:`rewardsmith.generators.program` combines weighted primitives
into one reward function with TRL's contract. A primitive that only re-weights one of the three
base rewards says which (``Primitive.reweights``; :func:`reweighting_kinds`), so candidates made
of it can be labelled as adding no new signal.

Templates use ``@name`` placeholders (:class:`string.Template` with ``@`` as the delimiter):
``@fn`` the function name, ``@rs/@re/@ss/@se`` the four tag literals, ``@groups`` the reflection
keyword groups, and one placeholder per parameter.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field


class CodeTemplate(string.Template):
    delimiter = "@"


@dataclass(frozen=True)
class Param:
    """A numeric parameter's range; ``integer`` ones are sampled and mutated in whole steps."""

    low: float
    high: float
    integer: bool = False

    def sample(self, rng: random.Random) -> float:
        if self.integer:
            return float(rng.randint(int(self.low), int(self.high)))
        return round(rng.uniform(self.low, self.high), 3)

    def clip(self, value: float) -> float:
        value = min(self.high, max(self.low, float(value)))
        return float(round(value)) if self.integer else round(value, 3)

    def perturb(self, value: float, rng: random.Random, scale: float = 0.25) -> float:
        """A nearby value: one integer step, or a relative change of about ``scale``."""
        if self.integer:
            return self.clip(value + rng.choice((-1, 1)) * max(1, round(abs(value) * scale)))
        spread = max(abs(value), (self.high - self.low) / 4) * scale
        return self.clip(value + rng.gauss(0.0, spread))


WEIGHT = Param(0.25, 2.0)


@dataclass(frozen=True)
class Primitive:
    """One reward component: its ``kind``, a one-line ``summary``, parameters and code template.

    ``reweights`` names the base reward this primitive only re-weights (it scores the same
    property with other numbers, so adding it changes the base reward's weight and nothing
    else); None when it adds a signal the base rewards lack.
    """

    kind: str
    short: str
    summary: str
    template: str
    params: dict[str, Param] = field(default_factory=dict)
    reweights: str | None = None

    def render(self, fn: str, values: dict[str, float], tag_literals: dict[str, str]) -> str:
        """Source code of ``def fn(text, gold) -> float`` with ``values`` inlined."""
        literals = {key: repr(values[key]) for key in self.params}
        return CodeTemplate(self.template).substitute(
            fn=fn, groups=repr(REFLECTION_GROUPS), **tag_literals, **literals
        )


# Keyword groups of the reflection reward (REFERENCE.md section 5), lower case.
REFLECTION_GROUPS: tuple[tuple[str, ...], ...] = (
    ("backtrack", "error", "fix", "mistake", "re-evaluate", "wrong", "redo"),
    ("verify", "check", "confirm", "test", "double-check"),
    ("step", "stage", "phase", "subtask", "first", "next"),
    ("target", "goal", "required", "work backwards", "need to find"),
)

_FORMAT_TAGS = r"""
def @fn(text, gold):
    tags = (@rs, @re, @ss, @se)
    once = sum(1 for tag in tags if text.count(tag) == 1) / 4.0
    positions = [text.find(tag) for tag in tags]
    ordered = 1.0 if min(positions) >= 0 and positions == sorted(positions) else 0.0
    return (1.0 - @order_weight) * once + @order_weight * ordered
"""

_STRICT_FORMAT = r"""
def @fn(text, gold):
    parts = [re.escape(tag) for tag in (@rs, @re, @ss, @se)]
    pattern = parts[0] + ".+?" + parts[1] + ".*?" + parts[2] + ".+?" + parts[3]
    return 1.0 if re.fullmatch(r"\s*" + pattern + r"\s*", text, flags=re.DOTALL) else 0.0
"""

_CORRECTNESS = r"""
def @fn(text, gold):
    guess = number_of(solution_of(text))
    target = number_of(gold)
    if guess is None:
        return -@missing_penalty
    if target is None:
        return 0.0
    gap = abs(guess - target)
    if gap <= 1e-6:
        return 1.0
    if gap <= @tolerance * max(1.0, abs(target)):
        return @partial
    return -@wrong_penalty
"""

_PROXIMITY = r"""
def @fn(text, gold):
    guess = number_of(solution_of(text))
    target = number_of(gold)
    if guess is None or target is None:
        return 0.0
    relative = min(abs(guess - target) / max(1.0, abs(target)), 1e6)
    return math.exp(-relative / @scale)
"""

_LENGTH_BAND = r"""
def @fn(text, gold):
    size = len(reasoning_of(text).strip())
    if size < @low:
        return max(0.0, 1.0 - (@low - size) / @softness)
    if size > @high:
        return max(0.0, 1.0 - (size - @high) / @softness)
    return 1.0
"""

_LENGTH_SURROGATE = r"""
def @fn(text, gold):
    x = min(len(text) / @l_max, 1.0)
    p = @turning
    if x <= p:
        length = 1.0 - (1.0 - x / p) ** 2
    else:
        length = 1.0 - 2.0 * ((x - p) / (1.0 - p)) ** 2
    if number_of(solution_of(text)) is None:
        return min(0.0, length)
    return @format_weight + length
"""

_STEPS = r"""
def @fn(text, gold):
    lines = [line for line in reasoning_of(text).splitlines() if line.strip()]
    return min(len(lines), @target) / @target
"""

_EQUATIONS = r"""
def @fn(text, gold):
    found = re.findall(
        r"(\d+(?:\.\d+)?)\s*([-+*/x\u00d7])\s*(\d+(?:\.\d+)?)\s*=\s*(\d+(?:\.\d+)?)",
        reasoning_of(text).replace(",", ""),
    )[:50]
    if not found:
        return 0.0
    right = 0
    for left, op, other, result in found:
        a, b, c = float(left), float(other), float(result)
        if op == "+":
            value = a + b
        elif op == "-":
            value = a - b
        elif op == "/":
            value = a / b if b else None
        else:
            value = a * b
        if value is not None and abs(value - c) <= 1e-6 * max(1.0, abs(c)):
            right = right + 1
    coverage = min(len(found), @min_equations) / @min_equations
    return coverage * right / len(found)
"""

_REFLECTION = r"""
def @fn(text, gold):
    lowered = text.lower()
    raw = 0.0
    for group in @groups:
        count = min(sum(lowered.count(word) for word in group), 50)
        raw = raw + sum(0.5 / (1.0 + i / 2.5) for i in range(count))
    c = @scale * math.log(1.0 + raw)
    return 1.0 - 1.0 / (1.0 + c ** @exponent)
"""

_INTEGER_ANSWER = r"""
def @fn(text, gold):
    content = solution_of(text)
    if content is None:
        return 0.0
    return 1.0 if re.fullmatch(r"\s*-?\d[\d,]*\s*", content) else 0.0
"""

_NOTHING_AFTER = r"""
def @fn(text, gold):
    end = text.rfind(@se)
    if end < 0:
        return 0.0
    extra = len(text[end + len(@se):].strip())
    if extra <= @allowance:
        return 1.0
    return max(0.0, 1.0 - (extra - @allowance) / @decay)
"""

_REPETITION = r"""
def @fn(text, gold):
    words = text.lower().split()[:900]
    size = int(@ngram)
    if len(words) <= size:
        return 0.0
    grams = [tuple(words[i:i + size]) for i in range(len(words) - size + 1)]
    repeated = 1.0 - len(set(grams)) / len(grams)
    return -max(0.0, repeated - @threshold) / (1.0 - @threshold)
"""

_CONSISTENT = r"""
def @fn(text, gold):
    guess = number_of(solution_of(text))
    if guess is None:
        return 0.0
    seen = re.findall(r"-?\d+(?:\.\d+)?", reasoning_of(text).replace(",", ""))
    return 1.0 if any(abs(float(value) - guess) <= 1e-6 for value in seen[-200:]) else 0.0
"""

_LIST = (
    Primitive("format_tags", "tags", "each tag once and in order", _FORMAT_TAGS,
              {"order_weight": Param(0.0, 1.0)}),
    # the strict pattern of match_format_exactly, scored 1 instead of 3
    Primitive("strict_format", "strict", "whole reply is reasoning then solution", _STRICT_FORMAT,
              reweights="match_format_exactly"),
    # check_answer's tiers (exact, near, wrong, missing) with other values
    Primitive("correctness", "correct", "solution number equals the gold answer", _CORRECTNESS,
              {"tolerance": Param(0.0, 0.1), "partial": Param(0.0, 0.5),
               "wrong_penalty": Param(0.0, 1.0), "missing_penalty": Param(0.0, 1.0)},
              reweights="check_answer"),
    Primitive("numeric_proximity", "near", "exp(-relative error / scale)", _PROXIMITY,
              {"scale": Param(0.05, 1.0)}),
    Primitive("length_band", "band", "reasoning length (chars) inside a band", _LENGTH_BAND,
              {"low": Param(50, 300, True), "high": Param(400, 1500, True),
               "softness": Param(50, 500, True)}),
    Primitive("length_surrogate", "surlen", "format + length curve of arXiv 2505.19439",
              _LENGTH_SURROGATE, {"l_max": Param(300, 2000, True), "turning": Param(0.3, 0.7),
                                  "format_weight": Param(0.25, 1.0)}),
    Primitive("reasoning_steps", "steps", "non-empty reasoning lines up to a target", _STEPS,
              {"target": Param(2, 8, True)}),
    Primitive("equation_check", "eqs", "share of arithmetically right 'a op b = c'", _EQUATIONS,
              {"min_equations": Param(1, 4, True)}),
    Primitive("reflection_keywords", "refl", "saturating reflection keyword score", _REFLECTION,
              {"scale": Param(0.4, 1.2), "exponent": Param(0.8, 1.6)}),
    Primitive("integer_answer", "int", "solution is a bare integer", _INTEGER_ANSWER),
    Primitive("nothing_after_solution", "tail", "no text after the closing solution tag",
              _NOTHING_AFTER, {"allowance": Param(0, 40, True), "decay": Param(20, 200, True)}),
    Primitive("repetition_penalty", "rep", "minus the share of repeated word n-grams",
              _REPETITION, {"ngram": Param(3, 6, True), "threshold": Param(0.0, 0.3)}),
    Primitive("answer_in_reasoning", "consist", "solution number also appears in the reasoning",
              _CONSISTENT),
)  # fmt: skip

PRIMITIVES: dict[str, Primitive] = {p.kind: p for p in _LIST}


def reweighting_kinds() -> dict[str, str]:
    """Primitive kind -> the base reward it only re-weights.

    >>> reweighting_kinds()["strict_format"]
    'match_format_exactly'
    """
    return {p.kind: p.reweights for p in _LIST if p.reweights}
