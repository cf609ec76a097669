"""Turn a model's raw reply into candidates, robustly: what cannot be used becomes a rejection.

Accepted forms, tried in order:

1. JSON: a bare array of ``{"name", "code", "description"}`` objects, an object with a
   ``rewards`` (or ``candidates``) key holding such an array, or a single such object; found as
   the whole reply, inside a fenced block (```` ```json ````), or embedded in prose. Literal
   newlines inside JSON strings (a common model mistake in ``code``) are tolerated.
2. Python: fenced ```` ```python ```` blocks (or a reply that is Python source) defining one or
   more reward functions. Each public function with a ``completions`` parameter becomes a
   candidate named after the function; imports, constants and helper functions of the
   block are kept with each of them; the description is the docstring's first line.

Per item problems (no code, a name that is not an identifier, a name repeated in the reply) and
whole-reply problems (empty, nothing parsable) become
:class:`~rewardsmith.generators.base.Rejection` records. Nothing here raises on model output
and nothing here runs or even parses the code: Python is split into functions by a sandbox
worker (:meth:`rewardsmith.sandbox.SandboxPool.outline`), which reports line spans only.

>>> result = parse_reply('[{"name": "r", "code": "def r(prompts, completions, **kw): ...", '
...                      '"description": "d"}]', round=1, generator="llm")
>>> [c.name for c in result.candidates], result.rejections
(['r'], [])
"""

from __future__ import annotations

import json
import keyword
import re
from dataclasses import dataclass, field
from typing import Any

from rewardsmith.generators.base import Rejection
from rewardsmith.rewards.candidate import Candidate
from rewardsmith.sandbox.pool import Outline, Statement

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", flags=re.DOTALL)
_LIST_KEYS = ("rewards", "candidates", "reward_functions", "functions")
_EXCERPT = 160


@dataclass
class ParseResult:
    """Candidates found in one reply plus the rejections recorded while parsing it."""

    candidates: list[Candidate] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def parse_reply(text: str | None, *, round: int, generator: str) -> ParseResult:
    """Parse ``text`` (a model reply) into candidates for ``round``, never raising on content."""
    result = ParseResult()
    if text is None or not text.strip():
        result.rejections.append(_reject(round, generator, "empty reply"))
        return result
    items = _find_json_items(text)
    if items is not None:
        if not items:
            result.rejections.append(_reject(round, generator, "reply holds an empty JSON list"))
        for index, item in enumerate(items):
            _add_json_item(result, item, index, round=round, generator=generator)
    else:
        functions = _find_python_functions(text)
        if not functions:
            result.rejections.append(
                _reject(round, generator, f"no JSON array or Python reward found: {_excerpt(text)}")
            )
        for name, code, description in functions:
            _add(result, name, code, description, round=round, generator=generator)
    return result


def _reject(round: int, generator: str, reason: str, name: str | None = None) -> Rejection:
    return Rejection(round=round, generator=generator, stage="parse", reason=reason, name=name)


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat[:_EXCERPT] + ("..." if len(flat) > _EXCERPT else ""))


# --- JSON -----------------------------------------------------------------------------------


def _find_json_items(text: str) -> list[Any] | None:
    """The list of reward items in the first usable JSON value of ``text``, else None."""
    sources = [text] + [body for lang, body in _FENCE.findall(text) if lang.lower() != "python"]
    for source in sources:
        value = _loads(source.strip())
        items = _as_items(value)
        if items is not None:
            return items
    for source in sources:
        for value in _embedded_values(source):
            items = _as_items(value)
            if items:
                return items
    return None


def _loads(text: str) -> Any:
    try:
        return json.loads(text, strict=False)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        return None


def _embedded_values(text: str, limit: int = 50):
    """JSON values that start at a ``[`` or ``{`` inside prose (at most ``limit`` tries)."""
    decoder = json.JSONDecoder(strict=False)
    starts = [m.start() for m in re.finditer(r"[\[{]", text)][:limit]
    for start in starts:
        try:
            value, _ = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            continue
        yield value


def _as_items(value: Any) -> list[Any] | None:
    if isinstance(value, list):
        # A list of plain numbers or strings in prose is not a reply; a list with objects is.
        return value if not value or any(isinstance(item, dict) for item in value) else None
    if isinstance(value, dict):
        for key in _LIST_KEYS:
            if isinstance(value.get(key), list):
                return value[key]
        if isinstance(value.get("code"), str):
            return [value]
    return None


def _add_json_item(result: ParseResult, item: Any, index: int, *, round: int, generator: str):
    label = f"item {index + 1}"
    if not isinstance(item, dict):
        result.rejections.append(_reject(round, generator, f"{label} is not an object"))
        return
    code = item.get("code")
    name = item.get("name")
    name = name.strip() if isinstance(name, str) else None
    if not isinstance(code, str) or not code.strip():
        reason = f"{label} has no 'code' string"
        result.rejections.append(_reject(round, generator, reason, name=name))
        return
    code = _strip_fence(code)
    name = _resolve_name(name, code)
    description = item.get("description")
    description = description.strip() if isinstance(description, str) else ""
    _add(result, name, code, description, round=round, generator=generator, label=label)


def _strip_fence(code: str) -> str:
    """Drop a Markdown fence wrapped around a JSON item's code; end the code with a newline."""
    match = re.fullmatch(r"```[^\n]*\n(.*?)\n?```", code.strip(), flags=re.DOTALL)
    body = match.group(1) if match else code
    return body.strip("\n") + "\n"


def _resolve_name(name: str | None, code: str) -> str | None:
    """Keep ``name`` when ``code`` defines it; otherwise use the code's single reward function."""
    rewards = [st.function for st in _outline(code).statements if _looks_like_reward(st)]
    if name and (name in rewards or not rewards):
        return name
    if len(rewards) == 1:
        return rewards[0]
    return name


# --- Python ---------------------------------------------------------------------------------


def _outline(code: str) -> Outline:
    """The top-level statements of ``code``, parsed in a sandbox worker (never here)."""
    from rewardsmith.sandbox.pool import default_pool

    return default_pool().outline(code)


def _looks_like_reward(statement: Statement) -> bool:
    """A public function with a ``completions`` parameter (validation checks the rest)."""
    return statement.reward_like and not statement.function.startswith("_")


def _find_python_functions(text: str) -> list[tuple[str, str, str]]:
    """(name, code, description) for each reward function in the reply's Python blocks."""
    blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() in ("python", "py", "")]
    if not blocks:
        blocks = [text]
    found: list[tuple[str, str, str]] = []
    for block in blocks:
        found.extend(_split_block(block))
    return found


def _split_block(block: str) -> list[tuple[str, str, str]]:
    outline = _outline(block)
    if outline.error is not None:
        # Unfenced code after a line of prose: retry from the first line that starts code.
        start = re.search(r"^(?:import |from |def )", block, flags=re.MULTILINE)
        if start is None or start.start() == 0:
            return []
        block = block[start.start() :]
        outline = _outline(block)
        if outline.error is not None:
            return []
    lines = block.splitlines(keepends=True)
    rewards = [st for st in outline.statements if _looks_like_reward(st)]
    shared = [st for st in outline.statements if st not in rewards]
    found = []
    for fn in rewards:
        keep = shared + [fn] if len(rewards) > 1 else list(outline.statements)
        keep.sort(key=lambda st: st.start)
        code = "".join(_statement_source(lines, st) for st in keep)
        found.append((fn.function, code, fn.doc))
    return found


def _statement_source(lines: list[str], statement: Statement) -> str:
    text = "".join(lines[statement.start - 1 : statement.end])
    return text if text.endswith("\n") else text + "\n"


# --- Shared ---------------------------------------------------------------------------------


def _add(
    result: ParseResult,
    name: str | None,
    code: str,
    description: str,
    *,
    round: int,
    generator: str,
    label: str | None = None,
) -> None:
    where = f"{label}: " if label else ""
    if not name:
        reason = f"{where}no name given and no reward function found in its code"
        result.rejections.append(_reject(round, generator, reason))
        return
    if not name.isidentifier() or keyword.iskeyword(name):
        reason = f"{where}name {name!r} is not a valid Python identifier"
        result.rejections.append(_reject(round, generator, reason, name=name))
        return
    if any(c.name == name for c in result.candidates):
        reason = f"{where}name {name!r} appears more than once in the reply"
        result.rejections.append(_reject(round, generator, reason, name=name))
        return
    candidate = Candidate(
        name=name, code=code, description=description, round=round, generator=generator
    )
    result.candidates.append(candidate)
