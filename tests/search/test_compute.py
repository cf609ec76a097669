"""Compute accounting from a hand-filled store: steps per trial (a continued rung counts only
what it added), sums per phase and rung, and the share saved against full screening."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewardsmith.config import parse_config
from rewardsmith.rewards.candidate import Candidate
from rewardsmith.search.compute import (
    compute_lines,
    compute_record,
    compute_summary,
    cuda_devices_used,
)
from rewardsmith.search.loop import with_steps
from rewardsmith.store import RunStore, TrialResult

BUDGET = 27
SMALL = {"name": "compute-test", "grpo": {"max_steps": BUDGET}, "eval": {"limit": 4}}


def candidate(name: str) -> Candidate:
    code = f"def {name}(prompts, completions, answer, **kw):\n    return [0.0] * len(completions)\n"
    return Candidate(name, code, f"about {name}", 1, "offline")


def finish(store: RunStore, trial_id: int, timings: dict | None) -> None:
    """Complete a claimed trial with the timings a worker would record (None: an old run)."""
    store.claim_trial(trial_id)
    curves = {} if timings is None else {"_timings": timings}
    store.complete_trial(trial_id, TrialResult({"accuracy": 0.5, "f1": 2 / 3}, (1, 0), curves))


def rung_trial(store: RunStore, name: str, rung: int, steps: int, continues: int | None) -> int:
    attrs = {"rung": rung, "rung_steps": steps, "budget": BUDGET, "continues": continues}
    return store.enqueue_trial(
        "screen", [name], config=with_steps(store.config(), steps), attrs=attrs
    )


@pytest.fixture
def store(tmp_path: Path):
    with RunStore.create(tmp_path / "run", parse_config(SMALL)) as opened:
        for name in ("a", "b", "c"):
            opened.add_candidate(candidate(name))
        yield opened


def test_halving_steps_per_rung_and_share_saved(store: RunStore) -> None:
    # rung 0: 3 candidates x 9 steps; rung 1: "a" continues its run from 9 to 27 steps.
    first = {n: rung_trial(store, n, 0, 9, None) for n in ("a", "b", "c")}
    for trial_id in first.values():
        finish(store, trial_id, compute_record(9, 10.0, 2.0))
    top = rung_trial(store, "a", 1, BUDGET, first["a"])
    finish(store, top, None)  # no record: the steps are implied (27 - 9), wall time from store
    base = store.enqueue_trial("baseline", [], attrs={"role": "screening"})
    finish(store, base, compute_record(BUDGET, 30.0, 2.0, gpu_devices=2))
    failed = store.enqueue_trial("screen", ["b"], seed=7)
    store.claim_trial(failed)
    store.fail_trial(failed, "boom")

    summary = compute_summary(store)

    assert summary.rungs[0].steps == 27 and summary.rungs[0].trials == 4  # the FAILED one too
    assert summary.rungs[1].steps == 18  # only the steps the continued run added
    assert summary.phases["screening"].steps == 45  # the FAILED trial counts no steps
    assert summary.phases["baseline"].gpu_s == 64.0  # (30 + 2) s x 2 devices
    assert summary.total.steps == 45 + BUDGET
    assert summary.candidates == 3 and summary.full_screening_steps == 3 * BUDGET
    assert summary.saved_share == pytest.approx(1 - 45 / 81)
    assert summary.failed == 1
    assert list(summary.phases) == ["screening", "baseline"]


def test_full_screening_saves_nothing_and_lines_say_so(store: RunStore) -> None:
    for name in ("a", "b"):
        finish(store, store.enqueue_trial("screen", [name]), compute_record(BUDGET, 5.0, 1.0))

    summary = compute_summary(store)
    lines = compute_lines(summary)

    assert summary.saved_share == 0.0 and summary.total.gpu_s is None
    assert lines[0].startswith(f"compute: {2 * BUDGET} GRPO steps in 2 trial(s)")
    assert "GPU" not in lines[0]
    assert lines[1].endswith("0% saved")


def test_summary_survives_a_round_trip_through_plain_data(store: RunStore) -> None:
    from rewardsmith.search.compute import ComputeSummary

    finish(store, store.enqueue_trial("screen", ["a"]), compute_record(BUDGET, 5.0, 1.0))
    summary = compute_summary(store)

    assert ComputeSummary.from_dict(summary.to_dict()) == summary


def test_no_gpu_time_without_cuda() -> None:
    assert cuda_devices_used() == 0  # this machine trains on CPU
    assert compute_record(3, 1.0, 1.0)["gpu_s"] is None


def test_doctests() -> None:
    import doctest

    import rewardsmith.search.compute

    assert doctest.testmod(rewardsmith.search.compute).failed == 0
