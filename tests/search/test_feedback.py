"""Feedback: tips only about what the generator wrote, and each candidate's paired difference
from the base-rewards-only baseline, in the summary and in the prompt text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rewardsmith.config import parse_config
from rewardsmith.generators import RoundContext
from rewardsmith.generators.prompt import build_prompt
from rewardsmith.rewards import BASE_REWARD_NAMES
from rewardsmith.rewards.candidate import Candidate
from rewardsmith.search.feedback import NO_BASELINE, build_summary, reflection_text
from rewardsmith.stats import paired_difference
from rewardsmith.store import RewardMonitorRecord, RunStore, TrialResult

SMALL = {
    "name": "feedback-test",
    "grpo": {"max_steps": 4, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1},
    "eval": {"limit": 20},
}
BASELINE = (1, 0) * 10  # 10/20 right
BETTER = (1, 1) * 7 + (1, 0) * 3  # 17/20 right; never wrong where the baseline was right
WORSE = (1, 0) * 4 + (0, 0) * 6  # 4/20 right


def steps(*values: float) -> list[list[float]]:
    return [[i + 1, v] for i, v in enumerate(values)]


def curves(name: str, spread: list[float], *, base_spread: float = 1.0) -> dict:
    """TRL-shaped curves: base rewards whose batch std is ``base_spread`` (zero allowed) and a
    candidate whose std follows ``spread``."""
    out = {"reward": steps(1.0, 2.0, 3.0), "frac_zero_std": steps(0.5, 0.5, 0.5)}
    for base in BASE_REWARD_NAMES:
        out[f"{base}/mean"] = steps(1.0, 1.0, 1.0)
        out[f"{base}/std"] = steps(*[base_spread] * 3)
    out[f"{name}/mean"] = steps(0.5, 0.6, 0.7)
    out[f"{name}/std"] = steps(*spread)
    return out


def candidate(name: str) -> Candidate:
    code = f"def {name}(prompts, completions, answer, **kw):\n    return [0.0] * len(completions)\n"
    return Candidate(name, code, f"about {name}", 1, "offline")


def metrics(correctness: tuple[int, ...]) -> dict:
    acc = sum(correctness) / len(correctness)
    return {"f1": 2 * acc / (1 + acc), "accuracy": acc, "extraction_rate": 1.0, "n": 20}


def complete(store: RunStore, kind: str, names, correctness, curves_=None, *, monitors=(), **kw):
    trial_id = store.enqueue_trial(kind, names, **kw)
    store.claim_trial(trial_id)
    result = TrialResult(metrics(correctness), correctness, curves_ or {})
    store.complete_trial(trial_id, result, monitors=monitors)
    return trial_id


@pytest.fixture
def store(tmp_path: Path):
    with RunStore.create(tmp_path / "run", parse_config(SMALL)) as opened:
        for name in ("good_reward", "flat_reward", "loud_reward", "broken_reward"):
            opened.add_candidate(candidate(name))
        yield opened


def tip_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("tip:")]


def test_tips_are_only_about_the_candidate_never_the_base_rewards(store: RunStore) -> None:
    # The base rewards never vary here (std 0): a tip to rescale them would be useless.
    complete(
        store, "screen", ["flat_reward"], WORSE, curves("flat_reward", [0, 0, 0], base_spread=0)
    )
    complete(store, "screen", ["loud_reward"], BETTER, curves("loud_reward", [9, 8, 9]))
    loud, flat = build_summary(store)
    for entry in (loud, flat):
        tips = tip_lines(entry.reflection)
        assert tips, entry.reflection
        assert all(entry.name in tip or "accuracy" in tip for tip in tips), tips
        for base in BASE_REWARD_NAMES:
            assert base not in " ".join(tips)
            assert f"component {base} (base, fixed)" in entry.reflection
    assert any("same score at every step (std 0)" in t for t in tip_lines(flat.reflection))
    assert flat.stats["constant"] == ["flat_reward"] and loud.stats["constant"] == []
    assert any("dominates the advantage" in t for t in tip_lines(loud.reflection))
    assert "component loud_reward (yours)" in loud.reflection


def test_each_candidate_shows_its_paired_difference_from_the_baseline(store: RunStore) -> None:
    base_id = complete(store, "baseline", [], BASELINE)
    complete(store, "screen", ["good_reward"], BETTER, curves("good_reward", [1, 1, 1]))
    complete(store, "screen", ["flat_reward"], WORSE, curves("flat_reward", [1, 1, 1]))
    good, worse = build_summary(store)
    expected = paired_difference(BASELINE, BETTER)
    line = next(x for x in good.reflection.splitlines() if x.startswith("vs baseline:"))
    assert line.startswith(
        f"vs baseline: delta acc +0.35 [CI {expected.ci_low:+.2f}, {expected.ci_high:+.2f}], "
        f"McNemar p={expected.test.pvalue:.2g} (baseline acc 0.500; 7 questions only this reward"
    )
    assert good.reflection.splitlines()[0] == line  # no monitor lines: it comes first
    assert good.stats["vs_baseline"]["baseline_trial"] == base_id
    assert good.stats["vs_baseline"]["delta"] == pytest.approx(0.35)
    assert any("beat the base rewards" in t for t in tip_lines(good.reflection))
    assert "vs baseline: delta acc -0.30" in worse.reflection
    assert any("worse than the base rewards alone" in t for t in tip_lines(worse.reflection))
    assert worse.stats["vs_baseline"]["delta"] == pytest.approx(-0.30)


def test_the_prompt_text_carries_the_baseline_deltas_and_tips(store: RunStore) -> None:
    complete(store, "baseline", [], BASELINE)
    complete(store, "screen", ["good_reward"], BETTER, curves("good_reward", [0, 0, 0]))
    summary = tuple(build_summary(store))
    prompt = build_prompt(RoundContext(summary=summary), 2, round=2).user
    assert re.search(
        r"vs baseline: delta acc \+0\.35 \[CI \+0\.\d\d, \+0\.\d\d\], McNemar p=", prompt
    )
    assert "tip: good_reward gave every completion in a batch the same score" in prompt


def test_without_a_baseline_one_line_says_so(store: RunStore) -> None:
    complete(store, "screen", ["good_reward"], BETTER, curves("good_reward", [1, 1, 1]))
    (entry,) = build_summary(store)
    assert NO_BASELINE in entry.reflection.splitlines()
    assert entry.stats["vs_baseline"] is None


def test_a_baseline_on_other_questions_is_not_compared(store: RunStore) -> None:
    other = parse_config({**SMALL, "eval": {"limit": 30}})
    complete(store, "baseline", [], BASELINE + (1,) * 10, config=other)
    complete(store, "screen", ["good_reward"], BETTER, curves("good_reward", [1, 1, 1]))
    (entry,) = build_summary(store)
    assert NO_BASELINE in entry.reflection


def test_the_baseline_trained_like_the_candidate_is_preferred(store: RunStore) -> None:
    longer = parse_config({**SMALL, "grpo": {**SMALL["grpo"], "max_steps": 8}})
    complete(store, "baseline", [], (1,) * 20, config=longer)  # finalist budget: not comparable
    same = complete(store, "baseline", [], BASELINE)
    complete(store, "screen", ["good_reward"], BETTER, curves("good_reward", [1, 1, 1]))
    (entry,) = build_summary(store)
    assert entry.stats["vs_baseline"]["baseline_trial"] == same
    assert "baseline trained" not in entry.reflection


def test_a_baseline_trained_longer_is_compared_and_says_so(store: RunStore) -> None:
    longer = parse_config({**SMALL, "grpo": {**SMALL["grpo"], "max_steps": 8}})
    complete(store, "baseline", [], BASELINE, config=longer)  # an older run's finalist baseline
    complete(store, "screen", ["good_reward"], BETTER, curves("good_reward", [1, 1, 1]))
    (entry,) = build_summary(store)
    assert "vs baseline: delta acc +0.35" in entry.reflection
    assert "baseline trained 8 steps, this reward 4" in entry.reflection


def test_no_within_group_signal_is_a_tip_and_a_structured_fact(store: RunStore) -> None:
    monitor = RewardMonitorRecord("good_reward", {"calls": 12, "signal_calls": 0})
    complete(store, "screen", ["good_reward"], BETTER, curves("good_reward", [1, 1, 1]),
             monitors=[monitor])  # fmt: skip
    (entry,) = build_summary(store)
    assert any("never differed between completions of the same prompt (0/12" in t
               for t in tip_lines(entry.reflection))  # fmt: skip
    assert entry.stats["no_group_signal"] == ["good_reward"]


def test_failed_trials_carry_their_code_and_a_structured_flag(store: RunStore) -> None:
    trial_id = store.enqueue_trial("screen", ["broken_reward"])
    store.fail_trial(trial_id, "reward broken_reward failed 5/5 calls")
    (entry,) = build_summary(store)
    assert entry.reflection.startswith("training FAILED: reward broken_reward failed")
    assert entry.stats["failed"] is True and entry.code == candidate("broken_reward").code


def test_tips_fade_and_negligible_scale() -> None:
    name = "quiet_reward"
    text, _ = reflection_text({"accuracy": 0.5}, curves(name, [0.01] * 3), candidates=[name])
    assert any("only 0.0033x as much as the base rewards" in t for t in tip_lines(text))
    faded = curves(name, [1, 1, 1, 1, 1, 1, 0, 0])
    text, stats = reflection_text({"accuracy": 0.5}, faded, candidates=[name])
    assert any("stopped varying late in training" in t for t in tip_lines(text))
    assert stats["constant"] == []
    text, _ = reflection_text({"accuracy": 0.5}, curves(name, [1, 1, 1], base_spread=0.0))
    assert tip_lines(text) == []  # no candidate named: no tips about anything


def test_the_offline_generator_reads_the_summary_it_is_given(tmp_path: Path) -> None:
    from rewardsmith.generators import OfflineGenerator
    from rewardsmith.generators.program import genome_from_code

    def kinds(code: str) -> set[str]:
        return {gene.kind for gene in genome_from_code(code)}

    first = OfflineGenerator(seed=1).propose(1, 4, RoundContext())
    flat, below = first[0], first[1]
    with RunStore.create(tmp_path / "run", parse_config(SMALL)) as store:
        for c in first:
            store.add_candidate(c)
        complete(store, "baseline", [], BASELINE)
        complete(store, "screen", [flat.name], BETTER, curves(flat.name, [0, 0, 0]))
        complete(store, "screen", [below.name], WORSE, curves(below.name, [1, 1, 1]))
        summary = tuple(build_summary(store))
    assert summary[0].name == flat.name and summary[0].stats["constant"] == [flat.name]
    made = OfflineGenerator(seed=1).propose(2, 8, RoundContext(summary=summary))
    assert made and all(not kinds(c.code) & kinds(flat.code) for c in made)
    assert all(c.parent != flat.name for c in made)


def test_the_paired_difference_is_agresti_min_and_covers_like_a_paired_bootstrap() -> None:
    import numpy as np

    a = [1] * 30 + [0] * 50 + [1] * 8 + [0] * 12  # baseline: 38/100
    b = [1] * 30 + [0] * 50 + [0] * 8 + [1] * 12  # candidate: 42/100; b=8, c=12
    d = paired_difference(a, b)
    centre, var = (12.5 - 8.5) / 102, ((8.5 + 12.5) / 102 - ((12.5 - 8.5) / 102) ** 2) / 102
    assert d.delta == pytest.approx(0.04)
    assert (d.ci_low, d.ci_high) == pytest.approx(
        (centre - 1.96 * var**0.5, centre + 1.96 * var**0.5), abs=1e-3
    )
    diffs = np.array(b) - np.array(a)
    rng = np.random.default_rng(0)
    boot = [diffs[rng.integers(0, 100, 100)].mean() for _ in range(4000)]
    low, high = np.percentile(boot, [2.5, 97.5])
    assert abs(d.ci_low - low) < 0.02 and abs(d.ci_high - high) < 0.02
    assert (d.test.b, d.test.c) == (8, 12)


def test_a_difference_within_noise_is_called_so() -> None:
    name = "near_reward"
    within = ("vs baseline: ...", {"delta": -0.03, "ci": [-0.14, 0.07]})
    text, stats = reflection_text({"accuracy": 0.5}, curves(name, [1] * 3), candidates=[name],
                                  baseline=within)  # fmt: skip
    assert any("below the base rewards alone, within noise" in t for t in tip_lines(text))
    assert text.splitlines()[0] == "vs baseline: ..." and stats["vs_baseline"]["delta"] == -0.03


def test_leaders_come_from_the_noise_aware_ranking_one_entry_per_candidate(store) -> None:
    from rewardsmith.search.loop import with_steps
    from rewardsmith.search.ranking import rank_candidates

    complete(store, "baseline", [], BASELINE)
    cfg = store.config()

    def rung(name, r, correctness, *, seed=None, continues=None):
        attrs = {"rung": r, "rung_steps": 2 * (r + 1), "budget": 4, "continues": continues}
        config = with_steps(cfg, 2 * (r + 1))
        return complete(store, "screen", [name], correctness, curves(name, [1, 1, 1]),
                        config=config, attrs=attrs, seed=seed)  # fmt: skip

    first = rung("good_reward", 0, BASELINE)
    rung("loud_reward", 0, BETTER)  # best at rung 0, but halving stopped it there
    rung("good_reward", 1, BETTER, continues=first)
    rung("good_reward", 1, BETTER, seed=99)  # a second seed at the top rung

    summary = build_summary(store)

    assert [e.name for e in summary] == [r.name for r in rank_candidates(store)]
    assert [e.name for e in summary] == ["good_reward", "loud_reward"]  # the higher rung first
    good, loud = summary
    assert good.stats["ranking"]["seeds"] == 2 and good.stats["ranking"]["rung"] == 1
    assert "over 2 seeds at this rung: mean acc 0.850, delta acc +0.35" in good.reflection
    assert loud.reflection.splitlines()[0] == (
        "screened with successive halving: reached rung 0, trained 2 of the 4-step budget"
    )
    assert "screened with" not in good.reflection  # its run reached the full budget
