"""Number formatting shared by the report's sections."""

from __future__ import annotations

from typing import Any

from rewardsmith.report import analysis as an

DASH = "—"
#: Why F1 stands second: it is a function of accuracy (see rewardsmith.metrics).
F1_NOTE = (
    "Accuracy first, F1 beside it for comparison with the paper: with TP + FP + FN = all "
    "questions, F1 = 2·acc/(1 + acc) always, so both rank candidates the same way."
)


def fmt(value: float | None, digits: int = 3) -> str:
    """A number with ``digits`` decimals, or a dash when missing."""
    return DASH if value is None else f"{value:.{digits}f}"


def fmt_ci(metrics: dict[str, Any] | None, name: str) -> str:
    """``0.795 [0.756, 0.832]``: a metric with its 95% CI when the metrics carry one."""
    value = an.metric(metrics, name)
    if value is None:
        return DASH
    ci = ((metrics or {}).get("ci") or {}).get(name)
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"


def fmt_p(p: float) -> str:
    return f"{p:.2e}" if p < 1e-3 else f"{p:.4f}"
