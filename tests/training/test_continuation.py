"""Continuing a run (successive halving's rungs): 2 steps, then 2 more from the saved checkpoint,
train like one uninterrupted 4-step run: same step count, same learning-rate schedule, the
same LoRA weights; and a continued trial finds its predecessor's checkpoint through the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardsmith.config import grpo_kwargs, lora_kwargs
from rewardsmith.rewards import BASE_REWARD_NAMES
from rewardsmith.search.loop import with_steps
from rewardsmith.store import RunStore, TrialResult
from rewardsmith.tasks import get_task
from rewardsmith.training.continuation import RESUME_DIR, plan
from rewardsmith.training.trial import RewardSpec, run_trial
from tests.training.conftest import tiny_config

BUDGET = 4


def _run(cfg, out: Path, *, stop_at: int | None, resume_from: str | None = None):
    steps: list[tuple[int, int]] = []
    outcome = run_trial(
        model_spec="embedded:tiny",
        task=get_task(cfg.task.name, **cfg.task.task_kwargs()),
        rewards=[RewardSpec(n) for n in BASE_REWARD_NAMES],
        grpo_args=grpo_kwargs(cfg, output_dir=out / "trainer", max_steps=BUDGET),
        lora_args=lora_kwargs(cfg),
        out_dir=out,
        eval_limit=2,
        eval_max_new_tokens=8,
        progress=lambda step, max_steps: steps.append((step, max_steps)),
        stop_at=stop_at,
        resume_from=resume_from,
    )
    assert outcome.state == "COMPLETE", outcome.reason
    return outcome, steps


def _history(adapter_dir: str) -> tuple[int, dict[int, float]]:
    state = json.loads((Path(adapter_dir) / RESUME_DIR / "trainer_state.json").read_text())
    rates = {e["step"]: e["learning_rate"] for e in state["log_history"] if "learning_rate" in e}
    return state["global_step"], rates


def _weights(adapter_dir: str) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(adapter_dir) / "adapter_model.safetensors"))


@pytest.mark.slow
def test_two_plus_two_steps_train_like_four(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch

    # a warm-up and a decaying schedule, so that a restarted schedule would show
    cfg = tiny_config(
        max_steps=BUDGET, warmup_ratio=0.25, lr_scheduler_type="linear", max_completion_length=8
    )
    first, first_steps = _run(cfg, tmp_path / "rung0", stop_at=2)
    assert first_steps == [(1, BUDGET), (2, BUDGET)]  # the full budget's schedule, stopped at 2
    assert _history(first.adapter_dir)[0] == 2
    resume = str(Path(first.adapter_dir) / RESUME_DIR)
    # stop_at=BUDGET only keeps the final checkpoint, whose trainer state we compare
    second, second_steps = _run(cfg, tmp_path / "rung1", stop_at=BUDGET, resume_from=resume)
    whole, _ = _run(cfg, tmp_path / "whole", stop_at=BUDGET)
    assert second_steps == [(3, BUDGET), (4, BUDGET)]  # went on, did not restart
    continued_step, continued_rates = _history(second.adapter_dir)
    whole_step, whole_rates = _history(whole.adapter_dir)
    assert continued_step == whole_step == BUDGET
    assert sorted(whole_rates) == [1, 2, 3, 4]
    assert continued_rates == pytest.approx(whole_rates)
    assert len(set(whole_rates.values())) > 1  # the schedule really moves
    a, b = _weights(second.adapter_dir), _weights(whole.adapter_dir)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key


def test_plan_finds_the_continued_trials_checkpoint(tmp_path: Path) -> None:
    cfg = tiny_config(max_steps=BUDGET)
    with RunStore.create(tmp_path / "run", cfg) as store:
        attrs = {"rung": 0, "rung_steps": 2, "budget": BUDGET, "continues": None}
        first = store.enqueue_trial("baseline", [], config=with_steps(cfg, 2), attrs=attrs)
        attrs = {"rung": 1, "rung_steps": BUDGET, "budget": BUDGET, "continues": first}
        second = store.enqueue_trial("baseline", [], config=cfg, attrs=attrs)
        plain = store.enqueue_trial("other", [], config=cfg)

        rung0 = plan(store, store.trial(first), 2)
        assert (rung0.max_steps, rung0.stop_at, rung0.resume_from) == (BUDGET, 2, None)
        assert plan(store, store.trial(plain), BUDGET).stop_at is None
        with pytest.raises(RuntimeError, match="no result"):
            plan(store, store.trial(second), BUDGET)

        adapter = tmp_path / "adapter"
        (adapter / RESUME_DIR).mkdir(parents=True)
        store.claim_trial(first)
        store.complete_trial(first, TrialResult({"accuracy": 0.5}, (1, 0), {}, None, str(adapter)))
        rung1 = plan(store, store.trial(second), BUDGET)
        assert (rung1.max_steps, rung1.stop_at) == (BUDGET, None)
        assert rung1.resume_from == str(adapter / RESUME_DIR)


@pytest.mark.slow
def test_worker_processes_continue_a_rung(tiny_model_dir: Path, tmp_path: Path) -> None:
    from rewardsmith.execution import LocalProcessExecutor
    from rewardsmith.search.compute import COMPUTE_KEY
    from rewardsmith.store import TrialState
    from rewardsmith.training.worker import progress_path

    cfg = tiny_config(max_steps=BUDGET, max_completion_length=8)
    with RunStore.create(tmp_path / "run", cfg) as store:
        attrs = {"rung": 0, "rung_steps": 2, "budget": BUDGET, "continues": None}
        first = store.enqueue_trial("baseline", [], config=with_steps(cfg, 2), attrs=attrs)
        LocalProcessExecutor(1).run(store, [first])
        assert store.trial(first).state == TrialState.COMPLETE, store.trial(first).fail_reason
        # the rung trains steps 1-2 of a BUDGET-step schedule, and its progress says 2 of 2
        assert progress_path(store.run_dir, first).read_text().split() == ["2", "2"]
        kept = Path(store.local_path(store.result(first).adapter_path)) / RESUME_DIR
        assert (kept / "optimizer.pt").is_file() and (kept / "scheduler.pt").is_file()
        attrs = {"rung": 1, "rung_steps": BUDGET, "budget": BUDGET, "continues": first}
        second = store.enqueue_trial("baseline", [], config=cfg, attrs=attrs)
        LocalProcessExecutor(1).run(store, [second])
        assert store.trial(second).state == TrialState.COMPLETE, store.trial(second).fail_reason
        # it went on from step 2 to the budget, and counts only the 2 steps it added
        assert progress_path(store.run_dir, second).read_text().split() == [str(BUDGET)] * 2
        assert store.result(second).curves[COMPUTE_KEY]["steps"] == 2
        # its curves cover the whole run: the first rung's steps, then its own
        assert [p[0] for p in store.result(second).curves["reward"]] == [1, 2, 3, 4]
        assert not (Path(store.result(second).adapter_path) / RESUME_DIR).exists()
