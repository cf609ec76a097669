"""Genomes of offline candidates and the reward programs rendered from them.

A genome is a tuple of :class:`Gene` (a primitive's kind, its weight, its parameter values). The
rendered program states its genome on its first line, ``# rewardsmith-genome: {...}``, so a later
round can rebuild and recombine a leader from nothing but the code in the ranked summary
(:func:`genome_from_code`). Rendering is a pure function: the same genome, name, description and
tags always give the same code.

>>> from rewardsmith.extraction import DEFAULT_TAGS
>>> genome = (Gene("strict_format", 1.0, ()),)
>>> code = render_program("r1_strict", genome, "strict format", DEFAULT_TAGS)
>>> genome_from_code(code) == genome
True
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import textwrap
from dataclasses import dataclass

from rewardsmith.extraction import Tags
from rewardsmith.generators.primitives import PRIMITIVES, WEIGHT, CodeTemplate

GENOME_MARKER = "# rewardsmith-genome: "
_GENOME_LINE = re.compile(r"^# rewardsmith-genome: (\{.*\})\s*$", flags=re.MULTILINE)


@dataclass(frozen=True)
class Gene:
    """One weighted component: ``kind`` names a primitive; ``params`` are sorted (name, value)."""

    kind: str
    weight: float
    params: tuple[tuple[str, float], ...]

    def values(self) -> dict[str, float]:
        return dict(self.params)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "weight": self.weight, "params": self.values()}

    @classmethod
    def from_dict(cls, data: dict) -> Gene:
        """Rebuild a gene, clipping values into range; unknown kinds raise ``ValueError``."""
        kind = data.get("kind")
        if kind not in PRIMITIVES:
            raise ValueError(f"unknown primitive {kind!r}")
        spec = PRIMITIVES[kind].params
        given = data.get("params") or {}
        params = {name: p.clip(given.get(name, (p.low + p.high) / 2)) for name, p in spec.items()}
        return cls(kind, WEIGHT.clip(data.get("weight", 1.0)), tuple(sorted(params.items())))


Genome = tuple[Gene, ...]


def random_gene(kind: str, rng: random.Random) -> Gene:
    """A gene of ``kind`` with a weight and parameters drawn from their ranges."""
    spec = PRIMITIVES[kind].params
    params = tuple(sorted((name, p.sample(rng)) for name, p in spec.items()))
    return Gene(kind, WEIGHT.sample(rng), params)


def genome_to_json(genome: Genome) -> str:
    """Canonical one-line JSON of a genome (equal genomes give equal strings)."""
    payload = {"components": [gene.to_dict() for gene in genome]}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def genome_from_code(code: str | None) -> Genome | None:
    """The genome stated in a program's header line, or None when absent or unreadable."""
    if not code:
        return None
    match = _GENOME_LINE.search(code)
    if match is None:
        return None
    try:
        components = json.loads(match.group(1))["components"]
        genome = tuple(Gene.from_dict(item) for item in components)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return genome or None


def describe(genome: Genome) -> str:
    """One line, e.g. ``Weighted sum: 1.2 x correctness(...) + 0.5 x reasoning_steps(target=4)``."""
    parts = []
    for gene in genome:
        args = ", ".join(f"{name}={value:g}" for name, value in gene.params)
        parts.append(f"{gene.weight:g} x {gene.kind}({args})")
    return "Weighted sum: " + " + ".join(parts)


def make_name(round: int, genome: Genome) -> str:
    """``r<round>_<short kinds>_<hash>``: a valid identifier that never shadows a base reward."""
    shorts = "_".join(PRIMITIVES[gene.kind].short for gene in genome)
    digest = hashlib.sha256(genome_to_json(genome).encode("utf-8")).hexdigest()[:6]
    return f"r{round}_{shorts}_{digest}"


_HELPERS = r"""
tag_rs, tag_re, tag_ss, tag_se = @tags

def text_of(completion):
    # Plain string, a message dict, or a conversation whose last message is the reply.
    if isinstance(completion, (list, tuple)):
        completion = completion[-1] if completion else ""
    if isinstance(completion, dict):
        completion = completion.get("content")
    return "" if completion is None else str(completion)

def gold_of(index):
    # The gold string for completion ``index``; the text after '####' when present.
    value = answer
    if isinstance(answer, (list, tuple)):
        value = answer[index] if index < len(answer) else None
    if value is None or isinstance(value, (list, tuple, dict)):
        return None
    return str(value).split("####")[-1].strip()

def reasoning_of(text):
    match = re.search(re.escape(tag_rs) + "(.*?)" + re.escape(tag_re), text, flags=re.DOTALL)
    return match.group(1) if match else ""

def solution_of(text):
    found = re.findall(re.escape(tag_ss) + "(.*?)" + re.escape(tag_se), text, flags=re.DOTALL)
    return found[-1] if found else None

def number_of(text):
    # The last number in ``text`` as a finite float (commas dropped), or None.
    if text is None:
        return None
    found = re.findall(r"-?\d+(?:\.\d+)?|-?\.\d+", str(text).replace(",", ""))
    if not found:
        return None
    value = float(found[-1])
    return value if math.isfinite(value) else None
"""

_LOOP = """
scores = []
for index, completion in enumerate(completions):
    text = text_of(completion)
    gold = gold_of(index)
    total = 0.0
@terms
    scores.append(float(total) if math.isfinite(total) else 0.0)
return scores
"""


def render_program(name: str, genome: Genome, description: str, tags: Tags) -> str:
    """Source code of reward ``name``: the weighted sum of ``genome``'s components.

    The program imports only ``math`` and ``re`` and defines one top-level function; helpers are
    nested in it (so several programs can share a module) and no name starts with an underscore
    (restricted execution forbids those). It is deterministic and returns one finite float per
    completion; ``answer`` may be omitted (correctness terms then give 0 or their penalty).
    """
    helpers = CodeTemplate(_HELPERS).substitute(tags=repr(tags.all()))
    tag_refs = {"rs": "tag_rs", "re": "tag_re", "ss": "tag_ss", "se": "tag_se"}
    blocks, terms = [], []
    for index, gene in enumerate(genome):
        fn = f"c{index}_{gene.kind}"
        blocks.append(PRIMITIVES[gene.kind].render(fn, gene.values(), tag_refs))
        terms.append(f"    total = total + {gene.weight!r} * {fn}(text, gold)")
    loop = CodeTemplate(_LOOP).substitute(terms="\n".join(terms))
    body = "\n\n".join(part.strip("\n") for part in (helpers, *blocks, loop)) + "\n"
    doc = textwrap.fill(description.replace("\\", "/").replace('"', "'"), 92)
    doc = textwrap.indent(doc, "    ").lstrip()
    return (
        f"{GENOME_MARKER}{genome_to_json(genome)}\n"
        f'"""Reward {name}, written by the rewardsmith offline proposer."""\n\n'
        "import math\nimport re\n\n\n"
        f"def {name}(prompts, completions, answer=None, **kwargs):\n"
        f'    """{doc}"""\n' + textwrap.indent(body, "    ", lambda line: bool(line.strip()))
    )
