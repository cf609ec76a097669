"""Rich renderings shared by the CLI commands."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

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
    """The paper's metrics with 95% CIs and the error breakdown."""
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("95% CI", justify="right")
    rows = [
        ("F1", metrics.f1, _ci(metrics, "f1")),
        ("accuracy", metrics.accuracy, _ci(metrics, "accuracy")),
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


@contextmanager
def trial_progress(console: Console) -> Iterator[tuple[Progress, Callable[[int, int, int], None]]]:
    """A live progress display for trials; tasks added with ``key=<trial id>`` are advanced by
    the returned ``on_progress(trial_id, step, max_steps)`` callback."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps"),
        TimeElapsedColumn(),
        console=console,
    )

    def on_progress(trial_id: int, step: int, max_steps: int) -> None:
        for task in progress.tasks:
            if task.fields.get("key") == trial_id:
                progress.update(task.id, completed=step, total=max_steps)

    with progress:
        yield progress, on_progress
