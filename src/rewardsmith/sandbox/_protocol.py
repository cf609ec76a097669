"""Wire protocol between the sandbox pool and its workers, and the reward output check.

Messages are JSON objects framed by a 4-byte big-endian length. JSON, not pickle, in both
directions: a compromised worker must not be able to make the parent unpickle anything. Frames
are written and read with ``orjson`` (a call's request carries every completion and its token
ids, and the standard library's encoder and decoder cost over a millisecond a call there); what
JSON has no literal for (NaN, infinities) crosses as ``null``. Reads and
writes take an optional deadline (``time.monotonic()`` value) so the parent never blocks on a
hung worker.

The parent treats every reply as hostile (the worker may be running escaped code that writes
its own frames): a reply is read with a size cap (:data:`MAX_REPLY_BYTES`), must be a flat JSON
object (no container deeper than a list of scalars, checked before the decoder recurses),
must echo the request's sequence number and operation, and must match the operation's schema
(:func:`check_reply`). Anything else raises :class:`ForgedReply`, and the pool kills the worker.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import select
import struct
import time
from typing import Any

import orjson

_HEADER = struct.Struct(">I")
#: Largest request the worker accepts (a batch of long completions fits comfortably).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: Largest reply the parent accepts: values for ~100k completions or a 2,000-char error.
MAX_REPLY_BYTES = 4 * 1024 * 1024
#: Longest error text a reply may carry (the worker truncates to 2,000 characters).
MAX_ERROR_CHARS = 4000


class ProtocolError(Exception):
    """The peer closed the pipe, sent a malformed frame, or missed the deadline."""


class DeadlineExceeded(ProtocolError):
    """The deadline passed before the message was fully sent or received."""


class SendFailed(ProtocolError):
    """The peer closed its end before reading the whole message (it was already dead)."""


class Unencodable(ValueError):
    """A request holding something JSON cannot carry (nothing was sent)."""


class ForgedReply(ProtocolError):
    """A reply that is oversized, nested, malformed, out of sequence or off-schema."""


def _wait(fd: int, deadline: float | None, for_write: bool) -> None:
    if deadline is None:
        return
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise DeadlineExceeded("deadline passed")
    readable, writable, _ = select.select(
        [] if for_write else [fd], [fd] if for_write else [], [], remaining
    )
    if not (readable or writable):
        raise DeadlineExceeded("deadline passed")


def _jsonable(value: Any) -> Any:
    """What JSON cannot hold as is: dataclasses (TRL's ``TrainerState``) and arrays/tensors."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode(message: Any) -> bytes:
    """One framed message; raises ``TypeError``/``ValueError`` for what JSON cannot hold."""
    payload = orjson.dumps(message, default=_jsonable, option=orjson.OPT_NON_STR_KEYS)
    return _HEADER.pack(len(payload)) + payload


def write_message(fd: int, message: Any, deadline: float | None = None) -> None:
    """Send one JSON message (see :func:`write_frame`)."""
    write_frame(fd, encode(message), deadline)


def write_frame(fd: int, frame: bytes, deadline: float | None = None) -> None:
    """Send an encoded frame; ``fd`` must be non-blocking when a deadline is given."""
    view = memoryview(frame)
    while view:
        _wait(fd, deadline, for_write=True)
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            continue
        except OSError as exc:
            raise SendFailed(f"write failed: {exc}") from exc
        view = view[written:]


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    while size:
        _wait(fd, deadline, for_write=False)
        try:
            chunk = os.read(fd, min(size, 1 << 20))
        except BlockingIOError:
            continue
        except OSError as exc:
            raise ProtocolError(f"read failed: {exc}") from exc
        if not chunk:
            raise ProtocolError("peer closed the pipe")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_message(fd: int, deadline: float | None = None, max_bytes: int = MAX_MESSAGE_BYTES) -> Any:
    """Receive one JSON message; raises :class:`ProtocolError` on EOF, garbage or timeout."""
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    if size > max_bytes:
        raise ForgedReply(f"message of {size} bytes exceeds the limit of {max_bytes}")
    try:
        return orjson.loads(_read_exact(fd, size, deadline))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ForgedReply(f"malformed message: {str(exc)[:200]}") from exc


def read_reply(fd: int, deadline: float | None = None) -> dict[str, Any]:
    """Receive one reply from a worker: capped in size and flat before it is decoded.

    Raises :class:`ForgedReply` for anything that is not a flat JSON object.
    """
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    if size > MAX_REPLY_BYTES:
        raise ForgedReply(f"reply of {size} bytes exceeds the limit of {MAX_REPLY_BYTES}")
    payload = _read_exact(fd, size, deadline)
    if nesting_depth(payload) > 2:
        raise ForgedReply("reply is nested deeper than an object of lists")
    try:
        reply = orjson.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ForgedReply(f"malformed reply: {str(exc)[:200]}") from exc
    if not isinstance(reply, dict):
        raise ForgedReply(f"reply is a {type(reply).__name__}, not an object")
    return reply


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def nesting_depth(payload: bytes) -> int:
    """The deepest bracket nesting of a JSON text, ignoring brackets inside strings.

    Linear and non-recursive, so a hostile reply cannot exhaust the parent's stack.

    >>> nesting_depth(b'{"a": [1, "]]"]}'), nesting_depth(b'[[[]]]'), nesting_depth(rb'["\\", [1]]')
    (2, 3, 2)
    """
    depth = deepest = 0
    for match in _BRACKET.finditer(_JSON_STRING.sub(b'""', payload)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def coerce_values(values: Any, n: int) -> list[float | None]:
    """Check a reward's output and return it as ``list[float | None]``.

    Policy: a list or tuple of exactly ``n`` entries; each entry ``None`` (no opinion), a float,
    or an int (coerced to float). ``bool`` is rejected (a predicate returned by mistake), as are
    NaN, infinities, ints too large for a float and every other type. Raises ``ValueError``.

    >>> coerce_values([1, 0.5, None], 3)
    [1.0, 0.5, None]
    >>> coerce_values([True], 1)
    Traceback (most recent call last):
    ...
    ValueError: value 0 is a bool; return 1.0/0.0 instead
    """
    if not isinstance(values, list | tuple):
        raise ValueError(f"returned {type(values).__name__}, expected a list of {n} floats")
    if len(values) != n:
        raise ValueError(f"returned {len(values)} values for {n} completions")
    out: list[float | None] = []
    for i, value in enumerate(values):
        if value is None:
            out.append(None)
            continue
        if isinstance(value, bool):
            raise ValueError(f"value {i} is a bool; return 1.0/0.0 instead")
        if not isinstance(value, int | float):
            raise ValueError(f"value {i} is a {type(value).__name__}, expected a float")
        try:
            number = float(value)
        except OverflowError:
            raise ValueError(f"value {i} is an int too large for a float") from None
        if not math.isfinite(number):
            raise ValueError(f"value {i} is {number}, not a finite float")
        out.append(number)
    return out


#: Per operation: field -> kind. Kinds: "str", "int", "num" (finite, >= 0), "bool",
#: "strs" / "ints" / "bools" / "values" (lists of scalars of that kind; values: numbers or null).
_SCHEMAS: dict[str, dict[str, str]] = {
    "ready": {"op": "str", "seq": "int", "layers": "strs", "warnings": "strs"},
    "load": {"op": "str", "seq": "int", "ok": "bool", "stage": "str", "error": "str",
             "entry": "str", "cpu_s": "num"},
    "call": {"op": "str", "seq": "int", "ok": "bool", "values": "values", "error": "str",
             "cpu_s": "num", "call_cpu_s": "num"},
    "inspect": {"op": "str", "seq": "int", "ok": "bool", "error": "str", "cpu_s": "num",
                "starts": "ints", "ends": "ints", "defs": "strs", "reward_like": "bools",
                "contract": "bools", "docs": "strs"},
}  # fmt: skip
#: Longest list a reply may hold (values of one call, layers, top-level statements).
MAX_LIST_ITEMS = 200_000


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value) and value >= 0


_ITEM_CHECKS = {
    "strs": lambda v: isinstance(v, str) and len(v) <= MAX_ERROR_CHARS,
    "ints": _is_int,
    "bools": lambda v: isinstance(v, bool),
    "values": lambda v: v is None or (not isinstance(v, bool) and isinstance(v, int | float)),
}
_SCALAR_CHECKS = {
    "str": lambda v: isinstance(v, str) and len(v) <= MAX_ERROR_CHARS,
    "int": _is_int,
    "num": _is_num,
    "bool": lambda v: isinstance(v, bool),
}


def check_reply(reply: dict[str, Any], op: str, seq: int) -> dict[str, Any]:
    """``reply`` when it answers request ``seq`` of kind ``op`` and fits that op's schema.

    Raises :class:`ForgedReply` naming the first problem. Values are checked for type here and
    for count and finiteness by :func:`coerce_values`.

    >>> check_reply({"op": "call", "seq": 3, "ok": True, "values": [1.0]}, "call", 3)["ok"]
    True
    >>> check_reply({"op": "call", "seq": 2}, "call", 3)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ...
    rewardsmith.sandbox._protocol.ForgedReply: reply to request 3 (call) carries seq 2
    """
    schema = _SCHEMAS[op]
    if reply.get("op") != op:
        raise ForgedReply(f"reply to request {seq} ({op}) is a {str(reply.get('op'))[:20]!r}")
    if reply.get("seq") != seq:
        raise ForgedReply(f"reply to request {seq} ({op}) carries seq {reply.get('seq')!r:.20}")
    unknown = set(reply) - set(schema)
    if unknown:
        raise ForgedReply(f"reply has unknown fields {sorted(unknown)[:5]}")
    if op != "ready" and "ok" not in reply:
        raise ForgedReply("reply lacks 'ok'")
    for key, value in reply.items():
        kind = schema[key]
        if kind in _ITEM_CHECKS:
            valid = isinstance(value, list) and len(value) <= MAX_LIST_ITEMS
            valid = valid and all(map(_ITEM_CHECKS[kind], value))
        else:
            valid = _SCALAR_CHECKS[kind](value)
        if not valid:
            raise ForgedReply(f"reply field {key!r} is not a valid {kind}")
    return reply
