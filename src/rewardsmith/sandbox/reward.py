"""A generated reward behind TRL's contract, run in a sandbox pool; the process-wide pool."""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

from rewardsmith.sandbox.pool import DEFAULT_TIMEOUT_S, SandboxPool
from rewardsmith.sandbox.results import CallResult

logger = logging.getLogger(__name__)

_default_pool: SandboxPool | None = None
_default_lock = threading.Lock()


def default_pool() -> SandboxPool:
    """The process-wide pool used by rewards not bound to one; closed at interpreter exit."""
    global _default_pool
    with _default_lock:
        if _default_pool is None:
            _default_pool = SandboxPool()
            atexit.register(_default_pool.close)
        return _default_pool


def _forget_default_pool_in_child() -> None:
    global _default_pool
    _default_pool = None  # the workers belong to the parent; a forked child starts its own


os.register_at_fork(after_in_child=_forget_default_pool_in_child)


class SandboxedReward:
    """A generated reward behind the TRL contract, run in a sandbox pool.

    Picklable (the pool is not pickled; an unpickled copy uses :func:`default_pool`), with
    ``__name__`` set to the reward's name. A failed call (timeout, crash, exception, bad output)
    returns ``[None] * len(completions)`` and is counted: :attr:`failures`, :attr:`timeouts`,
    :attr:`calls`, :attr:`last_error` (:attr:`last_result` holds the last :class:`CallResult`,
    with its duration), so a trainer can fail a trial past a threshold (:attr:`failure_rate`).
    Counters are per object, not shared between pickled copies, and outlive workers: a reward
    whose worker is replaced after a timeout starts afresh in the new worker, but after
    ``max_timeouts`` timeouts the reward is disabled (every later call fails at once), so a
    reward that hangs every N calls cannot hide behind worker restarts.
    """

    def __init__(
        self,
        code: str,
        name: str,
        *,
        pool: SandboxPool | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_timeouts: int = 3,
    ) -> None:
        self.code = code
        self.__name__ = name
        self.__qualname__ = name
        self.timeout_s = timeout_s
        self.max_timeouts = max_timeouts
        self.restricted = True  # False only in tests that simulate a language-layer escape
        self.pool = pool
        self.calls = 0
        self.failures = 0
        self.timeouts = 0
        self.last_error: str | None = None
        self.last_result: CallResult | None = None

    def __repr__(self) -> str:
        return f"SandboxedReward({self.__name__!r}, calls={self.calls}, failures={self.failures})"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["pool"] = None
        return state

    @property
    def failure_rate(self) -> float:
        """Failed calls / calls (0.0 before the first call)."""
        return self.failures / self.calls if self.calls else 0.0

    def prestart(self) -> None:
        """Start this reward's worker now, ahead of its first call
        (:meth:`~rewardsmith.sandbox.pool.SandboxPool.prestart`)."""
        (self.pool or default_pool()).prestart(self.code, self.__name__, restricted=self.restricted)

    def __call__(
        self, prompts: Sequence[Any] | None, completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        if self.timeouts >= self.max_timeouts:
            error = f"disabled after {self.timeouts} timeouts"
            result = CallResult(ok=False, error=error, timed_out=True)
        else:
            pool = self.pool or default_pool()
            result = pool.call(
                self.code,
                self.__name__,
                prompts,
                completions,
                timeout_s=self.timeout_s,
                restricted=self.restricted,
                **kwargs,
            )
        self.calls += 1
        self.last_result = result
        if result.ok:
            return list(result.values)
        self.failures += 1
        self.timeouts += int(result.timed_out and self.timeouts < self.max_timeouts)
        self.last_error = result.error
        logger.warning("reward %s failed: %s", self.__name__, result.error)
        return [None] * len(completions)
