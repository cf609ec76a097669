"""A tiny trial recipe: the demo recipe on the tiny embedded model, a few steps, short outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rewardsmith.config import RunConfig, load_config, parse_config
from rewardsmith.recipes import recipe_path


def tiny_config(**grpo: object) -> RunConfig:
    data = load_config(recipe_path("demo")).model_dump(mode="json")
    data["model"]["spec"] = "embedded:tiny"
    data["grpo"].update({"max_steps": 3, "max_completion_length": 24, **grpo})
    data["eval"].update({"limit": 8, "max_new_tokens": 24})
    # the demo screens by successive halving; these tests count full-screening trials
    data["search"]["screening"] = {"mode": "full"}
    return parse_config(data, source="tiny test recipe")


@pytest.fixture
def tiny_cfg(tiny_model_dir: Path) -> RunConfig:
    return tiny_config()


def mini_search(
    *, questions: int = 4, grpo: dict[str, Any] | None = None, **search: Any
) -> dict[str, Any]:
    """The smallest whole search, as recipe data: one round of one screen on the tiny model
    (1 GRPO step), baseline, control, one single-reward ensemble and the finalists' test
    evaluation, on ``questions`` validation and test questions. ``grpo`` overrides GRPO fields,
    ``search`` overrides or adds search fields."""
    data = tiny_config(**{"max_steps": 1, **(grpo or {})}).model_dump(mode="json")
    data["task"]["options"] = {"n_val": questions, "n_test": questions}
    data["search"].update(
        rounds=1,
        candidates_per_round=1,
        ensemble_sizes=[1],
        ensemble_steps=1,
        control_k=1,
        final_seeds=1,
        parallel=1,
    )
    data["search"].update(search)
    return data


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data))
    return path


def write_tiny_yaml(path: Path, **grpo: object) -> Path:
    return write_yaml(path, tiny_config(**grpo).model_dump(mode="json"))
