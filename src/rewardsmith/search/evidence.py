"""The evidence lines of a reward's reflection (:mod:`rewardsmith.search.feedback`), before its
tips and curves: what the reward monitors found in training (:func:`monitor_lines`,
:func:`group_signal`), how it was screened (:func:`screening_lines`), and its paired difference
from the base-rewards-only baseline on the same questions: which baseline
(:func:`find_baseline`) and the line the generator reads (:func:`baseline_line`,
:func:`compare_to_baseline`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewardsmith.stats import PairedDifference, paired_difference

MAX_DETAIL_CHARS = 200
NO_BASELINE = (
    "vs baseline: not available (no base-rewards-only trial evaluated on these questions yet)"
)


def _questions(trial: Any, result: Any) -> tuple[Any, ...]:
    """What identifies the selection questions a trial was evaluated on."""
    cfg = trial.config or {}
    ev = cfg.get("eval") or {}
    return (repr(cfg.get("task")), ev.get("selection"), ev.get("limit"), len(result.correctness))


def trial_steps(trial: Any) -> Any:
    """The GRPO budget in ``trial``'s config."""
    return ((trial.config or {}).get("grpo") or {}).get("max_steps")


def find_baseline(trial: Any, result: Any, baselines: Sequence[tuple[Any, Any]]) -> Any:
    """The COMPLETE baseline ``(trial, result)`` evaluated on the same questions as ``trial``
    (same task, selection split, limit and number of questions), or None.

    Among several, the one trained like ``trial`` wins (the screening baseline the search
    trains before round 1): same config, then same seed, then the same number of steps, then
    the oldest.
    """
    key = _questions(trial, result)
    same = [(t, r) for t, r in baselines if r.correctness and _questions(t, r) == key]
    if not result.correctness or not same:
        return None

    def preference(pair: tuple[Any, Any]) -> tuple[Any, ...]:
        t = pair[0]
        return (t.config_hash != trial.config_hash, t.seed != trial.seed,
                trial_steps(t) != trial_steps(trial), t.id)  # fmt: skip

    return min(same, key=preference)


def baseline_line(diff: PairedDifference | None, baseline_accuracy: float | None = None) -> str:
    """The one line comparing a candidate with the baseline on the same questions.

    >>> from rewardsmith.stats import paired_difference
    >>> baseline_line(paired_difference([1, 0, 0, 1] * 25, [1, 1, 0, 1] * 25), 0.5)
    'vs baseline: delta acc +0.25 [CI +0.16, +0.33], McNemar p=<0.001 (baseline acc 0.500; 25 questions only this reward got right, 0 only the baseline; n=100)'
    """  # noqa: E501 - doctest output
    if diff is None:
        return NO_BASELINE
    p = diff.test.pvalue
    p_text = "<0.001" if p < 0.001 else f"{p:.2g}"
    acc = "" if baseline_accuracy is None else f"baseline acc {baseline_accuracy:.3f}; "
    return (
        f"vs baseline: delta acc {diff.delta:+.2f} [CI {diff.ci_low:+.2f}, {diff.ci_high:+.2f}], "
        f"McNemar p={p_text} ({acc}{diff.test.c} questions only this reward got right, "
        f"{diff.test.b} only the baseline; n={diff.n})"
    )


def compare_to_baseline(
    trial: Any, result: Any, baseline: Any
) -> tuple[str, dict[str, Any] | None]:
    """(line, structured comparison) of ``trial``'s ``result`` against the ``(trial, result)``
    baseline; the line names both budgets when they differ."""
    if baseline is None:
        return NO_BASELINE, None
    base_trial, base = baseline
    diff = paired_difference(base.correctness, result.correctness)
    accuracy = base.metrics.get("accuracy")
    accuracy = float(accuracy) if isinstance(accuracy, int | float) else None
    data = {**diff.to_dict(), "baseline_trial": base_trial.id, "baseline_accuracy": accuracy}
    line = baseline_line(diff, accuracy)
    if trial_steps(base_trial) != trial_steps(trial):
        line += (
            f"; baseline trained {trial_steps(base_trial)} steps, this reward {trial_steps(trial)}"
        )
    return line, data


_FINDING_TEXT = {
    "failures": "failed too often",
    "timeouts": "timed out too often",
    "slow": "was slow",
    "no_signal": "gave no learning signal (zero spread within groups)",
}


def monitor_lines(monitors: Sequence[Any], reward: str) -> list[str]:
    """One line per kind of finding the reward monitors made about ``reward`` in training.

    ``monitors`` are :class:`~rewardsmith.store.RewardMonitorRecord` objects.

    >>> from rewardsmith.store import RewardMonitorRecord
    >>> found = {"kind": "garbage_above_correct", "step": 9, "detail": "scored 1/3 copies above"}
    >>> monitor_lines([RewardMonitorRecord("r", {"audits": 5}, (found,) * 3)], "r")
    ['in training, scored corrupted completions above correct ones in 3/5 audits (last at step 9: scored 1/3 copies above)']
    """  # noqa: E501 - doctest output
    lines = []
    for record in monitors:
        if record.reward != reward:
            continue
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for finding in record.findings:
            by_kind.setdefault(str(finding.get("kind")), []).append(finding)
        for kind, found in by_kind.items():
            last = found[-1]
            where = f"last at step {last.get('step')}: {str(last.get('detail'))[:MAX_DETAIL_CHARS]}"
            if kind == "garbage_above_correct":
                audits = f"{len(found)}/{record.summary.get('audits', '?')}"
                head = f"scored corrupted completions above correct ones in {audits} audits"
            else:
                head = f"{_FINDING_TEXT.get(kind, kind)} ({len(found)}x)"
            lines.append(f"in training, {head} ({where})")
    return lines


def group_signal(monitors: Sequence[Any], reward: str) -> tuple[int, int] | None:
    """(calls with spread within some group, calls) the monitor counted for ``reward``; None
    when it was not monitored."""
    for record in monitors:
        calls = record.summary.get("calls")
        if record.reward == reward and isinstance(calls, int) and calls > 0:
            return int(record.summary.get("signal_calls") or 0), calls
    return None


def screening_lines(trial: Any, ranked: Any) -> list[str]:
    """How ``ranked``'s candidate was screened, when not by one run at the full budget.

    >>> from types import SimpleNamespace as NS
    >>> from rewardsmith.search.ranking import RankedCandidate
    >>> t = NS(config={"grpo": {"max_steps": 9}}, attrs={"rung": 1, "budget": 27})
    >>> screening_lines(t, RankedCandidate("r", 1, 2, 0.5, 0.05, (-0.01, 0.11), 0.2, -0.01, (4, 7)))
    ['screened with successive halving: reached rung 1, trained 9 of the 27-step budget', 'over 2 seeds at this rung: mean acc 0.500, delta acc +0.05 [CI -0.01, +0.11] vs baseline']
    """  # noqa: E501 - doctest output
    lines = []
    steps, budget = trial_steps(trial), (trial.attrs or {}).get("budget")
    if isinstance(budget, int) and steps != budget:
        lines.append(
            f"screened with successive halving: reached rung {ranked.rung}, trained {steps} of "
            f"the {budget}-step budget"
        )
    if ranked.seeds > 1:
        vs = "" if ranked.ci is None else (
            f", delta acc {ranked.delta:+.2f} [CI {ranked.ci[0]:+.2f}, {ranked.ci[1]:+.2f}] "
            "vs baseline"
        )  # fmt: skip
        lines.append(f"over {ranked.seeds} seeds at this rung: mean acc {ranked.accuracy:.3f}{vs}")
    return lines
