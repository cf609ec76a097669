"""``rewardsmith search`` and ``rewardsmith demo``: the whole method, with a live display."""

from __future__ import annotations

import errno
import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from rewardsmith.cli._render import PipeTicker
from rewardsmith.errors import RewardsmithError


class LiveObserver:
    """Renders the search: phase, one bar per trial (steps), and the current leader."""

    def __init__(self, console: Any, rank_metric: str) -> None:
        self.console = console
        self.rank_metric = rank_metric
        self.phase_text = Text("starting")
        self.leader_text = Text("leader: none yet", style="green")
        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._tasks: dict[int, Any] = {}
        self.ticker = PipeTicker(console)
        self._best: float | None = None
        # A terminal gets the live display; a pipe or CI log gets plain lines as things happen.
        self.live: Any = (
            Live(Group(self.phase_text, self.bars, self.leader_text), console=console)
            if console.is_terminal
            else nullcontext()
        )

    def phase(self, text: str) -> None:
        self.phase_text.plain = text
        self.console.print(f"[bold cyan]{text}")

    def trials(self, trials: Any) -> None:
        for trial in trials:
            label = f"#{trial.id} {trial.kind}: {', '.join(trial.candidates) or 'base rewards'}"
            max_steps = trial.config["grpo"]["max_steps"]
            self._tasks[trial.id] = self.bars.add_task(label[:60], total=max_steps, status="queued")

    def progress(self, trial_id: int, step: int, max_steps: int) -> None:
        if trial_id in self._tasks:
            self.bars.update(
                self._tasks[trial_id], completed=step, total=max_steps, status="training"
            )
            if not self.console.is_terminal:  # a pipe: a plain line now and then
                self.ticker(trial_id, f"trial #{trial_id}", step, max_steps)

    def trial_done(self, trial: Any, result: Any) -> None:
        task = self._tasks.pop(trial.id, None)
        if result is not None:
            m = result.metrics
            status = f"acc {m.get('accuracy', 0):.3f} F1 {m.get('f1', 0):.3f}"
            value = m.get(self.rank_metric)
            if (
                trial.kind == "screen"
                and value is not None
                and (self._best is None or value > self._best)
            ):
                self._best = value
                self.leader_text.plain = (
                    f"leader: {trial.candidates[0]} ({self.rank_metric} {value:.3f})"
                )
        else:
            status = f"{trial.state.value}: {(trial.fail_reason or '')[:60]}"
        if task is not None:
            self.bars.update(task, status=status)
            self.bars.remove_task(task)
        rung = trial.attrs.get("rung")
        where = f" rung {rung}" if isinstance(rung, int) else ""
        self.console.print(
            f"  trial #{trial.id} {trial.kind}{where} {', '.join(trial.candidates)}: {status}"
        )

    def message(self, text: str) -> None:
        self.console.print(f"[yellow]{text}")


def _generator(cfg: Any, run_dir: Path) -> Any:
    from rewardsmith.generators import get_generator

    options = {"seed": cfg.seed, **cfg.search.generator_options}
    if cfg.search.generator == "llm":
        options.setdefault("out_dir", run_dir / "transcripts")
    return get_generator(cfg.search.generator, **options)


def open_or_create(config: Path | None, run_dir: Path | None, resume: Path | None) -> Any:
    """The run's store: reopened with ``--resume``, else created from the config."""
    from rewardsmith.config import load_config
    from rewardsmith.recipes import recipe_path
    from rewardsmith.store import RunStore, build_manifest, new_run_id
    from rewardsmith.tasks import get_task

    if resume is not None:
        expected = load_config(config).config_hash() if config else None
        return RunStore.open(resume, expected_config_hash=expected)
    cfg = load_config(config or recipe_path("demo"))
    run_dir = run_dir or Path("runs") / new_run_id(cfg.name or "search")
    task = get_task(cfg.task.name, **cfg.task.task_kwargs())
    return RunStore.create(
        run_dir, cfg, manifest=build_manifest(cfg, task=task, run_id=run_dir.name)
    )


def quiet_loading_bars() -> None:
    """Our displays show progress; transformers' weight-loading bars would interleave with them."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read when transformers loads
    if "transformers" in sys.modules:  # already loaded (e.g. after building the embedded model)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def run_search(store: Any) -> dict[str, Path]:
    """Run (or resume) the search in ``store`` with the live display; return the report paths."""
    from rewardsmith.cli import console
    from rewardsmith.execution import hold_run
    from rewardsmith.report.from_store import write_run_report
    from rewardsmith.tasks import get_task

    cfg = store.config()
    task = get_task(cfg.task.name, **cfg.task.task_kwargs())
    quiet_loading_bars()
    observer = LiveObserver(console, cfg.search.rank_metric)
    console.print(f"run directory: {store.run_dir}")
    try:
        with hold_run(store.run_dir):
            _end_stray_workers(store, console)
            _search(store, cfg, task, observer)
    except KeyboardInterrupt:
        raise RewardsmithError(
            "interrupted; nothing completed is lost. "
            f"Resume with: rewardsmith search --resume {store.run_dir}"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise RewardsmithError(
                f"disk full while writing {store.run_dir}; free space, then resume with "
                f"rewardsmith search --resume {store.run_dir}"
            ) from exc
        raise
    return write_run_report(store)


def _search(store: Any, cfg: Any, task: Any, observer: LiveObserver) -> None:
    from rewardsmith.execution import make_executor
    from rewardsmith.sandbox.pool import SandboxPool
    from rewardsmith.search.loop import Search

    with SandboxPool() as pool, observer.live, make_executor(cfg) as executor:
        search = Search(
            store,
            _generator(cfg, store.run_dir),
            executor,
            task,
            observer=observer,
            pool=pool,
        )
        search.run()


def _end_stray_workers(store: Any, console: Any) -> None:
    """Before the search recovers interrupted trials: end the earlier run's workers that are
    still alive, and say what was found."""
    from rewardsmith.execution import end_stray_workers

    found = end_stray_workers(store)
    for stray in found:
        if stray.status == "ended":
            console.print(
                f"[yellow]resume: ended worker pid {stray.pid} of trial {stray.trial_id}, "
                "still running from the earlier run"
            )
        elif stray.status == "unknown":
            console.print(
                f"[yellow]resume: cannot check worker {stray.worker or '?'} of trial "
                f"{stray.trial_id}; if it still runs, its results will be refused"
            )
    if found and not any(s.status == "ended" for s in found):
        console.print("resume: no worker of the earlier run is still alive")


def search_command(
    config: Annotated[
        Path | None, typer.Option(help="A YAML recipe (default: the demo recipe).")
    ] = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="New run directory (default: runs/<id>).")
    ] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue the run in this directory.")] = None,
) -> None:
    """Search for reward functions: rounds of candidates, ensembles, statistics and a report."""
    from rewardsmith.cli import console

    if resume is not None and run_dir is not None:
        raise typer.BadParameter("give --resume RUN or --run-dir DIR, not both")
    store = open_or_create(config, run_dir, resume)
    try:
        paths = run_search(store)
    finally:
        store.close()
    _print_summary(store.run_dir)
    console.print(f"[bold green]report:[/] {paths['html']}")


def _print_summary(run_dir: Path) -> None:
    from rewardsmith.cli import console
    from rewardsmith.cli._render import final_table
    from rewardsmith.search.compute import compute_lines, compute_summary
    from rewardsmith.store import RunStore

    store = RunStore.open(run_dir)
    try:
        console.print(final_table(store))
        for line in compute_lines(compute_summary(store)):
            console.print(line, highlight=False)
    finally:
        store.close()


def demo_command(
    run_dir: Annotated[
        Path | None, typer.Option(help="Run directory (default: runs/demo-<id>).")
    ] = None,
) -> None:
    """The main job on its embedded default: a complete search on the synthetic task with the
    embedded model and the offline generator. No GPU, no API key, no network."""
    from rewardsmith.bootstrap import ensure_embedded_model
    from rewardsmith.cli import console
    from rewardsmith.cli._render import step_status
    from rewardsmith.recipes import recipe_path

    text = "embedded model (built with SFT on first use, then cached)"
    with step_status(console, text) as report:
        path = ensure_embedded_model("default", progress=report)
    console.print(f"embedded model: {path}")
    search_command(config=recipe_path("demo"), run_dir=run_dir, resume=None)


def register(app: typer.Typer) -> None:
    """Add the search commands to ``app``."""
    app.command("demo")(demo_command)
    app.command("search")(search_command)
