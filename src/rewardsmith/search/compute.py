"""Compute accounting: what each trial cost, summed per phase, and the share successive halving
saved against full screening.

The trial worker records, in a COMPLETE trial's result, ``curves["_timings"]`` (see
:func:`compute_record`):

* ``steps``: GRPO optimizer steps trained *in this trial*; a halving rung that continues an
  earlier run counts only the steps it added (:func:`trained_steps`);
* ``train_s`` / ``eval_s``: wall seconds of training and of the selection evaluation;
* ``gpu_s``: GPU-seconds, the trial's train + eval wall time multiplied by the number of CUDA
  devices visible to its worker, when the worker initialised CUDA (``None`` on CPU). It measures
  the time GPUs were held by the trial, not their utilisation.

:func:`compute_summary` sums these per phase (screening, by rung; the baselines; the control;
the ensembles; the best ensemble's extra seeds) and compares the screening steps with *full
screening*, the paper's protocol: every screened candidate trained once for the full screening
budget (``candidates x budget`` steps). A trial without a compute record (a run from before
accounting, or a FAILED trial) counts its wall time from the store and, when COMPLETE, the steps
its config implies; FAILED trials count no steps (how far they got is not stored).

>>> s = summarize([TrialCompute(1, "screen", "x", 10, 5.0, 1.0, 6.0, None, 0, 30),
...                TrialCompute(2, "screen", "y", 10, 5.0, 1.0, 6.0, None, 0, 30)])
>>> s.total.steps, s.full_screening_steps, round(s.saved_share, 3)
(20, 60, 0.667)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

#: Store trial kinds that screen one candidate.
SCREEN_KINDS = ("screen", "manual")
#: Phase of each trial kind, in display order (a screening-budget baseline counts as baseline).
PHASES = {
    "screen": "screening",
    "manual": "screening",
    "baseline": "baseline",
    "control": "control",
    "ensemble": "ensembles",
    "final": "finals",
}
PHASE_ORDER = ("screening", "baseline", "control", "ensembles", "finals", "other")
COMPUTE_KEY = "_timings"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def max_steps(trial: Any) -> int | None:
    """The GRPO budget in ``trial``'s config (``grpo.max_steps``), or None."""
    steps = ((trial.config or {}).get("grpo") or {}).get("max_steps")
    return int(steps) if isinstance(steps, int) else None


def trained_steps(trial: Any, continued: Any = None) -> int:
    """GRPO steps a COMPLETE ``trial`` trained itself: its budget, less the budget of the
    ``continued`` trial whose run it went on with (a halving rung), when there is one."""
    own = max_steps(trial) or 0
    before = max_steps(continued) if continued is not None else 0
    return max(own - (before or 0), 0)


def compute_record(
    steps: int, train_s: float, eval_s: float, *, gpu_devices: int = 0
) -> dict[str, Any]:
    """The ``_timings`` entry the worker stores with a trial's result.

    >>> compute_record(10, 4.0, 1.0, gpu_devices=2)
    {'steps': 10, 'train_s': 4.0, 'eval_s': 1.0, 'gpu_s': 10.0, 'gpu_devices': 2}
    """
    gpu_s = (train_s + eval_s) * gpu_devices if gpu_devices else None
    return {
        "steps": int(steps),
        "train_s": float(train_s),
        "eval_s": float(eval_s),
        "gpu_s": gpu_s,
        "gpu_devices": int(gpu_devices),
    }


def cuda_devices_used() -> int:
    """CUDA devices visible to this process when it initialised CUDA (trained or evaluated on
    a GPU), else 0. Never imports torch itself: a process that did not load it used no GPU."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        return 0
    try:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            return int(torch.cuda.device_count())
    except (RuntimeError, AttributeError):
        return 0
    return 0


@dataclass(frozen=True)
class TrialCompute:
    """One trial's cost. ``rung`` is its halving rung (0 for full screening; None outside
    screening); ``budget`` the full screening budget it stands for (screen trials only)."""

    trial_id: int
    kind: str
    candidate: str | None
    steps: int
    train_s: float
    eval_s: float
    wall_s: float
    gpu_s: float | None
    rung: int | None = None
    budget: int | None = None
    state: str = "COMPLETE"


@dataclass
class PhaseCompute:
    """Sums over a set of trials."""

    trials: int = 0
    steps: int = 0
    wall_s: float = 0.0
    train_s: float = 0.0
    eval_s: float = 0.0
    gpu_s: float | None = None

    def add(self, t: TrialCompute) -> None:
        self.trials += 1
        self.steps += t.steps
        self.wall_s += t.wall_s
        self.train_s += t.train_s
        self.eval_s += t.eval_s
        if t.gpu_s is not None:
            self.gpu_s = (self.gpu_s or 0.0) + t.gpu_s


@dataclass
class ComputeSummary:
    """Compute per phase and per screening rung, the total, and the comparison with full
    screening (``saved_share`` = 1 - screening steps / full screening steps; negative when
    screening cost more, None without screened candidates)."""

    phases: dict[str, PhaseCompute] = field(default_factory=dict)
    rungs: dict[int, PhaseCompute] = field(default_factory=dict)
    total: PhaseCompute = field(default_factory=PhaseCompute)
    candidates: int = 0
    budget: int | None = None
    full_screening_steps: int | None = None
    saved_share: float | None = None
    failed: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["rungs"] = {str(k): v for k, v in out["rungs"].items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ComputeSummary:
        """Rebuild from :meth:`to_dict` (the report keeps it as plain data)."""
        return cls(
            phases={k: PhaseCompute(**v) for k, v in (data.get("phases") or {}).items()},
            rungs={int(k): PhaseCompute(**v) for k, v in (data.get("rungs") or {}).items()},
            total=PhaseCompute(**(data.get("total") or {})),
            candidates=int(data.get("candidates") or 0),
            budget=data.get("budget"),
            full_screening_steps=data.get("full_screening_steps"),
            saved_share=data.get("saved_share"),
            failed=int(data.get("failed") or 0),
        )


def summarize(items: Iterable[TrialCompute]) -> ComputeSummary:
    """Sum trial costs per phase and rung, and compare screening with full screening."""
    out = ComputeSummary()
    candidates: set[str] = set()
    budgets = []
    for t in items:
        phase = PHASES.get(t.kind, "other")
        out.phases.setdefault(phase, PhaseCompute()).add(t)
        out.total.add(t)
        out.failed += t.state == "FAILED"
        if phase == "screening":
            out.rungs.setdefault(t.rung or 0, PhaseCompute()).add(t)
            if t.candidate is not None:
                candidates.add(t.candidate)
            if t.budget:
                budgets.append(t.budget)
    out.phases = {p: out.phases[p] for p in PHASE_ORDER if p in out.phases}
    out.rungs = dict(sorted(out.rungs.items()))
    out.candidates = len(candidates)
    if candidates and budgets:
        out.budget = max(budgets)
        out.full_screening_steps = out.candidates * out.budget
        out.saved_share = 1.0 - out.phases["screening"].steps / out.full_screening_steps
    return out


def trial_compute(trial: Any, result: Any, continued: Any = None) -> TrialCompute:
    """The cost of one stored trial: its ``_timings`` record, else what the store implies (a run
    recorded before ``steps`` were: the steps its config implies)."""
    recorded = ((result.curves if result is not None else None) or {}).get(COMPUTE_KEY) or {}
    steps = recorded.get("steps")
    if not isinstance(steps, int):
        steps = trained_steps(trial, continued) if result is not None else 0
    train_s = _number(recorded.get("train_s")) or 0.0
    eval_s = _number(recorded.get("eval_s")) or 0.0
    wall = _number(trial.duration_s)
    screen = trial.kind in SCREEN_KINDS
    rung = trial.attrs.get("rung") if screen else None
    budget = trial.attrs.get("budget") if screen else None
    return TrialCompute(
        trial_id=trial.id,
        kind=trial.kind,
        candidate=trial.candidates[0] if screen and len(trial.candidates) == 1 else None,
        steps=int(steps),
        train_s=train_s,
        eval_s=eval_s,
        wall_s=wall if wall is not None else train_s + eval_s,
        gpu_s=_number(recorded.get("gpu_s")),
        rung=int(rung) if isinstance(rung, int) else (0 if screen else None),
        budget=int(budget) if isinstance(budget, int) else (max_steps(trial) if screen else None),
        state=getattr(trial.state, "value", str(trial.state)),
    )


def store_compute(store: Any, *, trial_ids: Sequence[int] | None = None) -> list[TrialCompute]:
    """:func:`trial_compute` of every finished (COMPLETE or FAILED) trial in ``store``, or of
    ``trial_ids`` only."""
    trials = {t.id: t for t in store.trials()}
    wanted = trials.keys() if trial_ids is None else trial_ids
    out = []
    for trial_id in wanted:
        trial = trials[trial_id]
        state = getattr(trial.state, "value", str(trial.state))
        if state not in ("COMPLETE", "FAILED"):
            continue
        continues = trial.attrs.get("continues")
        continued = trials.get(continues) if isinstance(continues, int) else None
        result = store.result(trial.id) if state == "COMPLETE" else None
        out.append(trial_compute(trial, result, continued))
    return out


def compute_summary(store: Any, *, trial_ids: Sequence[int] | None = None) -> ComputeSummary:
    """:func:`summarize` over the finished trials of ``store`` (or ``trial_ids``)."""
    return summarize(store_compute(store, trial_ids=trial_ids))


def _duration(seconds: float) -> str:
    """``42 s``, ``3.5 min``, ``1.2 h``.

    >>> _duration(42.0), _duration(210.0), _duration(8640.0)
    ('42 s', '3.5 min', '2.4 h')
    """
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def compute_lines(summary: ComputeSummary) -> list[str]:
    """Plain-text lines for the CLI: the totals, then the share saved against full screening.

    >>> s = summarize([TrialCompute(1, "screen", "x", 10, 5.0, 1.0, 6.0, None, 0, 30)])
    >>> compute_lines(s)[1]
    'screening: 10 GRPO steps for 1 candidate(s); full screening (1 x 30 steps) would take 30: 67% saved'
    """  # noqa: E501 - doctest output
    total = summary.total
    gpu = f", GPU time {_duration(total.gpu_s)}" if total.gpu_s is not None else ""
    lines = [
        f"compute: {total.steps} GRPO steps in {total.trials} trial(s), "
        f"wall time {_duration(total.wall_s)}{gpu}"
    ]
    screening = summary.phases.get("screening")
    if screening is not None and summary.full_screening_steps:
        share = summary.saved_share or 0.0
        verdict = f"{share:.0%} saved" if share >= 0 else f"{-share:.0%} more"
        lines.append(
            f"screening: {screening.steps} GRPO steps for {summary.candidates} candidate(s); "
            f"full screening ({summary.candidates} x {summary.budget} steps) would take "
            f"{summary.full_screening_steps}: {verdict}"
        )
    if summary.failed:
        lines.append(f"{summary.failed} FAILED trial(s): wall time counted, steps not")
    return lines
