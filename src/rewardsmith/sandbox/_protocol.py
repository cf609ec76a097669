"""Wire protocol between the sandbox pool and its workers, and the reward output check.

Messages are JSON objects framed by a 4-byte big-endian length. JSON, not pickle, in both
directions: a compromised worker must not be able to make the parent unpickle anything. Reads and
writes take an optional deadline (``time.monotonic()`` value) so the parent never blocks on a
hung worker.
"""

from __future__ import annotations

import json
import math
import os
import select
import struct
import time
from typing import Any

_HEADER = struct.Struct(">I")
#: Largest message either side accepts; a worker sending more is treated as broken.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class ProtocolError(Exception):
    """The peer closed the pipe, sent a malformed frame, or missed the deadline."""


class DeadlineExceeded(ProtocolError):
    """The deadline passed before the message was fully sent or received."""


class SendFailed(ProtocolError):
    """The peer closed its end before reading the whole message (it was already dead)."""


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


def encode(message: Any) -> bytes:
    """One framed message; raises ``TypeError``/``ValueError`` for what JSON cannot hold."""
    payload = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
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


def read_message(fd: int, deadline: float | None = None) -> Any:
    """Receive one JSON message; raises :class:`ProtocolError` on EOF, garbage or timeout."""
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {size} bytes exceeds the limit")
    try:
        return json.loads(_read_exact(fd, size, deadline))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"malformed message: {exc}") from exc


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
