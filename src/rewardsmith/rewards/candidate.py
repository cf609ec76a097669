"""A candidate reward: source code plus its provenance, independent of any trial that runs it.

A :class:`Candidate` is what a generator proposes (optuna's "trial parameters", not the trial):
the code of one reward function obeying TRL's contract, its name (the function's name), a short
description, and where it came from (round, generator, parent). It is immutable; its
:attr:`~Candidate.code_hash` identifies the code for deduplication and caching.

>>> c = Candidate(name="r", code="def r(prompts, completions, answer, **kw):\\n    return []\\n",
...               description="empty", round=1, generator="offline")
>>> Candidate.from_dict(c.to_dict()) == c
True
>>> len(c.code_hash)
64
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

_REQUIRED = ("name", "code", "round", "generator")


@dataclass(frozen=True)
class Candidate:
    """One proposed reward function.

    ``name`` is the name of the function in ``code`` that the trainer calls; ``round`` counts from
    1; ``generator`` names what wrote it (``"offline"``, ``"llm/<model>"``); ``parent`` names the
    candidate it was derived from, when any.
    """

    name: str
    code: str
    description: str
    round: int
    generator: str
    parent: str | None = None

    @property
    def code_hash(self) -> str:
        """The sha256 hex digest of :attr:`code` (UTF-8)."""
        return hashlib.sha256(self.code.encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field plus ``code_hash``."""
        return {
            "name": self.name,
            "code": self.code,
            "description": self.description,
            "round": self.round,
            "generator": self.generator,
            "parent": self.parent,
            "code_hash": self.code_hash,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candidate:
        """Rebuild a candidate from :meth:`to_dict` output; unknown keys are ignored.

        Raises ``ValueError`` when a required field is missing, or when a stored ``code_hash``
        does not match the code (the record was edited or corrupted).
        """
        missing = [key for key in _REQUIRED if key not in data]
        if missing:
            raise ValueError(f"candidate record lacks {', '.join(missing)}")
        candidate = cls(
            name=str(data["name"]),
            code=str(data["code"]),
            description=str(data.get("description") or ""),
            round=int(data["round"]),
            generator=str(data["generator"]),
            parent=None if data.get("parent") is None else str(data["parent"]),
        )
        stored = data.get("code_hash")
        if stored is not None and stored != candidate.code_hash:
            raise ValueError(f"candidate {candidate.name!r}: code_hash does not match its code")
        return candidate
