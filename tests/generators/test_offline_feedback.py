"""The offline proposer uses the feedback it is given: it drops primitives of candidates reported
constant or without within-group signal, draws primitives of failed or below-baseline candidates
less often, and labels primitives that only re-weight a base reward."""

from __future__ import annotations

from collections import Counter

from rewardsmith.extraction import DEFAULT_TAGS
from rewardsmith.generators import OfflineGenerator, RoundContext, SummaryEntry
from rewardsmith.generators.offline import SETBACK_WEIGHT, lessons_from
from rewardsmith.generators.primitives import PRIMITIVES, reweighting_kinds
from rewardsmith.generators.program import Gene, genome_from_code, random_gene, render_program

EXAMPLES = [{"question": "What is 6 * 7?", "answer": "42"}]


def entry(name: str, kinds: list[str], score: float, **stats) -> SummaryEntry:
    """A summary entry whose code is an offline program made of ``kinds``."""
    import random

    genome = tuple(random_gene(kind, random.Random(f"{name}:{kind}")) for kind in kinds)
    code = render_program(name, genome, name, DEFAULT_TAGS)
    return SummaryEntry(name, name, 1, {"accuracy": score}, code=code, stats=stats or None)


def kinds_of(candidate) -> set[str]:
    return {gene.kind for gene in genome_from_code(candidate.code)}


def proposals(summary: list[SummaryEntry], seeds: range, n: int = 4, **options) -> list:
    ctx = RoundContext(examples=EXAMPLES, summary=summary)
    out = []
    for seed in seeds:
        out += OfflineGenerator(seed=seed, **options).propose(2, n, ctx)
    return out


def test_a_component_reported_constant_is_dropped():
    flat = entry("r1_flat", ["integer_answer", "nothing_after_solution"], 0.6,
                 constant=["r1_flat"], candidates=["r1_flat"])  # fmt: skip
    other = entry("r1_other", ["correctness", "integer_answer", "reasoning_steps"], 0.5,
                  constant=[], candidates=["r1_other"])  # fmt: skip
    made = proposals([flat, other], range(15))
    assert len(made) == 60
    for candidate in made:
        assert not kinds_of(candidate) & {"integer_answer", "nothing_after_solution"}
        assert candidate.parent != "r1_flat"  # a constant reward is never varied
    children = [c for c in made if c.parent == "r1_other"]
    assert any("without integer_answer (no signal)" in c.description for c in children)
    # the same entries without feedback: the dropped primitives are used
    plain = [entry("r1_flat", ["integer_answer", "nothing_after_solution"], 0.6)]
    assert any("integer_answer" in kinds_of(c) for c in proposals(plain, range(15)))


def test_no_within_group_signal_drops_too_and_lessons_say_why():
    silent = entry("r1_silent", ["reasoning_steps", "length_band"], 0.6,
                   no_group_signal=["r1_silent"])  # fmt: skip
    lessons = lessons_from([silent])
    assert lessons.dropped == {"reasoning_steps", "length_band"}
    assert lessons.unusable == {"r1_silent"}
    assert lessons.weight("reasoning_steps") == 0.0 and lessons.weight("correctness") == 1.0
    for candidate in proposals([silent], range(10)):
        assert not kinds_of(candidate) & {"reasoning_steps", "length_band"}


def test_primitives_of_failed_or_below_baseline_candidates_are_chosen_less_often():
    kinds = ["reflection_keywords", "repetition_penalty"]
    bad = [
        entry("r1_below", kinds, 0.4, vs_baseline={"delta": -0.05, "ci": [-0.1, 0.0]}),
        entry("r1_failed", kinds, 0.0, failed=True),
    ]
    lessons = lessons_from(bad)
    assert lessons.setbacks == {"reflection_keywords": 2, "repetition_penalty": 2}
    assert lessons.weight("repetition_penalty") == SETBACK_WEIGHT**2
    neutral = [entry("r1_below", kinds, 0.4), entry("r1_failed", kinds, 0.0)]  # no stats

    def share(summary) -> float:
        made = proposals(summary, range(60), explore=1.0)  # fresh draws only
        counts = Counter(kind for c in made for kind in kinds_of(c))
        return sum(counts[k] for k in kinds) / len(made)

    with_feedback, without = share(bad), share(neutral)
    assert without > 0.35, without  # ~2 x 3/13 per candidate when drawn uniformly
    assert with_feedback < 0.6 * without, (with_feedback, without)


def test_setbacks_steer_additions_and_swaps_too():
    poor_kinds = ["answer_in_reasoning", "equation_check", "numeric_proximity"]

    def new_kinds(**stats) -> int:
        lead = entry("r1_lead", ["correctness", "format_tags"], 0.7)
        poor = entry("r1_poor", poor_kinds, 0.3, **stats)  # ranked second: not a leader
        made = proposals([lead, poor], range(80), explore=0.0, n_leaders=1)
        assert all(c.parent == "r1_lead" for c in made)
        return sum(len(kinds_of(c) & set(poor_kinds)) for c in made)

    assert new_kinds(vs_baseline={"delta": -0.1}) < 0.8 * new_kinds()


def test_failed_candidates_are_never_leaders():
    failed = entry("r1_failed", ["correctness", "strict_format"], 0.0, failed=True)
    made = proposals([failed], range(5))
    assert made and all(c.parent is None for c in made)


def test_reweighting_primitives_are_labelled():
    assert reweighting_kinds() == {
        "strict_format": "match_format_exactly",
        "correctness": "check_answer",
    }
    assert all(PRIMITIVES[k].reweights is None for k in PRIMITIVES if k not in reweighting_kinds())
    made = OfflineGenerator(seed=0).propose(1, 12, RoundContext(examples=EXAMPLES))
    for candidate in made:
        labelled = "only re-weights base reward" in candidate.description
        assert labelled == bool(kinds_of(candidate) & set(reweighting_kinds()))
    strict = [c for c in made if "strict_format" in kinds_of(c)]
    assert strict and all(
        "strict_format only re-weights base reward match_format_exactly" in c.description
        for c in strict
    )
    from rewardsmith.generators.offline import reweighting_note

    only = (Gene("correctness", 1.0, ()),)
    assert reweighting_note(only).endswith("(the whole reward adds no new signal)")


def test_without_stats_round_two_is_unchanged_by_this_feature():
    leaders = [entry("r1_a", ["correctness", "format_tags"], 0.7),
               entry("r1_b", ["reasoning_steps", "strict_format"], 0.6)]  # fmt: skip
    assert lessons_from(leaders).dropped == frozenset() and not lessons_from(leaders).setbacks
    made = proposals(leaders, range(3))
    assert any(c.parent is not None for c in made)
