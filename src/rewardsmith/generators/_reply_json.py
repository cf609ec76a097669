"""Which JSON value of a reply is its answer, and the keys a reward item may use.

A reply may hold several JSON values: a schema example restated before the answer, drafts, the
answer itself, its objects one by one. :func:`choose_json` keeps the value with the most
*complete* reward items (:func:`is_complete`: a closed object with a non-empty code string and
either a valid name or a ``def``); ties go to the outermost value, then to the later one (an
answer follows its example). Keys are matched case-insensitively, with common aliases
(:data:`NAME_KEYS`, :data:`CODE_KEYS`, :data:`DESCRIPTION_KEYS`); the answer may be wrapped in an
object under one of :data:`LIST_KEYS` (or any key holding a list of code-bearing objects).
Nothing here parses code: completeness is judged on the JSON data alone.

>>> choice = choose_json('Format: [{"name": "...", "code": "..."}] Answer: '
...                      '[{"name": "r", "code": "def r(completions, **kw): ..."}]')
>>> choice.items[0]["name"], choice.complete
('r', 1)
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from typing import Any

from rewardsmith.generators._json_repair import CutDict, Read, scan

NAME_KEYS = ("name", "function_name", "func_name", "reward_name", "func", "reward")
CODE_KEYS = ("code", "source", "source_code", "python", "implementation", "function", "body")
DESCRIPTION_KEYS = ("description", "desc", "summary", "rationale", "explanation")
LIST_KEYS = ("rewards", "candidates", "reward_functions", "functions", "items", "results")

DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?def[ \t]+([A-Za-z_]\w*)[ \t]*\(", flags=re.MULTILINE)


def valid_name(name: str) -> bool:
    """A Python identifier that is not a keyword."""
    return name.isidentifier() and not keyword.iskeyword(name)


def field_of(item: dict, keys: tuple[str, ...]) -> str | None:
    """The first non-blank string among ``item``'s ``keys`` (case-insensitive), else None."""
    lowered = {str(k).strip().lower(): v for k, v in item.items()}
    for key in keys:
        value = lowered.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def is_complete(item: Any) -> bool:
    """A closed object with code and either a valid name or a ``def`` (cheap, nothing parsed)."""
    if type(item) is not dict:  # a CutDict never counts
        return False
    code = field_of(item, CODE_KEYS)
    if code is None:
        return False
    name = field_of(item, NAME_KEYS)
    return (name is not None and valid_name(name.strip())) or DEF.search(code) is not None


def as_items(value: Any) -> list[Any] | None:
    """The reward items a JSON value holds, or None when it is not a reply shape."""
    if isinstance(value, list):
        return value if not value or any(isinstance(item, dict) for item in value) else None
    if not isinstance(value, dict):
        return None
    for key in LIST_KEYS:
        if isinstance(value.get(key), list):
            return value[key]
    keys = {str(k).strip().lower() for k in value}
    if any(isinstance(value.get(k), str) for k in value if str(k).strip().lower() in CODE_KEYS):
        return [value]
    if isinstance(value, CutDict) and (not value or keys & set(NAME_KEYS + CODE_KEYS)):
        return [value]  # a single object cut before its code
    for inner in value.values():  # {"answer": [...]}: any list of code-bearing objects
        if isinstance(inner, list) and any(
            isinstance(i, dict) and field_of(i, CODE_KEYS) for i in inner
        ):
            return inner
    return None


@dataclass
class Choice:
    """A JSON value of a reply: how it was read, its reward items, how many are complete."""

    read: Read
    items: list[Any]
    complete: int


def choose_json(text: str) -> Choice | None:
    """The value of ``text`` with the most complete items, else None when none holds items.

    Ties go to the outermost value, then to the latest; an empty list counts only as the whole
    text (``[]``), not as a bracket pair in prose.
    """
    first, last = len(text) - len(text.lstrip()), len(text.rstrip())
    options = []
    for read in scan(text):
        items = as_items(read.value)
        whole = read.start == first and read.end >= last
        if items is None or (not items and not whole):
            continue
        options.append(Choice(read, items, sum(map(is_complete, items))))
    if not options:
        return None
    best = max(option.complete for option in options)
    tied = [option for option in options if option.complete == best]

    def inside(a: Choice, b: Choice) -> bool:
        return a is not b and b.read.start <= a.read.start and a.read.end <= b.read.end

    outermost = [a for a in tied if not any(inside(a, b) for b in tied)]
    return max(outermost, key=lambda option: option.read.start)
