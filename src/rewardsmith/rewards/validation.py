"""Validate generated reward code before any trainer sees it.

Stages, in order; the first failure ends validation with a :class:`Verdict` naming its stage.
The source is parsed, restricted and compiled only inside a confined sandbox worker: this
process sees nothing of it but its length and the worker's schema-checked replies.

1. ``parse``: the code parses, and has one reward function (see
   :mod:`rewardsmith.sandbox._entry`);
2. ``name``: the reward's name is an identifier, not taken, and shadows no built-in reward;
3. ``restrict``: it compiles under RestrictedPython and imports only allowed modules;
4. ``load``: the module runs in the sandbox worker (top-level code included) within the timeout;
5. ``probe``: the probe battery (:mod:`.probes`) is scored, conversational batches of 1, 4 and 16
   completions, the same in plain strings, and the 16-batch again. Rejected: exceptions (the
   reason keeps the exception's last line), timeouts, output of the wrong length or type
   (``None`` and ints are fine, bools, NaN and infinities are not, see
   :func:`._protocol.coerce_values`), and different scores for identical input.

Conversational completions are required (TRL passes them for chat datasets, as the paper does);
a reward that fails only on plain strings is kept with the flag ``conversational_only``. Other
flags, kept but marked: ``no_signal`` (the same score for every probe), ``prefers_garbage``
(a garbage completion scored above a correct, well-formatted answer to the same question) and
``slow`` (more than ``SLOW_CALL_CPU_S`` of CPU per 16 completions). A reward costing more than
``MAX_CALL_CPU_S`` of CPU per 16 completions is rejected, with the figure.
An accepted verdict has ``stage == "accepted"``; ``sandbox`` means the sandbox itself failed
(a worker that could not start) and the code was not judged.
"""

from __future__ import annotations

import json
import keyword
import logging
import random
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from rewardsmith.rewards import BASE_REWARD_NAMES, REWARD_REGISTRY
from rewardsmith.rewards.probes import GARBAGE_KINDS, Probe, call_kwargs, cost_batch, make_battery
from rewardsmith.sandbox.pool import DEFAULT_TIMEOUT_S, SandboxPool
from rewardsmith.sandbox.results import CallResult, clean_text

logger = logging.getLogger(__name__)

STAGES = ("parse", "name", "restrict", "load", "probe", "sandbox", "accepted")
MAX_CODE_CHARS = 100_000
#: Per-call CPU budget for a batch of 16 completions (scaled for other sizes), measured in the
#: worker as the cheaper of two identical calls: above it a reward is rejected (a GRPO step on
#: a GPU takes about a second; a reward must not double it). Above ``SLOW_CALL_CPU_S`` it is
#: accepted with the flag ``slow``.
MAX_CALL_CPU_S = 0.25
SLOW_CALL_CPU_S = 0.05
#: Whole-validation budget: a hostile file is rejected well within a minute.
TOTAL_BUDGET_S = 45.0
_PROBE_CALLS = (("batch1", True), ("batch4", True), ("batch16", True),
                ("batch1", False), ("batch4", False), ("batch16", False))  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """The outcome of validation: accepted or not, at which stage, why, and any flags."""

    accepted: bool
    name: str | None
    stage: str
    reason: str
    flags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """``{"accepted", "name", "stage", "reason", "flags"}`` with ``flags`` as a list."""
        return {
            "accepted": self.accepted,
            "name": self.name,
            "stage": self.stage,
            "reason": self.reason,
            "flags": list(self.flags),
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as one line of JSON."""
        return json.dumps(self.to_dict())


def name_problem(name: str, taken_names: Collection[str] = ()) -> str | None:
    """Why ``name`` cannot name a new reward, or ``None`` when it can.

    >>> name_problem("check_answer")
    "'check_answer' shadows a built-in reward"
    >>> name_problem("units_reward") is None
    True
    """
    if not name.isidentifier() or keyword.iskeyword(name):
        return f"{name!r} is not a valid Python identifier"
    if name.startswith("_"):
        return f"{name!r} starts with an underscore (private names cannot be rewards)"
    if name in BASE_REWARD_NAMES or name in REWARD_REGISTRY:
        return f"{name!r} shadows a built-in reward"
    if name in taken_names:
        return f"{name!r} is already taken by another reward"
    return None


def _precheck(code: Any, name: str | None, taken_names: Collection[str]) -> Verdict | None:
    """What the parent checks without parsing: type, size, and a name given by the caller."""
    if not isinstance(code, str) or not code.strip():
        return Verdict(False, name, "parse", "empty code")
    if len(code) > MAX_CODE_CHARS:
        return Verdict(False, name, "parse", f"code longer than {MAX_CODE_CHARS} chars")
    if name is not None:
        problem = name_problem(name, taken_names)
        if problem is not None:
            return Verdict(False, name, "name", problem)
    return None


def _load_stage(
    pool: SandboxPool,
    code: str,
    name: str | None,
    taken_names: Collection[str],
    timeout_s: float,
) -> tuple[str | None, Verdict | None]:
    """Parse, name, restrict and load, all but the name check inside the sandbox worker.

    Returns (the reward's name, a rejection or ``None``).
    """
    loaded = pool.load(code, name, timeout_s=timeout_s)
    reward_name = name or loaded.entry
    if loaded.stage == "parse":
        return reward_name, Verdict(False, reward_name, "parse", loaded.error or "does not parse")
    if reward_name is not None:
        problem = name_problem(reward_name, taken_names)
        if problem is not None:
            return reward_name, Verdict(False, reward_name, "name", problem)
    if not loaded.ok:
        stage = loaded.stage if loaded.stage in ("restrict", "load") else "load"
        return reward_name, Verdict(False, reward_name, stage, loaded.error or "failed to load")
    if reward_name is None:  # a worker that loads must name the entry; treat silence as broken
        return None, Verdict(False, None, "load", "the sandbox did not report the reward's name")
    return reward_name, None


def _garbage_preferred(probes: tuple[Probe, ...], values: tuple[float | None, ...]) -> bool:
    """Whether, in the 16-batch, a garbage completion beat its group's correct answer."""
    correct = {
        p.question_index: v for p, v in zip(probes, values, strict=True) if p.kind == "correct"
    }
    for probe, value in zip(probes, values, strict=True):
        reference = correct.get(probe.question_index)
        if probe.kind in GARBAGE_KINDS and value is not None and reference is not None:
            if value > reference:
                return True
    return False


def _cost_problem(cpu_s: float, n: int) -> str | None:
    """Why a call costing ``cpu_s`` of CPU for ``n`` completions is too slow, else ``None``."""
    budget = MAX_CALL_CPU_S * n / 16
    if cpu_s <= budget:
        return None
    return (f"too slow: {cpu_s:.3f} s of CPU per call of {n} completions (budget {budget:.3f} s; "
            "a reward runs on every batch of every GRPO step)")  # fmt: skip


def _failure_reason(label: str, result: CallResult) -> str:
    return f"{label}: {result.error}"


class _Prober:
    """Calls one loaded reward on a fresh battery, as a trainer would, within a deadline."""

    def __init__(self, pool: SandboxPool, code: str, key_name: str | None, timeout_s: float,
                 deadline: float, seed: int | None) -> None:  # fmt: skip
        self.pool, self.code, self.key_name = pool, code, key_name
        self.timeout_s, self.deadline = timeout_s, deadline
        self.battery = make_battery(seed)
        # Steps grow call by call, like a run's; where they start is drawn with the battery.
        self.step = random.Random(self.battery.seed).randrange(0, 400)

    def call(self, probes: tuple[Probe, ...], conversational: bool, *, step: int | None = None
             ) -> CallResult:  # fmt: skip
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return CallResult(ok=False, error="probe battery exceeded its time budget")
        if step is None:
            self.step += 1
            step = self.step
        kwargs = call_kwargs(probes, conversational, step=step, run_seed=self.battery.seed)
        return self.pool.call(self.code, self.key_name, timeout_s=min(self.timeout_s, remaining),
                              **kwargs)  # fmt: skip

    def batch(self, name: str, conversational: bool, *, step: int | None = None) -> CallResult:
        return self.call(self.battery.batches[name], conversational, step=step)

    def cost(self) -> tuple[float, CallResult | None]:
        """The cheaper of two calls on a training-sized batch: (CPU seconds, a failure)."""
        probes = cost_batch(self.battery.seed)
        costs = []
        for _ in range(2):
            result = self.call(probes, True)
            if not result.ok:
                return 0.0, result
            costs.append(result.cpu_s)
            if _cost_problem(result.cpu_s / 4, len(probes)) is not None:
                break  # clearly too slow already: do not spend a second call on it
        return min(costs), None


def _probe_stage(prober: _Prober, name: str) -> Verdict:
    """Run the probe battery on a loaded reward; the final verdict."""
    scores: dict[tuple[str, bool], tuple[float | None, ...]] = {}
    flags: list[str] = []
    plain_error = ""
    for batch, conversational in _PROBE_CALLS:
        label = f"probe {batch} ({'conversational' if conversational else 'plain strings'})"
        step = prober.step + 1
        result = prober.batch(batch, conversational)
        if not result.ok and (conversational or result.timed_out):
            return Verdict(False, name, "probe", _failure_reason(label, result))
        if not result.ok:
            flags.append("conversational_only")
            plain_error = f" (fails on plain-string completions: {result.error})"
            break
        scores[(batch, conversational)] = result.values
        if (batch, conversational) == ("batch16", True):
            batch16_step = step
    again = prober.batch("batch16", True, step=batch16_step)
    if not again.ok:
        return Verdict(False, name, "probe", _failure_reason("probe batch16 (repeat)", again))
    first = scores[("batch16", True)]
    if again.values != first:
        i = next(i for i, (a, b) in enumerate(zip(first, again.values, strict=True)) if a != b)
        reason = f"non-deterministic: completion {i} of the same batch scored {first[i]} then "
        return Verdict(False, name, "probe", reason + f"{again.values[i]}")
    cpu_s, failed = prober.cost()
    if failed is not None:
        return Verdict(False, name, "probe", _failure_reason("probe cost batch", failed))
    too_slow = _cost_problem(cpu_s, 16)
    if too_slow is not None:
        return Verdict(False, name, "probe", too_slow)
    if cpu_s > SLOW_CALL_CPU_S:
        flags.append("slow")
    # Signal is judged on the conversational probes: the format a trainer passes.
    distinct = {v for (_, conv), values in scores.items() if conv for v in values}
    distinct.discard(None)
    if len(distinct) <= 1:
        flags.append("no_signal")
    if _garbage_preferred(prober.battery.batches["batch16"], first):
        flags.append("prefers_garbage")
    cost = f"{cpu_s * 1000:.1f} ms of CPU per 16 completions"
    reason = f"passed {len(scores) + 3} probe calls{plain_error} ({cost})"
    return Verdict(True, name, "accepted", reason, tuple(flags))


def validate_reward_code(
    code: str,
    *,
    name: str | None = None,
    taken_names: Collection[str] = (),
    pool: SandboxPool | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    seed: int | None = None,
) -> Verdict:
    """Run every validation stage on ``code``; never raises, whatever the code or the sandbox do.

        ``name`` picks the reward (and names it) when the code defines several functions;
        ``taken_names`` are names already used in this search; ``pool`` is reused when given (the
        reward's worker is discarded afterwards), else a private pool is started and closed;
        ``timeout_s`` bounds each load or probe call, and the whole run takes at most
        ``TOTAL_BUDGET_S`` seconds plus one timeout; ``seed`` reproduces the probe battery (by
    default every validation draws a new one). The code is parsed, restricted and compiled
        only inside a sandbox worker. A failure of the sandbox itself (a worker that cannot start)
        is a rejection at stage ``sandbox``.
    """
    try:
        return _validate(code, name, taken_names, pool, timeout_s, seed)
    except Exception as exc:  # noqa: BLE001 - validation must record, never raise
        logger.exception("validation of %s could not run", name or "a reward")
        return Verdict(False, name, "sandbox", f"validation could not run: {clean_text(str(exc))}")


def _validate(
    code: str,
    name: str | None,
    taken_names: Collection[str],
    pool: SandboxPool | None,
    timeout_s: float,
    seed: int | None,
) -> Verdict:
    deadline = time.monotonic() + TOTAL_BUDGET_S
    rejection = _precheck(code, name, taken_names)
    if rejection is not None:
        return rejection
    own_pool = pool is None
    active = pool if pool is not None else SandboxPool(max_workers=1)
    try:
        reward_name, rejection = _load_stage(active, code, name, taken_names, timeout_s)
        if rejection is not None:
            return rejection
        prober = _Prober(active, code, name, timeout_s, deadline, seed)
        return _probe_stage(prober, reward_name)
    finally:
        if own_pool:
            active.close()
        else:
            active.discard(code, name)
