"""The candidate methods of :class:`~rewardsmith.store.RunStore`: store a candidate with its
validation verdict, record a verdict later, and read candidates and verdicts back.

:class:`CandidatesMixin` wraps the one-session helpers of :mod:`rewardsmith.store._candidates`
in the store's sessions (kept here so that the store's module stays small); the host provides
the ``_read``/``_write`` sessions.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy import exc
from sqlalchemy.orm import Session

from rewardsmith.rewards.candidate import Candidate
from rewardsmith.store import _candidates
from rewardsmith.store.records import json_safe


class CandidatesMixin:
    """The candidate methods of :class:`~rewardsmith.store.RunStore`."""

    if TYPE_CHECKING:

        def _read(self) -> AbstractContextManager[Session]: ...

        def _write(self) -> AbstractContextManager[Session]: ...

    def add_candidate(
        self, candidate: Candidate, *, verdict: Mapping[str, Any] | None = None
    ) -> Candidate:
        """Store a candidate (with its validation verdict, if known); storing the same name with
        the same code again is a no-op. A name taken by different code raises
        :class:`~rewardsmith.store.StoreError`."""
        try:
            with self._write() as session:
                return _candidates.insert_or_get(session, candidate, verdict)
        except exc.IntegrityError:  # PostgreSQL: another process stored the name concurrently
            with self._write() as session:
                return _candidates.insert_or_get(session, candidate, verdict)

    def set_verdict(self, name: str, verdict: Mapping[str, Any]) -> None:
        """Record (or replace) the validation verdict of a stored candidate."""
        with self._write() as session:
            _candidates.require(session, name).verdict = json_safe(verdict)

    def get_candidate(self, name: str) -> Candidate:
        """The stored candidate called ``name``; :class:`~rewardsmith.store.StoreError` when
        there is none."""
        with self._read() as session:
            return _candidates.to_candidate(_candidates.require(session, name))

    def candidates(self, round: int | None = None) -> list[Candidate]:
        """Stored candidates in insertion order, optionally of one round."""
        with self._read() as session:
            return [c for c, _ in _candidates.listed(session, round)]

    def verdicts(self, round: int | None = None) -> dict[str, dict[str, Any] | None]:
        """name -> validation verdict (None when not recorded), in insertion order."""
        with self._read() as session:
            return {c.name: v for c, v in _candidates.listed(session, round)}
