"""The report's figures, rendered with matplotlib's Agg canvas to PNG bytes.

matplotlib is imported inside the functions (nothing at import time), and figures are built on a
``Figure`` with an explicit ``FigureCanvasAgg``, so pyplot's global state and the user's backend
are never touched. Each function returns ``None`` when it has nothing to draw.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from rewardsmith.report.analysis import RoundRow, label, metric
from rewardsmith.report.data import TrialRecord

#: The training curves drawn per trial, with their panel titles.
CURVE_PANELS = (
    ("reward", "total reward"),
    ("format_rate", "format rate"),
    ("completion_length", "completion length"),
)
DPI = 90


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def rounds_plot(rows: Sequence[RoundRow], baseline_acc: float | None = None) -> bytes | None:
    """Mean and best selection accuracy per round (and the baseline's as a dashed line)."""
    scored = [r for r in rows if r.mean_accuracy is not None]
    if not scored:
        return None
    fig = _figure(5.5, 3.2)
    ax = fig.add_subplot()
    xs = [r.round for r in scored]
    ax.plot(xs, [r.mean_accuracy for r in scored], "o-", label="mean accuracy")
    ax.plot(xs, [r.best_accuracy for r in scored], "s-", label="best accuracy")
    if baseline_acc is not None:
        ax.axhline(baseline_acc, color="grey", linestyle="--", label="baseline accuracy")
    ax.set_xlabel("round")
    ax.set_ylabel("selection accuracy")
    ax.set_xticks(xs)
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right", fontsize="small")
    return _png(fig)


def _errorbar(ax: Any, trials: Sequence[TrialRecord], split: str, fmt: str) -> bool:
    points = []
    for x, t in enumerate(trials):
        metrics = getattr(t, split)
        acc = metric(metrics, "accuracy")
        if acc is None:
            continue
        lo, hi = (metrics.get("ci") or {}).get("accuracy", (acc, acc))
        points.append((x, acc, max(0.0, acc - lo), max(0.0, hi - acc)))
    if not points:
        return False
    xs, accs, lows, highs = zip(*points, strict=True)
    ax.errorbar(xs, accs, yerr=[lows, highs], fmt=fmt, capsize=3, label=f"{split} accuracy")
    return True


def ensemble_plot(trials: Sequence[TrialRecord]) -> bytes | None:
    """Accuracy (with 95% CIs) of each ensemble configuration, on the selection and test
    splits, in the order given."""
    if not trials:
        return None
    fig = _figure(max(5.5, 1.1 * len(trials)), 3.4)
    ax = fig.add_subplot()
    drawn = [
        _errorbar(ax, trials, split, fmt) for split, fmt in (("selection", "o"), ("test", "s"))
    ]
    if not any(drawn):
        return None
    ax.set_xticks(range(len(trials)), [label(t) for t in trials], rotation=20, fontsize=8)
    ax.set_xlabel("ensemble configuration (base rewards + its members)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right", fontsize="small")
    return _png(fig)


def curve_grids(trials: Sequence[TrialRecord], per_figure: int = 8) -> list[bytes]:
    """Small multiples: one row per trial, one column per :data:`CURVE_PANELS` entry.

    Trials without any of the curves are skipped; rows are split into figures of
    ``per_figure`` trials so a 50-candidate run stays legible.
    """
    drawable = [t for t in trials if any(t.curves.get(key) for key, _ in CURVE_PANELS)]
    return [_curve_grid(drawable[i : i + per_figure]) for i in range(0, len(drawable), per_figure)]


def _curve_grid(trials: Sequence[TrialRecord]) -> bytes:
    cols = len(CURVE_PANELS)
    fig = _figure(3.0 * cols, 1.8 * len(trials) + 0.4)
    axes = fig.subplots(len(trials), cols, squeeze=False)
    for row, trial in enumerate(trials):
        for col, (key, title) in enumerate(CURVE_PANELS):
            ax = axes[row][col]
            points = trial.curves.get(key) or []
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], lw=1.2)
            else:
                ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(f"{label(trial)}: {title}" if col == 0 else title, fontsize=8)
            ax.tick_params(labelsize=7)
    return _png(fig)
