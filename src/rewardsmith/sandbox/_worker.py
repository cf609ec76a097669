"""The sandbox worker: a separate interpreter that confines itself, then serves reward calls.

Started by :class:`rewardsmith.sandbox.pool.SandboxPool` as
``python -I -c "...main()" CONFIG_JSON``. It moves the protocol pipes off fds 0/1 (so stray writes
cannot corrupt the framing), imports everything it will need, applies :mod:`._confine`, reports
``{"op": "ready", ...}`` and then answers requests until its input closes:

* ``{"op": "load", "code", "name", "restricted"}`` -> ``{"ok", "stage", "error", "entry"}``:
  parse the source, find the entry function, compile it with RestrictedPython and execute the
  module once. Untrusted source is parsed and compiled here, never in the parent;
* ``{"op": "call", "kwargs", "n"}`` -> ``{"ok", "values" | "error", "call_cpu_s"}``: call the
  reward with keyword arguments, as TRL does, and check its output;
* ``{"op": "inspect", "code"}`` -> flat lists describing the top-level statements (used to
  split an LLM's reply into candidate rewards without parsing it in the parent).

Every reply echoes the request's ``op`` and ``seq`` and carries the worker's ``cpu_s`` so far.
"""

from __future__ import annotations

import ast
import json
import os
import resource
import sys
import time
import traceback
import types
from collections.abc import Callable
from typing import Any

from rewardsmith.sandbox import _protocol, _restrict
from rewardsmith.sandbox._confine import Limits, confine
from rewardsmith.sandbox._entry import (
    EntryError,
    follows_contract,
    has_completions,
    resolve_entry,
)

_MAX_ERROR_CHARS = 2000


def _short_error(exc: BaseException) -> str:
    """The exception's last traceback line (``Type: message``), with its line in the reward."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<reward>"]
    where = f" (reward line {frames[-1].lineno})" if frames else ""
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()
    last = text[-1] if text else type(exc).__name__
    return (last + where)[:_MAX_ERROR_CHARS]


def _syntax_error(exc: SyntaxError) -> str:
    return f"line {exc.lineno}: {exc.msg}"


def _attribute_view(value: Any) -> Any:
    """``trainer_state`` arrives as a dict; rewards read it as TRL's object (``.global_step``)."""
    return types.SimpleNamespace(**value) if isinstance(value, dict) else value


def _drop_log(*args: Any, **kwargs: Any) -> None:
    """Stand-in for TRL's ``log_extra``/``log_metric`` inside the sandbox."""


class _Server:
    """Holds the one loaded reward of this worker and answers requests."""

    def __init__(self) -> None:
        self.func: Callable[..., Any] | None = None

    def load(self, request: dict[str, Any]) -> dict[str, Any]:
        """Parse, find the entry, restrict, compile and run the module: the stages of a load.

        The reply names the stage that failed (``parse``, ``restrict``, ``load``) and, once the
        code parsed, the entry function's name.
        """
        code, name = request["code"], request.get("name")
        try:
            tree = ast.parse(code, filename="<reward>")
            entry = resolve_entry(tree, name)
        except SyntaxError as exc:
            return {"ok": False, "stage": "parse", "error": _syntax_error(exc)}
        except EntryError as exc:
            return {"ok": False, "stage": "parse", "error": str(exc)[:_MAX_ERROR_CHARS]}
        except BaseException as exc:  # noqa: BLE001 - e.g. RecursionError on absurd nesting
            return {"ok": False, "stage": "parse", "error": _short_error(exc)}
        reply: dict[str, Any] = {"entry": entry}
        try:
            if request.get("restricted", True):
                compiled = _restrict.check_restricted(code)
                namespace = _restrict.restricted_globals()
            else:
                compiled = compile(code, "<reward>", "exec")
                namespace = _restrict.unrestricted_globals()
        except _restrict.RestrictionError as exc:
            return {**reply, "ok": False, "stage": "restrict", "error": str(exc)[:_MAX_ERROR_CHARS]}
        except BaseException as exc:  # noqa: BLE001 - the compiler itself may give up
            return {**reply, "ok": False, "stage": "restrict", "error": _short_error(exc)}
        try:
            exec(compiled, namespace)
            func = namespace.get(entry)
            if not callable(func):
                raise EntryError(f"{entry!r} is not a function after loading")
        except EntryError as exc:
            return {**reply, "ok": False, "stage": "load", "error": str(exc)[:_MAX_ERROR_CHARS]}
        except BaseException as exc:  # noqa: BLE001 - untrusted code may raise anything
            return {**reply, "ok": False, "stage": "load", "error": _short_error(exc)}
        self.func = func
        return {**reply, "ok": True}

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.func is None:
            return {"ok": False, "error": "no reward loaded"}
        kwargs = request["kwargs"]
        if "trainer_state" in kwargs:
            kwargs["trainer_state"] = _attribute_view(kwargs["trainer_state"])
        # TRL passes logging callbacks that cannot cross the pipe: stand-ins that drop the data.
        for callback in ("log_extra", "log_metric"):
            kwargs.setdefault(callback, _drop_log)
        start = time.process_time()
        try:
            raw = self.func(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - untrusted code may raise anything
            return {"ok": False, "error": _short_error(exc)}
        finally:
            cost = time.process_time() - start
        try:
            values = _protocol.coerce_values(raw, request["n"])
        except ValueError as exc:
            return {"ok": False, "error": f"bad output: {exc}", "call_cpu_s": cost}
        return {"ok": True, "values": values, "call_cpu_s": cost}

    def inspect(self, request: dict[str, Any]) -> dict[str, Any]:
        """The top-level statements of a source text, for splitting an LLM's reply into rewards.

        Flat lists, one entry per statement: first line (decorators included), last line,
        function name or ``""``, whether the function has a ``completions`` parameter, whether
        it follows the whole reward contract, and the first line of its docstring.
        """
        try:
            tree = ast.parse(request["code"])
        except SyntaxError as exc:
            return {"ok": False, "error": _syntax_error(exc)}
        except BaseException as exc:  # noqa: BLE001 - e.g. RecursionError on absurd nesting
            return {"ok": False, "error": _short_error(exc)}
        reply: dict[str, Any] = {"ok": True, "starts": [], "ends": [], "defs": [],
                                 "reward_like": [], "contract": [], "docs": []}  # fmt: skip
        for node in tree.body:
            decorators = getattr(node, "decorator_list", [])
            reply["starts"].append(min([node.lineno] + [d.lineno for d in decorators]))
            reply["ends"].append(node.end_lineno or node.lineno)
            is_def = isinstance(node, ast.FunctionDef)
            reply["defs"].append(node.name if is_def else "")
            reply["reward_like"].append(is_def and has_completions(node))
            reply["contract"].append(is_def and follows_contract(node))
            doc = (ast.get_docstring(node) or "").strip() if is_def else ""
            reply["docs"].append(doc.splitlines()[0][:_MAX_ERROR_CHARS] if doc else "")
        return reply

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        handler = {"load": self.load, "call": self.call, "inspect": self.inspect}.get(op)
        reply = handler(request) if handler else {"ok": False, "error": f"unknown op {op!r}"}
        usage = resource.getrusage(resource.RUSAGE_SELF)
        reply.update(op=op, seq=request.get("seq"), cpu_s=usage.ru_utime + usage.ru_stime)
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
    limits = Limits(**config["limits"])
    applied, warnings = confine(
        config["workdir"], read_paths, limits, skip, parent_pid=config.get("parent_pid")
    )
    ready = {"op": "ready", "seq": 0, "layers": applied, "warnings": warnings}
    _protocol.write_message(out_fd, ready)
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
            failed = {"op": reply["op"], "seq": reply["seq"], "ok": False}
            _protocol.write_message(out_fd, {**failed, "error": f"unserialisable reply: {exc}"})
        except _protocol.ProtocolError:
            return


if __name__ == "__main__":
    main()
