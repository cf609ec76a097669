"""The sandbox worker: a separate interpreter that confines itself, then serves reward calls.

Started by :class:`rewardsmith.sandbox.pool.SandboxPool` as
``python -I -c "...main()" CONFIG_JSON``. It moves the protocol pipes off fds 0/1 (so stray writes
cannot corrupt the framing), imports everything it will need, applies :mod:`._confine`, reports
``{"op": "ready", ...}`` and then answers requests until its input closes:

* ``{"op": "load", "code", "name", "restricted"}`` -> ``{"ok", "error"}``: compile and execute
  the reward module once, and resolve its entry function;
* ``{"op": "call", "kwargs", "n"}`` -> ``{"ok", "values" | "error", "cpu_s"}``: call the reward
  with keyword arguments, as TRL does, and check its output.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import traceback
from collections.abc import Callable
from typing import Any

from rewardsmith.sandbox import _protocol, _restrict
from rewardsmith.sandbox._confine import Limits, confine
from rewardsmith.sandbox._entry import EntryError, resolve_entry

_MAX_ERROR_CHARS = 2000


def _short_error(exc: BaseException) -> str:
    """The exception's last traceback line (``Type: message``), with its line in the reward."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<reward>"]
    where = f" (reward line {frames[-1].lineno})" if frames else ""
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()
    last = text[-1] if text else type(exc).__name__
    return (last + where)[:_MAX_ERROR_CHARS]


class _Server:
    """Holds the one loaded reward of this worker and answers requests."""

    def __init__(self) -> None:
        self.func: Callable[..., Any] | None = None

    def load(self, request: dict[str, Any]) -> dict[str, Any]:
        code, name = request["code"], request.get("name")
        try:
            entry = resolve_entry(code, name)
            if request.get("restricted", True):
                compiled = _restrict.check_restricted(code)
                namespace = _restrict.restricted_globals()
            else:
                compiled = compile(code, "<reward>", "exec")
                namespace = _restrict.unrestricted_globals()
            exec(compiled, namespace)
            func = namespace.get(entry)
            if not callable(func):
                raise EntryError(f"{entry!r} is not a function after loading")
        except (_restrict.RestrictionError, EntryError) as exc:
            return {"ok": False, "error": str(exc)[:_MAX_ERROR_CHARS]}
        except BaseException as exc:  # noqa: BLE001 - untrusted code may raise anything
            return {"ok": False, "error": _short_error(exc)}
        self.func = func
        return {"ok": True}

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.func is None:
            return {"ok": False, "error": "no reward loaded"}
        try:
            raw = self.func(**request["kwargs"])
        except BaseException as exc:  # noqa: BLE001 - untrusted code may raise anything
            return {"ok": False, "error": _short_error(exc)}
        try:
            values = _protocol.coerce_values(raw, request["n"])
        except ValueError as exc:
            return {"ok": False, "error": f"bad output: {exc}"}
        return {"ok": True, "values": values}

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "load":
            reply = self.load(request)
        elif op == "call":
            reply = self.call(request)
        else:
            reply = {"ok": False, "error": f"unknown op {op!r}"}
        usage = resource.getrusage(resource.RUSAGE_SELF)
        reply["cpu_s"] = usage.ru_utime + usage.ru_stime
        return reply


def _take_protocol_fds() -> tuple[int, int]:
    """Duplicate stdin/stdout for the protocol and point fds 0 and 1 at /dev/null."""
    in_fd, out_fd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    sys.stdout = sys.stderr
    return in_fd, out_fd


def main() -> None:
    """Worker entry point; the configuration is a JSON object in ``sys.argv[1]``."""
    config = json.loads(sys.argv[1])
    in_fd, out_fd = _take_protocol_fds()
    _restrict.preload_modules()
    read_paths = sorted(
        {p for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path) if os.path.isdir(p)}
    )
    skip = frozenset(config.get("skip_layers", ()))
    applied, warnings = confine(config["workdir"], read_paths, Limits(**config["limits"]), skip)
    _protocol.write_message(out_fd, {"op": "ready", "layers": applied, "warnings": warnings})
    server = _Server()
    while True:
        try:
            request = _protocol.read_message(in_fd)
        except _protocol.ProtocolError:
            return  # the parent closed the pipe: shut down
        reply = server.handle(request)
        try:
            _protocol.write_message(out_fd, reply)
        except (TypeError, ValueError) as exc:
            _protocol.write_message(out_fd, {"ok": False, "error": f"unserialisable reply: {exc}"})
        except _protocol.ProtocolError:
            return


if __name__ == "__main__":
    main()
