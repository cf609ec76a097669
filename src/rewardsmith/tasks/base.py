"""The task abstraction: train / validation / test splits of ``{question, answer}`` and a prompt.

A :class:`Task` is plain data. ``answer`` is always the gold *final* answer as a string (for
GSM8K the text after ``####``); tasks with worked solutions keep them in ``solution`` so the SFT
stage and the embedded model's bootstrap can train on them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from rewardsmith.errors import DataError
from rewardsmith.extraction import DEFAULT_TAGS, Tags

#: rewardsmith's default policy prompt (the wording of Unsloth's GRPO notebooks). The embedded
#: model is built with it; it is not the paper's text (see :data:`PAPER_SYSTEM_PROMPT`).
DEFAULT_SYSTEM_PROMPT = (
    "You are given a problem.\n"
    "Think about the problem and provide your working out.\n"
    "Place it between {reasoning_start} and {reasoning_end}.\n"
    "Then, provide your solution between {solution_start}{solution_end}. "
    "The solution is the final numeric answer, just the number."
)

#: The policy system prompt of arXiv 2605.02073's released code, word for word (REFERENCE.md,
#: section 1); with the default tags it renders exactly the published text.
PAPER_SYSTEM_PROMPT = (
    "You are given a math problem. Think step by step and respond EXACTLY in this format:\n"
    "\n"
    "{reasoning_start}\n"
    "[Your step-by-step reasoning here]\n"
    "{reasoning_end}\n"
    "{solution_start}\n"
    "[Your final numeric answer here, just the number]\n"
    "{solution_end}\n"
    "\n"
    "Example:\n"
    "{reasoning_start}\n"
    "I need to add 2 + 3 = 5.\n"
    "{reasoning_end}\n"
    "{solution_start}\n"
    "5\n"
    "{solution_end}"
)

#: Named policy prompts (``task.prompt`` in a recipe); a plain dict, as every registry here.
SYSTEM_PROMPTS: dict[str, str] = {"default": DEFAULT_SYSTEM_PROMPT, "paper": PAPER_SYSTEM_PROMPT}


def get_system_prompt(name: str) -> str:
    """The named policy prompt ``name`` (with tag placeholders); unknown names fail loudly.

    >>> get_system_prompt("paper").startswith("You are given a math problem.")
    True
    """
    if name not in SYSTEM_PROMPTS:
        from rewardsmith.errors import ConfigError

        raise ConfigError(f"unknown prompt {name!r}; choose one of {', '.join(SYSTEM_PROMPTS)}")
    return SYSTEM_PROMPTS[name]


SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class PromptFormat:
    """How a question becomes a chat prompt, and the tags a well-formed answer uses."""

    tags: Tags = DEFAULT_TAGS
    system_prompt: str = DEFAULT_SYSTEM_PROMPT

    def system_text(self) -> str:
        """The system prompt with the tag placeholders filled in."""
        t = self.tags
        return self.system_prompt.format(
            reasoning_start=t.reasoning_start,
            reasoning_end=t.reasoning_end,
            solution_start=t.solution_start,
            solution_end=t.solution_end,
        )

    def messages(self, question: str) -> list[dict[str, str]]:
        """The conversational prompt for ``question`` (TRL's conversational format)."""
        return [
            {"role": "system", "content": self.system_text()},
            {"role": "user", "content": question},
        ]

    def response(self, reasoning: str, answer: str) -> str:
        """A response in the expected format (used to build SFT targets)."""
        t = self.tags
        return (
            f"{t.reasoning_start}\n{reasoning.strip()}\n{t.reasoning_end}\n"
            f"{t.solution_start}\n{answer.strip()}\n{t.solution_end}"
        )


@dataclass
class Task:
    """A math task: named splits of examples plus the prompt format."""

    name: str
    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    test: list[dict[str, Any]]
    prompt: PromptFormat = field(default_factory=PromptFormat)
    source: str = ""

    def split(self, name: str) -> list[dict[str, Any]]:
        """Return a split by name (``train``, ``val``/``validation``, ``test``); never empty."""
        key = "val" if name in ("val", "validation") else name
        if key not in SPLITS:
            raise DataError(f"unknown split {name!r}; choose one of train, val, test")
        rows = getattr(self, key)
        if not rows:
            raise DataError(f"split {key!r} of task {self.name!r} is empty")
        return rows

    def fingerprint(self, split: str) -> str:
        """A short sha256 of a split's questions and answers (for run manifests)."""
        digest = hashlib.sha256()
        for row in self.split(split):
            digest.update(json.dumps([row["question"], row["answer"]]).encode())
        return digest.hexdigest()[:16]

    def overlap(self, a: str, b: str) -> int:
        """How many questions two splits share (0 for a well-formed task)."""
        return len({r["question"] for r in self.split(a)} & {r["question"] for r in self.split(b)})
