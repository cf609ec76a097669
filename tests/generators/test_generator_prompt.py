"""The generator prompt: what it shows, that it is reproducible, and that it respects its bound."""

from __future__ import annotations

import pytest

from rewardsmith.extraction import Tags
from rewardsmith.generators import Rejection, RoundContext, SummaryEntry
from rewardsmith.generators.prompt import ALLOWED_IMPORTS, SIGNATURE, build_prompt

EXAMPLES = [{"question": f"Question number {i}: what is {i} + {i}?", "answer": str(2 * i)}
            for i in range(60)]  # fmt: skip


def entry(rank: int, *, reflection: str = "", code_lines: int = 3) -> SummaryEntry:
    code = f"def leader_{rank}(prompts, completions, answer, **kwargs):\n" + "".join(
        f"    x{i} = {i}  # line {i}\n" for i in range(code_lines)
    )
    return SummaryEntry(
        name=f"leader_{rank}",
        description=f"description of leader {rank}",
        round=1 + rank % 2,
        metrics={"f1": 0.8 - rank / 100, "accuracy": 0.6 - rank / 100},
        reflection=reflection or f"component curve of leader {rank}: 0.1 0.2 0.3 (max 0.3)",
        code=code,
    )


def context(**kw) -> RoundContext:
    return RoundContext(examples=EXAMPLES, **kw)


def test_first_round_prompt_holds_every_section():
    prompt = build_prompt(context(), 10, round=1)
    text = prompt.user
    assert sum(line.startswith(("1", "2", "3", "4", "5", "6", "7", "8", "9")) and ". Q: " in line
               for line in text.splitlines()) == 20  # fmt: skip
    assert SIGNATURE in text
    assert "def solution_is_number_reward(" in text  # the example reward
    assert all(module in text for module in ALLOWED_IMPORTS)
    assert "one value per completion" in text and "Deterministic" in text
    assert "first round" in text
    assert "JSON array of 10 objects" in text and '"description"' in text
    assert "<thinking>" in text and "<solution>" in text
    assert "reward functions" in prompt.system


def test_examples_are_sampled_reproducibly_per_round():
    first = build_prompt(context(), 5, round=2, seed=7)
    assert build_prompt(context(), 5, round=2, seed=7) == first
    assert build_prompt(context(), 5, round=3, seed=7).user != first.user


def test_custom_tags_appear_in_the_format():
    tags = Tags("<reasoning>", "</reasoning>", "<answer>", "</answer>")
    text = build_prompt(context(tags=tags), 3, round=1).user
    assert "<reasoning>" in text and "</answer>" in text and "<thinking>" not in text


def test_ranked_summary_shows_metrics_reflection_and_code_of_the_top_three():
    ctx = context(summary=[entry(rank) for rank in range(1, 6)], taken_names={"old_reward"})
    text = build_prompt(ctx, 4, round=2).user
    positions = [text.index(f"{rank}. leader_{rank} (round") for rank in range(1, 6)]
    assert positions == sorted(positions)  # best first
    assert "f1=0.79, accuracy=0.59" in text
    assert "component curve of leader 5" in text
    assert all(f"def leader_{rank}(" in text for rank in (1, 2, 3))
    assert "def leader_4(" not in text and "def leader_5(" not in text
    assert "Tips:" in text and "rescale" in text
    assert "old_reward" in text  # names not to reuse


def test_structured_stats_are_shown_when_there_is_no_reflection_text():
    stats_entry = SummaryEntry("stat_reward", "d", 1, {"f1": 0.5}, stats={"format_rate": 0.25})
    text = build_prompt(context(summary=[stats_entry]), 2, round=2).user
    assert '"format_rate": 0.25' in text


def test_rejection_reasons_are_fed_back():
    rejections = [Rejection(1, "llm/x", "probe", f"returned 3 values for 4 completions #{i}",
                            name=f"bad_{i}") for i in range(30)]  # fmt: skip
    text = build_prompt(context(rejections=rejections), 2, round=2).user
    assert "bad_29, round 1, probe: returned 3 values" in text
    assert "bad_0," not in text  # only the most recent ones


def test_size_bound_sheds_detail_but_keeps_the_leader():
    huge = [entry(rank, reflection="curve " * 2000, code_lines=400) for rank in range(1, 51)]
    rejections = [Rejection(1, "g", "parse", "x" * 500) for _ in range(50)]
    ctx = context(summary=huge, rejections=rejections)
    full = build_prompt(ctx, 8, round=3, max_chars=10**7)
    bounded = build_prompt(ctx, 8, round=3, max_chars=12_000)
    assert len(full) > 100_000
    assert len(bounded) <= 12_000
    assert "1. leader_1 (round" in bounded.user and SIGNATURE in bounded.user
    assert "JSON array of 8 objects" in bounded.user
    assert "top " in bounded.user  # says that lower-ranked entries were left out


def test_long_questions_are_clipped():
    long = [{"question": "word " * 1000, "answer": "1"}]
    text = build_prompt(RoundContext(examples=long), 1, round=1).user
    assert "..." in text and len(text) < 8000


def test_too_small_a_bound_is_an_error():
    with pytest.raises(ValueError, match="too small"):
        build_prompt(context(), 3, round=1, max_chars=500)


def test_context_is_bounded_on_construction():
    ctx = RoundContext(
        examples=EXAMPLES * 10,
        summary=[entry(rank) for rank in range(100)],
        rejections=[Rejection(1, "g", "parse", str(i)) for i in range(100)],
    )
    assert len(ctx.examples) == 200 and len(ctx.summary) == 50
    assert [r.reason for r in ctx.rejections][-1] == "99" and len(ctx.rejections) == 50
    with pytest.raises(ValueError, match="question"):
        RoundContext(examples=[{"answer": "1"}])
