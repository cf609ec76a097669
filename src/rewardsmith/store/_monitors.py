"""Reward-monitor bookkeeping: what watching each sandboxed reward during a trial found.

A trial worker hands the store one :class:`~rewardsmith.store.records.RewardMonitorRecord` per
sandboxed reward; :func:`insert` writes them inside the transaction that marks the trial
COMPLETE or FAILED (see ``RunStore.complete_trial`` / ``fail_trial``), so a trial's state and
its findings are never seen apart. :func:`delete` drops them when a FAILED trial is requeued (its
next attempt records its own). :class:`MonitorsMixin` gives the store its read method;
:func:`ensure_table` upgrades a store created before the table existed.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select
from sqlalchemy import delete as sql_delete
from sqlalchemy.orm import Session

from rewardsmith.store import _evaluations
from rewardsmith.store._engine import StoreError
from rewardsmith.store.records import RewardMonitorRecord
from rewardsmith.store.schema import RewardMonitorRow


def ensure_table(reader: Engine, writer: Engine, schema: str | None = None) -> bool:
    """Create the ``reward_monitors`` table when the store predates it; True when created."""
    return _evaluations.ensure_table(reader, writer, RewardMonitorRow.__table__, schema)


def encode(
    trial_id: int, records: Sequence[RewardMonitorRecord], now: float
) -> list[RewardMonitorRow]:
    """Rows for ``records``, built before any transaction so that bad data fails early
    (:class:`StoreError` when a reward appears twice, ``TypeError`` for non-JSON data)."""
    names = [r.reward for r in records]
    if len(set(names)) != len(names):
        raise StoreError(f"trial {trial_id}: a reward has several monitor records: {names}")
    return [r.to_row(trial_id, now) for r in records]


def delete(session: Session, trial_id: int) -> None:
    """Remove the monitor records of ``trial_id``."""
    session.execute(sql_delete(RewardMonitorRow).where(RewardMonitorRow.trial_id == trial_id))


def listed(session: Session, trial_id: int) -> list[RewardMonitorRecord]:
    """The monitor records of ``trial_id``, by reward name."""
    query = (
        select(RewardMonitorRow)
        .where(RewardMonitorRow.trial_id == trial_id)
        .order_by(RewardMonitorRow.reward)
    )
    return [RewardMonitorRecord.from_row(row) for row in session.scalars(query)]


class MonitorsMixin:
    """The reward-monitor read method of :class:`~rewardsmith.store.RunStore`."""

    if TYPE_CHECKING:

        def _read(self) -> AbstractContextManager[Session]: ...

    def reward_monitors(self, trial_id: int) -> list[RewardMonitorRecord]:
        """What watching each sandboxed reward of a finished trial found (empty when the trial
        had no sandboxed reward, is not finished, or predates reward monitoring)."""
        with self._read() as session:
            return listed(session, trial_id)
