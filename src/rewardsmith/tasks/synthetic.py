"""Synthetic GSM8K-style word problems: the embedded default task, no network needed.

Each problem follows one person through 1..N arithmetic steps (gain, lose, buy packs, share
equally) on a count of items; the worked solution writes one equation per step, and the answer
is an integer (never negative; divisions are exact). Generation is seeded and reproducible, and
the three splits never share a question.

Difficulty knobs: ``min_steps``/``max_steps`` (steps per problem) and ``max_number`` (largest
operand). The defaults are sized so the embedded model answers only part of them correctly.

>>> t = make_synthetic_task(n_train=5, n_val=2, n_test=2, seed=1)
>>> [len(t.train), len(t.val), len(t.test)]
[5, 2, 2]
>>> t.train[0] == make_synthetic_task(n_train=5, n_val=2, n_test=2, seed=1).train[0]
True
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

from rewardsmith.errors import ConfigError
from rewardsmith.tasks.base import PromptFormat, Task

NAMES = (
    "Mia", "Liam", "Ava", "Noah", "Emma", "Omar", "Zoe", "Ravi", "Lena", "Kofi",
    "Sara", "Ben", "Aiko", "Diego", "Nina", "Tom",
)  # fmt: skip
ITEMS = (
    "apples", "books", "coins", "stickers", "marbles", "pencils", "cookies", "shells",
    "stamps", "cards", "eggs", "flowers",
)  # fmt: skip


@dataclass(frozen=True)
class SyntheticConfig:
    """Knobs of the synthetic task; the defaults build the embedded demo task."""

    n_train: int = 4000
    n_val: int = 200
    n_test: int = 300
    min_steps: int = 1
    max_steps: int = 3
    max_number: int = 12
    seed: int = 0

    def validate(self) -> None:
        if min(self.n_train, self.n_val, self.n_test) < 0:
            raise ConfigError("synthetic: split sizes must be >= 0")
        if not 1 <= self.min_steps <= self.max_steps:
            raise ConfigError("synthetic: need 1 <= min_steps <= max_steps")
        if self.max_number < 2:
            raise ConfigError("synthetic: max_number must be >= 2")


def _step(rng: random.Random, name: str, item: str, value: int, hi: int) -> tuple[str, str, int]:
    """One operation on ``value``: returns (sentence, equation, new value)."""
    ops = ["gain", "buy"]
    if value >= 2:
        ops.append("lose")
    divisors = [d for d in range(2, 6) if value % d == 0 and value // d >= 1]
    if divisors:
        ops.append("share")
    op = rng.choice(ops)
    if op == "gain":
        k = rng.randint(2, hi)
        return f"Then {name} finds {k} more {item}.", f"{value} + {k} = {value + k}", value + k
    if op == "lose":
        k = rng.randint(1, value - 1)
        return f"Then {name} gives away {k} {item}.", f"{value} - {k} = {value - k}", value - k
    if op == "buy":
        packs, per = rng.randint(2, 4), rng.randint(2, max(2, hi // 2))
        new = value + packs * per
        sentence = f"Then {name} buys {packs} packs with {per} {item} in each pack."
        return sentence, f"{packs} * {per} = {packs * per}\n{value} + {packs * per} = {new}", new
    d = rng.choice(divisors)
    sentence = f"Then {name} splits the {item} equally into {d} boxes and keeps one box."
    return sentence, f"{value} / {d} = {value // d}", value // d


def make_problem(rng: random.Random, cfg: SyntheticConfig) -> dict[str, Any]:
    """One problem ``{question, answer, solution, item}``; one equation per solution step."""
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    value = rng.randint(2, cfg.max_number)
    sentences = [f"{name} has {value} {item}."]
    lines = [f"{name} starts with {value} {item}."]
    for _ in range(rng.randint(cfg.min_steps, cfg.max_steps)):
        sentence, equation, value = _step(rng, name, item, value, cfg.max_number)
        sentences.append(sentence)
        lines.append(equation)
    sentences.append(f"How many {item} does {name} have now?")
    lines.append(f"{name} has {value} {item}.")
    return {
        "question": " ".join(sentences),
        "answer": str(value),
        "solution": "\n".join(lines),
        "item": item,
    }


def make_synthetic_task(prompt: PromptFormat | None = None, **knobs: Any) -> Task:
    """Build the synthetic task from :class:`SyntheticConfig` knobs (unknown knobs are an error)."""
    try:
        cfg = SyntheticConfig(**knobs)
    except TypeError as exc:
        raise ConfigError(f"synthetic: {exc}") from exc
    cfg.validate()
    rng = random.Random(cfg.seed)
    wanted = cfg.n_train + cfg.n_val + cfg.n_test
    seen: set[str] = set()
    problems: list[dict[str, Any]] = []
    attempts = 0
    while len(problems) < wanted:
        attempts += 1
        if attempts > 50 * wanted + 1000:
            raise ConfigError(
                f"synthetic: cannot make {wanted} distinct problems with these knobs; "
                "raise max_number or max_steps"
            )
        problem = make_problem(rng, cfg)
        if problem["question"] not in seen:
            seen.add(problem["question"])
            problems.append(problem)
    # test, then val, then train: changing n_train never changes the held-out splits
    test = problems[: cfg.n_test]
    val = problems[cfg.n_test : cfg.n_test + cfg.n_val]
    train = problems[cfg.n_test + cfg.n_val :]
    source = "synthetic:" + ",".join(f"{k}={v}" for k, v in asdict(cfg).items())
    return Task("synthetic", train, val, test, prompt or PromptFormat(), source=source)
