"""The probe battery: fixed GSM8K-style inputs that validation feeds a candidate reward.

Four questions, each with completions of every kind a trainer will produce: correct and
well-formatted, wrong, unformatted, empty, very long, unicode, missing a tag, and garbage (text a
reward must not prefer to a correct answer). Batches have 1, 4 and 16 completions, in plain-string
and conversational form, with ``answer`` and ``question`` columns aligned as TRL passes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SYSTEM_PROMPT = (
    "You are given a problem. Think about the problem and provide your working out. "
    "Place it between <thinking> and </thinking>. Then, provide your solution between "
    "<solution></solution>"
)

_QUESTIONS = (
    ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
     "in May. How many clips did Natalia sell altogether in April and May?", "72",
     "In May she sold 48 / 2 = 24 clips. Altogether 48 + 24 = 72 clips.", "68"),
    ("Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of "
     "babysitting. How much did she earn?", "10",
     "Per minute she earns 12 / 60 = 0.2 dollars. For 50 minutes: 0.2 * 50 = 10.", "12"),
    ("Betty needs $100 for a wallet. She has half of it, her parents give $15 and her "
     "grandparents twice as much. How much more money does Betty need?", "5",
     "She has 100 / 2 = 50. Parents 15, grandparents 30. 100 - 50 - 15 - 30 = 5.", "15"),
    ("James writes a 3-page letter to 2 different friends twice a week. How many pages does "
     "he write a year?", "624",
     "Each week 3 * 2 * 2 = 12 pages. A year: 12 * 52 = 624 pages.", "1,248"),
)  # fmt: skip


@dataclass(frozen=True)
class Probe:
    """One completion to score, with the question it answers and what kind of text it is."""

    kind: str
    question_index: int
    text: str

    @property
    def question(self) -> str:
        return _QUESTIONS[self.question_index][0]

    @property
    def answer(self) -> str:
        return _QUESTIONS[self.question_index][1]


def _formatted(reasoning: str, answer: str) -> str:
    return f"<thinking>\n{reasoning}\n</thinking>\n<solution>{answer}</solution>"


def make_probe(kind: str, q: int) -> Probe:
    """The completion of ``kind`` for question ``q``."""
    _question, gold, reasoning, wrong = _QUESTIONS[q]
    texts = {
        "correct": _formatted(reasoning, gold),
        "wrong": _formatted(reasoning.replace(gold, wrong), wrong),
        "unformatted": f"{reasoning} The answer is {gold}.",
        "empty": "",
        "very_long": _formatted((reasoning + " Let me double-check that. ") * 400, gold),
        "unicode": _formatted(f"Ναταλία 🧮 «{reasoning}» — résumé ＝ ✓", gold),
        "missing_tag": f"<thinking>\n{reasoning}\n</thinking>\n{gold}",
        "unclosed_tag": f"<thinking>\n{reasoning}\n<solution>{gold}",
        "garbage_tags": "<thinking></thinking><solution></solution>" * 30,
        "garbage_numbers": " ".join([gold] * 200),
        "garbage_text": "lorem ipsum dolor sit amet " * 40 + "\x00\ufffd" * 5,
        "garbage_tag_spam": (f"<solution>{gold}</solution>" * 20),
    }
    return Probe(kind, q, texts[kind])


GARBAGE_KINDS = ("garbage_tags", "garbage_numbers", "garbage_text", "garbage_tag_spam")

#: The 16-completion batch: four groups of four (one question each, like num_generations=4).
_BATCH16 = (
    (0, ("correct", "wrong", "garbage_tags", "unicode")),
    (1, ("correct", "unformatted", "garbage_numbers", "very_long")),
    (2, ("correct", "empty", "garbage_text", "missing_tag")),
    (3, ("correct", "unclosed_tag", "garbage_tag_spam", "wrong")),
)
BATCHES: dict[str, tuple[Probe, ...]] = {
    "batch1": (make_probe("correct", 0),),
    "batch4": tuple(make_probe(k, 1) for k in ("correct", "wrong", "unformatted", "empty")),
    "batch16": tuple(make_probe(kind, q) for q, kinds in _BATCH16 for kind in kinds),
}


def call_kwargs(probes: tuple[Probe, ...], conversational: bool) -> dict[str, Any]:
    """The keyword arguments TRL would pass for ``probes``, in either completion format."""
    if conversational:
        prompts: list[Any] = [
            [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": p.question}]
            for p in probes
        ]
        completions: list[Any] = [[{"role": "assistant", "content": p.text}] for p in probes]
    else:
        prompts = [f"{SYSTEM_PROMPT}\n\n{p.question}" for p in probes]
        completions = [p.text for p in probes]
    return {
        "prompts": prompts,
        "completions": completions,
        "answer": [p.answer for p in probes],
        "question": [p.question for p in probes],
    }
