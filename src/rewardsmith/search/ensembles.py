"""Named ensembles: which screened candidates each configuration of ``search.ensembles`` sums.

:func:`plan_members` applies one :class:`~rewardsmith.config.EnsembleSection` rule to the
candidates ranked best first on the selection split (``top``, ``diverse_rounds``,
``correctness``); :func:`group_plan` merges configurations that pick the same members with the
same budget, so one trial serves them all (it is recorded under every name).

A candidate *checks the answer* (:class:`AnswerCheck`) when, in its sandbox, it scores the same
correct, well-formatted completions higher against their gold answers than against wrong gold
answers: the gold answer, not the surface of the text, moves its score. Generated code runs only
in sandbox workers, never here.

>>> ranked = ["a", "b", "c", "d"]
>>> rounds = {"a": 2, "b": 1, "c": 2, "d": 1}
>>> from rewardsmith.config import EnsembleSection as E
>>> plan_members(E(name="t", k=2), ranked, rounds, lambda n: True)
['a', 'b']
>>> plan_members(E(name="d", rule="diverse_rounds"), ranked, rounds, lambda n: True)
['b', 'a']
>>> plan_members(E(name="c", rule="correctness", k=2), ranked, rounds, lambda n: n in "cd")
['c', 'd']
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: Seed of the probe battery that tells whether a reward checks the answer (fixed: the verdict
#: must not change when a search is resumed).
CHECK_SEED = 3407


def plan_members(
    spec: Any, ranked: Sequence[str], rounds: Mapping[str, int], checks: Callable[[str], bool]
) -> list[str]:
    """The members ``spec`` picks from ``ranked`` (best first); ``[]`` when it cannot be formed
    (a ``top`` ensemble larger than the candidates, no candidate that checks the answer)."""
    if spec.rule == "top":
        return list(ranked[: spec.k]) if len(ranked) >= spec.k else []
    if spec.rule == "diverse_rounds":
        best: dict[int, str] = {}
        for name in ranked:
            best.setdefault(rounds.get(name, 0), name)
        members = [best[r] for r in sorted(best)]
        return members[: spec.k] if spec.k is not None else members
    members = []
    for name in ranked:  # correctness: checked lazily, best first, until k are found
        if len(members) == spec.k:
            break
        if checks(name):
            members.append(name)
    return members


@dataclass(frozen=True)
class PlannedEnsemble:
    """One ensemble trial to train: its members, its steps and every configuration it serves."""

    members: tuple[str, ...]
    steps: int
    names: tuple[str, ...]

    @property
    def name(self) -> str:
        return " = ".join(self.names)


def group_plan(
    search: Any, ranked: Sequence[str], rounds: Mapping[str, int], checks: Callable[[str], bool]
) -> tuple[list[PlannedEnsemble], list[str]]:
    """(the ensemble trials of ``search.ensemble_plan()``, the names that could not be formed).

    Configurations with the same member set and steps share one :class:`PlannedEnsemble`.
    """
    groups: dict[tuple[frozenset[str], int], PlannedEnsemble] = {}
    skipped = []
    for spec in search.ensemble_plan():
        members = plan_members(spec, ranked, rounds, checks)
        if not members:
            skipped.append(spec.name)
            continue
        key = (frozenset(members), search.steps_of(spec))
        known = groups.get(key)
        names = (known.names if known else ()) + (spec.name,)
        groups[key] = PlannedEnsemble(tuple(members), key[1], names)
    return list(groups.values()), skipped


def _wrong_gold(gold: str) -> str:
    """A gold answer that no correct completion of ``gold`` agrees with."""
    try:
        value = float(gold.replace(",", ""))
    except ValueError:
        return gold + "1"
    wrong = value * 2 + 7
    return str(int(wrong)) if wrong.is_integer() else str(wrong)


class AnswerCheck:
    """``check(name)``: whether stored candidate ``name`` checks the answer (cached).

    Uses ``pool`` (a :class:`~rewardsmith.sandbox.pool.SandboxPool`) when given, else starts a
    one-worker pool on first use; :meth:`close` stops a pool it started. A reward that fails or
    times out in either call does not check the answer.
    """

    def __init__(self, store: Any, pool: Any = None, *, timeout_s: float = 5.0) -> None:
        self.store = store
        self.pool = pool
        self.timeout_s = timeout_s
        self._own_pool: Any = None
        self._known: dict[str, bool] = {}

    def __call__(self, name: str) -> bool:
        if name not in self._known:
            self._known[name] = self._check(name)
        return self._known[name]

    def _check(self, name: str) -> bool:
        from rewardsmith.rewards.probes import call_kwargs, make_battery

        candidate = self.store.get_candidate(name)
        probes = [p for p in make_battery(CHECK_SEED).batches["batch16"] if p.kind == "correct"]
        kwargs = call_kwargs(probes, True, run_seed=CHECK_SEED)
        right = self._pool().call(candidate.code, name, timeout_s=self.timeout_s, **kwargs)
        kwargs["answer"] = [_wrong_gold(a) for a in kwargs["answer"]]
        wrong = self._pool().call(candidate.code, name, timeout_s=self.timeout_s, **kwargs)
        if not (right.ok and wrong.ok):
            log.info("%s: no verdict on checking the answer (%s)", name, right.error or wrong.error)
            return False
        total = sum(v or 0.0 for v in right.values) - sum(v or 0.0 for v in wrong.values)
        return total > 1e-9

    def _pool(self) -> Any:
        if self.pool is not None:
            return self.pool
        if self._own_pool is None:
            from rewardsmith.sandbox.pool import SandboxPool

            self._own_pool = SandboxPool(max_workers=1)
        return self._own_pool

    def close(self) -> None:
        if self._own_pool is not None:
            self._own_pool.close()
            self._own_pool = None
