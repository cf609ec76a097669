"""Evaluation bookkeeping: extra-split evaluations of COMPLETE trials, written once.

A trial's result holds its selection-split evaluation; finalists (top single rewards, ensembles,
baseline, control, final seeds) are also evaluated on the test split after training, and each
such evaluation is one ``evaluations`` row keyed by (trial, split). Rows are immutable: adding an
evaluation that exists returns the stored one, so a resumed search that evaluates a finalist
again neither fails nor overwrites what was recorded.

The session functions run inside a session the caller opened (see ``RunStore._write``);
:class:`EvaluationsMixin` gives :class:`~rewardsmith.store.RunStore` its public evaluation
methods on top of them; :func:`ensure_table` upgrades a store created before the table existed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, exc, inspect, select
from sqlalchemy.orm import Session

from rewardsmith.store import _trials
from rewardsmith.store._engine import StoreError
from rewardsmith.store.records import Evaluation, encode_correctness, json_safe
from rewardsmith.store.schema import EvaluationRow, TrialState

log = logging.getLogger(__name__)

MAX_SPLIT_CHARS = 40


def ensure_table(
    reader: Engine, writer: Engine, table: Any = None, schema: str | None = None
) -> bool:
    """Create ``table`` (default: ``evaluations``) when the store predates it; True when it was
    created. ``schema`` is where the run's tables live (None: the default one).

    The check runs on a read connection, so opening an up-to-date store writes nothing; the
    creation runs in a write transaction with ``checkfirst``, so two processes opening the same
    old store at once cannot both create it.
    """
    table = EvaluationRow.__table__ if table is None else table
    with reader.connect() as conn:
        if inspect(conn).has_table(table.name, schema=schema):
            return False
    with writer.begin() as conn:
        table.create(conn, checkfirst=True)
    log.info("added the %s table to an older run store", table.name)
    return True


def build(
    trial_id: int,
    split: str,
    metrics: Mapping[str, Any],
    correctness: Sequence[Any],
    records_path: str | None,
    now: float,
) -> Evaluation:
    """A checked :class:`Evaluation`: :class:`StoreError` for a bad split name, ``ValueError``
    for correctness that is not 0/1, ``TypeError`` for metrics that JSON cannot hold."""
    if not isinstance(split, str) or not split or len(split) > MAX_SPLIT_CHARS:
        raise StoreError(f"split must be 1-{MAX_SPLIT_CHARS} characters, got {split!r}")
    encode_correctness(correctness)  # fail before any transaction
    return Evaluation(
        trial_id=int(trial_id),
        split=split,
        metrics=json_safe(dict(metrics)),
        correctness=tuple(int(c) for c in correctness),
        records_path=None if records_path is None else str(records_path),
        created_at=now,
    )


def get(session: Session, trial_id: int, split: str) -> EvaluationRow | None:
    """The evaluation row of ``trial_id`` on ``split``, if written."""
    return session.get(EvaluationRow, (trial_id, split))


def insert_or_get(session: Session, evaluation: Evaluation) -> Evaluation:
    """Store ``evaluation`` for its COMPLETE trial, or return the one already stored.

    :class:`StoreError` when the trial is unknown or not COMPLETE (only a finished policy can be
    evaluated). An existing evaluation is returned unchanged whatever ``evaluation`` holds.
    """
    state = _trials.get(session, evaluation.trial_id).state
    if state != TrialState.COMPLETE:
        raise StoreError(
            f"trial {evaluation.trial_id} is {state.value}; only a COMPLETE trial is evaluated"
        )
    existing = get(session, evaluation.trial_id, evaluation.split)
    if existing is not None:
        stored = Evaluation.from_row(existing)
        if (stored.metrics, stored.correctness) != (evaluation.metrics, evaluation.correctness):
            log.info(
                "trial %d already has a %s evaluation; keeping the stored one",
                evaluation.trial_id,
                evaluation.split,
            )
        return stored
    session.add(evaluation.to_row())
    session.flush()
    return evaluation


def listed(session: Session, split: str | None) -> list[Evaluation]:
    """Evaluations ordered by trial id then split, optionally of one split."""
    query = select(EvaluationRow).order_by(EvaluationRow.trial_id, EvaluationRow.split)
    if split is not None:
        query = query.where(EvaluationRow.split == split)
    return [Evaluation.from_row(row) for row in session.scalars(query)]


class EvaluationsMixin:
    """The evaluation methods of :class:`~rewardsmith.store.RunStore` (kept here so that the
    store's module stays small); the host provides the ``_read``/``_write`` sessions."""

    if TYPE_CHECKING:

        def _read(self) -> AbstractContextManager[Session]: ...

        def _write(self) -> AbstractContextManager[Session]: ...

        def publish(self, path: str | Path | None) -> str | None: ...

    def add_evaluation(
        self,
        trial_id: int,
        split: str,
        metrics: Mapping[str, Any],
        correctness: Sequence[int],
        records_path: str | None = None,
    ) -> Evaluation:
        """Record a COMPLETE trial's evaluation on ``split`` (e.g. a finalist on ``"test"``).

        Idempotent and immutable: when (trial, split) is stored already, the stored evaluation
        is returned unchanged. :class:`StoreError` for an unknown or not-COMPLETE trial or a bad
        split name; ``ValueError`` for correctness values other than 0/1. Under an artifact
        root the records file is published first and its URI recorded.
        """
        new = build(trial_id, split, metrics, correctness, records_path, time.time())
        if records_path is not None:
            new = replace(new, records_path=self.publish(records_path))
        try:
            with self._write() as session:
                return insert_or_get(session, new)
        except exc.IntegrityError:  # another process stored the same evaluation concurrently
            with self._read() as session:
                row = get(session, trial_id, split)
                if row is None:
                    raise
                return Evaluation.from_row(row)

    def evaluation(self, trial_id: int, split: str) -> Evaluation | None:
        """The evaluation of ``trial_id`` on ``split``, None when there is none."""
        with self._read() as session:
            row = get(session, trial_id, split)
            return None if row is None else Evaluation.from_row(row)

    def evaluations(self, split: str | None = None) -> list[Evaluation]:
        """All evaluations (of one ``split``), ordered by trial id then split."""
        with self._read() as session:
            return listed(session, split)
