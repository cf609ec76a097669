"""The generator interface and what a generator is shown each round.

A generator proposes :class:`~rewardsmith.rewards.candidate.Candidate` rewards for a round from a
:class:`RoundContext`: sample training problems, the ranked summary of earlier rounds (Eureka-style
feedback), the reasons earlier candidates were rejected, and the response format. Everything a
generator cannot turn into a candidate (malformed output, API errors) is kept as a
:class:`Rejection` so the search can show it and feed it back; a generator never raises for them.

The context is bounded: at most :data:`MAX_EXAMPLES` examples, :data:`MAX_SUMMARY` summary entries
and :data:`MAX_REJECTIONS` rejections are kept (the best-ranked entries, the most recent
rejections), so prompts built from it stay within a model's context window.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from rewardsmith.extraction import DEFAULT_TAGS, Tags
from rewardsmith.rewards.candidate import Candidate
from rewardsmith.sandbox.results import clean_text

MAX_EXAMPLES = 200
MAX_SUMMARY = 50
MAX_REJECTIONS = 50


@dataclass(frozen=True)
class SummaryEntry:
    """One ranked reward of an earlier round, as the next round's generator sees it.

    ``metrics`` holds the selection metrics (e.g. ``{"f1": 0.61, "accuracy": 0.44}``);
    ``reflection`` is free text in the spirit of Eureka (component curves, max/mean/min, tips);
    ``stats`` optional structured numbers behind it; ``code`` the reward's source (usually only
    for the leaders).
    """

    name: str
    description: str
    round: int
    metrics: dict[str, float] = field(default_factory=dict)
    reflection: str | None = None
    stats: dict[str, Any] | None = None
    code: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SummaryEntry:
        """Build an entry from a dict with at least ``name``; other keys are optional."""
        if "name" not in data:
            raise ValueError("summary entry lacks 'name'")
        metrics = {str(k): float(v) for k, v in (data.get("metrics") or {}).items()}
        return cls(
            name=str(data["name"]),
            description=str(data.get("description") or ""),
            round=int(data.get("round") or 0),
            metrics=metrics,
            reflection=data.get("reflection"),
            stats=data.get("stats"),
            code=data.get("code"),
        )


@dataclass(frozen=True)
class Rejection:
    """A proposal that did not become a usable candidate, with the reason.

    ``stage`` says where it failed: ``"request"`` (API error after retries), ``"parse"``
    (malformed output, or an item lost to truncation), ``"truncated"`` (the reply was cut, by the
    token limit or mid-JSON; the reason says how many rewards were asked for and kept), or a
    validation stage name when the search records verdicts here.
    """

    round: int
    generator: str
    stage: str
    reason: str
    name: str | None = None

    def __post_init__(self) -> None:
        # Reasons quote model output and API errors: nothing in them may drive a terminal.
        object.__setattr__(self, "reason", clean_text(self.reason, limit=4000))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rejection:
        return cls(
            round=int(data.get("round") or 0),
            generator=str(data.get("generator") or ""),
            stage=str(data.get("stage") or ""),
            reason=str(data.get("reason") or ""),
            name=data.get("name"),
        )


@dataclass(frozen=True)
class RoundContext:
    """What a generator is shown for one round; immutable and bounded on construction.

    ``examples`` are ``{"question", "answer"}`` dicts (answer = the gold string); ``summary`` is
    ranked best first; ``rejections`` oldest first; ``taken_names`` are names a new candidate
    must not use (base rewards, earlier candidates).
    """

    examples: tuple[dict[str, str], ...] = ()
    summary: tuple[SummaryEntry, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    tags: Tags = DEFAULT_TAGS
    taken_names: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # Frozen dataclass: normalise containers and enforce the size bounds in place.
        examples = tuple(_clean_example(e) for e in self.examples[:MAX_EXAMPLES])
        object.__setattr__(self, "examples", examples)
        object.__setattr__(self, "summary", tuple(self.summary)[:MAX_SUMMARY])
        object.__setattr__(self, "rejections", tuple(self.rejections)[-MAX_REJECTIONS:])
        object.__setattr__(self, "taken_names", frozenset(self.taken_names))

    def with_taken(self, names: set[str] | frozenset[str] | list[str]) -> RoundContext:
        """A copy whose ``taken_names`` also holds ``names``."""
        return replace(self, taken_names=self.taken_names | frozenset(names))

    def fingerprint(self) -> str:
        """A stable sha256 of the whole context, used to seed reproducible generators."""
        payload = {
            "examples": list(self.examples),
            "summary": [entry.to_dict() for entry in self.summary],
            "rejections": [rejection.to_dict() for rejection in self.rejections],
            "tags": list(self.tags.all()),
            "taken": sorted(self.taken_names),
        }
        blob = json.dumps(payload, sort_keys=True, default=str).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()


def _clean_example(example: dict[str, Any]) -> dict[str, str]:
    if "question" not in example or "answer" not in example:
        raise ValueError("an example needs 'question' and 'answer' keys")
    return {"question": str(example["question"]), "answer": str(example["answer"])}


@runtime_checkable
class Generator(Protocol):
    """Proposes candidate rewards for a round.

    ``propose`` returns at most ``n`` candidates (fewer when some output was unusable) and never
    raises for bad model output or API errors; those are appended to ``rejections``, which
    accumulates over the generator's lifetime (filter by ``round``).
    """

    name: str
    rejections: list[Rejection]

    def propose(self, round: int, n: int, context: RoundContext) -> list[Candidate]: ...
