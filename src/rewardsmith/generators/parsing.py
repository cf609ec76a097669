"""Turn a model's raw reply into candidates, losing nothing: what cannot be used is a rejection.

A leading ``<think>...</think>`` block (reasoning models) is set aside first: drafts in it are
never candidates. The answer after it is then read in one of two forms:

1. JSON (:mod:`._json_repair` reads every array or object in the text, fences and prose
   included, repairing trailing commas, single quotes, Python literals and the like). Of all
   values that hold reward items (a bare array of ``{"name", "code", "description"}`` objects, an
   object wrapping one under ``rewards``/``candidates``/..., or a single such object), the one
   with the most *complete* items wins: a non-empty code string plus a valid name or a ``def``.
   So a schema example restated before the answer never becomes a candidate; ties go to the
   outermost value, then to the later one (:mod:`._reply_json`, which also maps common key
   aliases such as ``function_name`` or ``source``). From a reply cut short, every object that
   closed is kept and the cut one is a rejection (``item 4 truncated: reply ended mid-object``).
2. Python, when no JSON value has a complete item: fenced ```` ```python ```` blocks (or a reply
   that is Python source) defining reward functions. Each public function with a
   ``completions`` parameter becomes a candidate named after the function; imports, constants
   and helpers of its block are kept with it; the description is the docstring's first line.
   From a block the reply ended inside, the function that was cut off is a rejection.

Per item problems (truncated, no code, a name that is not an identifier, a name repeated in the
reply) and whole-reply problems (empty, only a ``<think>`` block, nothing usable) become
:class:`~rewardsmith.generators.base.Rejection` records. Nothing here raises on model output
and nothing here runs or parses the code: Python is split into functions by a sandbox worker
(:meth:`rewardsmith.sandbox.SandboxPool.outline`), which reports line spans only.

>>> result = parse_reply('[{"name": "r", "code": "def r(prompts, completions, **kw): ...", '
...                      '"description": "d"}]', round=1, generator="llm")
>>> [c.name for c in result.candidates], result.rejections
(['r'], [])
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from rewardsmith.generators._json_repair import CutDict, CutList, VerbatimStr
from rewardsmith.generators._reply_json import (
    CODE_KEYS,
    DEF,
    DESCRIPTION_KEYS,
    NAME_KEYS,
    Choice,
    choose_json,
    field_of,
    valid_name,
)
from rewardsmith.generators.base import Rejection
from rewardsmith.rewards.candidate import Candidate
from rewardsmith.sandbox.results import Outline, Statement, clean_text

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", flags=re.DOTALL)
_OPEN_FENCE = re.compile(r"```[ \t]*(python|py)?[ \t]*\n(.*)\Z", flags=re.DOTALL | re.IGNORECASE)
_THINK_OPEN = re.compile(r"\s*<think\s*>", flags=re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think\s*>", flags=re.IGNORECASE)
_TOP_LEVEL = re.compile(r"^(?:def |async def |class )", flags=re.MULTILINE)
_REWARD_DEF = re.compile(
    r"^def[ \t]+([A-Za-z_]\w*)[ \t]*\([^)]*\bcompletions\b", flags=re.MULTILINE
)
_EXCERPT = 160


@dataclass
class ParseResult:
    """Candidates found in one reply plus the rejections recorded while parsing it.

    ``truncated``: the reply ended inside the JSON value or Python block that was used;
    ``repairs``: the JSON repairs that reading it needed (e.g. ``"trailing comma"``).
    """

    candidates: list[Candidate] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    truncated: bool = False
    repairs: list[str] = field(default_factory=list)


@dataclass
class _Context:
    round: int
    generator: str
    result: ParseResult

    def reject(self, reason: str, name: str | None = None) -> None:
        self.result.rejections.append(
            Rejection(
                round=self.round, generator=self.generator, stage="parse", reason=reason, name=name
            )
        )


def parse_reply(
    text: str | None, *, round: int, generator: str, truncated: bool = False
) -> ParseResult:
    """Parse ``text`` (a model reply) into candidates for ``round``, never raising on content.

    ``truncated`` says the API reported the reply as cut by the token limit: unfenced Python at
    its end is then treated like an unclosed block (its last function may be cut off).
    """
    ctx = _Context(round, generator, ParseResult())
    text = (text or "").replace("\r\n", "\n")
    think, answer = split_think(text)
    if not answer.strip():
        if think.strip() and not _THINK_CLOSE.search(text):
            ctx.result.truncated = True
            ctx.reject("reply ended inside its <think> block: no answer after it")
        else:
            ctx.reject("empty reply" + (" after the <think> block" if think.strip() else ""))
        return ctx.result
    choice = choose_json(answer)
    if choice is not None and choice.complete:
        _add_json(ctx, choice)
    elif not _add_python(ctx, answer, unfenced=choice is None, truncated=truncated):
        if choice is not None:
            _add_json(ctx, choice)
        else:
            ctx.reject(f"no JSON array or Python reward found: {_excerpt(answer)}")
    return ctx.result


def split_think(text: str) -> tuple[str, str]:
    """``(reasoning, answer)``: a leading ``<think>`` block (or text before a lone ``</think>``,
    as servers that strip the opening tag send it) is the reasoning; the rest is the answer.

    >>> split_think("<think>draft [1]</think> final")
    ('draft [1]', ' final')
    """
    opening = _THINK_OPEN.match(text)
    closing = _THINK_CLOSE.search(text)
    if opening and not closing:
        return text[opening.end() :], ""
    if closing and (opening or "<think" not in text[: closing.start()].lower()):
        start = opening.end() if opening else 0
        return text[start : closing.start()], text[closing.end() :]
    return "", text


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat[:_EXCERPT] + ("..." if len(flat) > _EXCERPT else ""))


# --- JSON -----------------------------------------------------------------------------------


def _add_json(ctx: _Context, choice: Choice) -> None:
    items = choice.items
    ctx.result.truncated = choice.read.cut
    ctx.result.repairs = list(choice.read.repairs)
    if not items and not isinstance(items, CutList):
        ctx.reject("reply holds an empty JSON list")
    for index, item in enumerate(items):
        label = f"item {index + 1}"
        if isinstance(item, CutDict):
            name = field_of(item, NAME_KEYS)
            ctx.reject(
                f"{label} truncated: reply ended {item.where}", name=name.strip() if name else None
            )
        else:
            _add_json_item(ctx, item, label)
    if isinstance(items, CutList) and not (items and isinstance(items[-1], CutDict)):
        after = f"after item {len(items)}" if items else "before its first item"
        ctx.reject(f"reply ended {after}, before the JSON array closed")


def _add_json_item(ctx: _Context, item: Any, label: str) -> None:
    if not isinstance(item, dict):
        ctx.reject(f"{label} is not an object")
        return
    code = field_of(item, CODE_KEYS)
    name = field_of(item, NAME_KEYS)
    name = name.strip() if name else None
    if code is None:
        ctx.reject(f"{label} has no 'code' string", name=name)
        return
    code, outline = _repair_code(code)
    description = (field_of(item, DESCRIPTION_KEYS) or "").strip()
    _add(ctx, _resolve_name(name, outline), code, description, label=label)


def _repair_code(raw: str) -> tuple[str, Outline]:
    """The first reading of a code string that parses (in the sandbox), with its outline.

    Tried in order: as decoded; with ``\\n`` escapes kept as written when the string also held
    literal line breaks (:class:`._json_repair.VerbatimStr`); unescaped once more when it is one
    line full of ``\\n`` (code escaped twice). When none parses, the decoded code is kept and
    validation reports the syntax error.
    """
    code = _clean_code(raw)
    outline = _outline(code)
    if outline.error is None:
        return code, outline
    options = [_clean_code(raw.verbatim)] if isinstance(raw, VerbatimStr) else []
    if "\n" not in code.rstrip("\n") and "\\n" in code:
        simple = {"n": "\n", "t": "\t", '"': '"', "'": "'", "\\": "\\"}
        options.append(re.sub(r"\\([nt\"'\\])", lambda m: simple[m.group(1)], code))
    for option in options:
        option_outline = _outline(option)
        if option_outline.error is None:
            return option, option_outline
    return code, outline


def _clean_code(code: str) -> str:
    """Drop a Markdown fence wrapped around the code; LF line endings; end with a newline."""
    code = code.replace("\r\n", "\n")
    match = re.fullmatch(r"```[^\n]*\n(.*?)\n?```", code.strip(), flags=re.DOTALL)
    body = match.group(1) if match else code
    return body.strip("\n") + "\n"


def _resolve_name(name: str | None, outline: Outline) -> str | None:
    """Keep ``name`` when the code defines it; otherwise use the code's single reward function."""
    rewards = [st.function for st in outline.statements if _looks_like_reward(st)]
    if name and (name in rewards or not rewards):
        return name
    if len(rewards) == 1:
        return rewards[0]
    return name


# --- Python ---------------------------------------------------------------------------------


def _outline(code: str) -> Outline:
    """The top-level statements of ``code``, parsed in a sandbox worker (never here)."""
    from rewardsmith.sandbox.reward import default_pool

    return default_pool().outline(code)


def _looks_like_reward(statement: Statement) -> bool:
    """A public function with a ``completions`` parameter (validation checks the rest)."""
    return statement.reward_like and not statement.function.startswith("_")


def _add_python(ctx: _Context, text: str, *, unfenced: bool, truncated: bool) -> bool:
    """Add the reward functions of ``text``'s Python blocks; False when there are none.

    Fenced blocks are used first; ``unfenced`` allows reading the whole text as Python when
    there is no fence (``truncated``: as a block the reply ended inside). A block that does not
    parse but defines reward-like functions is a rejection naming them and the syntax error.
    """
    blocks, end = [], 0
    for match in _FENCE.finditer(text):
        if _is_python_fence(match.group(1), match.group(2)):
            blocks.append(match.group(2))
        end = match.end()
    opened = _OPEN_FENCE.search(text, end)
    open_block = opened.group(2) if opened and _is_python_fence("", opened.group(2)) else None
    if not blocks and open_block is None and unfenced:
        if truncated:
            open_block = text
        else:
            blocks = [text]
    found, used = [], False
    for block in blocks:
        functions, error = _split_block(block)
        found.extend(functions)
        names = _REWARD_DEF.findall(block) if error else []
        if names:
            used = True
            ctx.reject(
                f"Python block does not parse ({error}): {', '.join(names)} lost", name=names[0]
            )
    lost: list[str] = []
    if open_block is not None:
        ctx.result.truncated = True
        kept, lost = _salvage_open_block(open_block)
        found.extend(kept)
    for name, code, description in found:
        _add(ctx, name, code, description)
    for name in lost:
        ctx.reject(f"reply ended inside a Python block: function {name!r} was cut off", name=name)
    return bool(found or lost or used)


def _is_python_fence(language: str, body: str) -> bool:
    """A ``python``/``py`` fence, or an unlabelled one that does not hold JSON."""
    if language.lower() in ("python", "py"):
        return True
    return language == "" and not body.lstrip().startswith(("[", "{"))


def _salvage_open_block(block: str) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Functions of a block the reply ended inside; its last function is dropped as cut off.

    Returns (kept functions, names of the functions in the dropped tail).
    """
    starts = [m.start() for m in _TOP_LEVEL.finditer(block)]
    if not starts:
        return [], []
    head, tail = block[: starts[-1]], block[starts[-1] :]
    return (_split_block(head)[0] if head.strip() else []), DEF.findall(tail)


def _split_block(block: str) -> tuple[list[tuple[str, str, str]], str | None]:
    """(name, code, description) of each reward function of a block of Python source, and the
    syntax error when the block does not parse (then no functions)."""
    outline = _outline(block)
    if outline.error is not None:
        # Unfenced code after a line of prose: retry from the first line that starts code.
        start = re.search(r"^(?:import |from |def )", block, flags=re.MULTILINE)
        if start is None or start.start() == 0:
            return [], outline.error
        block = block[start.start() :]
        outline = _outline(block)
        if outline.error is not None:
            return [], outline.error
    lines = block.splitlines(keepends=True)
    rewards = [st for st in outline.statements if _looks_like_reward(st)]
    shared = [st for st in outline.statements if st not in rewards]
    found = []
    for fn in rewards:
        keep = shared + [fn] if len(rewards) > 1 else list(outline.statements)
        keep.sort(key=lambda st: st.start)
        code = "".join(_statement_source(lines, st) for st in keep)
        found.append((fn.function, code, fn.doc))
    return found, None


def _statement_source(lines: list[str], statement: Statement) -> str:
    text = "".join(lines[statement.start - 1 : statement.end])
    return text if text.endswith("\n") else text + "\n"


# --- Shared ---------------------------------------------------------------------------------


def _add(
    ctx: _Context, name: str | None, code: str, description: str, *, label: str | None = None
) -> None:
    where = f"{label}: " if label else ""
    if not name:
        ctx.reject(f"{where}no name given and no reward function found in its code")
        return
    if not valid_name(name):
        ctx.reject(f"{where}name {name!r} is not a valid Python identifier", name=name)
        return
    if any(c.name == name for c in ctx.result.candidates):
        ctx.reject(f"{where}name {name!r} appears more than once in the reply", name=name)
        return
    description = clean_text(description, limit=1000)  # shown in terminals and reports
    ctx.result.candidates.append(
        Candidate(
            name=name, code=code, description=description, round=ctx.round, generator=ctx.generator
        )
    )
