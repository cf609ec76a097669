"""The related methods run end to end on the tiny model: label-free, SFT stage, OREAL, compare."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewardsmith.config import load_config, parse_config
from rewardsmith.tasks import get_task
from rewardsmith.training.trial import Method, RewardSpec, run_trial
from tests.conftest import run_cli
from tests.training.conftest import tiny_config, write_tiny_yaml

pytestmark = pytest.mark.slow


class NeverReadsGold:
    """A label-free reward that fails the trial if the gold answer ever reaches it."""

    __name__ = "format_reward"

    def __init__(self) -> None:
        from rewardsmith.rewards import get_reward

        self.inner = get_reward("format_reward")
        self.calls = 0

    def __call__(self, prompts, completions, **kwargs):
        assert "answer" not in kwargs, "label-free training passed the gold answer to a reward"
        self.calls += 1
        return self.inner(prompts, completions, **kwargs)


def _args(cfg, out: Path) -> dict:
    from rewardsmith.config import grpo_kwargs, lora_kwargs

    return {
        "grpo_args": grpo_kwargs(cfg, output_dir=out / "trainer"),
        "lora_args": lora_kwargs(cfg),
    }


def test_label_free_training_never_sees_the_gold(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    from rewardsmith.training import trial as trial_module

    guard = NeverReadsGold()
    monkeypatch.setattr(trial_module, "build_reward_funcs", lambda *a, **k: ([guard], []))
    cfg = tiny_config()
    task = get_task("synthetic")
    outcome = run_trial(
        model_spec="embedded:tiny",
        task=task,
        rewards=[RewardSpec("format_reward")],
        out_dir=tmp_path,
        eval_limit=4,
        eval_max_new_tokens=16,
        method=Method(label_free=True),
        **_args(cfg, tmp_path),
    )
    assert outcome.state == "COMPLETE" and guard.calls == 3
    assert outcome.metrics["n"] == 4  # evaluation still scores against the gold answers


def test_sft_stage_then_grpo(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = tiny_config().model_dump(mode="json")
    data["stages"] = [
        {"kind": "sft", "mode": "lora", "limit": 16, "batch_size": 8},
        {"kind": "grpo"},
    ]
    cfg = parse_config(data)
    outcome = run_trial(
        model_spec="embedded:tiny",
        task=get_task("synthetic"),
        rewards=[RewardSpec("check_answer")],
        out_dir=tmp_path,
        eval_limit=4,
        eval_max_new_tokens=16,
        method=Method(sft_stages=tuple(cfg.stages[:1])),
        **_args(cfg, tmp_path),
    )
    assert outcome.state == "COMPLETE"
    # the whole merged policy is saved: the adapter alone would not reproduce it
    assert (Path(outcome.adapter_dir) / "config.json").is_file()
    from rewardsmith.search.test_eval import load_policy

    assert load_policy("embedded:tiny", outcome.adapter_dir).model.config.model_type == "llama"


def test_compare_on_the_tiny_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    import json

    config = write_tiny_yaml(tmp_path / "tiny.yaml", max_steps=2)
    data = load_config(config).model_dump(mode="json")
    data["task"]["options"] = {"n_val": 8, "n_test": 8}
    data["search"]["ensemble_steps"] = 2
    import yaml

    config.write_text(yaml.safe_dump(data))
    res = run_cli("compare", "--config", str(config), "--run-dir", str(tmp_path / "cmp"))
    assert res.returncode == 0, res.stderr[-3000:]
    rows = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [r["method"] for r in rows] == ["baseline", "format_length", "reflection", "oreal"]
    assert all(r["seeds"] == 1 and r["failed"] == 0 for r in rows)
    assert all(r["mcnemar_p"] is not None for r in rows[1:])
    assert "McNemar" in res.stdout
