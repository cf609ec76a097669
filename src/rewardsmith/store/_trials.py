"""Trial bookkeeping inside one session: identity keys, state transitions, queries.

Every function here runs inside a session the caller opened (see ``RunStore._write``), so a
caller composes several of them into one transaction. State changes are conditional UPDATEs
(``... WHERE state IN (...)``), which every backend applies atomically: two workers racing for
the same PENDING trial cannot both win.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rewardsmith.config import RunConfig, canonical_hash
from rewardsmith.store._engine import StoreError
from rewardsmith.store.records import Trial, TrialResult, json_safe
from rewardsmith.store.schema import CandidateRow, ResultRow, TrialRow, TrialState

MAX_KIND_CHARS = 40


@dataclass(frozen=True)
class TrialSpec:
    """A validated trial request and its identity key."""

    kind: str
    candidates: tuple[str, ...]
    weights: dict[str, float]
    seed: int
    config: dict[str, Any]
    config_hash: str
    attrs: dict[str, Any]
    key: str

    @classmethod
    def build(
        cls,
        kind: str,
        names: Sequence[str],
        weights: Mapping[str, float] | None,
        seed: int | None,
        config: RunConfig,
        attrs: Mapping[str, Any] | None,
    ) -> TrialSpec:
        """Check the request (kind, distinct names, finite weights) and compute its key."""
        if not kind or len(kind) > MAX_KIND_CHARS:
            raise StoreError(f"trial kind must be 1-{MAX_KIND_CHARS} characters, got {kind!r}")
        if isinstance(names, str):
            raise StoreError("candidate_names must be a sequence of names, not one string")
        names = tuple(names)
        if len(set(names)) != len(names):
            raise StoreError(f"candidate names repeat in {list(names)}")
        clean_weights = {str(k): float(v) for k, v in (weights or {}).items()}
        bad = [k for k, v in clean_weights.items() if not math.isfinite(v)]
        if bad:
            raise StoreError(f"weight of {bad[0]!r} must be finite")
        seed = config.seed if seed is None else int(seed)
        config_hash = config.config_hash()
        identity = {
            "kind": kind,
            "candidates": sorted(names),
            "weights": sorted(clean_weights.items()),
            "seed": seed,
            "config_hash": config_hash,
        }
        return cls(
            kind=kind,
            candidates=names,
            weights=clean_weights,
            seed=seed,
            config=config.hash_payload(),
            config_hash=config_hash,
            attrs=json_safe(dict(attrs or {})),
            key=canonical_hash(identity),
        )


def find(session: Session, key: str) -> int:
    """Id of the trial with identity ``key`` (it must exist)."""
    return session.scalars(select(TrialRow.id).filter_by(key=key)).one()


def insert_or_get(session: Session, spec: TrialSpec, now: float) -> int:
    """Id of the trial matching ``spec``, inserting it as PENDING when new."""
    existing = session.scalars(select(TrialRow.id).filter_by(key=spec.key)).first()
    if existing is not None:
        return existing
    if spec.candidates:
        known = set(
            session.scalars(select(CandidateRow.name).where(CandidateRow.name.in_(spec.candidates)))
        )
        missing = [n for n in spec.candidates if n not in known]
        if missing:
            raise StoreError(f"unknown candidate(s) {missing}: add them before enqueueing")
    row = TrialRow(
        key=spec.key,
        kind=spec.kind,
        candidates=list(spec.candidates),
        weights=spec.weights,
        seed=spec.seed,
        config=spec.config,
        config_hash=spec.config_hash,
        attrs=spec.attrs,
        state=TrialState.PENDING,
        attempts=0,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row.id


def get(session: Session, trial_id: int) -> TrialRow:
    """The trial row ``trial_id``; :class:`StoreError` when there is none."""
    row = session.get(TrialRow, trial_id, populate_existing=True)
    if row is None:
        raise StoreError(f"unknown trial {trial_id}")
    return row


def claim(session: Session, trial_id: int, worker: str, now: float) -> bool:
    """PENDING -> RUNNING for ``worker``; False when the trial was not PENDING."""
    outcome = session.execute(
        update(TrialRow)
        .where(TrialRow.id == trial_id, TrialRow.state == TrialState.PENDING)
        .values(
            state=TrialState.RUNNING,
            worker=worker,
            started_at=now,
            finished_at=None,
            duration_s=None,
            attempts=TrialRow.attempts + 1,
        )
    )
    if outcome.rowcount == 0:
        get(session, trial_id)  # raises for an unknown id
        return False
    return True


def transition(
    session: Session,
    trial_id: int,
    state: TrialState,
    now: float | None,
    *,
    from_states: Sequence[str],
    reason: str | None = None,
) -> None:
    """Move a trial from one of ``from_states`` to ``state``; :class:`StoreError` otherwise.

    ``now`` stamps the finish time (and the duration from the start, when started); None clears
    the timings (back to PENDING).
    """
    values: dict[str, Any] = {"state": state, "fail_reason": reason}
    if now is None:
        values |= {"worker": None, "started_at": None, "finished_at": None, "duration_s": None}
    else:
        values |= {"finished_at": now, "duration_s": now - TrialRow.started_at}
    allowed = [TrialState(s) for s in from_states]
    outcome = session.execute(
        update(TrialRow)
        .where(TrialRow.id == trial_id, TrialRow.state.in_(allowed))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if outcome.rowcount == 0:
        current = get(session, trial_id).state
        raise StoreError(
            f"trial {trial_id} is {current.value}, cannot become {state.value} "
            f"(only from {', '.join(from_states)})"
        )


def result_row(session: Session, trial_id: int) -> ResultRow | None:
    """The result row of ``trial_id``, if written."""
    return session.get(ResultRow, trial_id)


def completed(session: Session, kinds: Sequence[str] | None) -> list[tuple[TrialRow, ResultRow]]:
    """COMPLETE trials of ``kinds`` (None: all) joined with their results, in id order."""
    query = (
        select(TrialRow, ResultRow)
        .join(ResultRow, ResultRow.trial_id == TrialRow.id)
        .where(TrialRow.state == TrialState.COMPLETE)
        .order_by(TrialRow.id)
    )
    if kinds is not None:
        query = query.where(TrialRow.kind.in_(list(kinds)))
    return [(t, r) for t, r in session.execute(query)]


def rank_key(pair: tuple[Trial, TrialResult], metric: str) -> tuple[Any, ...]:
    """Sort key: metric descending (missing last), then accuracy descending, then trial id."""
    trial, result = pair
    value, accuracy = result.metrics.get(metric), result.metrics.get("accuracy")
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    acc = accuracy if isinstance(accuracy, (int, float)) else float("-inf")
    return (not numeric, -value if numeric else 0.0, -acc, trial.id)
