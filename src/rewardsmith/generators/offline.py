"""The offline proposer: reward programs assembled from primitives, evolved from round to round.

Round 1 samples genomes (2-4 distinct primitives with random weights and parameters). From round
2 on, each new candidate is, with probability ``explore``, a fresh sample, and otherwise a variation
of the leaders of the ranked summary: parameter/weight mutation, crossover of two leaders, or
adding, dropping or swapping a component. Leaders are read back from their code's genome header
(:func:`~rewardsmith.generators.program.genome_from_code`), so the summary alone is enough.

It uses the feedback it is given (the structured ``stats`` of the summary entries, see
:mod:`rewardsmith.search.feedback`; see :func:`lessons_from`): the primitives of a candidate
reported constant, or never varying within groups, are dropped from every new genome (a weighted
sum with positive weights that never varies means each of its terms never varied); each
primitive's sampling weight is multiplied by :data:`SETBACK_WEIGHT` for every failed or
below-baseline candidate it was part of; failed and constant candidates are never leaders. A
primitive that only re-weights a base reward (``Primitive.reweights``) is labelled as such in the
description, so the ranked summary says which candidates add no new signal.

Reproducible: the random stream is seeded by (seed, round, context fingerprint), so a fresh
generator with the same seed and context returns identical code. One instance never repeats a
name it has already emitted, so asking it again within a round (to replace rejections) gives
new candidates.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rewardsmith.generators.base import Rejection, RoundContext, SummaryEntry
from rewardsmith.generators.primitives import PRIMITIVES, WEIGHT, reweighting_kinds
from rewardsmith.generators.program import (
    Gene,
    Genome,
    describe,
    genome_from_code,
    genome_to_json,
    make_name,
    random_gene,
    render_program,
)
from rewardsmith.rewards.candidate import Candidate

logger = logging.getLogger(__name__)

Leader = tuple[SummaryEntry, Genome]

#: A primitive's sampling weight is multiplied by this for each failed or below-baseline
#: candidate that used it.
SETBACK_WEIGHT = 0.5


@dataclass(frozen=True)
class Lessons:
    """What the ranked summary says about the primitives (see :func:`lessons_from`).

    ``dropped``: kinds left out of every new genome; ``setbacks``: kind -> number of failed or
    below-baseline candidates that used it; ``unusable``: names of entries never varied
    (failed, constant or without within-group signal).
    """

    dropped: frozenset[str] = frozenset()
    setbacks: dict[str, int] = field(default_factory=dict)
    unusable: frozenset[str] = frozenset()

    def weight(self, kind: str) -> float:
        """The relative sampling weight of ``kind`` (0 when dropped)."""
        return 0.0 if kind in self.dropped else SETBACK_WEIGHT ** self.setbacks.get(kind, 0)

    def allowed(self, kinds: Sequence[str]) -> list[str]:
        """``kinds`` minus the dropped ones."""
        return [kind for kind in kinds if kind not in self.dropped]


def lessons_from(summary: Sequence[SummaryEntry]) -> Lessons:
    """Read the structured feedback of entries whose code carries a genome.

    An entry whose ``stats`` list its name under ``constant`` or ``no_group_signal`` drops its
    primitives; one with ``failed`` or a negative ``vs_baseline.delta`` counts a setback for
    each of them. Entries without stats teach nothing.

    >>> from rewardsmith.extraction import DEFAULT_TAGS
    >>> from rewardsmith.generators.program import Gene, render_program
    >>> code = render_program("r1_x", (Gene("strict_format", 1.0, ()),), "x", DEFAULT_TAGS)
    >>> flat = SummaryEntry("r1_x", "", 1, code=code, stats={"constant": ["r1_x"]})
    >>> sorted(lessons_from([flat]).dropped)
    ['strict_format']
    """
    dropped: set[str] = set()
    setbacks: Counter[str] = Counter()
    unusable: set[str] = set()
    for entry in summary:
        genome = genome_from_code(entry.code)
        stats = entry.stats or {}
        if genome is None or not stats:
            continue
        kinds = {gene.kind for gene in genome}
        silent = set(stats.get("constant") or ()) | set(stats.get("no_group_signal") or ())
        if entry.name in silent:
            dropped |= kinds
            unusable.add(entry.name)
        delta = (stats.get("vs_baseline") or {}).get("delta")
        if stats.get("failed"):
            unusable.add(entry.name)
        if stats.get("failed") or (isinstance(delta, int | float) and delta < 0):
            setbacks.update(kinds)
    if len(PRIMITIVES) - len(dropped) < 1:
        logger.warning("feedback drops every primitive; ignoring the drops")
        dropped = set()
    return Lessons(frozenset(dropped), dict(setbacks), frozenset(unusable))


class OfflineGenerator:
    """Proposes rewards from :data:`~rewardsmith.generators.primitives.PRIMITIVES`, no network.

    ``min_components``/``max_components`` bound a genome's size; ``n_leaders`` is how many of the
    best summary entries are varied; ``explore`` the share of fresh samples after round 1.
    """

    name = "offline"

    def __init__(
        self,
        seed: int = 0,
        *,
        min_components: int = 2,
        max_components: int = 4,
        n_leaders: int = 3,
        explore: float = 0.2,
    ) -> None:
        if not 1 <= min_components <= max_components <= len(PRIMITIVES):
            raise ValueError("need 1 <= min_components <= max_components <= number of primitives")
        self.seed = seed
        self.min_components = min_components
        self.max_components = max_components
        self.n_leaders = n_leaders
        self.explore = explore
        self.rejections: list[Rejection] = []
        self._emitted: set[str] = set()

    def propose(self, round: int, n: int, context: RoundContext) -> list[Candidate]:
        """Up to ``n`` new candidates with distinct genomes and unused names."""
        rng = random.Random(f"{self.seed}:{round}:{context.fingerprint()}")
        lessons = lessons_from(context.summary)
        leaders = self.leaders(context, lessons)
        seen = {genome_to_json(genome) for _, genome in leaders}
        kind_sets: set[frozenset[str]] = set()
        taken = set(context.taken_names) | self._emitted
        out: list[Candidate] = []
        for attempt in range(n * 40):
            if len(out) == n:
                break
            if round <= 1 or not leaders or rng.random() < self.explore:
                genome, parent, origin = self._sample(rng, lessons), None, None
            else:
                genome, parent, origin = self._vary(rng, leaders, lessons)
                genome, removed = self._heed(genome, rng, lessons)
                if removed:
                    origin = f"{origin}, without {', '.join(removed)} (no signal)"
            kinds = frozenset(gene.kind for gene in genome)
            # Prefer new combinations of primitives; accept repeats only once those run short.
            if parent is None and kinds in kind_sets and attempt < n * 20:
                continue
            key, name = genome_to_json(genome), make_name(round, genome)
            if key in seen or name in taken:
                continue
            seen.add(key)
            taken.add(name)
            kind_sets.add(kinds)
            out.append(self._candidate(name, genome, round, parent, origin, context))
        self._emitted.update(c.name for c in out)
        if len(out) < n:
            reason = f"only {len(out)} distinct candidates of the {n} asked for"
            self.rejections.append(Rejection(round, self.name, "generate", reason))
            logger.warning("offline generator, round %d: %s", round, reason)
        return out

    def leaders(self, context: RoundContext, lessons: Lessons | None = None) -> list[Leader]:
        """The best ``n_leaders`` summary entries whose code carries a readable genome, leaving
        out those ``lessons`` call unusable (failed, constant, no within-group signal)."""
        unusable = lessons.unusable if lessons is not None else frozenset()
        found = []
        for entry in context.summary:
            genome = genome_from_code(entry.code)
            if genome is not None and entry.name not in unusable:
                found.append((entry, genome))
            if len(found) == self.n_leaders:
                break
        return found

    def _candidate(self, name, genome, round, parent, origin, context) -> Candidate:
        description = describe(genome) + reweighting_note(genome)
        if origin is not None:
            description = f"{description} ({origin})"
        code = render_program(name, genome, description, context.tags)
        return Candidate(name, code, description, round, self.name, parent)

    def _sample(self, rng: random.Random, lessons: Lessons | None = None) -> Genome:
        """A fresh genome; with ``lessons``, dropped kinds are left out and the others drawn in
        proportion to :meth:`Lessons.weight` (uniformly without any)."""
        size = rng.randint(self.min_components, self.max_components)
        if lessons is None or not (lessons.dropped or lessons.setbacks):
            kinds = rng.sample(sorted(PRIMITIVES), size)
        else:
            kinds = _weighted_sample(rng, lessons.allowed(sorted(PRIMITIVES)), lessons, size)
        return tuple(random_gene(kind, rng) for kind in kinds)

    def _heed(
        self, genome: Genome, rng: random.Random, lessons: Lessons
    ) -> tuple[Genome, list[str]]:
        """(``genome`` without dropped kinds, topped up to ``min_components`` by weighted draws;
        the kinds removed)."""
        kept = tuple(gene for gene in genome if gene.kind not in lessons.dropped)
        removed = [gene.kind for gene in genome if gene.kind in lessons.dropped]
        if not removed:
            return genome, []
        used = {gene.kind for gene in kept}
        unused = [kind for kind in lessons.allowed(sorted(PRIMITIVES)) if kind not in used]
        missing = max(0, min(self.min_components, len(kept) + len(unused)) - len(kept))
        extra = _weighted_sample(rng, unused, lessons, missing)
        return kept + tuple(random_gene(kind, rng) for kind in extra), removed

    def _vary(
        self, rng: random.Random, leaders: list[Leader], lessons: Lessons | None = None
    ) -> tuple[Genome, str, str]:
        """A variation of a rank-weighted leader: (genome, parent name, how it was made)."""
        ranks = [len(leaders) - i for i in range(len(leaders))]
        entry, genome = rng.choices(leaders, weights=ranks)[0]
        lessons = lessons or Lessons()
        operators: dict[str, Callable[[], Genome]] = {
            "mutation": lambda: _mutate(genome, rng),
            "addition": lambda: self._add(genome, rng, lessons),
            "removal": lambda: self._drop(genome, rng, lessons),
            "swap": lambda: self._swap(genome, rng, lessons),
        }
        others = [leader for leader in leaders if leader[0] is not entry]
        other = rng.choice(others) if others else None
        if other is not None:
            operators["crossover"] = lambda: self._cross(genome, other[1], rng)
        names = sorted(operators)
        how = rng.choices(names, weights=[_OP_WEIGHTS[k] for k in names])[0]
        origin = f"{how} of {entry.name}"
        if how == "crossover":
            origin = f"{origin} and {other[0].name}"
        return operators[how](), entry.name, origin

    def _add(self, genome: Genome, rng: random.Random, lessons: Lessons) -> Genome:
        unused = lessons.allowed(sorted(set(PRIMITIVES) - {gene.kind for gene in genome}))
        if len(genome) >= self.max_components or not unused:
            return _mutate(genome, rng)
        return (*genome, random_gene(_pick(rng, unused, lessons), rng))

    def _drop(self, genome: Genome, rng: random.Random, lessons: Lessons) -> Genome:
        if len(genome) <= self.min_components:
            return self._swap(genome, rng, lessons)
        index = rng.randrange(len(genome))
        return genome[:index] + genome[index + 1 :]

    def _swap(self, genome: Genome, rng: random.Random, lessons: Lessons) -> Genome:
        unused = lessons.allowed(sorted(set(PRIMITIVES) - {gene.kind for gene in genome}))
        index = rng.randrange(len(genome))
        if not unused:
            return _mutate(genome, rng)
        gene = random_gene(_pick(rng, unused, lessons), rng)
        return genome[:index] + (gene,) + genome[index + 1 :]

    def _cross(self, first: Genome, second: Genome, rng: random.Random) -> Genome:
        """One gene from each parent, then more from either (one per kind), lightly mutated."""
        child = {gene.kind: gene for gene in (rng.choice(first), rng.choice(second))}
        size = rng.randint(max(len(child), self.min_components), self.max_components)
        for gene in rng.sample(first + second, len(first) + len(second)):
            if len(child) >= size:
                break
            child.setdefault(gene.kind, gene)
        return _mutate(tuple(child.values()), rng, rate=0.2)


def reweighting_note(genome: Genome) -> str:
    """``"; strict_format only re-weights base reward match_format_exactly"``-style label of the
    genome's primitives that add nothing the base rewards lack ("" when none)."""
    base = reweighting_kinds()
    notes = [
        f"{g.kind} only re-weights base reward {base[g.kind]}" for g in genome if g.kind in base
    ]
    if not notes:
        return ""
    whole = " (the whole reward adds no new signal)" if len(notes) == len(genome) else ""
    return "; " + ", ".join(notes) + whole


def _pick(rng: random.Random, kinds: Sequence[str], lessons: Lessons) -> str:
    """One of ``kinds`` in proportion to its weight (a plain uniform choice when all are equal)."""
    weights = [lessons.weight(kind) for kind in kinds]
    if len(set(weights)) <= 1:
        return rng.choice(list(kinds))
    return rng.choices(list(kinds), weights=weights)[0]


def _weighted_sample(
    rng: random.Random, kinds: Sequence[str], lessons: Lessons, k: int
) -> list[str]:
    """``k`` distinct kinds drawn without replacement in proportion to their weights
    (Efraimidis-Spirakis keys u ** (1 / w)); fewer when ``kinds`` runs short."""
    keyed = [(rng.random() ** (1.0 / lessons.weight(kind)), kind) for kind in kinds]
    return [kind for _, kind in sorted(keyed, reverse=True)[:k]]


_OP_WEIGHTS = {"mutation": 4.0, "crossover": 3.0, "addition": 1.0, "removal": 1.0, "swap": 1.0}


def _mutate(genome: Genome, rng: random.Random, rate: float = 0.5) -> Genome:
    """Each weight and parameter moves with probability ``rate``; at least one always does."""
    genes = list(genome)
    forced = rng.randrange(len(genes))
    out = []
    for index, gene in enumerate(genes):
        weight = gene.weight
        if index == forced or rng.random() < rate:
            weight = WEIGHT.perturb(weight, rng)
        spec = PRIMITIVES[gene.kind].params
        params = tuple(
            (name, spec[name].perturb(value, rng) if rng.random() < rate else value)
            for name, value in gene.params
        )
        out.append(Gene(gene.kind, weight, params))
    return tuple(out)
