"""Candidate bookkeeping inside one session: idempotent insert, verdicts, conversions."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rewardsmith.rewards.candidate import Candidate
from rewardsmith.store._engine import StoreError
from rewardsmith.store.records import json_safe
from rewardsmith.store.schema import CandidateRow

#: The longest name, generator or parent a candidate may have (their columns' length).
MAX_NAME_CHARS = 200


def to_candidate(row: CandidateRow) -> Candidate:
    """The :class:`Candidate` a row stores."""
    return Candidate(
        name=row.name,
        code=row.code,
        description=row.description,
        round=row.round,
        generator=row.generator,
        parent=row.parent,
    )


def find(session: Session, name: str) -> CandidateRow | None:
    """The row of candidate ``name``, if stored."""
    return session.scalars(select(CandidateRow).filter_by(name=name)).first()


def require(session: Session, name: str) -> CandidateRow:
    """The row of candidate ``name``; :class:`StoreError` when there is none."""
    row = find(session, name)
    if row is None:
        raise StoreError(f"unknown candidate {name!r}")
    return row


def insert_or_get(
    session: Session, candidate: Candidate, verdict: Mapping[str, Any] | None
) -> Candidate:
    """Store ``candidate`` unless the same name and code are stored; a name taken by other code
    raises :class:`StoreError`, as does a name, generator or parent longer than its column
    (every backend refuses them alike). An existing candidate keeps its verdict."""
    for field in ("name", "generator", "parent"):
        value = getattr(candidate, field)
        if value is not None and len(value) > MAX_NAME_CHARS:
            raise StoreError(f"candidate {field} is longer than {MAX_NAME_CHARS} characters")
    row = find(session, candidate.name)
    if row is not None:
        if row.code_hash != candidate.code_hash:
            raise StoreError(f"candidate name {candidate.name!r} is taken by other code")
        return to_candidate(row)
    session.add(
        CandidateRow(
            name=candidate.name,
            code=candidate.code,
            code_hash=candidate.code_hash,
            description=candidate.description,
            round=candidate.round,
            generator=candidate.generator,
            parent=candidate.parent,
            verdict=None if verdict is None else json_safe(verdict),
            created_at=time.time(),
        )
    )
    return candidate


def listed(session: Session, round: int | None) -> list[tuple[Candidate, dict[str, Any] | None]]:
    """(candidate, verdict) pairs in insertion order, optionally of one round."""
    query = select(CandidateRow).order_by(CandidateRow.id)
    if round is not None:
        query = query.filter_by(round=round)
    return [(to_candidate(row), row.verdict) for row in session.scalars(query)]
