"""The reward contract, TRL's own, and helpers to read completions in either of its two shapes.

A reward is a plain function::

    def name(prompts, completions, answer, **kwargs) -> list[float | None]

TRL calls it with keyword arguments only: ``prompts`` and ``completions`` (one entry per
sampled completion), every other dataset column (``answer``, ``question``, ...) as a list aligned
with ``completions``, plus trainer extras (``completion_ids``, ``trainer_state``) that a reward
absorbs in ``**kwargs``. ``None`` means "no opinion on this sample".

A completion is either a plain string (standard datasets) or a list of chat messages
(conversational datasets), normally one ``{"role": "assistant", "content": ...}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Completion = str | Sequence[Mapping[str, Any]]


def _content_text(content: Any) -> str:
    """A message's content: a string, or a list of typed parts (``{"type": "text", ...}``)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(
            str(part.get("text", "")) if isinstance(part, Mapping) else str(part)
            for part in content
        )
    raise TypeError(f"unsupported message content of type {type(content).__name__}")


def completion_text(completion: Completion | Mapping[str, Any]) -> str:
    """The text of one completion, plain or conversational.

    For a list of messages, the contents of the assistant messages (messages without a role
    count as assistant) are joined in order; for a single message dict, its content.
    Raises ``TypeError`` for anything else.

    >>> completion_text("<solution>7</solution>")
    '<solution>7</solution>'
    >>> completion_text([{"role": "assistant", "content": "<solution>7</solution>"}])
    '<solution>7</solution>'
    >>> completion_text([])
    ''
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return _content_text(completion.get("content"))
    if isinstance(completion, Sequence):
        parts = []
        for message in completion:
            if not isinstance(message, Mapping):
                raise TypeError(f"a message must be a dict, got {type(message).__name__}")
            if message.get("role", "assistant") == "assistant":
                parts.append(_content_text(message.get("content")))
        return "\n".join(parts)
    raise TypeError(f"unsupported completion of type {type(completion).__name__}")


def completion_texts(completions: Sequence[Completion]) -> list[str]:
    """:func:`completion_text` over a batch.

    >>> completion_texts(["a", [{"role": "assistant", "content": "b"}]])
    ['a', 'b']
    """
    return [completion_text(c) for c in completions]


def per_sample(values: Any, n: int, what: str) -> list[Any]:
    """A dataset column aligned with ``n`` completions; a scalar is broadcast.

    >>> per_sample("72", 2, "answer")
    ['72', '72']
    >>> per_sample(["1", "2"], 2, "answer")
    ['1', '2']
    """
    if isinstance(values, str) or not isinstance(values, Sequence):
        return [values] * n
    if len(values) != n:
        raise ValueError(f"{what} has {len(values)} entries for {n} completions")
    return list(values)
