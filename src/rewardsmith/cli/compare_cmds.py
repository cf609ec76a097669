"""``rewardsmith compare``: reward search vs the related methods, on one table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table


def compare_command(
    config: Annotated[Path | None, typer.Option(help="Base recipe (default: the demo).")] = None,
    search: Annotated[
        Path | None, typer.Option(help="A finished search run: add its best ensemble.")
    ] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per method.")] = 1,
    steps: Annotated[
        int | None, typer.Option(min=1, help="GRPO steps (default: search.ensemble_steps).")
    ] = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="Run directory (default: runs/<id>).")
    ] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue a comparison run.")] = None,
) -> None:
    """Train and test base rewards, format-length (label-free), reflection+SFT, OREAL and the
    best ensemble of a search on the same task, model, budget and seeds."""
    from rewardsmith.cli import console
    from rewardsmith.cli._render import trial_progress
    from rewardsmith.cli.search_cmds import quiet_loading_bars
    from rewardsmith.cli.train_cmds import load_run_config
    from rewardsmith.compare import plan, summarise, write_outputs
    from rewardsmith.execution import make_executor
    from rewardsmith.search.loop import with_steps
    from rewardsmith.store import RunStore, TrialState, build_manifest, new_run_id
    from rewardsmith.tasks import get_task

    quiet_loading_bars()
    if resume is not None:
        store = RunStore.open(resume)
        base = store.config()
    else:
        cfg = load_run_config(config, {})
        base = with_steps(cfg, steps or cfg.search.ensemble_steps)
        task = get_task(base.task.name, **base.task.task_kwargs())
        run_dir = run_dir or Path("runs") / new_run_id("compare")
        store = RunStore.create(run_dir, base, manifest=build_manifest(base, task=task))
    ids = plan(store, base, [base.seed + i for i in range(seeds)], search)
    console.print(f"run directory: {store.run_dir}")
    all_ids = [t for tids in ids.values() for t in tids]
    with make_executor(base) as executor:
        with trial_progress(console) as (progress, on_progress):
            for method, tids in ids.items():
                for t in tids:
                    progress.add_task(f"#{t} {method}", total=base.grpo.max_steps, key=t)
            executor.run(store, all_ids, on_progress)
        complete = [t for t in all_ids if store.trial(t).state == TrialState.COMPLETE]
        executor.evaluate(store, complete, "test")  # worker processes, in the GPU slots
    for trial_id in all_ids:
        trial = store.trial(trial_id)
        if trial.state != TrialState.COMPLETE:
            console.print(
                f"[yellow]trial {trial_id} ({trial.kind}) {trial.state.value}: {trial.fail_reason}"
            )
    rows = summarise(store, ids)
    paths = write_outputs(store.run_dir, rows)
    console.print(_table(rows))
    console.print(f"table: {paths['markdown']}")
    store.close()


def _table(rows) -> Table:
    table = Table(title="methods on test (same task, model, budget, seeds)", header_style="bold")
    for column in ("method", "seeds", "accuracy", "acc 95% CI", "F1", "McNemar p (Holm)"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r.method,
            str(r.seeds),
            f"{r.acc_mean:.3f} +- {r.acc_std:.3f}",
            f"[{r.acc_ci[0]:.3f}, {r.acc_ci[1]:.3f}]" if r.acc_ci else "-",
            f"{r.f1_mean:.3f} +- {r.f1_std:.3f}",
            f"{r.mcnemar_p:.4f} ({r.mcnemar_p_holm:.4f})" if r.mcnemar_p is not None else "-",
        )
    return table


def register(app: typer.Typer) -> None:
    """Add the comparison command to ``app``."""
    app.command("compare")(compare_command)
