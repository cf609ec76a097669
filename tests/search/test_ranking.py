"""The noise-aware ranking, from a hand-filled store: paired with the screening baseline on the
same questions, the lower confidence bound decides (not the raw accuracy), seeds are averaged,
a higher rung comes first, failures last, ties break deterministically."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewardsmith.config import parse_config
from rewardsmith.metrics import score_outcomes
from rewardsmith.rewards.candidate import Candidate
from rewardsmith.search.loop import with_steps
from rewardsmith.search.ranking import paired_stats, rank_candidates
from rewardsmith.stats import paired_difference
from rewardsmith.store import RunStore, TrialResult

N = 40
BASE = (1,) * 20 + (0,) * 20  # 0.50
STEADY = (1,) * 23 + (0,) * 17  # 0.575: 3 more right, never worse than the baseline
NOISY = (0,) * 8 + (1,) * 12 + (1,) * 14 + (0,) * 6  # 0.65: 14 more right, but 8 lost
POOR = (1,) * 16 + (0,) * 24  # 0.40


@pytest.fixture
def store(tmp_path: Path):
    cfg = parse_config({"grpo": {"max_steps": 9}, "eval": {"limit": N}})
    with RunStore.create(tmp_path / "run", cfg) as opened:
        for name in ("steady", "noisy", "poor", "twin", "broken"):
            code = f"def {name}(prompts, completions, answer, **kw):\n    return [0.0]\n"
            opened.add_candidate(Candidate(name, code, name, 1, "test"))
        yield opened


def finish(store: RunStore, trial_id: int, correct: tuple[int, ...] | None) -> int:
    store.claim_trial(trial_id)
    if correct is None:
        store.fail_trial(trial_id, "RuntimeError: crashed")
        return trial_id
    metrics = score_outcomes([True] * len(correct), [bool(c) for c in correct]).to_dict()
    store.complete_trial(trial_id, TrialResult(metrics, correct))
    return trial_id


def screen(store: RunStore, name: str, correct, *, rung: int = 0, seed: int | None = None) -> int:
    """A screen trial (full screening, or a halving rung at the 9-step budget)."""
    if not rung:
        return finish(store, store.enqueue_trial("screen", [name], seed=seed), correct)
    attrs = {"rung": rung, "rung_steps": 9, "budget": 9, "continues": None}
    trial_id = store.enqueue_trial("screen", [name], seed=seed, attrs=attrs)
    return finish(store, trial_id, correct)


def test_the_lower_bound_ranks_not_the_accuracy(store: RunStore) -> None:
    finish(store, store.enqueue_trial("baseline", [], attrs={"role": "screening"}), BASE)
    ids = {n: screen(store, n, c) for n, c in [("noisy", NOISY), ("steady", STEADY)]}
    screen(store, "poor", POOR)
    screen(store, "broken", None)
    ranked = rank_candidates(store)
    # noisy is more accurate, but its gain is less certain than steady's
    assert [r.name for r in ranked] == ["steady", "noisy", "poor", "broken"]
    steady = ranked[0]
    expected = paired_difference(BASE, STEADY)
    assert steady.delta == pytest.approx(0.075) == pytest.approx(expected.delta)
    assert steady.ci == pytest.approx((expected.ci_low, expected.ci_high))
    assert steady.score == pytest.approx(expected.ci_low)
    assert steady.p_mcnemar == pytest.approx(expected.test.pvalue)
    assert (steady.accuracy, steady.seeds, steady.trial_ids) == (0.575, 1, (ids["steady"],))
    broken = ranked[-1]
    assert broken.failed and broken.delta is None and broken.score == float("-inf")


def test_seeds_are_averaged_and_a_higher_rung_comes_first(store: RunStore) -> None:
    finish(store, store.enqueue_trial("baseline", [], attrs={"role": "screening"}), BASE)
    screen(store, "noisy", NOISY)  # rung 0 only, however good
    config = with_steps(store.config(), 3)
    a = finish(store, store.enqueue_trial("screen", ["poor"], config=config), STEADY)
    ids = (screen(store, "poor", POOR, rung=1), screen(store, "poor", STEADY, rung=1, seed=7))
    ranked = rank_candidates(store)
    assert [(r.name, r.rung) for r in ranked] == [("poor", 1), ("noisy", 0)]
    poor = ranked[0]
    assert poor.seeds == 2 and poor.trial_ids == ids and a not in poor.trial_ids
    assert poor.accuracy == pytest.approx((0.40 + 0.575) / 2)
    assert poor.delta == pytest.approx((-0.10 + 0.075) / 2)
    assert poor.delta == pytest.approx(paired_stats(BASE, [POOR, STEADY])[0])
    # ranked on one rung only: the rung-0 standings, poor's rung-0 run (STEADY) included
    assert [r.name for r in rank_candidates(store, rung=0)] == ["poor", "noisy"]
    assert [r.name for r in rank_candidates(store, rung=1)] == ["poor"]
    assert [r.name for r in rank_candidates(store, names=["noisy"])] == ["noisy"]


def test_paired_stats_over_seeds() -> None:
    delta, (low, high), p = paired_stats(BASE, [STEADY, NOISY])
    assert delta == pytest.approx((0.075 + 0.15) / 2)
    assert low < delta < high and p == paired_difference(BASE, STEADY).test.pvalue
    with pytest.raises(ValueError, match="baseline's questions"):
        paired_stats(BASE, [STEADY, STEADY[:-1]])


def test_without_a_baseline_the_rank_metric_decides_and_ties_break_on_name(
    store: RunStore,
) -> None:
    screen(store, "twin", STEADY)
    screen(store, "steady", STEADY)
    screen(store, "noisy", NOISY)
    ranked = rank_candidates(store)
    assert [r.name for r in ranked] == ["noisy", "steady", "twin"]
    assert all(r.delta is None and r.ci is None for r in ranked)
    f1 = 2 * 0.65 / 1.65
    assert ranked[0].score == pytest.approx(f1)  # search.rank_metric is f1


def test_rank_by_metric_keeps_the_paired_figures(tmp_path: Path) -> None:
    cfg = parse_config({"search": {"screening": {"rank_by": "metric"}}, "eval": {"limit": N}})
    assert cfg.config_hash() != parse_config({"eval": {"limit": N}}).config_hash()
    with RunStore.create(tmp_path / "run", cfg) as store:
        for name in ("steady", "noisy"):
            code = f"def {name}(prompts, completions, answer, **kw):\n    return [0.0]\n"
            store.add_candidate(Candidate(name, code, name, 1, "test"))
        finish(store, store.enqueue_trial("baseline", [], attrs={"role": "screening"}), BASE)
        screen(store, "steady", STEADY)
        screen(store, "noisy", NOISY)
        ranked = rank_candidates(store)
        assert [r.name for r in ranked] == ["noisy", "steady"]  # F1, as the paper ranks
        assert ranked[0].delta == pytest.approx(0.15) and ranked[0].ci is not None
