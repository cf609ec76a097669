"""Random texts for the probe battery (:mod:`.probes`): GSM8K-style questions and completions.

A question comes from one of seven templates with random names, items, numbers and wording; its
gold answer is computed exactly (:class:`~fractions.Fraction`) and written as the GSM8K loader
stores it: no thousands separator, no trailing zeros (``1248``, ``187.5``). A completion of a
given kind is rendered with varied reasoning, layout and white space (a correct answer may be
written ``1,248``), and cut at the token budget as a trainer cuts it. :func:`token_ids` is the
deterministic stand-in tokeniser: pieces shaped like a byte-level BPE's (up to six letters with
their leading space, up to three digits, one punctuation mark, a run of white space), each hashed
into Qwen2.5's vocabulary range, so the ids' count tracks the text (about 1 to 5 characters each).
"""

from __future__ import annotations

import random
import re
import zlib
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

VOCAB_SIZE = 151_643  # Qwen2.5's regular tokens; special tokens come after
EOS_ID = 151_645  # "<|im_end|>", the end of an assistant turn
# Every character falls in one alternative, so the pieces always join back to the text.
_PIECE = re.compile(r"\s?[^\W\d_]{1,6}|\d{1,3}|\s?[^\w\s]|\s+|_")

NAMES = (
    "Natalia", "Weng", "Betty", "James", "Mia", "Omar", "Aiko", "Diego", "Priya", "Kofi",
    "Lena", "Ravi", "Sofia", "Tomás", "Chen", "Amara", "Jonah", "Yuki", "Fatima", "Noah",
)  # fmt: skip
ITEMS = ("clips", "cookies", "stickers", "marbles", "pencils", "cupcakes", "stamps", "candles")
_OPENERS = ("", "Let's work through it step by step.", "We need to find the answer.",
            "Okay, let me think.", "First, let me read the question again.",
            "Let me break this down.")  # fmt: skip
_CLOSERS = ("", "So the answer is {a}.", "Therefore, the answer is {a}.", "That gives {a}.",
            "The final answer is {a}.")  # fmt: skip
_LABELS = ("", "- ", "Step {i}: ", "{i}. ", "* ")
_RAMBLE = ("Let me double-check: {s}.", "Wait, I should verify that {s}.",
           "Checking again, {s} is right.", "Hmm, let me re-read the question.",
           "So far so good.", "Recomputing: {s}.", "Another way to see it: {s}.")  # fmt: skip
_LAYOUTS = (
    "<thinking>\n{r}\n</thinking>\n<solution>{a}</solution>",
    "<thinking>{r}</thinking><solution>{a}</solution>",
    "<thinking>\n{r}\n</thinking>\n\n<solution>\n{a}\n</solution>\n",
    "<thinking> {r} </thinking>\n<solution> {a} </solution>",
    "\n<thinking>\n{r}\n</thinking>\n<solution>{a}</solution>\n\n",
)
_UNICODE = ("Ναταλία", "🧮", "«ok»", "—", "résumé", "＝", "✓", "数学", "½", "→", "…", "👍", "Ü")
_WORDS = ("lorem", "ipsum", "dolor", "sit", "amet", "banana", "the", "of", "blue", "answer",
          "quickly", "seven", "river", "maybe", "###", "ok", "and", "so")  # fmt: skip


@dataclass(frozen=True)
class Question:
    """A generated question: its text, gold answer, worked steps (``"a * b = c"``) and a
    plausible wrong final answer."""

    text: str
    answer: str
    steps: tuple[str, ...]
    wrong: str


def num(x: Fraction | int) -> str:
    """``x`` as GSM8K writes a gold answer; ``x`` must be a terminating decimal.

    >>> num(Fraction(375, 2)), num(Fraction(1248)), num(Fraction(21, 4))
    ('187.5', '1248', '5.25')
    """
    x = Fraction(x)
    if x.denominator == 1:
        return str(x.numerator)
    d = x.denominator
    while d % 2 == 0 or d % 5 == 0:
        d //= 2 if d % 2 == 0 else 5
    assert d == 1, f"{x} is not a terminating decimal"
    return format((Decimal(x.numerator) / Decimal(x.denominator)).normalize(), "f")


def dollars(x: Fraction) -> str:
    """A price as a question writes it: ``$12``, ``$12.50``."""
    return f"${x.numerator}" if x.denominator == 1 else f"${float(x):.2f}"


def commas(text: str) -> str:
    """A number with thousands separators: ``commas("12480.5") == "12,480.5"``."""
    whole, dot, frac = text.partition(".")
    return f"{int(whole):,}{dot}{frac}"


def token_pieces(text: str) -> list[str]:
    """The stand-in tokeniser's pieces; ``"".join(token_pieces(t)) == t`` always."""
    return _PIECE.findall(text)


def token_ids(text: str, *, eos: bool = True) -> list[int]:
    """Deterministic fake token ids of ``text``, ending in :data:`EOS_ID` unless ``eos=False``
    (a completion cut at the length limit has no end-of-turn token).

    >>> ids = token_ids("<solution>1248</solution>")
    >>> len(ids), ids[-1] == EOS_ID, all(0 <= i < VOCAB_SIZE for i in ids[:-1])
    (12, True, True)
    """
    ids = [zlib.crc32(p.encode()) % (VOCAB_SIZE - 256) + 256 for p in token_pieces(text)]
    return [*ids, EOS_ID] if eos else ids


def truncate(text: str, max_tokens: int) -> tuple[str, bool]:
    """``text`` cut to ``max_tokens`` stand-in tokens, and whether it was cut."""
    pieces = token_pieces(text)
    if len(pieces) <= max_tokens:
        return text, False
    return "".join(pieces[:max_tokens]), True


def _pick_wrong(gold: Fraction, *candidates: Fraction) -> str:
    for c in candidates:
        if c != gold and c >= 0:
            return num(c)
    return num(gold + 1)


def _sales(rng: random.Random, name: str, item: str) -> Question:
    n = rng.randrange(12, 97, 6)
    label, op, k = rng.choice(
        (
            ("half as many", "/", 2),
            ("a third as many", "/", 3),
            ("twice as many", "*", 2),
            ("three times as many", "*", 3),
        )
    )
    m1, m2 = rng.choice((("April", "May"), ("June", "July"), ("Monday", "Tuesday")))
    second = Fraction(n, k) if op == "/" else Fraction(n * k)
    total = n + second
    text = rng.choice((
        f"{name} sold {n} {item} in {m1}, and then {label} {item} in {m2}. How many {item} did "
        f"{name} sell altogether in {m1} and {m2}?",
        f"In {m1}, {name} sold {n} {item}. In {m2}, {name} sold {label} as in {m1}. What is the "
        f"total number of {item} {name} sold in the two months?",
    ))  # fmt: skip
    steps = (f"{n} {op} {k} = {num(second)}", f"{n} + {num(second)} = {num(total)}")
    return Question(text, num(total), steps, _pick_wrong(total, second, total + n))


def _wage(rng: random.Random, name: str, item: str) -> Question:
    rate = Fraction(rng.choice(("9.50", "12.50", "14.25", "15.75", "11", "18.40")))
    job = rng.choice(("babysitting", "tutoring", "walking dogs", "at the bakery"))
    hours, days = rng.randint(2, 8), rng.randint(3, 6)
    per_day, total = rate * hours, rate * hours * days
    text = rng.choice((
        f"{name} earns {dollars(rate)} an hour {job}. {name} worked {hours} hours a day for "
        f"{days} days. How much money did {name} earn?",
        f"{name} is paid {dollars(rate)} per hour for {job}. Working {hours} hours on each of "
        f"{days} days, how many dollars does {name} make?",
    ))  # fmt: skip
    steps = (f"{num(rate)} * {hours} = {num(per_day)}", f"{num(per_day)} * {days} = {num(total)}")
    return Question(text, num(total), steps, _pick_wrong(total, per_day, total + rate))


def _letters(rng: random.Random, name: str, item: str) -> Question:
    pages, friends, times = rng.randint(2, 6), rng.randint(2, 5), rng.choice((2, 3))
    word = {2: "twice", 3: "three times"}[times]
    weekly = pages * friends * times
    total = Fraction(weekly * 52)
    text = rng.choice((
        f"{name} writes a {pages}-page letter to {friends} different friends {word} a week. "
        f"How many pages does {name} write a year?",
        f"{word.capitalize()} a week, {name} writes {pages} pages to each of {friends} pen pals. "
        f"How many pages does {name} write in a year of 52 weeks?",
    ))  # fmt: skip
    daily = pages * friends
    steps = (f"{pages} * {friends} = {daily}", f"{daily} * {times} = {weekly}",
             f"{weekly} * 52 = {num(total)}")  # fmt: skip
    return Question(text, num(total), steps, _pick_wrong(total, Fraction(weekly * 12), total * 2))


def _savings(rng: random.Random, name: str, item: str) -> Question:
    need = 0
    while need <= 0:
        k, m = rng.choice((2, 4, 5)), rng.choice((2, 3))
        cost, gift = k * rng.randint(10, 60), rng.randint(5, 40)
        need = cost - cost // k - gift - m * gift
    thing = rng.choice(("bike", "wallet", "tablet", "pair of skates"))
    part = {2: "half", 4: "a quarter", 5: "a fifth"}[k]
    more = "twice" if m == 2 else "three times"
    text = (
        f"{name} needs ${cost} for a new {thing}. {name} has {part} of the money, {name}'s "
        f"parents give ${gift}, and {name}'s grandparents give {more} as much as the parents. "
        f"How much more money does {name} need?"
    )
    steps = (f"{cost} / {k} = {cost // k}", f"{gift} * {m} = {m * gift}",
             f"{cost} - {cost // k} - {gift} - {m * gift} = {need}")  # fmt: skip
    return Question(text, str(need), steps, _pick_wrong(Fraction(need), Fraction(need + m * gift)))


def _factory(rng: random.Random, name: str, item: str) -> Question:
    rate, hours, days = rng.randint(25, 180), rng.randint(6, 12), rng.randint(5, 30)
    thing = rng.choice(("toy cars", "bottles", "bolts", "chairs", "candles"))
    daily, made = rate * hours, rate * hours * days
    text = f"{name}'s workshop makes {rate} {thing} every hour. It runs {hours} hours a day for "
    text += f"{days} days."
    steps = [f"{rate} * {hours} = {daily}", f"{daily} * {days} = {made}"]
    rejected = rng.randint(1, 9) * 10 if rng.random() < 0.5 else 0
    if rejected:
        text += f" {rejected} of the {thing} fail inspection."
        steps.append(f"{made} - {rejected} = {made - rejected}")
    text += rng.choice((f" How many good {thing} are made?", f" How many {thing} can be sold?"))
    gold = Fraction(made - rejected)
    return Question(text, num(gold), tuple(steps), _pick_wrong(gold, gold - daily, gold * 2))


def _discount(rng: random.Random, name: str, item: str) -> Question:
    n, pct = rng.randint(2, 9), rng.choice((10, 20, 25, 50))
    price = Fraction(rng.choice(("2.50", "3.75", "4.20", "6.50", "8.25", "12")))
    subtotal = n * price
    off = subtotal * pct / 100
    text = rng.choice((
        f"A shop sells {item} for {dollars(price)} each. {name} buys {n} {item} and gets {pct}% "
        f"off the total. How much does {name} pay?",
        f"{name} buys {n} {item} at {dollars(price)} each. With a {pct}% discount, what is the "
        "final cost in dollars?",
    ))  # fmt: skip
    steps = (f"{n} * {num(price)} = {num(subtotal)}", f"{num(subtotal)} * {pct} / 100 = {num(off)}",
             f"{num(subtotal)} - {num(off)} = {num(subtotal - off)}")  # fmt: skip
    return Question(text, num(subtotal - off), steps, _pick_wrong(subtotal - off, subtotal, off))


def _sharing(rng: random.Random, name: str, item: str) -> Question:
    batches, size, friends = rng.randint(2, 6), rng.choice((12, 18, 24, 30)), rng.randint(2, 6)
    total = batches * size
    eaten = total % friends + friends * rng.randint(0, 2) or friends
    rest = total - eaten
    text = rng.choice((
        f"{name} bakes {batches} batches of {size} {item}, eats {eaten} of them and shares the "
        f"rest equally among {friends} friends. How many {item} does each friend get?",
        f"There are {batches} trays with {size} {item} on each. {name} keeps {eaten} and splits "
        f"the others evenly between {friends} friends. How many does each friend receive?",
    ))  # fmt: skip
    steps = (f"{batches} * {size} = {total}", f"{total} - {eaten} = {rest}",
             f"{rest} / {friends} = {rest // friends}")  # fmt: skip
    gold = Fraction(rest // friends)
    return Question(text, num(gold), steps, _pick_wrong(gold, Fraction(rest), gold + 1))


TEMPLATES = (_sales, _wage, _letters, _savings, _factory, _discount, _sharing)


def make_questions(rng: random.Random, n: int) -> tuple[Question, ...]:
    """``n`` questions from distinct templates while they last, with distinct names."""
    templates = rng.sample(TEMPLATES, len(TEMPLATES)) * (n // len(TEMPLATES) + 1)
    names = rng.sample(NAMES, n) if n <= len(NAMES) else [rng.choice(NAMES) for _ in range(n)]
    return tuple(t(rng, names[i], rng.choice(ITEMS)) for i, t in enumerate(templates[:n]))


def reasoning(rng: random.Random, q: Question, *, final: str | None = None, tokens: int = 0) -> str:
    """Worked steps in a random style, ending in ``final`` (the gold by default), padded with
    re-checks to at least ``tokens`` stand-in tokens."""
    steps = list(q.steps)
    if final is not None:
        steps[-1] = steps[-1].rsplit("= ", 1)[0] + "= " + final
    label, sep = rng.choice(_LABELS), rng.choice(("\n", " ", "\n\n"))
    parts = [rng.choice(_OPENERS), *(label.format(i=i + 1) + s for i, s in enumerate(steps))]
    size = len(token_pieces(" ".join(parts)))
    while size < tokens:
        parts.append(rng.choice(_RAMBLE).format(s=rng.choice(q.steps)))
        size += len(token_pieces(parts[-1])) + 1
    parts.append(rng.choice(_CLOSERS).format(a=final or q.answer))
    return sep.join(p for p in parts if p)


def _answer(rng: random.Random, q: Question) -> str:
    return commas(q.answer) if rng.random() < 0.5 else q.answer


def _wrap(rng: random.Random, text: str, answer: str) -> str:
    return rng.choice(_LAYOUTS).format(r=text, a=answer)


def _cut_tag(rng: random.Random, q: Question, tokens: int) -> str:
    text = _wrap(rng, reasoning(rng, q, tokens=tokens), _answer(rng, q))
    drop = rng.choice((("<solution>", "</solution>"), ("<thinking>",), ("</thinking>",)))
    for tag in drop:
        text = text.replace(tag, "")
    return text


def _unclosed(rng: random.Random, q: Question, tokens: int) -> str:
    r, a = reasoning(rng, q, tokens=tokens), _answer(rng, q)
    return rng.choice((f"<thinking>\n{r}\n<solution>{a}",
                       f"<thinking>{r}</thinking>\n<solution>{a}",
                       f"<thinking>\n{r}\n\n<solution>{a}</solution>"))  # fmt: skip


def _unicode(rng: random.Random, q: Question, tokens: int) -> str:
    r = reasoning(rng, q, tokens=tokens).replace(" * ", " × ").replace(" / ", " ÷ ")
    return _wrap(rng, f"{r} {' '.join(rng.sample(_UNICODE, 4))}", q.answer)


def _very_long(rng: random.Random, q: Question, tokens: int, limit: int) -> str:
    # Either cut mid-thought at the limit, or a verbose answer that just fits.
    if rng.random() < 0.5:
        return _wrap(rng, reasoning(rng, q, tokens=limit + 40), q.answer)
    return _wrap(rng, reasoning(rng, q, tokens=max(tokens, limit - 40)), q.answer)


def _garbage(rng: random.Random, kind: str, gold: str) -> str:
    sep = rng.choice(("", " ", "\n"))
    if kind == "garbage_tags":
        return sep.join(["<thinking></thinking><solution></solution>"] * rng.randint(3, 20))
    if kind == "garbage_numbers":
        return rng.choice((" ", "\n", ", ")).join([gold] * rng.randint(10, 80))
    if kind == "garbage_text":
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(20, 150)))
        return words + "\ufffd" * rng.choice((0, 0, 3))
    if kind == "garbage_tag_spam":
        return sep.join([f"<solution>{gold}</solution>"] * rng.randint(3, 20))
    if kind != "garbage_answer_only":
        raise ValueError(f"unknown probe kind {kind!r}")
    return rng.choice((f"<solution>{gold}</solution>", f"<thinking></thinking>\n<solution>{gold}"
                       "</solution>", gold, f"<solution>\n{gold}\n</solution>\n"))  # fmt: skip


def completion(
    rng: random.Random, kind: str, q: Question, limit: int, tokens: int = 0
) -> tuple[str, bool]:
    """A completion of ``kind`` for ``q`` (reasoning of at least ``tokens`` stand-in tokens where
    it has any), cut at ``limit`` tokens: ``(text, truncated)``."""
    if kind == "correct":
        text = _wrap(rng, reasoning(rng, q, tokens=tokens), _answer(rng, q))
    elif kind == "wrong":
        text = _wrap(rng, reasoning(rng, q, final=q.wrong, tokens=tokens), q.wrong)
    elif kind == "unformatted":
        end = rng.choice(("The answer is {a}.", "#### {a}", "**Answer:** {a}", "\\boxed{{{a}}}"))
        text = reasoning(rng, q, tokens=tokens) + rng.choice((" ", "\n", "\n\n"))
        text += end.format(a=_answer(rng, q))
    elif kind == "empty":
        text = ""
    elif kind == "very_long":
        text = _very_long(rng, q, tokens, limit)
    elif kind == "unicode":
        text = _unicode(rng, q, tokens)
    elif kind == "missing_tag":
        text = _cut_tag(rng, q, tokens)
    elif kind == "unclosed_tag":
        text = _unclosed(rng, q, tokens)
    elif kind.startswith("garbage_"):
        text = _garbage(rng, kind, q.answer)
    else:
        raise ValueError(f"unknown probe kind {kind!r}")
    return truncate(text, limit)
