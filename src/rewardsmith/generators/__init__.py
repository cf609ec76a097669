"""Generators: what proposes candidate reward programs for a round of the search.

A generator is looked up by name in :data:`GENERATORS` (a plain dict) and built with
:func:`get_generator`. ``offline`` writes programs from a library of reward primitives and needs
nothing; ``llm`` asks a chat model and needs an API key (or a local ``base_url``).
:func:`default_generator_name` picks ``llm`` only when a key is configured.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from rewardsmith.errors import ConfigError
from rewardsmith.generators.base import (
    Generator,
    Rejection,
    RoundContext,
    SummaryEntry,
)
from rewardsmith.generators.llm import LLMGenerator, RetryPolicy
from rewardsmith.generators.offline import OfflineGenerator

GENERATORS: dict[str, type] = {"offline": OfflineGenerator, "llm": LLMGenerator}

API_KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "REWARDSMITH_API_KEY")


def get_generator(name: str, **options: Any) -> Generator:
    """Build the generator registered as ``name`` with ``options`` (its constructor arguments).

    Raises :class:`~rewardsmith.errors.ConfigError` for an unknown name, listing the valid ones.
    """
    if name not in GENERATORS:
        raise ConfigError(f"unknown generator {name!r}; choose one of {', '.join(GENERATORS)}")
    return GENERATORS[name](**options)


def default_generator_name(env: Mapping[str, str] | None = None) -> str:
    """``"llm"`` when one of :data:`API_KEY_VARIABLES` is set (non-empty), else ``"offline"``."""
    env = os.environ if env is None else env
    return "llm" if any(env.get(variable) for variable in API_KEY_VARIABLES) else "offline"


__all__ = [
    "API_KEY_VARIABLES",
    "GENERATORS",
    "Generator",
    "LLMGenerator",
    "OfflineGenerator",
    "Rejection",
    "RetryPolicy",
    "RoundContext",
    "SummaryEntry",
    "default_generator_name",
    "get_generator",
]
