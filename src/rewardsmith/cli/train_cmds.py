"""``rewardsmith train``: one screening trial (GRPO + LoRA under a set of rewards), recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rewardsmith.errors import ConfigError


def load_run_config(config: Path | None, overrides: dict[str, dict[str, Any]]) -> Any:
    """The config from ``config`` (default: the demo recipe) with CLI overrides, validated."""
    from rewardsmith.config import load_config, parse_config
    from rewardsmith.recipes import recipe_path

    source = config or recipe_path("demo")
    base = load_config(source).model_dump(mode="json")
    for section, values in overrides.items():
        base.setdefault(section, {}).update({k: v for k, v in values.items() if v is not None})
    return parse_config(base, source=f"{source} + command-line options")


def _parse_weights(weights: list[str]) -> dict[str, float]:
    out = {}
    for item in weights:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise typer.BadParameter(f"expected NAME=WEIGHT, got {item!r}", param_hint="--weight")
    return out


def _add_reward_files(store: Any, files: list[Path], pool: Any) -> list[str]:
    """Validate each reward file in the sandbox and store it as a candidate; names in order."""
    from rewardsmith.rewards.candidate import Candidate
    from rewardsmith.rewards.validation import validate_reward_code

    names: list[str] = []
    for file in files:
        try:
            code = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read reward file {file}: {exc}") from exc
        verdict = validate_reward_code(code, taken_names=names, pool=pool)
        if not verdict.accepted:
            raise ConfigError(f"{file}: rejected at {verdict.stage}: {verdict.reason}")
        candidate = Candidate(
            name=verdict.name or file.stem,
            code=code,
            description=f"reward from {file.name}",
            round=0,
            generator="manual",
        )
        store.add_candidate(candidate, verdict=verdict.to_dict())
        names.append(candidate.name)
    return names


def train_command(
    reward: Annotated[
        list[Path] | None, typer.Option("--reward", "-r", help="A reward file (repeatable).")
    ] = None,
    no_base_rewards: Annotated[
        bool, typer.Option("--no-base-rewards", help="Train without the paper's 3 base rewards.")
    ] = False,
    steps: Annotated[int | None, typer.Option(help="GRPO steps (grpo.max_steps).")] = None,
    model: Annotated[str | None, typer.Option(help="Model spec (model.spec).")] = None,
    task: Annotated[str | None, typer.Option(help="Task name (task.name).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of this trial.")] = None,
    config: Annotated[
        Path | None, typer.Option(help="A YAML recipe (default: the demo recipe).")
    ] = None,
    weight: Annotated[
        list[str] | None, typer.Option(help="Per-reward weight NAME=W (repeatable).")
    ] = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="Run directory (default: runs/<id>).")
    ] = None,
) -> None:
    """Train one trial with GRPO + LoRA under the base rewards plus your rewards; evaluate it."""
    from rewardsmith.cli import console
    from rewardsmith.cli._render import metrics_table, trial_progress
    from rewardsmith.execution import make_executor
    from rewardsmith.metrics import Metrics
    from rewardsmith.sandbox.pool import SandboxPool
    from rewardsmith.store import RunStore, TrialState, build_manifest, new_run_id
    from rewardsmith.tasks import get_task

    cfg = load_run_config(
        config,
        {
            "grpo": {"max_steps": steps},
            "model": {"spec": model},
            "task": {"name": task},
            "rewards": {"use_base_rewards": False if no_base_rewards else None},
        },
    )
    if not reward and not cfg.rewards.use_base_rewards and not cfg.rewards.builtin:
        raise ConfigError("nothing to train with: give --reward or keep the base rewards")
    task_obj = get_task(cfg.task.name, **cfg.task.task_kwargs())
    run_dir = run_dir or Path("runs") / new_run_id("train")
    manifest = build_manifest(cfg, task=task_obj, run_id=run_dir.name)
    store = RunStore.create(run_dir, cfg, manifest=manifest)
    with SandboxPool() as pool:
        names = _add_reward_files(store, reward or [], pool)
    trial_id = store.enqueue_trial(
        "manual", names, _parse_weights(weight or []), seed if seed is not None else cfg.seed
    )
    builtin = (["base rewards"] if cfg.rewards.use_base_rewards else []) + cfg.rewards.builtin
    console.print(
        f"run {run_dir}: trial {trial_id} with {', '.join(builtin) or 'no built-in rewards'}"
        f" + {names or 'no candidates'}; {cfg.grpo.max_steps} {cfg.grpo.objective} steps"
    )
    with trial_progress(console) as (progress, on_progress):
        progress.add_task(f"trial {trial_id}", total=cfg.grpo.max_steps, key=trial_id)
        with make_executor(cfg) as executor:
            executor.run(store, [trial_id], on_progress)
    trial = store.trial(trial_id)
    if trial.state != TrialState.COMPLETE:
        raise ConfigError(f"trial {trial_id} {trial.state.value}: {trial.fail_reason}")
    result = store.result(trial_id)
    title = f"trial {trial_id} on {cfg.task.name}/{result.metrics['split']}"
    console.print(metrics_table(Metrics.from_dict(result.metrics), title))
    console.print(f"adapter: {result.adapter_path}\nrecords: {result.eval_path}")
    store.close()


def register(app: typer.Typer) -> None:
    """Add the training commands to ``app``."""
    app.command("train")(train_command)
