"""The run store's tables (SQLAlchemy 2.0 ORM): run manifest, candidates, trials, results,
evaluations.

One database holds one run. ``run`` has a single row (the manifest); ``candidates`` holds every
proposed reward, accepted or not; ``trials`` holds each training run of a set of candidates with
a config and a seed, and its state; ``results`` holds a finished trial's outcome, written once
in the same transaction that marks the trial COMPLETE and never updated afterwards;
``evaluations`` holds further evaluations of a COMPLETE trial's policy on other splits (a
finalist's test-split evaluation), one per (trial, split), also written once;
``reward_monitors`` holds what watching each sandboxed reward during a trial found (counters and
findings), one row per (trial, reward), written with the trial's COMPLETE or FAILED state.

Each claim of a trial is an *attempt*: it gets a fresh ``attempt_token`` (a fencing token), and
the process running it is recorded (``worker_pid`` + ``worker_start``, which tells a live worker
from a later process that reused its pid). Only the current attempt may write the trial's
outcome; a recovered trial's token is cleared, so a straggler of a killed run writes nothing.

Times are POSIX seconds (floats), which every backend stores without time-zone surprises.
"""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import JSON, Enum, Float, ForeignKey, Integer, String, Text, event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Bumped when the tables change incompatibly; a store of another version is refused. Adding a
#: table or a nullable column is compatible: :meth:`RunStore.open` creates a missing
#: ``evaluations`` or ``reward_monitors`` table, or a missing attempt column, in place.
SCHEMA_VERSION = 1


class TrialState(enum.StrEnum):
    """Life cycle of a trial: PENDING -> RUNNING -> COMPLETE | FAILED (RUNNING -> PENDING on
    recovery after a crash)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"


class Base(DeclarativeBase):
    """Declarative base of the store's tables."""

    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class RunRow(Base):
    """The run's manifest: identity, config, data fingerprints, software versions."""

    __tablename__ = "run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(200))
    schema_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    config_hash: Mapped[str] = mapped_column(String(64))
    fingerprints: Mapped[dict[str, Any]] = mapped_column(JSON)
    overlaps: Mapped[dict[str, Any]] = mapped_column(JSON)
    split_sizes: Mapped[dict[str, Any]] = mapped_column(JSON)
    versions: Mapped[dict[str, Any]] = mapped_column(JSON)
    git_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON)


class CandidateRow(Base):
    """A proposed reward: code and provenance, plus its validation verdict when known."""

    __tablename__ = "candidates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    code: Mapped[str] = mapped_column(Text)
    code_hash: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str] = mapped_column(Text)
    round: Mapped[int] = mapped_column(Integer, index=True)
    generator: Mapped[str] = mapped_column(String(200))
    parent: Mapped[str | None] = mapped_column(String(200), nullable=True)
    verdict: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)


class TrialRow(Base):
    """One training run of a candidate set under a config and a seed."""

    __tablename__ = "trials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # sha256 of (kind, candidate set + weights, seed, config hash): makes enqueue idempotent.
    key: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    candidates: Mapped[list[Any]] = mapped_column(JSON)
    weights: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    config_hash: Mapped[str] = mapped_column(String(64))
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[TrialState] = mapped_column(
        Enum(TrialState, native_enum=False, length=16, validate_strings=True), index=True
    )
    fail_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The current attempt: its fencing token, and the worker process running it (pid, and
    # "<boot id>:<start time in clock ticks>" so that a reused pid is not mistaken for it).
    attempt_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    worker_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    worker_start: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)


class ResultRow(Base):
    """A COMPLETE trial's outcome (1:1 with its trial); immutable once written."""

    __tablename__ = "results"

    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"), primary_key=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    # One character per evaluated question, "1" correct / "0" not, in evaluation order.
    correctness: Mapped[str] = mapped_column(Text)
    curves: Mapped[dict[str, Any]] = mapped_column(JSON)
    eval_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    adapter_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)


class EvaluationRow(Base):
    """A COMPLETE trial's policy evaluated on one split; immutable once written.

    The trial's own result already holds the selection-split evaluation; rows here add others
    (typically ``"test"`` for finalists). ``(trial_id, split)`` is the primary key, so a trial has
    at most one evaluation per split.
    """

    __tablename__ = "evaluations"

    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"), primary_key=True)
    split: Mapped[str] = mapped_column(String(40), primary_key=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Same encoding as ResultRow.correctness.
    correctness: Mapped[str] = mapped_column(Text)
    records_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)


class RewardMonitorRow(Base):
    """What watching one sandboxed reward during a trial found; immutable once written.

    ``summary`` holds the monitor's counters (calls, failures, timeouts, audits, audits failed,
    p95 latency); ``findings`` a list of ``{reward, kind, step, detail, value}`` dicts in the
    order they were found (see :mod:`rewardsmith.training.monitor`). Written in the transaction
    that marks the trial COMPLETE or FAILED; removed when a FAILED trial is requeued.
    """

    __tablename__ = "reward_monitors"

    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"), primary_key=True)
    reward: Mapped[str] = mapped_column(String(200), primary_key=True)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    findings: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)


@event.listens_for(ResultRow, "before_update")
def _results_are_immutable(mapper: Any, connection: Any, target: ResultRow) -> None:
    """Refuse any ORM update of a written result (a result is a record of what happened)."""
    raise ValueError(f"results are immutable (trial {target.trial_id})")


@event.listens_for(EvaluationRow, "before_update")
def _evaluations_are_immutable(mapper: Any, connection: Any, target: EvaluationRow) -> None:
    """Refuse any ORM update of a written evaluation, like results."""
    raise ValueError(f"evaluations are immutable (trial {target.trial_id}, {target.split})")


@event.listens_for(RewardMonitorRow, "before_update")
def _monitors_are_immutable(mapper: Any, connection: Any, target: RewardMonitorRow) -> None:
    """Refuse any ORM update of a written monitor record, like results."""
    raise ValueError(f"reward monitors are immutable (trial {target.trial_id}, {target.reward})")
