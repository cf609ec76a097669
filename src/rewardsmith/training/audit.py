"""Audits of a reward on live training batches: does it score garbage above correct answers?

An audit takes the live completions that the trusted ``check_answer`` scores as exactly correct
(when none is, live completions rewritten with the gold answer, see :func:`with_gold`), makes
corrupted copies of each (:func:`corrupt`: answer removed, tags broken, words shuffled), keeps
only the copies ``check_answer`` scores below correct, and lays originals and copies out as one
batch with the live batch's dataset columns (:func:`build_audit`, :func:`audit_inputs`). The
reward scores that batch in one call; :func:`judge` counts the copies scored above their
original. Nothing here calls the reward: :class:`~rewardsmith.training.monitor.RewardMonitor`
does, in the reward's sandbox worker.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rewardsmith.extraction import DEFAULT_TAGS, Tags
from rewardsmith.rewards.contract import completion_texts

#: ``check_answer``'s score for an exactly correct answer.
CORRECT_SCORE = 3.0
#: Score differences at or below this are ties.
EPS = 1e-9
#: How an audit corrupts a correct completion, in the order the copies are made.
CORRUPTIONS = ("answer_removed", "tags_broken", "shuffled")
_TOKENS = re.compile(r"<[^<>\s]+>|[^\s<]+|<")


def corrupt(text: str, tags: Tags = DEFAULT_TAGS, rng: random.Random | None = None) -> dict:
    """Garbage copies of a completion, keyed by :data:`CORRUPTIONS`: the solution emptied, the
    tags' angle brackets dropped, and the words (tags as words of their own) shuffled.

    >>> copies = corrupt("<thinking>2 * 3 = 6</thinking><solution>6</solution>")
    >>> copies["answer_removed"]
    '<thinking>2 * 3 = 6</thinking><solution></solution>'
    >>> copies["tags_broken"]
    'thinking2 * 3 = 6/thinkingsolution6/solution'
    >>> sorted(copies["shuffled"].split())
    ['*', '2', '3', '6', '6', '</solution>', '</thinking>', '<solution>', '<thinking>', '=']
    """
    start, end = re.escape(tags.solution_start), re.escape(tags.solution_end)
    empty = tags.solution_start + tags.solution_end
    removed = re.sub(f"{start}.*?(?:{end}|$)", lambda _: empty, text, flags=re.DOTALL)
    broken = text
    for tag in tags.all():
        broken = broken.replace(tag, tag[1:-1])
    tokens = _TOKENS.findall(text)
    (rng or random.Random(0)).shuffle(tokens)
    return {"answer_removed": removed, "tags_broken": broken, "shuffled": " ".join(tokens)}


def with_gold(text: str, gold: Any, tags: Tags = DEFAULT_TAGS) -> str:
    """``text`` rewritten as a well-formed answer holding the gold answer.

    >>> with_gold("so it is 70", "72")
    '<thinking>\\nso it is 70\\n</thinking>\\n<solution>72</solution>'
    """
    reasoning = text
    for tag in tags.all():
        reasoning = reasoning.replace(tag, " ")
    reasoning = " ".join(reasoning.split()) or "the answer follows"
    answer = str(gold).rsplit("####", 1)[-1].strip()
    return (
        f"{tags.reasoning_start}\n{reasoning}\n{tags.reasoning_end}\n"
        f"{tags.solution_start}{answer}{tags.solution_end}"
    )


@dataclass
class AuditBatch:
    """One audit's batch: ``texts[j]`` comes from live row ``rows[j]``; ``pairs`` holds
    (original position, copy position, corruption); ``rebuilt`` when the originals were
    rewritten with the gold answer (no live completion was correct)."""

    rows: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    pairs: list[tuple[int, int, str]] = field(default_factory=list)
    rebuilt: bool = False


def _originals(texts: list[str], scores: Sequence[Any], golds: list[Any], tags: Tags, n: int):
    """Up to ``n`` distinct (text, live row) originals, and whether they were rebuilt."""
    correct = [i for i, score in enumerate(scores) if score == CORRECT_SCORE]
    rebuilt = not correct
    picked: dict[str, int] = {}
    for i in correct or range(len(texts)):
        picked.setdefault(with_gold(texts[i], golds[i], tags) if rebuilt else texts[i], i)
        if len(picked) >= n:
            break
    return list(picked.items()), rebuilt


def build_audit(
    completions: Sequence[Any],
    golds: list[Any],
    checker: Callable[..., list[float | None]],
    *,
    samples: int,
    tags: Tags = DEFAULT_TAGS,
    rng: random.Random | None = None,
) -> AuditBatch | None:
    """Originals the ``checker`` scores as correct and their copies it scores below correct;
    None when no pair is left."""
    texts = completion_texts(completions)
    originals, rebuilt = _originals(texts, checker(None, completions, golds), golds, tags, samples)
    items = [
        (row, kind, copy)
        for text, row in originals
        for kind, copy in (("original", text), *corrupt(text, tags, rng).items())
    ]
    checked = checker(None, [c for _, _, c in items], [golds[row] for row, _, _ in items])
    batch = AuditBatch(rebuilt=rebuilt)
    original: int | None = None  # position of the current original in the batch
    for (row, kind, text), score in zip(items, checked, strict=True):
        if kind == "original":
            original = len(batch.texts) if score == CORRECT_SCORE else None
            if original is None:
                continue
        elif original is None or score >= CORRECT_SCORE:
            continue  # no valid original, or the copy still answers correctly
        else:
            batch.pairs.append((original, len(batch.texts), kind))
        batch.rows.append(row)
        batch.texts.append(text)
    return batch if batch.pairs else None


def audit_inputs(
    batch: AuditBatch, prompts: Sequence[Any] | None, completions: Sequence[Any], kwargs: dict
) -> tuple[list[Any] | None, list[Any], dict[str, Any]]:
    """(prompts, completions, keyword arguments) of the audit call: each item in the shape of
    its live completion, with its live row's prompt and dataset columns (per-sample columns
    are lists as long as the batch; ``completion_ids`` is left out: copies have no tokens)."""
    n = len(completions)
    shaped = [
        text if isinstance(completions[row], str) else [{"role": "assistant", "content": text}]
        for row, text in zip(batch.rows, batch.texts, strict=True)
    ]
    columns = {
        key: [value[r] for r in batch.rows]
        if isinstance(value, list | tuple) and len(value) == n
        else value
        for key, value in kwargs.items()
        if key != "completion_ids"
    }
    audit_prompts = None if prompts is None else [prompts[r] for r in batch.rows]
    return audit_prompts, shaped, columns


def judge(batch: AuditBatch, values: Sequence[float | None]) -> tuple[int, Counter[str]]:
    """(pairs compared, copies scored above their original by corruption); pairs with a
    missing score are not compared.

    >>> batch = AuditBatch([0, 0, 0], ["ok", "bad", "worse"], [(0, 1, "shuffled"), (0, 2, "tags_broken")])
    >>> judge(batch, [1.0, 2.0, None])
    (1, Counter({'shuffled': 1}))
    """  # noqa: E501 - doctest line
    compared = [
        (values[o], values[c], kind)
        for o, c, kind in batch.pairs
        if values[o] is not None and values[c] is not None
    ]
    above = Counter(kind for orig, copy, kind in compared if copy > orig + EPS)
    return len(compared), above
