"""Rewards: the TRL contract, the built-in registry, the sandbox and the validation pipeline.

The public surface here is small and cheap to import: :data:`REWARD_REGISTRY` (a plain dict from
name to reward), :func:`get_reward`, :data:`BASE_REWARD_NAMES` and :data:`LABEL_FREE_REWARDS`
(the registry names that never read the gold answer). The registry holds the paper's base rewards
(:mod:`~rewardsmith.rewards.base`), the label-free format and length rewards of arXiv 2505.19439
(:mod:`~rewardsmith.rewards.surrogate`), and the reflection method's rewards plus OREAL's binary
outcome (:mod:`~rewardsmith.rewards.reflection`), each with its default parameters; their
``get_*_reward`` factories build other parametrisations. The sandbox lives in
:mod:`rewardsmith.sandbox.pool` and validation in :mod:`rewardsmith.rewards.validation`.

>>> set(BASE_REWARD_NAMES) <= set(REWARD_REGISTRY)
True
>>> get_reward("check_answer").__name__
'check_answer'
>>> "length_reward" in LABEL_FREE_REWARDS, "accuracy_reward" in LABEL_FREE_REWARDS
(True, False)
"""

from __future__ import annotations

from collections.abc import Callable

from rewardsmith.errors import ConfigError
from rewardsmith.rewards.base import check_answer, match_format_approximately, match_format_exactly
from rewardsmith.rewards.reflection import (
    accuracy_reward,
    oreal_outcome_reward,
    reflection_format_reward,
    reflection_reward,
)
from rewardsmith.rewards.surrogate import format_length_reward, format_reward, length_reward

BASE_REWARD_NAMES: tuple[str, ...] = (
    "match_format_exactly",
    "match_format_approximately",
    "check_answer",
)

REWARD_REGISTRY: dict[str, Callable[..., list[float | None]]] = {
    "match_format_exactly": match_format_exactly,
    "match_format_approximately": match_format_approximately,
    "check_answer": check_answer,
    # label-free surrogates (arXiv 2505.19439)
    "format_reward": format_reward,
    "length_reward": length_reward,
    "format_length_reward": format_length_reward,
    # the reflection method (arXiv 2603.14041), weights 1/1/1
    "accuracy_reward": accuracy_reward,
    "reflection_format_reward": reflection_format_reward,
    "reflection_reward": reflection_reward,
    # OREAL's binary outcome (arXiv 2502.06781)
    "oreal_outcome_reward": oreal_outcome_reward,
}

# Registry names whose rewards never read ``answer`` (or any other dataset column); a label-free
# trial may use only these. tests/rewards/test_surrogate_rewards.py proves it for each one.
LABEL_FREE_REWARDS: frozenset[str] = frozenset(
    {
        "match_format_exactly",
        "match_format_approximately",
        "format_reward",
        "length_reward",
        "format_length_reward",
        "reflection_format_reward",
        "reflection_reward",
    }
)


def get_reward(name: str) -> Callable[..., list[float | None]]:
    """The built-in reward registered as ``name``; an unknown name raises ``ConfigError``."""
    try:
        return REWARD_REGISTRY[name]
    except KeyError:
        valid = ", ".join(sorted(REWARD_REGISTRY))
        raise ConfigError(f"unknown reward {name!r}; valid names: {valid}") from None


__all__ = ["BASE_REWARD_NAMES", "LABEL_FREE_REWARDS", "REWARD_REGISTRY", "get_reward"]
