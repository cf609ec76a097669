"""The offline proposer: reproducible, diverse, evolving leaders, and producing valid rewards."""

from __future__ import annotations

import math

import pytest

from rewardsmith.extraction import Tags
from rewardsmith.generators import OfflineGenerator, RoundContext, SummaryEntry
from rewardsmith.generators.primitives import PRIMITIVES
from rewardsmith.generators.program import genome_from_code

BASE = frozenset({"match_format_exactly", "match_format_approximately", "check_answer"})
CONTEXT = RoundContext(
    examples=[{"question": "What is 6 * 7?", "answer": "42"}], taken_names=BASE | {"r1_old"}
)
CORRECT = "<thinking>\nFirst, 6 * 7 = 42.\nCheck: 42 / 7 = 6.\n</thinking>\n<solution>42</solution>"
PROBES = [
    CORRECT,
    [{"role": "assistant", "content": CORRECT}],
    "<thinking>\n6 + 7 = 13\n</thinking>\n<solution>13</solution>",
    "",
    "The answer is 42",
    "step " * 3000,
    "<solution>\u00e9\u00e8 \U0001f600 1,234.5</solution> trailing",
]


def run(code: str, name: str, completions, answer=None) -> list[float]:
    """Execute one of our own generated programs in-process (trusted test code)."""
    namespace: dict = {}
    exec(compile(code, name, "exec"), namespace)
    return namespace[name](prompts=None, completions=completions, answer=answer)


def leaders_summary(candidates, k=3) -> list[SummaryEntry]:
    return [
        SummaryEntry(c.name, c.description, c.round, {"f1": 0.7 - i / 10}, code=c.code)
        for i, c in enumerate(candidates[:k])
    ]


def test_same_seed_and_context_give_identical_code():
    first = OfflineGenerator(seed=3).propose(1, 8, CONTEXT)
    second = OfflineGenerator(seed=3).propose(1, 8, CONTEXT)
    assert [c.code for c in first] == [c.code for c in second]
    other = OfflineGenerator(seed=4).propose(1, 8, CONTEXT)
    assert {c.code_hash for c in first}.isdisjoint({c.code_hash for c in other})


def test_a_round_is_diverse_and_well_named():
    candidates = OfflineGenerator(seed=0).propose(1, 8, CONTEXT)
    assert len(candidates) == 8
    assert len({c.name for c in candidates}) == 8
    kind_sets = {frozenset(g.kind for g in genome_from_code(c.code)) for c in candidates}
    assert len(kind_sets) == 8  # no two candidates combine the same primitives
    used = set().union(*kind_sets)
    assert len(used) >= 8  # a round draws on most of the library
    for c in candidates:
        assert c.name.isidentifier() and c.name.startswith("r1_")
        assert c.name not in CONTEXT.taken_names
        assert (c.round, c.generator, c.parent) == (1, "offline", None)
        assert c.description.startswith("Weighted sum: ")


def test_programs_return_one_finite_float_per_completion():
    candidates = OfflineGenerator(seed=1).propose(1, 12, CONTEXT)
    for c in candidates:
        scores = run(c.code, c.name, PROBES, answer=["42"] * len(PROBES))
        assert len(scores) == len(PROBES), c.name
        assert all(isinstance(s, float) and math.isfinite(s) for s in scores), c.name
        assert run(c.code, c.name, PROBES) == run(c.code, c.name, PROBES)  # deterministic
        assert len(run(c.code, c.name, PROBES[:2])) == 2  # no answer column at all


def test_every_primitive_renders_and_scores_sensibly():
    import random

    from rewardsmith.generators.program import Gene, random_gene, render_program

    for kind in PRIMITIVES:
        gene = random_gene(kind, random.Random(kind))
        genome = (Gene(kind, 1.0, gene.params),)
        code = render_program(f"probe_{kind}", genome, kind, CONTEXT.tags)
        scores = run(code, f"probe_{kind}", PROBES, answer=["42"] * len(PROBES))
        assert all(-5.0 <= s <= 5.0 for s in scores), kind
    params = (
        ("missing_penalty", 0.5),
        ("partial", 0.25),
        ("tolerance", 0.05),
        ("wrong_penalty", 1),
    )
    correctness = (Gene("correctness", 1.0, params),)
    code = render_program("probe_c", correctness, "c", CONTEXT.tags)
    right, wrong, missing = run(code, "probe_c", [CORRECT, PROBES[2], ""], answer=["#### 42"] * 3)
    assert (right, wrong, missing) == (1.0, -1.0, -0.5)


def test_custom_tags_are_used_by_the_programs():
    tags = Tags("<reasoning>", "</reasoning>", "<answer>", "</answer>")
    ctx = RoundContext(examples=CONTEXT.examples, tags=tags)
    from rewardsmith.generators.program import Gene, render_program

    genome = (Gene("strict_format", 1.0, ()),)
    code = render_program("tagged", genome, "strict", tags)
    assert run(code, "tagged", ["<reasoning>x</reasoning><answer>1</answer>", CORRECT]) == [
        1.0,
        0.0,
    ]
    assert all("<reasoning>" in c.code for c in OfflineGenerator().propose(1, 3, ctx))


def test_round_two_recombines_the_leaders_from_the_summary_alone():
    round1 = OfflineGenerator(seed=5).propose(1, 8, CONTEXT)
    summary = leaders_summary(round1)
    leader_names = {entry.name for entry in summary}
    ctx = RoundContext(examples=CONTEXT.examples, summary=summary, taken_names=leader_names)
    round2 = OfflineGenerator(seed=5).propose(2, 10, ctx)  # a fresh instance: no hidden state
    assert len(round2) == 10
    derived = [c for c in round2 if c.parent is not None]
    assert len(derived) >= 6  # most are variations; the rest explore
    assert {c.parent for c in derived} <= leader_names
    leader_kinds = {e.name: {g.kind for g in genome_from_code(e.code)} for e in summary}
    for c in derived:
        kinds = {g.kind for g in genome_from_code(c.code)}
        assert kinds & leader_kinds[c.parent], c.description  # shares components with its parent
        assert c.name.startswith("r2_") and c.code_hash not in {x.code_hash for x in round1}
    origins = " ".join(c.description for c in derived)
    assert "mutation of" in origins
    assert any(" and r1_" in c.description for c in derived if "crossover" in c.description)
    assert OfflineGenerator(seed=5).propose(2, 10, ctx) == round2  # reproducible


def test_mutation_moves_parameters_but_keeps_them_in_range():
    round1 = OfflineGenerator(seed=2).propose(1, 4, CONTEXT)
    ctx = RoundContext(examples=CONTEXT.examples, summary=leaders_summary(round1, k=1))
    children = OfflineGenerator(seed=2, explore=0.0).propose(2, 12, ctx)
    parent = genome_from_code(round1[0].code)
    assert all(c.parent == round1[0].name for c in children)
    assert all(genome_from_code(c.code) != parent for c in children)
    for c in children:
        for gene in genome_from_code(c.code):
            for name, value in gene.params:
                spec = PRIMITIVES[gene.kind].params[name]
                assert spec.low <= value <= spec.high


def test_summary_without_genomes_falls_back_to_sampling():
    foreign = [SummaryEntry("llm_reward", "from an LLM", 1, {"f1": 0.9}, code="def x(): pass")]
    ctx = RoundContext(examples=CONTEXT.examples, summary=foreign)
    candidates = OfflineGenerator().propose(2, 4, ctx)
    assert len(candidates) == 4 and all(c.parent is None for c in candidates)


def test_asking_again_in_a_round_gives_new_names():
    gen = OfflineGenerator(seed=9)
    first = gen.propose(1, 5, CONTEXT)
    again = gen.propose(1, 5, CONTEXT)
    assert {c.name for c in first}.isdisjoint({c.name for c in again})


def test_a_shortfall_is_recorded_not_looped_on(monkeypatch):
    gen = OfflineGenerator()
    only = OfflineGenerator().propose(1, 1, CONTEXT)[0]
    monkeypatch.setattr(gen, "_sample", lambda rng, lessons=None: genome_from_code(only.code))
    candidates = gen.propose(1, 3, CONTEXT)  # every draw is the same genome
    assert [c.code for c in candidates] == [only.code]
    [rejection] = gen.rejections
    assert (
        rejection.stage == "generate" and "only 1 distinct candidates of the 3" in rejection.reason
    )


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="min_components"):
        OfflineGenerator(min_components=3, max_components=2)


def test_offline_candidates_pass_validation():
    validation = pytest.importorskip("rewardsmith.rewards.validation")
    from rewardsmith.sandbox.pool import SandboxPool

    round1 = OfflineGenerator(seed=0).propose(1, 8, CONTEXT)
    ctx = RoundContext(examples=CONTEXT.examples, summary=leaders_summary(round1))
    round2 = OfflineGenerator(seed=0).propose(2, 8, ctx)
    taken = set(BASE)
    with SandboxPool() as pool:
        verdicts = []
        for c in round1 + round2:
            verdict = validation.validate_reward_code(
                c.code, name=c.name, taken_names=taken, pool=pool
            )
            taken.add(c.name)
            verdicts.append(verdict)
    accepted = [v for v in verdicts if v.accepted]
    assert len(accepted) == 16, [v.reason for v in verdicts if not v.accepted]
    # Flags are allowed (a length reward may prefer long garbage) but must stay the exception.
    assert sum(bool(v.flags) for v in verdicts) <= 4
