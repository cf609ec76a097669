"""Trial bookkeeping inside one session: identity keys, state transitions, attempts, queries.

Every function here runs inside a session the caller opened (see ``RunStore._write``), so a
caller composes several of them into one transaction. State changes are conditional UPDATEs
(``... WHERE state IN (...)``), which every backend applies atomically: two workers racing for
the same PENDING trial cannot both win.

Attempts are fenced: a claim gives the trial a fresh random ``attempt_token``; a write that
passes a token (``... WHERE attempt_token = :token``) happens only while that attempt is the
current one, so a worker whose trial was recovered and handed to another attempt cannot write
over it. :class:`AttemptsMixin` gives :class:`~rewardsmith.store.RunStore` its claim, worker and
recovery methods on top of these functions.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rewardsmith.config import RunConfig, canonical_hash, parse_config
from rewardsmith.errors import ConfigError
from rewardsmith.store._engine import StaleAttemptError, StoreError
from rewardsmith.store.records import Trial, TrialResult, json_safe
from rewardsmith.store.schema import CandidateRow, ResultRow, TrialRow, TrialState

log = logging.getLogger(__name__)

MAX_KIND_CHARS = 40
#: What returning a trial to PENDING clears: the attempt and everything about its process.
_NO_ATTEMPT = {
    "worker": None,
    "started_at": None,
    "attempt_token": None,
    "worker_pid": None,
    "worker_start": None,
}


def default_worker() -> str:
    """``<host>:<pid>``: who is running a trial."""
    return f"{socket.gethostname()}:{os.getpid()}"


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


def as_config(config: RunConfig | Mapping[str, Any]) -> RunConfig:
    """``config`` as a validated :class:`RunConfig` (:class:`StoreError` when invalid)."""
    if isinstance(config, RunConfig):
        return config
    try:
        return parse_config(config, source="trial config")
    except ConfigError as error:
        raise StoreError(str(error)) from None


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


def claim(session: Session, trial_id: int, worker: str, now: float, token: str) -> bool:
    """PENDING -> RUNNING for ``worker`` as a new attempt holding ``token``; False when the
    trial was not PENDING."""
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
            attempt_token=token,
            worker_pid=None,
            worker_start=None,
        )
    )
    if outcome.rowcount == 0:
        get(session, trial_id)  # raises for an unknown id
        return False
    return True


def _attempt(trial_id: int, token: str) -> Any:
    """The WHERE clause of "this RUNNING attempt is the trial's current one"."""
    return (
        (TrialRow.id == trial_id)
        & (TrialRow.state == TrialState.RUNNING)
        & (TrialRow.attempt_token == token)
    )


def stale(session: Session, trial_id: int, token: str) -> StaleAttemptError:
    """The error for a write by attempt ``token`` that is not current (unknown id: StoreError)."""
    row = get(session, trial_id)
    return StaleAttemptError(
        f"trial {trial_id}: attempt {token[:8]} is stale (the trial is {row.state.value}"
        + (f", attempt {row.attempt_token[:8]})" if row.attempt_token else ")")
    )


def set_worker(
    session: Session, trial_id: int, token: str, worker: str, pid: int, start: str | None
) -> None:
    """Record the process running attempt ``token``; :class:`StaleAttemptError` when stale."""
    outcome = session.execute(
        update(TrialRow)
        .where(_attempt(trial_id, token))
        .values(worker=worker, worker_pid=pid, worker_start=start)
        .execution_options(synchronize_session=False)
    )
    if outcome.rowcount == 0:
        raise stale(session, trial_id, token)


def is_current(session: Session, trial_id: int, token: str) -> bool:
    """True while attempt ``token`` is the RUNNING trial's current attempt."""
    query = select(TrialRow.id).where(_attempt(trial_id, token))
    return session.scalars(query).first() is not None


def release(session: Session, trial_id: int, token: str) -> bool:
    """RUNNING -> PENDING for attempt ``token`` only; False when it was not current."""
    outcome = session.execute(
        update(TrialRow)
        .where(_attempt(trial_id, token))
        .values(state=TrialState.PENDING, **_NO_ATTEMPT)
        .execution_options(synchronize_session=False)
    )
    return outcome.rowcount > 0


def transition(
    session: Session,
    trial_id: int,
    state: TrialState,
    now: float | None,
    *,
    from_states: Sequence[str],
    reason: str | None = None,
    token: str | None = None,
) -> None:
    """Move a trial from one of ``from_states`` to ``state``; :class:`StoreError` otherwise.

    ``now`` stamps the finish time (and the duration from the start, when started); None clears
    the timings and the attempt (back to PENDING). With ``token`` the move happens only for
    that RUNNING attempt while it is current (:class:`StaleAttemptError` otherwise).
    """
    values: dict[str, Any] = {"state": state, "fail_reason": reason}
    if now is None:
        values |= {**_NO_ATTEMPT, "finished_at": None, "duration_s": None}
    else:
        values |= {"finished_at": now, "duration_s": now - TrialRow.started_at}
    where = TrialRow.state.in_([TrialState(s) for s in from_states]) & (TrialRow.id == trial_id)
    if token is not None:
        where = where & _attempt(trial_id, token)
    outcome = session.execute(
        update(TrialRow).where(where).values(**values).execution_options(synchronize_session=False)
    )
    if outcome.rowcount == 0:
        if token is not None:
            raise stale(session, trial_id, token)
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


class AttemptsMixin:
    """The attempt methods of :class:`~rewardsmith.store.RunStore`: claims, the worker process
    of an attempt, fencing checks and recovery (the host provides ``_read``/``_write``)."""

    if TYPE_CHECKING:

        def _read(self) -> AbstractContextManager[Session]: ...

        def _write(self) -> AbstractContextManager[Session]: ...

    def claim_trial(self, trial_id: int, *, worker: str | None = None) -> Trial | None:
        """Move a PENDING trial to RUNNING atomically, as a new attempt with a fresh
        ``attempt_token``; None when it is not PENDING (e.g. another worker claimed it first)."""
        token = secrets.token_hex(16)
        with self._write() as session:
            claimed = claim(session, trial_id, worker or default_worker(), time.time(), token)
            return Trial.from_row(get(session, trial_id)) if claimed else None

    def next_pending(self, *, kind: str | None = None, worker: str | None = None) -> Trial | None:
        """Claim the oldest PENDING trial (of ``kind``), or None when none is left."""
        while True:
            query = select(TrialRow.id).where(TrialRow.state == TrialState.PENDING)
            if kind is not None:
                query = query.where(TrialRow.kind == kind)
            with self._read() as session:
                trial_id = session.scalars(query.order_by(TrialRow.id).limit(1)).first()
            if trial_id is None:
                return None
            trial = self.claim_trial(trial_id, worker=worker)
            if trial is not None:
                return trial

    def record_worker(
        self, trial_id: int, token: str, *, pid: int, start: str | None, worker: str | None = None
    ) -> None:
        """Record the process running attempt ``token`` (``pid`` and its ``start`` identity, see
        :func:`rewardsmith.execution.process_start`); ``worker`` defaults to ``<host>:<pid>``.
        :class:`StaleAttemptError` when the attempt is no longer current."""
        worker = worker or f"{socket.gethostname()}:{pid}"
        with self._write() as session:
            set_worker(session, trial_id, token, worker, pid, start)

    def attempt_is_current(self, trial_id: int, token: str) -> bool:
        """True while attempt ``token`` is the RUNNING trial's current attempt; a worker checks
        this as it trains and stops, writing nothing, once it is False."""
        with self._read() as session:
            return is_current(session, trial_id, token)

    def release_attempt(self, trial_id: int, token: str) -> bool:
        """Put the trial back to PENDING if attempt ``token`` is still its current one (its
        worker died without recording an outcome); False, changing nothing, otherwise."""
        with self._write() as session:
            return release(session, trial_id, token)

    def recover(self, *, worker: str | None = None) -> list[int]:
        """Put RUNNING trials (of ``worker``, or all) back to PENDING; return their ids.

        Call it when resuming, once no other worker of this run is alive: a RUNNING trial then
        belongs to a process that died. The attempts are cleared, so a straggler of them that
        is somehow still running can write nothing (:class:`StaleAttemptError`). COMPLETE and
        FAILED trials are untouched.
        """
        with self._write() as session:
            query = select(TrialRow.id).where(TrialRow.state == TrialState.RUNNING)
            if worker is not None:
                query = query.where(TrialRow.worker == worker)
            ids = list(session.scalars(query.order_by(TrialRow.id)))
            if ids:
                session.execute(
                    update(TrialRow)
                    .where(TrialRow.id.in_(ids), TrialRow.state == TrialState.RUNNING)
                    .values(state=TrialState.PENDING, **_NO_ATTEMPT)
                )
        if ids:
            log.warning("recovered %d interrupted trial(s): %s", len(ids), ids)
        return ids
