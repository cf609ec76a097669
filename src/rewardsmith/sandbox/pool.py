"""Run untrusted reward code in a pool of confined worker processes.

Generated rewards never run, nor are parsed, in the trainer's process. Each loaded reward gets
its own persistent worker (a fresh ``python`` started with a scrubbed environment, in its own
session and process group, working in a private temp dir); the worker parses, restricts and
compiles the code once and then serves many calls over length-prefixed JSON on pipes, so a call
costs well under a millisecond of overhead. A trial starts its rewards' workers ahead
(:meth:`SandboxPool.prestart`), while it loads its model.

What it protects against, layer by layer; each layer has evil tests that only it stops
(``tests/sandbox/test_language_layer.py``, ``test_kernel_layer.py``, ``test_hostile.py``,
``test_parent_layer.py``), and ``rewardsmith doctor`` says which layers this machine provides:

* **Language** (:mod:`._restrict`): RestrictedPython (no ``_names``, no frame or code
  attributes, no ``exec``/``eval``/``compile``/``open``/``type``, no ``str.format`` field
  lookups), safe builtins, and imports that return read-only views of allowed modules holding
  only attributes listed one by one as safe (nothing that gets or sets attributes by a
  caller-chosen name, hands out frames, globals or modules, or evaluates strings).
* **Kernel** (:mod:`._seccomp`): a seccomp-bpf allow-list of system calls, installed last; exec
  of any kind, ``memfd_create``, sockets of every family, new processes and namespaces, IPC,
  ``ptrace``, ``prctl``, mounts, ``bpf``, perf, io_uring and keyrings kill the worker.
* **Process** (:mod:`._confine`): namespaces (network, IPC, UTS, mount, PID; through a user
  namespace when not root), Landlock (reads only beneath the Python installation and the temp
  dir, writes only beneath the temp dir, no exec, TCP and cross-sandbox signals denied), the
  ``nobody`` user when started as root, ``no_new_privs``, a parent-death signal (checked against
  the expected parent to close the race), and rlimits (1 GiB address space, CPU seconds, 1 MiB
  files, 32 open files, no new processes, no core dumps).
* **Parent** (this module and :mod:`._protocol`): a wall-clock timeout per call (the worker's
  process group is SIGKILLed and replaced); replies are size-capped, flat, sequenced and
  schema-checked, so a worker writing forged frames is killed and its call failed, never
  crashing or desynchronising the trainer; error text is stripped of control characters;
  inputs are copied for every call and each reward has its own process; a reward that times out
  ``max_timeouts`` times is disabled for good, whatever worker it was in.

What it does not protect against:

* Kernel bugs reachable through the allowed system calls, and CPU side channels: there is no VM.
* Layers the host cannot provide: old kernels without Landlock or seccomp, containers that
  forbid user namespaces. Each missing layer is logged once as a warning and shown by
  ``rewardsmith doctor``; the remaining layers still apply.
* Reading the Python installation (its files are readable by design), burning the CPU time and
  memory it is given, and results that are wrong but well-formed: that is what validation's
  probes and the training monitor look for.

Workers import the allowed modules before confining themselves: afterwards they may not be able
to read the standard library at all (an interpreter under ``/root`` is unreadable to ``nobody``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from rewardsmith.sandbox import _protocol
from rewardsmith.sandbox._confine import Limits
from rewardsmith.sandbox._process import WorkerProcess
from rewardsmith.sandbox.results import CallResult, Outline, clean_text, outline_from

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0

__all__ = ["DEFAULT_TIMEOUT_S", "CallResult", "Limits", "Outline", "SandboxPool", "clean_text"]


#: ``trainer_state.log_history`` entries passed to a sandboxed reward: the most recent ones.
#: The whole history grows with every logged step (hundreds of kilobytes late in a run) and
#: would be re-encoded on every call; validation sends the same shape.
MAX_LOG_HISTORY = 8


def _slim_state(state: Any) -> Any:
    """TRL's ``TrainerState`` (or its dict) as a dict with the last log entries only."""
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        state = {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}
    if isinstance(state, dict) and isinstance(state.get("log_history"), list):
        state = {**state, "log_history": state["log_history"][-MAX_LOG_HISTORY:]}
    return state


def _call_message(kwargs: dict[str, Any], n: int) -> dict[str, Any]:
    return {"op": "call", "kwargs": kwargs, "n": n}


def _plain_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` less what JSON cannot carry (``prompts``/``completions`` must be carried)."""
    plain = {}
    for key, value in kwargs.items():
        try:
            _protocol.encode(value)
        except (TypeError, ValueError):
            if key in ("prompts", "completions"):
                raise
            logger.debug("not passing %r to a sandboxed reward: not JSON-serialisable", key)
            continue
        plain[key] = value
    return plain


class SandboxPool:
    """Persistent confined workers, one per loaded reward, at most ``max_workers`` alive.

    Thread-safe: calls to different rewards run in parallel, calls to one reward are serialised.
    Use as a context manager or call :meth:`close`. A worker dies with the thread that started
    it (parent-death signal); the next call then starts a new one transparently.
    ``limits`` are the per-worker resource limits (1 GiB address space, 120 s CPU by default;
    a worker past half its CPU budget is retired and replaced). ``skip_layers`` names OS layers
    not to apply (``_confine.LAYER_NAMES``); it exists for tests that prove each layer alone.
    """

    def __init__(
        self,
        max_workers: int = 8,
        limits: Limits | None = None,
        startup_timeout_s: float = 30.0,
        *,
        skip_layers: Sequence[str] = (),
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers
        self.limits = limits or Limits()
        self.startup_timeout_s = startup_timeout_s
        # Test-only: OS layers not to apply, so a test can show what one layer stops alone.
        self.skip_layers = frozenset(skip_layers)
        self._workers: OrderedDict[str, WorkerProcess] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False
        self.spawned_pids: list[int] = []  # every worker ever started, for diagnostics and tests

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _key(code: str, name: str | None, restricted: bool) -> str:
        text = f"{name}\0{int(restricted)}\0{code}"
        return hashlib.sha256(text.encode()).hexdigest()

    def _worker_for(self, key: str, *, wait: bool = True) -> WorkerProcess:
        """The live worker for ``key``, starting one (and evicting the oldest idle) if needed;
        ``wait=False`` only spawns a new one (:class:`WorkerProcess`)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the sandbox pool is closed")
            worker = self._workers.get(key)
            if worker is not None and worker.alive():
                self._workers.move_to_end(key)
                return worker
            if worker is not None:  # died while idle (e.g. parent-death signal): replace it
                self._workers.pop(key).kill()
            while len(self._workers) >= self.max_workers:
                idle = next((k for k, w in self._workers.items() if not w.lock.locked()), None)
                if idle is None:
                    break
                self._workers.pop(idle).kill()
        worker = WorkerProcess(self.limits, self.startup_timeout_s, self.skip_layers, wait=wait)
        with self._lock:
            self.spawned_pids.append(worker.pid)
            raced = self._workers.get(key)
            if self._closed or (raced is not None and raced.alive()):
                worker.kill()  # closed meanwhile, or another thread started this reward first
                if self._closed:
                    raise RuntimeError("the sandbox pool is closed")
                return raced
            self._workers[key] = worker
        return worker

    def _drop(self, key: str, worker: WorkerProcess) -> None:
        with self._lock:
            if self._workers.get(key) is worker:
                del self._workers[key]
        worker.kill()

    def _request(
        self, key: str, worker: WorkerProcess, message: dict[str, Any], timeout_s: float
    ) -> dict[str, Any] | CallResult:
        """One request; a timeout, a dead worker or a forged reply becomes a failed result
        and a fresh worker."""
        try:
            reply = worker.request(message, timeout_s)
        except _protocol.SendFailed:
            self._drop(key, worker)  # died before this request reached it: not this call's doing
            raise
        except _protocol.DeadlineExceeded:
            self._drop(key, worker)
            return CallResult(ok=False, error=f"timed out after {timeout_s:g}s", timed_out=True)
        except _protocol.ForgedReply as exc:
            self._drop(key, worker)
            logger.warning("sandbox worker %d broke the protocol: %s", worker.pid, exc)
            return CallResult(ok=False, error=f"worker broke the protocol ({exc})", crashed=True)
        except _protocol.ProtocolError as exc:
            reason = worker.describe_exit()
            self._drop(key, worker)
            return CallResult(ok=False, error=f"worker crashed ({exc}; {reason})", crashed=True)
        if reply.get("cpu_s", 0.0) > self.limits.cpu_s / 2:
            self._drop(key, worker)  # retire before RLIMIT_CPU kills it mid-call
        return reply

    def _started(self, key: str, worker: WorkerProcess) -> CallResult | None:
        """Wait for a worker spawned ahead (:meth:`prestart`); a failed result when it did not
        start."""
        try:
            worker.wait_ready()
        except OSError as exc:
            self._drop(key, worker)
            return CallResult(ok=False, error=str(exc), crashed=True)
        return None

    def prestart(self, code: str, name: str | None = None, *, restricted: bool = True) -> None:
        """Spawn the worker for a reward now and return at once: it starts and confines itself
        while the caller does other work (a trial loads its model), and the reward's first
        call finds it ready. Call it from the thread that will call the reward: a worker dies
        with the thread that started it. Never raises for a worker that cannot start (the
        first call reports that)."""
        try:
            self._worker_for(self._key(code, name, restricted), wait=False)
        except OSError as exc:
            logger.info("could not start a sandbox worker ahead: %s", exc)

    def _ensure_loaded(
        self, key: str, worker: WorkerProcess, code: str, name: str | None, restricted: bool,
        timeout_s: float,
    ) -> CallResult | None:  # fmt: skip
        """Load the reward into ``worker`` once; a failed result when it does not load."""
        if worker.loaded:
            return None
        message = {"op": "load", "code": code, "name": name, "restricted": restricted}
        reply = self._request(key, worker, message, timeout_s)
        if isinstance(reply, CallResult):
            return replace(reply, stage="load")
        worker.entry = reply.get("entry")
        if not reply["ok"]:
            self._drop(key, worker)
            error = str(reply.get("error") or "failed to load")
            return CallResult(ok=False, error=error, stage=reply.get("stage") or "load",
                              entry=worker.entry)  # fmt: skip
        worker.loaded = True
        return None

    def load(
        self,
        code: str,
        name: str | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        restricted: bool = True,
    ) -> CallResult:
        """Load ``code`` into its worker (compile and run the module, find the reward)."""
        start = time.perf_counter()
        result = self._run(code, name, None, timeout_s, restricted)
        if isinstance(result, dict):
            result = CallResult(ok=True, entry=result.get("entry"))
        return _finish(result, start)

    def _run(
        self,
        code: str,
        name: str | None,
        message: dict[str, Any] | None,
        timeout_s: float,
        restricted: bool,
    ) -> dict[str, Any] | CallResult:
        """Load (once) and, with a ``message``, call; retried once when the worker was found dead.

        A worker can die between calls for reasons that are not the reward's (it is killed by
        the parent-death signal when the thread that started it exits); a request it never read
        is safe to repeat on a fresh worker.
        """
        key = self._key(code, name, restricted)
        for attempt in (1, 2):
            try:
                worker = self._worker_for(key)
            except OSError as exc:  # a worker could not start (a closed pool still raises)
                return CallResult(ok=False, error=str(exc), crashed=True)
            try:
                with worker.lock:
                    failure = self._started(key, worker) or self._ensure_loaded(
                        key, worker, code, name, restricted, timeout_s
                    )
                    if failure is not None or message is None:
                        return failure or {"ok": True, "entry": worker.entry}
                    return self._request(key, worker, message, timeout_s)
            except _protocol.SendFailed as exc:
                if attempt == 2:
                    return CallResult(ok=False, error=f"worker unreachable: {exc}", crashed=True)
                logger.info("sandbox worker %d was dead before the request; retrying", worker.pid)
        raise AssertionError("unreachable")

    def call(
        self,
        code: str,
        name: str | None,
        prompts: Sequence[Any] | None,
        completions: Sequence[Any],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        restricted: bool = True,
        **kwargs: Any,
    ) -> CallResult:
        """Call the reward in ``code`` as TRL does: all keyword arguments.

        ``kwargs`` are the dataset columns (``answer``, ``question``...) and TRL's extras
        (``completion_ids``, ``trainer_state`` with its last :data:`MAX_LOG_HISTORY` log
        entries); values JSON cannot carry are dropped, and NaN or infinities arrive as None.
        ``restricted=False`` skips the language layer and exists only to test the OS layer
        with a simulated escape. Never raises for anything the reward does.
        """
        start = time.perf_counter()
        n = len(completions)
        kwargs = {"prompts": prompts, "completions": completions, **kwargs}
        if "trainer_state" in kwargs:
            kwargs["trainer_state"] = _slim_state(kwargs["trainer_state"])
        try:  # encoded once on the way out; only when that fails are the kwargs filtered
            reply = self._run(code, name, _call_message(kwargs, n), timeout_s, restricted)
        except _protocol.Unencodable:
            try:
                kwargs = _plain_kwargs(kwargs)
            except (TypeError, ValueError) as exc:
                return _finish(CallResult(ok=False, error=f"inputs not serialisable: {exc}"), start)
            reply = self._run(code, name, _call_message(kwargs, n), timeout_s, restricted)
        if isinstance(reply, CallResult):
            return _finish(reply, start)
        cost = float(reply.get("call_cpu_s", 0.0))
        if not reply["ok"]:
            return _finish(CallResult(ok=False, error=str(reply.get("error")), cpu_s=cost), start)
        try:
            values = _protocol.coerce_values(reply.get("values"), n)
        except ValueError as exc:
            return _finish(CallResult(ok=False, error=f"bad output: {exc}", cpu_s=cost), start)
        return _finish(CallResult(ok=True, values=tuple(values), cpu_s=cost), start)

    def outline(self, code: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Outline:
        """Parse ``code`` in a worker and describe its top-level statements; never raises.

        For splitting untrusted text (an LLM's reply) into functions without parsing it here.
        """
        key = "outline"
        for attempt in (1, 2):
            try:
                worker = self._worker_for(key)
                with worker.lock:
                    reply = self._request(key, worker, {"op": "inspect", "code": code}, timeout_s)
            except _protocol.SendFailed:
                if attempt == 2:
                    return Outline(error="sandbox worker unreachable")
                continue
            except (OSError, RuntimeError) as exc:
                return Outline(error=clean_text(str(exc)))
            if isinstance(reply, CallResult):
                return Outline(error=clean_text(reply.error or "sandbox failure"))
            if not reply["ok"]:
                return Outline(error=clean_text(str(reply.get("error"))))
            return outline_from(reply)
        raise AssertionError("unreachable")

    def discard(self, code: str, name: str | None = None, *, restricted: bool = True) -> None:
        """Stop the worker holding this reward, if any."""
        key = self._key(code, name, restricted)
        with self._lock:
            worker = self._workers.pop(key, None)
        if worker is not None:
            with worker.lock:
                worker.kill()

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers."""
        with self._lock:
            return [w.pid for w in self._workers.values()]

    def close(self) -> None:
        """Kill every worker; later calls raise ``RuntimeError``."""
        with self._lock:
            self._closed = True
            workers = list(self._workers.values())
            self._workers.clear()
        for worker in workers:
            worker.kill()


def _finish(result: CallResult, start: float) -> CallResult:
    """``result`` with its duration and its error text made safe to print."""
    error = None if result.error is None else clean_text(result.error)
    return replace(result, error=error, duration_s=time.perf_counter() - start)
