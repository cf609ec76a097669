"""Rewards: the TRL contract, the built-in registry, the sandbox and the validation pipeline.

The public surface here is small and cheap to import: :data:`REWARD_REGISTRY` (a plain dict from
name to reward), :func:`get_reward` and :data:`BASE_REWARD_NAMES`. The sandbox lives in
:mod:`rewardsmith.rewards.sandbox` and validation in :mod:`rewardsmith.rewards.validation`.

>>> sorted(REWARD_REGISTRY) == sorted(BASE_REWARD_NAMES)
True
>>> get_reward("check_answer").__name__
'check_answer'
"""

from __future__ import annotations

from collections.abc import Callable

from rewardsmith.errors import ConfigError
from rewardsmith.rewards.base import check_answer, match_format_approximately, match_format_exactly

BASE_REWARD_NAMES: tuple[str, ...] = (
    "match_format_exactly",
    "match_format_approximately",
    "check_answer",
)

REWARD_REGISTRY: dict[str, Callable[..., list[float | None]]] = {
    "match_format_exactly": match_format_exactly,
    "match_format_approximately": match_format_approximately,
    "check_answer": check_answer,
}


def get_reward(name: str) -> Callable[..., list[float | None]]:
    """The built-in reward registered as ``name``; an unknown name raises ``ConfigError``."""
    try:
        return REWARD_REGISTRY[name]
    except KeyError:
        valid = ", ".join(sorted(REWARD_REGISTRY))
        raise ConfigError(f"unknown reward {name!r}; valid names: {valid}") from None


__all__ = ["BASE_REWARD_NAMES", "REWARD_REGISTRY", "get_reward"]
