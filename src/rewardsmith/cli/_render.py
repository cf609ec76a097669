"""Rich renderings shared by the CLI commands."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rewardsmith.metrics import Metrics


def _ci(metrics: Metrics, key: str) -> str:
    if key not in metrics.ci:
        return ""
    low, high = metrics.ci[key]
    return f"[{low:.3f}, {high:.3f}]"


def metrics_table(metrics: Metrics, title: str = "metrics") -> Table:
    """The paper's metrics with 95% CIs and the error breakdown; accuracy first (F1 is
    2acc/(1+acc), shown for comparison with the paper)."""
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("95% CI", justify="right")
    rows = [
        ("accuracy", metrics.accuracy, _ci(metrics, "accuracy")),
        ("F1", metrics.f1, _ci(metrics, "f1")),
        ("precision", metrics.precision, ""),
        ("recall", metrics.recall, ""),
        ("exact match", metrics.exact_match, ""),
        ("extraction rate", metrics.extraction_rate, ""),
    ]
    for name, value, ci in rows:
        table.add_row(name, f"{value:.3f}", ci)
    table.add_row("questions", str(metrics.n), "")
    errors = metrics.errors
    table.add_row(
        "correct / wrong / no answer",
        f"{errors['correct']} / {errors['wrong']} / {errors['no_extraction']}",
        "",
    )
    return table


def bar_progress(console: Console, unit: str = "") -> Progress:
    """A progress display with one bar per task: description, bar, done/total, elapsed."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        console=console,
    )


class PipeTicker:
    """Plain progress lines for a pipe or a CI log, where a live display prints nothing: one
    line per key when it starts, then at most one every ``every_s`` seconds, and at the end."""

    def __init__(self, console: Console, every_s: float = 15.0) -> None:
        self.console, self.every_s = console, every_s
        self._last: dict[Any, tuple[float, int]] = {}

    def __call__(self, key: Any, text: str, step: int, total: int) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        too_soon = last is not None and now - last[0] < self.every_s and step < total
        if too_soon or (last is not None and last[1] == step):
            return  # too soon, or nothing new (the last step is always shown, once)
        self._last[key] = (now, step)
        self.console.print(f"{text}: step {step}/{total}", highlight=False)


@contextmanager
def step_status(console: Console, text: str) -> Iterator[Callable[[int, int], None]]:
    """``report(step, total)`` for a long loop: a live status line in a terminal, plain lines
    (every 15 s at most) in a pipe, so that a long build never looks like a hang."""
    if not console.is_terminal:
        ticker = PipeTicker(console)
        console.print(f"{text}...", highlight=False)
        yield lambda step, total: ticker(None, text, step, total)
        return
    with console.status(f"{text}...") as status:
        yield lambda step, total: status.update(f"{text}: step {step}/{total}")


@contextmanager
def trial_progress(console: Console) -> Iterator[tuple[Progress, Callable[[int, int, int], None]]]:
    """A live progress display for trials; tasks added with ``key=<trial id>`` are advanced by
    the returned ``on_progress(trial_id, step, max_steps)`` callback."""
    progress = bar_progress(console, unit="steps")

    def on_progress(trial_id: int, step: int, max_steps: int) -> None:
        for task in progress.tasks:
            if task.fields.get("key") == trial_id:
                progress.update(task.id, completed=step, total=max_steps)

    with progress:
        yield progress, on_progress


def final_table(store: Any) -> Table:
    """Baseline vs control vs ensembles on test: metrics, CIs and McNemar vs the baseline."""
    from rewardsmith.evaluation import same_backend
    from rewardsmith.stats import mcnemar_test, seed_summary

    table = Table(title="finalists on test", header_style="bold")
    for column in ("trial", "rewards", "accuracy [95% CI]", "F1 [95% CI]", "McNemar p vs baseline"):
        table.add_column(column)
    rows = []
    for kind in ("baseline", "control", "ensemble", "final"):
        for trial in store.trials(state="COMPLETE", kind=kind):
            evaluation = store.evaluation(trial.id, "test")
            if evaluation is not None:
                rows.append((trial, evaluation))
    baselines = [(t, e) for t, e in rows if t.kind == "baseline"]
    for trial, ev in rows:
        m = ev.metrics
        ci = m.get("ci") or {}
        p = "-"
        baseline = _same_budget(trial, baselines)
        if baseline is not None and trial.kind != "baseline" and same_backend(m, baseline.metrics):
            p = f"{mcnemar_test(ev.correctness, baseline.correctness).pvalue:.4f}"
        table.add_row(
            f"#{trial.id} {trial.attrs.get('name') or trial.kind}",
            ", ".join(trial.candidates) or "base rewards",
            _with_ci(m.get("accuracy"), ci.get("accuracy")),
            _with_ci(m.get("f1"), ci.get("f1")),
            p,
        )
    if any(t.kind == "final" for t, _ in rows):
        acc, f1 = (seed_summary(_best_ensemble_seeds(rows, k)) for k in ("accuracy", "f1"))
        extra = seed_summary(_best_ensemble_seeds(rows, "accuracy", selected=False))
        table.caption = (
            f"best ensemble over seeds: accuracy {acc[0]:.3f} +- {acc[1]:.3f}, "
            f"F1 {f1[0]:.3f} +- {f1[1]:.3f}; extra seeds without the selected run (biased "
            f"upward): accuracy {extra[0]:.3f} +- {extra[1]:.3f}"
        )
    return table


def _steps(trial: Any) -> Any:
    return (trial.config.get("grpo") or {}).get("max_steps")


def _same_budget(trial: Any, baselines: list) -> Any:
    """The test evaluation of the baseline trained as many steps as ``trial``, else the first."""
    same = [e for t, e in baselines if _steps(t) == _steps(trial)]
    return same[0] if same else (baselines[0][1] if baselines else None)


def _best_ensemble_seeds(rows: list, key: str, *, selected: bool = True) -> list[float]:
    """``key`` of the best ensemble's seeds: its extra seeds, and the selected run itself
    unless ``selected`` is False."""
    finals = [(t, e) for t, e in rows if t.kind == "final"]
    names = set(finals[0][0].candidates)
    kinds = ("ensemble", "final") if selected else ("final",)
    return [e.metrics[key] for t, e in rows if t.kind in kinds and set(t.candidates) == names]


def _with_ci(value: float | None, ci: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"
