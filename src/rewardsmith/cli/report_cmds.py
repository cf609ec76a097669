"""``rewardsmith report RUN`` and ``rewardsmith export RUN``: a run's report, and its best rewards
as one standalone module for TRL's ``GRPOTrainer``.

Both read the run store and nothing else, so they work on a finished run as on one still in
progress. A missing or corrupt store, or nothing to export, is a one-line error (exit 1).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rewardsmith.errors import RewardsmithError

if TYPE_CHECKING:
    from rewardsmith.store import RunStore, Trial, TrialResult

#: Trial kinds that screen candidates (``manual`` comes from ``rewardsmith train``).
SCREEN_KINDS = ("screen", "manual")


def report_command(
    run: Annotated[Path, typer.Argument(help="The run directory.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Output directory (default: RUN/report).")
    ] = None,
) -> None:
    """Write the run's report (self-contained HTML, Markdown, JSON) and print where it is."""
    from rewardsmith.cli import console
    from rewardsmith.report.from_store import write_run_report
    from rewardsmith.store import RunStore

    with RunStore.open(run) as store:
        try:
            paths = write_run_report(store, out)
        except OSError as error:
            raise RewardsmithError(f"cannot write the report: {error}") from error
    for kind, path in paths.items():
        console.print(f"{kind}: {path}", highlight=False, markup=False, soft_wrap=True)


def top_screened(store: RunStore, top: int, metric: str) -> list[tuple[Trial, TrialResult]]:
    """The best COMPLETE screening trial of each of the ``top`` best candidates by ``metric``.

    Only single-candidate screening trials count; a candidate screened more than once is
    represented by its best trial. Fewer than ``top`` come back when fewer were screened.
    """
    chosen: dict[str, tuple[Trial, TrialResult]] = {}
    for trial, result in store.leaderboard(metric, kinds=SCREEN_KINDS):
        if len(chosen) == top:
            break
        if len(trial.candidates) == 1 and trial.candidates[0] not in chosen:
            chosen[trial.candidates[0]] = (trial, result)
    return list(chosen.values())


def export_provenance(store: RunStore, picked: list[tuple[Trial, TrialResult]]) -> dict[str, Any]:
    """The exported module's provenance: run id, date, version, each reward's selection metrics
    and training weight, the selection split and the screening trials it was chosen from."""
    from rewardsmith import __version__

    cfg = store.config()
    weights = dict(cfg.rewards.weights)
    for trial, _ in picked:
        weights.update({n: w for n, w in trial.weights.items() if n in trial.candidates})
    return {
        "run_id": store.manifest().run_id,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "rewardsmith_version": __version__,
        "metrics": {trial.candidates[0]: result.metrics for trial, result in picked},
        "weights": weights,
        "selection_split": cfg.eval.selection,
        "selected_by": f"top {len(picked)} by {cfg.search.rank_metric} on the selection split",
        "screening_trials": ", ".join(f"{t.candidates[0]} (trial {t.id})" for t, _ in picked),
    }


def export_command(
    run: Annotated[Path, typer.Argument(help="The run directory.")],
    top: Annotated[
        int, typer.Option("--top", min=1, help="How many of the best screened candidates.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The module to write (.py).")],
    include_base: Annotated[
        bool,
        typer.Option("--include-base/--no-base", help="Also export the paper's 3 base rewards."),
    ] = True,
) -> None:
    """Export the top K screened rewards as one standalone module for TRL's GRPOTrainer."""
    from rewardsmith.cli import console, err_console
    from rewardsmith.export import export_rewards
    from rewardsmith.store import RunStore

    with RunStore.open(run) as store:
        metric = store.config().search.rank_metric
        picked = top_screened(store, top, metric)
        if not picked:
            raise RewardsmithError(f"run {run} has no COMPLETE screening trial: nothing to export")
        if len(picked) < top:
            err_console.print(
                f"[yellow]warning:[/] only {len(picked)} screened candidate(s) in {run}; "
                f"exporting {len(picked)}, not {top}",
                highlight=False,
            )
        candidates = [store.get_candidate(trial.candidates[0]) for trial, _ in picked]
        provenance = export_provenance(store, picked)
    try:
        path = export_rewards(candidates, output, provenance=provenance, include_base=include_base)
    except (ValueError, OSError) as error:  # EntryError is a ValueError
        raise RewardsmithError(f"cannot export to {output}: {error}") from error
    for rank, (trial, result) in enumerate(picked, start=1):
        value = result.metrics.get(metric)
        shown = f"{value:.3f}" if isinstance(value, int | float) else "—"
        line = f"{rank}. {trial.candidates[0]}  {metric}={shown}  (trial {trial.id})"
        console.print(line, highlight=False, markup=False)
    console.print(f"wrote {path}", highlight=False, markup=False, soft_wrap=True)
    module = path.stem if path.stem.isidentifier() else "<module>"
    console.print(
        f"usage: from {module} import REWARD_FUNCS, REWARD_WEIGHTS; "
        "GRPOTrainer(reward_funcs=REWARD_FUNCS, args=GRPOConfig(reward_weights=REWARD_WEIGHTS, "
        "...), ...)",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add the report and export commands to ``app``."""
    app.command("report")(report_command)
    app.command("export")(export_command)
