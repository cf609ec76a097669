"""Config sections for the related methods: training stages, the objective, built-in rewards.

- ``stages``: SFT stages on worked solutions (full fine-tuning or LoRA, TRL ``SFTTrainer``)
  run before the GRPO stage, which is always last (arXiv 2603.14041's four-stage recipe is
  ``stages: [{kind: sft}, {kind: grpo}]`` plus its rewards).
- ``objective``: ``grpo`` (TRL's loss) or ``oreal`` (arXiv 2502.06781, see
  :mod:`rewardsmith.training.oreal`).
- ``rewards.builtin`` / ``rewards.label_free``: built-in rewards by registry name; label-free
  trials train with no ground-truth reward at all (the gold answer is not even in the
  training dataset), while evaluation still scores against the gold answers.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _reject_bool(value: object) -> object:
    # YAML turns yes/no/true/false into booleans, and pydantic would read True as 1.
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


#: int / float config fields that refuse YAML booleans (shared with rewardsmith.config)
Int = Annotated[int, BeforeValidator(_reject_bool)]
Float = Annotated[float, BeforeValidator(_reject_bool)]


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are frozen and finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class StageSection(Section):
    """One training stage. SFT stages train on the task's worked solutions."""

    kind: Literal["sft", "grpo"]
    mode: Literal["full", "lora"] = "lora"
    epochs: Float = Field(1.0, gt=0)
    learning_rate: Float = Field(2e-4, gt=0)
    batch_size: Int = Field(8, gt=0)
    max_length: Int = Field(512, gt=0)
    limit: Int | None = Field(None, gt=0)  # train on the first N train examples only


def check_stages(stages: list[StageSection]) -> list[StageSection]:
    """SFT stages first, exactly one GRPO stage, last."""
    kinds = [s.kind for s in stages]
    if kinds.count("grpo") != 1 or kinds[-1] != "grpo":
        raise ValueError("needs exactly one grpo stage, and it must come last")
    return stages


def check_label_free(use_base_rewards: bool, builtin: list[str], label_free: bool) -> None:
    """A label-free trial uses only rewards that never read the gold answer."""
    from rewardsmith.rewards import LABEL_FREE_REWARDS, REWARD_REGISTRY

    unknown = [n for n in builtin if n not in REWARD_REGISTRY]
    if unknown:
        raise ValueError(
            f"unknown built-in reward {unknown[0]!r}; valid: {sorted(REWARD_REGISTRY)}"
        )
    if not label_free:
        return
    if use_base_rewards:
        raise ValueError("label_free needs use_base_rewards: false (check_answer reads the gold)")
    reads_gold = [n for n in builtin if n not in LABEL_FREE_REWARDS]
    if reads_gold:
        raise ValueError(f"label_free: {reads_gold[0]!r} reads the gold answer")
    if not builtin:
        raise ValueError("label_free needs at least one label-free built-in reward")


Objective = Literal["grpo", "oreal"]
DEFAULT_STAGES = [StageSection(kind="grpo")]
