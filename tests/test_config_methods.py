"""Config of the related methods: stages, objective, built-in and label-free rewards."""

import pytest

from rewardsmith.config import load_config, parse_config
from rewardsmith.errors import ConfigError
from rewardsmith.recipes import recipe_path


@pytest.mark.parametrize("name", ["demo", "paper", "format_length", "reflection", "oreal"])
def test_every_recipe_validates(name: str) -> None:
    cfg = load_config(recipe_path(name))
    assert cfg.stages[-1].kind == "grpo"


def test_method_recipes_say_what_they_are() -> None:
    fl = load_config(recipe_path("format_length"))
    assert fl.rewards.label_free and not fl.rewards.use_base_rewards
    refl = load_config(recipe_path("reflection"))
    assert [s.kind for s in refl.stages] == ["sft", "grpo"]
    assert refl.rewards.builtin == [
        "accuracy_reward",
        "reflection_format_reward",
        "reflection_reward",
    ]
    oreal = load_config(recipe_path("oreal"))
    assert oreal.grpo.objective == "oreal" and oreal.grpo.beta == 0.01


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rewards": {"label_free": True}}, "use_base_rewards: false"),
        (
            {
                "rewards": {
                    "label_free": True,
                    "use_base_rewards": False,
                    "builtin": ["accuracy_reward"],
                }
            },
            "reads the gold answer",
        ),
        ({"rewards": {"label_free": True, "use_base_rewards": False}}, "at least one"),
        ({"rewards": {"builtin": ["no_such_reward"]}}, "unknown built-in reward"),
        ({"stages": [{"kind": "grpo"}, {"kind": "sft"}]}, "must come last"),
        ({"stages": [{"kind": "sft"}]}, "exactly one grpo stage"),
        ({"stages": [{"kind": "sft", "mode": "qlora"}, {"kind": "grpo"}]}, "stages"),
        ({"grpo": {"objective": "ppo"}}, "grpo.objective"),
    ],
)
def test_bad_method_config(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_grpo_kwargs_leave_out_the_objective() -> None:
    from rewardsmith.config import grpo_kwargs

    kwargs = grpo_kwargs(load_config(recipe_path("oreal")), output_dir="x", cuda=(False, False))
    assert "objective" not in kwargs and "oreal_eta" not in kwargs and kwargs["beta"] == 0.01


def test_label_free_dataset_has_no_answer_column() -> None:
    from rewardsmith.tasks import get_task
    from rewardsmith.training.trial import grpo_dataset

    task = get_task("synthetic", n_train=4, n_val=1, n_test=1)
    assert "answer" in grpo_dataset(task.train, task.prompt).column_names
    assert grpo_dataset(task.train, task.prompt, label_free=True).column_names == ["prompt"]
