"""The offline proposer: reward programs assembled from primitives, evolved from round to round.

Round 1 samples genomes (2-4 distinct primitives with random weights and parameters). From round
2 on, each new candidate is, with probability ``explore``, a fresh sample, and otherwise a variation
of the leaders of the ranked summary: parameter/weight mutation, crossover of two leaders, or
adding, dropping or swapping a component. Leaders are read back from their code's genome header
(:func:`~rewardsmith.generators.program.genome_from_code`), so the summary alone is enough.

Reproducible: the random stream is seeded by (seed, round, context fingerprint), so a fresh
generator with the same seed and context returns identical code. One instance never repeats a
name it has already emitted, so asking it again within a round (to replace rejections) gives
new candidates.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from rewardsmith.generators.base import Rejection, RoundContext, SummaryEntry
from rewardsmith.generators.primitives import PRIMITIVES, WEIGHT
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
        leaders = self.leaders(context)
        seen = {genome_to_json(genome) for _, genome in leaders}
        kind_sets: set[frozenset[str]] = set()
        taken = set(context.taken_names) | self._emitted
        out: list[Candidate] = []
        for attempt in range(n * 40):
            if len(out) == n:
                break
            if round <= 1 or not leaders or rng.random() < self.explore:
                genome, parent, origin = self._sample(rng), None, None
            else:
                genome, parent, origin = self._vary(rng, leaders)
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

    def leaders(self, context: RoundContext) -> list[Leader]:
        """The best ``n_leaders`` summary entries whose code carries a readable genome."""
        found = []
        for entry in context.summary:
            genome = genome_from_code(entry.code)
            if genome is not None:
                found.append((entry, genome))
            if len(found) == self.n_leaders:
                break
        return found

    def _candidate(self, name, genome, round, parent, origin, context) -> Candidate:
        description = describe(genome)
        if origin is not None:
            description = f"{description} ({origin})"
        code = render_program(name, genome, description, context.tags)
        return Candidate(name, code, description, round, self.name, parent)

    def _sample(self, rng: random.Random) -> Genome:
        size = rng.randint(self.min_components, self.max_components)
        kinds = rng.sample(sorted(PRIMITIVES), size)
        return tuple(random_gene(kind, rng) for kind in kinds)

    def _vary(self, rng: random.Random, leaders: list[Leader]) -> tuple[Genome, str, str]:
        """A variation of a rank-weighted leader: (genome, parent name, how it was made)."""
        ranks = [len(leaders) - i for i in range(len(leaders))]
        entry, genome = rng.choices(leaders, weights=ranks)[0]
        operators: dict[str, Callable[[], Genome]] = {
            "mutation": lambda: _mutate(genome, rng),
            "addition": lambda: self._add(genome, rng),
            "removal": lambda: self._drop(genome, rng),
            "swap": lambda: self._swap(genome, rng),
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

    def _add(self, genome: Genome, rng: random.Random) -> Genome:
        unused = sorted(set(PRIMITIVES) - {gene.kind for gene in genome})
        if len(genome) >= self.max_components or not unused:
            return _mutate(genome, rng)
        return (*genome, random_gene(rng.choice(unused), rng))

    def _drop(self, genome: Genome, rng: random.Random) -> Genome:
        if len(genome) <= self.min_components:
            return self._swap(genome, rng)
        index = rng.randrange(len(genome))
        return genome[:index] + genome[index + 1 :]

    def _swap(self, genome: Genome, rng: random.Random) -> Genome:
        unused = sorted(set(PRIMITIVES) - {gene.kind for gene in genome})
        index = rng.randrange(len(genome))
        if not unused:
            return _mutate(genome, rng)
        return genome[:index] + (random_gene(rng.choice(unused), rng),) + genome[index + 1 :]

    def _cross(self, first: Genome, second: Genome, rng: random.Random) -> Genome:
        """One gene from each parent, then more from either (one per kind), lightly mutated."""
        child = {gene.kind: gene for gene in (rng.choice(first), rng.choice(second))}
        size = rng.randint(max(len(child), self.min_components), self.max_components)
        for gene in rng.sample(first + second, len(first) + len(second)):
            if len(child) >= size:
                break
            child.setdefault(gene.kind, gene)
        return _mutate(tuple(child.values()), rng, rate=0.2)


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
