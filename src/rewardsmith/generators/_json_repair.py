"""A lenient JSON reader for model replies: repairs the common slips, salvages truncated text.

:func:`read_value` reads one JSON value at an offset of a text; :func:`scan` reads every array or
object that starts at a ``[`` or ``{`` of a text (prose, fences and all). Beyond strict JSON
(RFC 8259) they accept, and name in :attr:`Read.repairs`:

- a trailing comma before ``]`` or ``}``; a missing comma between two objects of an array;
- single-quoted, triple-quoted and unquoted-identifier keys and strings as Python writes them
  (``'a'``, ``\"\"\"a\"\"\"``); a single-quoted string ends at its first unescaped ``'``, so one
  holding an apostrophe fails to read rather than being guessed at;
- literal control characters (newlines, tabs) inside strings, and unknown escapes such as ``\\d``
  (kept as backslash + character: what a model writing a regex meant);
- the Python literals ``True``, ``False``, ``None`` (and ``NaN``/``Infinity`` as :mod:`json` does).

When the text ends inside a value, what was read is kept: a container that was cut is a
:class:`CutList` or :class:`CutDict` whose ``where`` says where the text ended (``"mid-object"``,
``"mid-string (in 'code')"``, ``"between items"``); a string, number or literal that was cut is
dropped from its container. Only text that ends can be cut: any other malformation fails the read.

Nothing is evaluated, and nesting deeper than :data:`MAX_DEPTH` fails the read instead of raising
:class:`RecursionError`. Reading is token by token with compiled patterns, so a long reply is cheap.

>>> read_value("[{'name': 'a', 'ok': True,},]", 0).value
[{'name': 'a', 'ok': True}]
>>> cut = read_value('[{"name": "a"}, {"name": "b", "code": "def', 0).value
>>> type(cut).__name__, cut[0], cut[1].where
('CutList', {'name': 'a'}, "mid-string (in 'code')")
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 100
MAX_STARTS = 200

_WS = re.compile(r"\s*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_WORD = re.compile(r"-?[A-Za-z_][A-Za-z0-9_]*")
_STRINGS = {  # opening quote -> pattern of the whole string (body in group 1)
    '"""': re.compile(r'"""(.*?)"""', re.DOTALL),
    "'''": re.compile(r"'''(.*?)'''", re.DOTALL),
    '"': re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"', re.DOTALL),
    "'": re.compile(r"'([^'\\]*(?:\\.[^'\\]*)*)'", re.DOTALL),
}
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
                   "t": "\t", "'": "'"}  # fmt: skip
_LITERALS = {"true": True, "false": False, "null": None, "NaN": float("nan"),
             "Infinity": float("inf"), "-Infinity": float("-inf")}  # fmt: skip
_PY_LITERALS = {"True": True, "False": False, "None": None}


class CutList(list):
    """A list the text ended inside; ``where`` says where (the innermost cut place)."""

    where = "between items"


class CutDict(dict):
    """An object the text ended inside; ``where`` says where (the innermost cut place)."""

    where = "mid-object"


class VerbatimStr(str):
    """A string that held literal line breaks and ``\\n``/``\\r``/``\\t`` escapes too.

    The string itself is decoded as JSON says; ``verbatim`` keeps those escapes as written,
    which is what a model that does not escape line breaks usually meant (``text.count('\\n')``
    in code). Which one is right is for the caller to find out.
    """

    verbatim: str


class ReadError(ValueError):
    """The text at the offset is not a (repairable) JSON value."""


@dataclass(frozen=True)
class Read:
    """One value read from ``text[start:end]``; ``cut`` when the text ended inside it."""

    value: Any
    start: int
    end: int
    cut: bool
    repairs: tuple[str, ...]


def read_value(text: str, start: int) -> Read:
    """Read the value at ``text[start]`` (see the module docstring); raises :class:`ReadError`."""
    reader = _Reader(text)
    try:
        value, end = reader.value(start, 0)
    except _Cut as cut:
        return Read(cut.partial, start, len(text), True, tuple(sorted(reader.repairs)))
    return Read(value, start, end, False, tuple(sorted(reader.repairs)))


def scan(text: str, *, max_starts: int = MAX_STARTS) -> list[Read]:
    """Every array/object readable at a ``[``/``{`` of ``text``, in order of their starts.

    Starts inside a value read in full are skipped (its parts are not separate answers); starts
    inside a cut value are tried too, since a cut value may have swallowed a stray bracket. At
    most ``max_starts`` starts are tried, so a reply full of brackets stays cheap.
    """
    reads: list[Read] = []
    skip_to = 0
    tried = 0
    for match in re.finditer(r"[\[{]", text):
        if match.start() < skip_to:
            continue
        tried += 1
        if tried > max_starts:
            break
        try:
            read = read_value(text, match.start())
        except ReadError:
            continue
        reads.append(read)
        if not read.cut:
            skip_to = read.end
    return reads


class _Cut(Exception):
    """The text ended at ``where``; ``partial`` is the container read so far (or None)."""

    def __init__(self, where: str, partial: Any = None) -> None:
        super().__init__(where)
        self.where = where
        self.partial = partial


def _place(key: str | None) -> str:
    return f" (in {key!r})" if key is not None else ""


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.repairs: set[str] = set()

    def ws(self, pos: int) -> int:
        return _WS.match(self.text, pos).end()

    def peek(self, pos: int, where: str, partial: Callable[[], Any] = lambda: None) -> str:
        """The character at ``pos``; at the end of the text, a cut at ``where`` (``partial()``)."""
        if pos >= len(self.text):
            raise _Cut(where, partial())
        return self.text[pos]

    def value(self, pos: int, depth: int, key: str | None = None) -> tuple[Any, int]:
        pos = self.ws(pos)
        char = self.peek(pos, f"before a value{_place(key)}")
        if char in "[{":
            if depth >= MAX_DEPTH:
                raise ReadError("nested too deeply")
            reader = self.array if char == "[" else self.object
            return reader(pos + 1, depth + 1)
        if char in "\"'":
            return self.string(pos, key)
        return self.scalar(pos, key)

    def scalar(self, pos: int, key: str | None) -> tuple[Any, int]:
        number = _NUMBER.match(self.text, pos)
        word = _WORD.match(self.text, pos)
        match = word if word is not None else number
        if match is not None and match.end() == len(self.text):
            raise _Cut(f"mid-value{_place(key)}")  # "tru" or "12" at the very end: maybe cut
        if word is not None and word.group() in _LITERALS:
            return _LITERALS[word.group()], word.end()
        if word is not None and word.group() in _PY_LITERALS:
            self.repairs.add("Python literal")
            return _PY_LITERALS[word.group()], word.end()
        if number is not None:
            text = number.group()
            return (float(text) if any(c in text for c in ".eE") else int(text)), number.end()
        raise ReadError(f"unexpected {self.text[pos]!r} at {pos}")

    def string(self, pos: int, key: str | None) -> tuple[str, int]:
        quote = next(q for q in _STRINGS if self.text.startswith(q, pos))
        match = _STRINGS[quote].match(self.text, pos)
        if match is None:  # no closing quote anywhere: the text ended inside the string
            raise _Cut(f"mid-string{_place(key)}")
        if quote != '"':
            self.repairs.add("single quotes" if quote == "'" else "triple quotes")
        body = match.group(1)
        if len(quote) == 3 or not any(c in body for c in "\n\r\t"):
            return self.decode(body), match.end()
        self.repairs.add("control characters in a string")
        decoded = self.decode(body)
        if "\n" in body and re.search(r"\\[nrt]", body):
            decoded = VerbatimStr(decoded)
            decoded.verbatim = self.decode(body, keep="nrt")
        return decoded, match.end()

    def decode(self, body: str, keep: str = "") -> str:
        """``body`` with its escapes decoded, except those in ``keep`` (kept as written)."""

        def one(match: re.Match) -> str:
            escape = match.group(1)
            if len(escape) == 5:
                return chr(int(escape[1:], 16))
            if escape in _SIMPLE_ESCAPES and escape not in keep:
                return _SIMPLE_ESCAPES[escape]
            if escape not in keep:
                self.repairs.add("unknown escape kept")
            return "\\" + escape

        text = _ESCAPE.sub(one, body)
        if any("\ud800" <= c <= "\udfff" for c in text):  # \ud83d\ude00: join surrogate pairs
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return text

    def key(self, pos: int, partial: dict) -> tuple[str, int]:
        char = self.peek(pos, "mid-object", lambda: _cut_dict(partial, "mid-object"))
        if char in "\"'":
            try:
                return self.string(pos, None)
            except _Cut:
                raise _Cut("mid-object", _cut_dict(partial, "mid-object")) from None
        word = _WORD.match(self.text, pos)
        if word is None or word.group().startswith("-"):
            raise ReadError(f"expected a key at {pos}")
        if word.end() == len(self.text):
            raise _Cut("mid-object", _cut_dict(partial, "mid-object"))
        self.repairs.add("unquoted key")
        return word.group(), word.end()

    def object(self, pos: int, depth: int) -> tuple[dict, int]:
        out: dict = {}
        pos = self.ws(pos)
        if self.peek(pos, "mid-object", lambda: _cut_dict(out, "mid-object")) == "}":
            return out, pos + 1
        while True:
            key, pos = self.key(pos, out)
            pos = self.ws(pos)
            if self.peek(pos, "mid-object", lambda: _cut_dict(out, "mid-object")) != ":":
                raise ReadError(f"expected ':' at {pos}")
            try:
                out[key], pos = self.value(pos + 1, depth, key)
            except _Cut as cut:
                if cut.partial is not None:
                    out[key] = cut.partial
                raise _Cut(cut.where, _cut_dict(out, cut.where)) from None
            pos = self.ws(pos)
            char = self.peek(pos, "mid-object", lambda: _cut_dict(out, "mid-object"))
            if char == "}":
                return out, pos + 1
            if char != ",":
                raise ReadError(f"expected ',' or '}}' at {pos}")
            pos = self.ws(pos + 1)
            if self.peek(pos, "mid-object", lambda: _cut_dict(out, "mid-object")) == "}":
                self.repairs.add("trailing comma")
                return out, pos + 1

    def array(self, pos: int, depth: int) -> tuple[list, int]:
        out: list = []
        pos = self.ws(pos)
        if self.peek(pos, "between items", lambda: _cut_list(out, "between items")) == "]":
            return out, pos + 1
        while True:
            try:
                value, pos = self.value(pos, depth)
            except _Cut as cut:
                if cut.partial is not None:
                    out.append(cut.partial)
                raise _Cut(cut.where, _cut_list(out, cut.where)) from None
            out.append(value)
            pos = self.ws(pos)
            char = self.peek(pos, "between items", lambda: _cut_list(out, "between items"))
            if char == "]":
                return out, pos + 1
            if char in "{[" and isinstance(value, dict | list):
                self.repairs.add("missing comma")
                continue
            if char != ",":
                raise ReadError(f"expected ',' or ']' at {pos}")
            pos = self.ws(pos + 1)
            if self.peek(pos, "between items", lambda: _cut_list(out, "between items")) == "]":
                self.repairs.add("trailing comma")
                return out, pos + 1


def _cut_dict(items: dict, where: str) -> CutDict:
    cut = CutDict(items)
    cut.where = where
    return cut


def _cut_list(items: list, where: str) -> CutList:
    cut = CutList(items)
    cut.where = where
    return cut
