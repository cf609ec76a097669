"""What the sandbox hands back to trusted code: call results, source outlines, cleaned text.

Everything here is built by the parent from schema-checked replies (:mod:`._protocol`); error
text that came from a worker is passed through :func:`clean_text` before anyone prints it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: Longest error text kept from a worker.
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class CallResult:
    """The outcome of one sandboxed load or call; ``values`` is empty unless ``ok``.

    ``stage`` (loads only) names where a load failed: ``parse``, ``restrict`` or ``load``;
    ``entry`` is the reward function's name once the code parsed; ``cpu_s`` is the CPU time
    the reward's own code used in a call. ``error`` is plain text: control characters and
    terminal escape sequences are removed (the text comes from untrusted code).
    """

    ok: bool
    values: tuple[float | None, ...] = ()
    error: str | None = None
    timed_out: bool = False
    crashed: bool = False
    duration_s: float = 0.0
    stage: str | None = None
    entry: str | None = None
    cpu_s: float = 0.0


# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \\) and two-character escapes.
_ANSI_SEQUENCE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-_])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean_text(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` with terminal escape sequences removed and control characters as spaces.

    Error text from a reward reaches logs and the terminal; it must not move the cursor,
    recolour the screen, forge log lines or reorder text (bidi controls).

    >>> clean_text("boom\\x1b[2J\\x1b[31mred\\nINFO fake")
    'boomred INFO fake'
    """
    return _CONTROL.sub(" ", _ANSI_SEQUENCE.sub("", text))[:limit]


@dataclass(frozen=True)
class Statement:
    """One top-level statement of a source text, as a sandbox worker parsed it."""

    start: int  # first line, decorators included (1-based)
    end: int  # last line
    function: str  # the function's name, or "" when the statement is not a ``def``
    reward_like: bool  # a function with a ``completions`` parameter
    contract: bool  # a function that follows the whole reward contract (``**kwargs`` too)
    doc: str  # the first line of the function's docstring


@dataclass(frozen=True)
class Outline:
    """The top-level structure of untrusted source, or why it does not parse (``error``)."""

    statements: tuple[Statement, ...] = ()
    error: str | None = None

    def entry(self, name: str | None = None) -> str:
        """The reward function's name by the rule of :func:`._entry.resolve_entry`."""
        from rewardsmith.sandbox._entry import EntryError, choose_entry

        if self.error is not None:
            raise EntryError(f"the code does not parse: {self.error}")
        functions = [(s.function, s.contract) for s in self.statements if s.function]
        return choose_entry(functions, name)


def outline_from(reply: dict[str, Any]) -> Outline:
    """An :class:`Outline` from a checked ``inspect`` reply (parallel lists)."""
    columns = [reply.get(k, []) for k in ("starts", "ends", "defs", "reward_like", "contract",
                                          "docs")]  # fmt: skip
    if len({len(c) for c in columns}) != 1:
        return Outline(error="the sandbox sent an inconsistent outline")
    return Outline(tuple(Statement(*row) for row in zip(*columns, strict=True)))
