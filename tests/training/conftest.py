"""A tiny trial recipe: the demo recipe on the tiny embedded model, a few steps, short outputs."""

from __future__ import annotations

from pathlib import Path

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


def write_tiny_yaml(path: Path, **grpo: object) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(tiny_config(**grpo).model_dump(mode="json")))
    return path
