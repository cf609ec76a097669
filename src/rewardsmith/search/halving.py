"""Successive halving of a round's screening (``search.screening.mode: halving``).

The rungs train ``ScreeningSection.rung_steps(grpo.max_steps)`` steps: rung 0 screens every
candidate of the round; after each rung the best ``ceil(n / eta)`` (at least one) of the ``n``
candidates that ran it go on, ranked by :func:`rewardsmith.search.ranking.rank_candidates` on
that rung's trials. A FAILED trial is never promoted, and fewer COMPLETE candidates than places
promote only those. A promoted candidate's next-rung trial continues its run (adapter, optimizer,
schedule: :mod:`rewardsmith.training.continuation`) instead of restarting. At the top rung (the
full budget) each survivor is also trained from scratch with further seeds, up to
``seeds_at_top`` in all. In ``full`` mode there is one rung, the full budget (and the further
seeds, when ``seeds_at_top`` > 1).

This is Hyperband's successive halving done synchronously per round: the candidates of a
round are known up front and a rung is decided when all its trials are finished, so the few
lines here fit the store-driven loop better than a scheduler library's trial model (Ray Tune's
ASHA, Optuna's pruners), which would own the trial lifecycle the store already owns.

What is stored, so that a resumed search (after ``kill -9``) re-runs nothing finished and
re-decides nothing: every rung trial carries ``attrs = {"rung", "rung_steps", "budget",
"continues"}`` (its config trains ``rung_steps`` of the ``budget``-step schedule; ``continues``
is the id of the trial whose run it goes on with, or None); when a rung is decided, each of its
trials gets ``attrs["promoted"]`` (True or False) in one transaction, before the next rung is
enqueued. Identical trials are enqueued once (the store's identity key), so a resumed round only
adds what is missing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from rewardsmith.search.ranking import RankedCandidate, rank_candidates

log = logging.getLogger(__name__)

PROMOTED = "promoted"


def places(n: int, eta: int) -> int:
    """How many of ``n`` candidates a rung promotes: ``ceil(n / eta)``, at least one.

    >>> places(9, 3), places(10, 3), places(2, 3), places(0, 3)
    (3, 4, 1, 0)
    """
    return max(1, math.ceil(n / eta)) if n else 0


def promote(ranked: Sequence[RankedCandidate], n: int, eta: int) -> list[str]:
    """The names promoted from a rung: the first :func:`places` (``n``, ``eta``) of ``ranked``
    (best first, as :func:`rank_candidates` orders it) that have a COMPLETE trial there.

    >>> c = [RankedCandidate(x, 0, s, 0.5, None, None, None, 0.5, (1,)) for x, s in
    ...      [("a", 1), ("b", 0), ("c", 1)]]
    >>> promote(c, 3, 3), promote(c, 3, 2), promote(c[1:2], 1, 3)
    (['a'], ['a', 'c'], [])
    """
    complete = [r.name for r in ranked if not r.failed]
    return complete[: places(n, eta)]


def at_full_budget(trial: Any) -> bool:
    """True unless ``trial`` is a halving rung below the full budget (a partial run).

    >>> from types import SimpleNamespace as T
    >>> at_full_budget(T(attrs={})), at_full_budget(T(attrs=rung_attrs(0, 3, 9, None)))
    (True, False)
    """
    steps, budget = trial.attrs.get("rung_steps"), trial.attrs.get("budget")
    return not isinstance(steps, int) or not isinstance(budget, int) or steps >= budget


def rung_attrs(rung: int, steps: int, budget: int, continues: int | None) -> dict[str, Any]:
    """The attributes of a halving rung trial."""
    return {"rung": rung, "rung_steps": steps, "budget": budget, "continues": continues}


def record_promotions(store: Any, decisions: dict[int, bool]) -> None:
    """Set ``attrs["promoted"]`` on the decided trials, all in one transaction.

    The store has no public attribute update yet; this is the one place that writes trial
    attributes after enqueueing.
    """
    from rewardsmith.store.schema import TrialRow

    with store._write() as session:  # noqa: SLF001 - see the docstring
        for trial_id, promoted in decisions.items():
            row = session.get(TrialRow, trial_id)
            row.attrs = {**(row.attrs or {}), PROMOTED: bool(promoted)}


def decide(store: Any, cfg: Any, rung: int, trial_ids: dict[str, int]) -> list[str] | None:
    """The names promoted from ``rung``, whose trials (one per name) are ``trial_ids``: the
    stored decision when there is one, else made now and stored. None while a trial of the
    rung is unfinished (nothing is decided then)."""
    trials = {name: store.trial(i) for name, i in trial_ids.items()}
    states = {getattr(t.state, "value", t.state) for t in trials.values()}
    if not states <= {"COMPLETE", "FAILED"}:
        return None
    if any(PROMOTED in t.attrs for t in trials.values()):
        ranked = rank_candidates(store, cfg, rung=rung, names=list(trials))
        return [r.name for r in ranked if trials[r.name].attrs.get(PROMOTED) is True]
    ranked = rank_candidates(store, cfg, rung=rung, names=list(trials))
    chosen = promote(ranked, len(trials), cfg.search.screening.eta)
    record_promotions(store, {t.id: name in chosen for name, t in trials.items()})
    log.info("rung %d: promoted %s of %d", rung, chosen, len(trials))
    return chosen


class Ladder:
    """Enqueues and decides the rungs of one search's screening (see the module docstring);
    ``run`` runs trials (the search's ``_run``) and ``message`` tells the user."""

    def __init__(self, store: Any, cfg: Any, run: Any, message: Any) -> None:
        self.store, self.cfg, self.run, self.message = store, cfg, run, message
        self.budget = cfg.grpo.max_steps
        self.steps = cfg.search.screening.rung_steps(self.budget)
        self.halving = cfg.search.screening.mode == "halving"

    def enqueue(
        self, name: str, rung: int, continues: int | None = None, seed: int | None = None
    ) -> int:
        """The trial of ``name`` at ``rung`` (with ``seed``; default the run's)."""
        from rewardsmith.search.loop import with_steps

        steps = self.steps[rung]
        if not self.halving:
            return self.store.enqueue_trial("screen", [name], seed=seed)
        config = with_steps(self.cfg, steps) if steps != self.budget else self.cfg
        attrs = rung_attrs(rung, steps, self.budget, continues)
        return self.store.enqueue_trial("screen", [name], seed=seed, config=config, attrs=attrs)

    def first(self, names: Sequence[str]) -> dict[str, int]:
        """Run rung 0 for ``names``; their trial ids."""
        ids = {name: self.enqueue(name, 0) for name in names}
        self.run(list(ids.values()))
        return ids

    def climb(self, names: Sequence[str]) -> list[str]:
        """Rung 0 (already run by :meth:`first`, else now) and every rung above it for
        ``names``, then the further seeds of the top rung; the names that reached the top."""
        ids = self.first(names)
        for rung in range(1, len(self.steps)):
            chosen = decide(self.store, self.cfg, rung - 1, ids)
            if chosen is None:
                self.message(f"rung {rung - 1} is unfinished: no promotion yet")
                return []
            self.message(
                f"rung {rung - 1} -> {rung} ({self.steps[rung]} steps): "
                f"{', '.join(chosen) or 'nobody'} of {len(ids)}"
            )
            ids = {name: self.enqueue(name, rung, continues=ids[name]) for name in chosen}
            self.run(list(ids.values()))
        self.seeds(list(ids))
        return list(ids)

    def seeds(self, names: Sequence[str]) -> None:
        """Further seeds (from scratch, the full budget) of the top rung's ``names``."""
        extra = self.cfg.search.screening.seeds_at_top - 1
        if extra <= 0 or not names:
            return
        top = len(self.steps) - 1
        ids = [
            self.enqueue(name, top, seed=self.cfg.seed + i)
            for name in names
            for i in range(1, extra + 1)
        ]
        self.run(ids)
