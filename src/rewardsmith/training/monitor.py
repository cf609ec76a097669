"""Watch sandboxed rewards while they train: failures, latency, learning signal, live audits.

A reward can pass validation and misbehave later in training: after N calls it may hang, go
constant, start scoring garbage above correct answers, or burn its CPU. :class:`RewardMonitor`
wraps one :class:`~rewardsmith.sandbox.pool.SandboxedReward` of a trial (same ``__name__``, so
TRL's metric names are unchanged, and the same return values) and, per call, records whether it
failed or timed out, its latency and the within-group spread of its scores (GRPO normalises
rewards within each group of ``num_generations`` completions of one prompt, so a component with
zero spread in a group gives that group no learning signal). Over the last ``window`` calls it
reports (settings: :class:`~rewardsmith.config.MonitorSection`):

* ``failures`` / ``timeouts``: the share of failed / timed-out calls above its threshold;
* ``slow``: the p95 latency of successful calls above the budget (the reward's first call,
  which starts and loads its worker, is left out);
* ``no_signal``: zero within-group spread in every scored call, whether it had signal before;
* ``garbage_above_correct``: every ``audit_every``-th call, corrupted copies of correct live
  completions (answer removed, tags broken, words shuffled; see :mod:`rewardsmith.training.audit`)
  are scored with their originals; a copy scored above its original is a finding.

Each windowed kind is reported at most once per ``window`` calls; each failing audit is one
finding. :class:`MonitorGuard` stops training (the trial is recorded FAILED with the reason)
once one reward has ``fail_after`` findings of the kinds in ``fail_on``.

The audit calls the reward's sandbox worker directly, so it never reaches TRL's logged rewards,
the trainer or the reward's counters (``calls``, ``failures``) that ``FailureGuard`` reads;
it does not change training. It is still a call inside the reward's worker: a reward that keeps
state across calls (counting them, say) sees the audit calls too. It costs one sandbox call of at
most ``4 * audit_samples`` completions per audit, and is skipped when the live call failed or the
batch has no ``answer`` column (label-free trials).
"""

from __future__ import annotations

import logging
import math
import random
import statistics
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from transformers import TrainerCallback

from rewardsmith.extraction import DEFAULT_TAGS, Tags
from rewardsmith.rewards.contract import per_sample
from rewardsmith.training.audit import EPS, AuditBatch, audit_inputs, build_audit, judge

log = logging.getLogger(__name__)

#: How much of a reward's last error a ``failures`` finding quotes.
MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class Finding:
    """Something a monitor saw a reward do in training.

    ``kind`` is one of ``failures``, ``timeouts``, ``slow``, ``no_signal``,
    ``garbage_above_correct``; ``step`` the training step (the call number outside a trainer);
    ``value`` the measured rate, latency or share of corrupted copies scored above correct.
    """

    reward: str
    kind: str
    step: int
    detail: str
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        value = data.get("value")
        return cls(
            reward=str(data["reward"]),
            kind=str(data["kind"]),
            step=int(data.get("step") or 0),
            detail=str(data.get("detail") or ""),
            value=None if value is None else float(value),
        )


def group_spreads(
    values: Sequence[float | None], prompts: Sequence[Any] | None, group_size: int | None
) -> list[float]:
    """Population std of the scores in each group (``None`` and non-finite scores left out;
    groups with fewer than two scores skipped).

    Groups are consecutive blocks of ``group_size`` when that divides the batch (TRL's layout),
    else runs of equal consecutive prompts.

    >>> group_spreads([1.0, 1.0, 0.0, 2.0], None, 2)
    [0.0, 1.0]
    >>> group_spreads([1.0, 3.0, 5.0], ["a", "a", "b"], None)
    [1.0]
    """
    n = len(values)
    if group_size and group_size > 1 and n % group_size == 0:
        bounds = [(i, i + group_size) for i in range(0, n, group_size)]
    else:
        keys = list(prompts) if prompts is not None and len(prompts) == n else [None] * n
        starts = [i for i in range(n) if i == 0 or keys[i] != keys[i - 1]]
        bounds = list(zip(starts, starts[1:] + [n], strict=True))
    spreads = []
    for lo, hi in bounds:
        scores = [v for v in values[lo:hi] if v is not None and math.isfinite(v)]
        if len(scores) >= 2:
            spreads.append(statistics.pstdev(scores))
    return spreads


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile by nearest rank.

    >>> percentile([0.1, 0.2, 0.3, 0.4], 0.95), percentile([0.1, 0.2, 0.3, 0.4], 0.5)
    (0.4, 0.2)
    """
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True)
class _Call:
    ok: bool
    timed_out: bool
    duration_s: float | None  # None: not judged for latency (failed, or the worker's first call)
    signal: bool | None  # None: no group could be judged


class RewardMonitor:
    """A :class:`~rewardsmith.sandbox.pool.SandboxedReward` that watches itself in training.

    Called exactly like the reward and returns what the reward returns. ``settings`` is a
    :class:`~rewardsmith.config.MonitorSection`; ``checker`` the trusted correctness reward used
    by audits (``check_answer`` for the task's tags; None: no audits); ``group_size`` GRPO's
    ``num_generations``. Findings accumulate in :attr:`findings`; :meth:`failure_reason` says
    when they pass the settings' threshold.
    """

    def __init__(
        self,
        reward: Any,
        settings: Any,
        *,
        checker: Any = None,
        tags: Tags = DEFAULT_TAGS,
        group_size: int | None = None,
        seed: int = 0,
    ) -> None:
        self.reward = reward
        self.__name__ = reward.__name__
        self.__qualname__ = reward.__name__
        self.settings = settings
        self.checker = checker
        self.tags = tags
        self.group_size = group_size
        self.findings: list[Finding] = []
        self.calls = 0
        self.audits = 0
        self.audits_failed = 0
        self._window: deque[_Call] = deque(maxlen=settings.window)
        self._durations: list[float] = []
        self._signal_calls = 0
        self._last_signal_call: int | None = None
        self._reported: dict[str, int] = {}
        self._step = 0
        self._rng = random.Random(seed)

    def __repr__(self) -> str:
        return f"RewardMonitor({self.reward!r}, findings={len(self.findings)})"

    def __call__(
        self, prompts: Sequence[Any] | None, completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        values = self.reward(prompts=prompts, completions=completions, **kwargs)
        self.calls += 1
        state = kwargs.get("trainer_state")
        step = getattr(state, "global_step", None)
        self._step = int(step) + 1 if isinstance(step, int) else self.calls
        result = self.reward.last_result
        self._record(values, prompts, result)
        self._check()
        every = self.settings.audit_every
        if every and self.calls % every == 0 and result is not None and result.ok:
            self._audit(prompts, completions, kwargs)
        return values

    # ------------------------------------------------------------------ windowed checks

    def _record(self, values: Sequence[float | None], prompts: Any, result: Any) -> None:
        ok = result is not None and result.ok
        duration = result.duration_s if ok and self.calls > 1 else None
        spreads = group_spreads(values, prompts, self.group_size) if ok else []
        signal = any(s > EPS for s in spreads) if spreads else None
        if signal:
            self._signal_calls += 1
            self._last_signal_call = self.calls
        if duration is not None:
            self._durations.append(duration)
        timed_out = bool(result is not None and result.timed_out)
        self._window.append(_Call(ok, timed_out, duration, signal))

    def _check(self) -> None:
        s, window = self.settings, list(self._window)
        n = len(window)
        if n < s.min_calls:
            return
        failed = sum(not c.ok for c in window)
        if failed / n > s.failure_rate:
            last = str(self.reward.last_error)[:MAX_ERROR_CHARS]
            self._report("failures", failed / n, f"failed {failed}/{n} of its last calls: {last}")
        timeouts = sum(c.timed_out for c in window)
        if timeouts / n > s.timeout_rate:
            limit = getattr(self.reward, "timeout_s", None)
            self._report(
                "timeouts", timeouts / n, f"timed out on {timeouts}/{n} of its last calls "
                f"(limit {limit}s)"
            )  # fmt: skip
        durations = [c.duration_s for c in window if c.duration_s is not None]
        if len(durations) >= s.min_calls and percentile(durations, 0.95) > s.latency_p95_s:
            p95 = percentile(durations, 0.95)
            self._report(
                "slow", p95, f"p95 latency {p95:.3g}s over its last {len(durations)} "
                f"successful calls (budget {s.latency_p95_s:g}s)"
            )  # fmt: skip
        judged = [c.signal for c in window if c.signal is not None]
        if len(judged) >= s.min_calls and not any(judged):
            since = (
                "never had any"
                if self._last_signal_call is None
                else f"had some until call {self._last_signal_call}"
            )
            self._report(
                "no_signal", 0.0, f"zero spread within every group in its last {len(judged)} "
                f"scored calls, so no learning signal ({since})"
            )  # fmt: skip

    def _report(self, kind: str, value: float, detail: str) -> None:
        last = self._reported.get(kind)
        if last is not None and self.calls - last < self.settings.window:
            return  # once per window
        self._reported[kind] = self.calls
        self._add(Finding(self.__name__, kind, self._step, detail, value))

    def _add(self, finding: Finding) -> None:
        self.findings.append(finding)
        log.warning(
            "reward %s in training, step %d: %s: %s",
            finding.reward,
            finding.step,
            finding.kind,
            finding.detail,
        )

    # ------------------------------------------------------------------ audits

    def _audit(self, prompts: Any, completions: Sequence[Any], kwargs: dict[str, Any]) -> None:
        """Score corrupted copies of correct completions; a finding when one beats its original."""
        n = len(completions)
        if self.checker is None or kwargs.get("answer") is None or n == 0:
            return
        golds = per_sample(kwargs["answer"], n, "answer")
        batch = build_audit(
            completions,
            golds,
            self.checker,
            samples=self.settings.audit_samples,
            tags=self.tags,
            rng=self._rng,
        )
        if batch is None:
            return
        audit_prompts, audit_completions, columns = audit_inputs(
            batch, prompts, completions, kwargs
        )
        pool = self.reward.pool
        if pool is None:
            from rewardsmith.sandbox.reward import default_pool

            pool = default_pool()
        result = pool.call(
            self.reward.code, self.__name__, audit_prompts, audit_completions,
            timeout_s=self.reward.timeout_s, **columns,
        )  # fmt: skip
        if not result.ok:
            log.info("reward %s: audit call failed (%s); not counted", self.__name__, result.error)
            return
        self._count_audit(batch, result.values)

    def _count_audit(self, batch: AuditBatch, values: Sequence[float | None]) -> None:
        """Count one audit (when a pair could be compared); a finding when it failed."""
        compared, above = judge(batch, values)
        if not compared:
            return
        self.audits += 1
        if not above:
            return
        self.audits_failed += 1
        hits = sum(above.values())
        kinds = ", ".join(f"{kind.replace('_', ' ')} {count}" for kind, count in above.items())
        origin = " (rebuilt with the gold answer)" if batch.rebuilt else ""
        detail = (
            f"scored {hits}/{compared} corrupted copies of correct completions{origin} above "
            f"their originals ({kinds}); {self.audits_failed} of {self.audits} audits failed"
        )
        kind = "garbage_above_correct"
        self._add(Finding(self.__name__, kind, self._step, detail, hits / compared))

    # ------------------------------------------------------------------ results

    def failure_reason(self) -> str | None:
        """Why the trial should fail, once ``fail_after`` findings of the ``fail_on`` kinds
        accumulated (never when ``fail_after`` is 0); else None."""
        s = self.settings
        counted = [f for f in self.findings if f.kind in s.fail_on]
        if s.fail_after <= 0 or len(counted) < s.fail_after:
            return None
        kinds = ", ".join(f"{k} x{c}" for k, c in Counter(f.kind for f in counted).items())
        last = counted[-1]
        return (
            f"reward {self.__name__} misbehaved in training: {len(counted)} monitor findings "
            f"({kinds}; limit {s.fail_after}); last at step {last.step}: {last.detail}"
        )

    def summary(self) -> dict[str, Any]:
        """Counters of the whole run, JSON-ready."""
        durations = self._durations
        return {
            "calls": self.calls,
            "failures": int(getattr(self.reward, "failures", 0)),
            "timeouts": int(getattr(self.reward, "timeouts", 0)),
            "signal_calls": self._signal_calls,
            "audits": self.audits,
            "audits_failed": self.audits_failed,
            "p95_latency_s": percentile(durations, 0.95) if durations else None,
            "findings": len(self.findings),
        }


class MonitorGuard(TrainerCallback):
    """Stop training (and keep :attr:`reason`) once a monitored reward's findings pass the
    threshold (:meth:`RewardMonitor.failure_reason`)."""

    def __init__(self, monitors: Sequence[RewardMonitor]) -> None:
        self.monitors = list(monitors)
        self.reason: str | None = None

    def _check(self) -> str | None:
        return next((r for m in self.monitors if (r := m.failure_reason()) is not None), None)

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001 - HF signature
        if self.reason is None:
            self.reason = self._check()
        if self.reason is not None:
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):  # noqa: ANN001 - HF signature
        if self.reason is None:
            self.reason = self._check()
