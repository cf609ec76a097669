"""A trial starts its sandboxed rewards' workers before it loads the model, and their first
calls are served by those workers: the start-up overlaps the model load instead of the first
GRPO step."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewardsmith.config import grpo_kwargs, lora_kwargs
from rewardsmith.export import render_base_rewards
from rewardsmith.rewards import BASE_REWARD_NAMES
from rewardsmith.sandbox import SandboxPool
from rewardsmith.tasks import get_task
from rewardsmith.training.trial import RewardSpec, run_trial
from tests.training.conftest import tiny_config


@pytest.mark.slow
def test_workers_start_while_the_model_loads(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rewardsmith.models

    cfg = tiny_config(max_steps=1)
    code = "import re\n" + render_base_rewards()
    specs = [RewardSpec(name, code) for name in BASE_REWARD_NAMES]
    seen_at_load: list[list[int]] = []
    load_model = rewardsmith.models.load_model

    with SandboxPool() as pool:

        def spying_load(*args, **kwargs):
            seen_at_load.append(pool.worker_pids())
            return load_model(*args, **kwargs)

        monkeypatch.setattr(rewardsmith.models, "load_model", spying_load)
        outcome = run_trial(
            model_spec=cfg.model.spec,
            task=get_task(cfg.task.name, **cfg.task.task_kwargs()),
            rewards=specs,
            grpo_args=grpo_kwargs(cfg, output_dir=tmp_path / "trainer"),
            lora_args=lora_kwargs(cfg),
            out_dir=tmp_path,
            pool=pool,
            eval_limit=2,
            eval_max_new_tokens=8,
        )
        assert outcome.state == "COMPLETE", outcome.reason
        assert len(seen_at_load) == 1 and len(seen_at_load[0]) == len(specs)
        assert pool.spawned_pids == seen_at_load[0]  # the first calls used those workers
        summaries = [m["summary"] for m in outcome.monitors.values()]
        assert len(summaries) == len(specs)
        assert all(s["calls"] >= 1 and s["failures"] == 0 for s in summaries)
