"""Tasks: named train / validation / test splits of math questions plus a prompt format.

Built-in tasks live in :data:`TASKS`, a plain registry:

- ``synthetic``: procedurally generated word problems (the embedded default, offline);
- ``gsm8k``: GSM8K from a folder (``data_dir=``) or from the hub dataset ``openai/gsm8k``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from rewardsmith.errors import ConfigError
from rewardsmith.extraction import Tags
from rewardsmith.tasks.base import (
    DEFAULT_SYSTEM_PROMPT,
    PAPER_SYSTEM_PROMPT,
    SYSTEM_PROMPTS,
    PromptFormat,
    Task,
    get_system_prompt,
)
from rewardsmith.tasks.gsm8k import load_gsm8k
from rewardsmith.tasks.synthetic import SyntheticConfig, make_synthetic_task


def _gsm8k(prompt: PromptFormat, data_dir: str | None = None, **kw: Any) -> Task:
    valid = set(inspect.signature(load_gsm8k).parameters) - {"path", "prompt"}
    unknown = sorted(set(kw) - valid)
    if unknown:
        raise ConfigError(f"task 'gsm8k': unknown option {unknown[0]!r}; valid: {sorted(valid)}")
    return load_gsm8k(data_dir, prompt=prompt, **kw)


def _synthetic(prompt: PromptFormat, **kw: Any) -> Task:
    return make_synthetic_task(prompt=prompt, **kw)


TASKS: dict[str, Callable[..., Task]] = {"gsm8k": _gsm8k, "synthetic": _synthetic}


def get_task(
    name: str,
    *,
    tags: Tags | None = None,
    system_prompt: str | None = None,
    prompt: str = "default",
    **options: Any,
) -> Task:
    """Build a task by name; ``options`` go to its loader (e.g. ``data_dir``, ``val_size``).

    The policy's system prompt is ``system_prompt`` when given, else the named prompt ``prompt``
    (:data:`SYSTEM_PROMPTS`: ``default``, or ``paper`` for arXiv 2605.02073's exact text).
    """
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; choose one of {', '.join(sorted(TASKS))}")
    text = system_prompt or get_system_prompt(prompt)
    prompt_format = PromptFormat(tags=tags or PromptFormat().tags, system_prompt=text)
    return TASKS[name](prompt_format, **options)  # each loader names its unknown options itself


__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "PAPER_SYSTEM_PROMPT",
    "SYSTEM_PROMPTS",
    "PromptFormat",
    "SyntheticConfig",
    "TASKS",
    "Task",
    "get_system_prompt",
    "get_task",
    "load_gsm8k",
    "make_synthetic_task",
]
