"""Task, model and evaluation commands: ``bootstrap-model``, ``eval``, ``score`` and ``demo``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rewardsmith.errors import ConfigError

ExtractionOpt = Annotated[
    str, typer.Option("--extraction", help="Answer extraction: 'paper' (exact) or 'flexible'.")
]


DTYPES = ("auto", "bfloat16", "float16", "float32")
BACKENDS = ("hf", "vllm", "auto")


def _check_choice(value: str, choices: tuple[str, ...], hint: str) -> str:
    if value not in choices:
        raise typer.BadParameter(f"choose one of {', '.join(choices)}", param_hint=hint)
    return value


def _check_extraction(mode: str) -> str:
    from rewardsmith.extraction import EXTRACTION_MODES

    if mode not in EXTRACTION_MODES:
        raise typer.BadParameter(
            f"choose one of {', '.join(EXTRACTION_MODES)}", param_hint="--extraction"
        )
    return mode


def run_eval(
    model: str,
    *,
    task_name: str,
    split: str,
    adapter: str | None = None,
    data_dir: str | None = None,
    limit: int | None = None,
    batch_size: int = 16,
    max_new_tokens: int = 256,
    extraction: str = "paper",
    out: Path | None = None,
    dtype: str = "auto",
    backend: str = "hf",
    gpu_memory_utilization: float = 0.5,
):
    """Load a model and a task split, evaluate (a progress bar with transformers; vLLM when
    ``backend`` picks it, :func:`~rewardsmith.backends.resolve_backend`), optionally save
    records."""
    from rewardsmith.backends import probe_facts, resolve_backend
    from rewardsmith.evaluation import evaluate
    from rewardsmith.models import load_model
    from rewardsmith.tasks import get_task

    options = {"data_dir": data_dir} if data_dir else {}
    if data_dir and task_name != "gsm8k":
        raise ConfigError("--data-dir applies to the gsm8k task only")
    task = get_task(task_name, **options)
    examples = task.split(split)[: limit if limit else None]
    from rewardsmith.cli import console
    from rewardsmith.cli._render import bar_progress, step_status

    choice = resolve_backend(
        backend, probe_facts(), field="--backend", gguf=model.endswith(".gguf")
    )
    if backend == "auto":
        console.print(choice.reason, highlight=False)
    if choice.value == "vllm":
        from rewardsmith.evaluation_vllm import evaluate_saved_policy

        with step_status(console, f"eval {task_name}/{split} with vLLM"):
            result = evaluate_saved_policy(
                model,
                adapter,
                examples,
                task.prompt,
                max_new_tokens=max_new_tokens,
                mode=extraction,
                dtype=dtype,
                gpu_memory_utilization=gpu_memory_utilization,
            )
        if out is not None:
            result.save_records(out)
        return result
    loaded = load_model(model, adapter=adapter, dtype=dtype)

    with bar_progress(console, unit="questions") as progress:
        bar = progress.add_task(f"eval {task_name}/{split}", total=len(examples))
        result = evaluate(
            loaded.model,
            loaded.tokenizer,
            examples,
            task.prompt,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            mode=extraction,  # type: ignore[arg-type]
            progress=lambda n: progress.advance(bar, n),
        )
    if out is not None:
        result.save_records(out)
    return result


def eval_command(
    model: Annotated[str, typer.Option(help="'embedded', a .gguf file, a model dir or a hub id.")],
    task: Annotated[str, typer.Option(help="Task name: synthetic or gsm8k.")] = "synthetic",
    split: Annotated[str, typer.Option(help="Split to evaluate: val or test.")] = "val",
    adapter: Annotated[str | None, typer.Option(help="A PEFT (LoRA) adapter directory.")] = None,
    data_dir: Annotated[
        str | None, typer.Option(help="gsm8k: folder with train.jsonl/test.jsonl (else the hub).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Evaluate the first N questions.")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Generation batch size.")] = 16,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 256,
    extraction: ExtractionOpt = "paper",
    out: Annotated[Path | None, typer.Option(help="Write per-question records (JSONL).")] = None,
    dtype: Annotated[
        str,
        typer.Option(
            help="Weights dtype: auto (bf16 on GPUs that have it, else fp32), "
            "bfloat16, float16 or float32."
        ),
    ] = "auto",
    backend: Annotated[
        str,
        typer.Option(
            help="Generation: hf (transformers), vllm (CUDA + the gpu extra), or "
            "auto (vllm when it can run, else hf; says which)."
        ),
    ] = "hf",
    gpu_memory_utilization: Annotated[
        float, typer.Option(min=0.05, max=0.95, help="vLLM: share of GPU memory it may take.")
    ] = 0.5,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print metrics as one JSON object.")
    ] = False,
) -> None:
    """Evaluate a model greedily on a task split with the paper's metrics."""
    from rewardsmith.cli import console
    from rewardsmith.cli._render import metrics_table

    _check_extraction(extraction)
    _check_choice(dtype, DTYPES, "--dtype")
    _check_choice(backend, BACKENDS, "--backend")
    result = run_eval(
        model,
        task_name=task,
        split=split,
        adapter=adapter,
        data_dir=data_dir,
        limit=limit,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        extraction=extraction,
        out=out,
        dtype=dtype,
        backend=backend,
        gpu_memory_utilization=gpu_memory_utilization,
    )
    if as_json:
        print(json.dumps(result.metrics.to_dict()))
        return
    console.print(metrics_table(result.metrics, f"{model} on {task}/{split} ({extraction})"))
    if out is not None:
        console.print(f"records: {out}")


def score_command(
    file: Annotated[
        Path, typer.Argument(help='JSONL with {"response": ..., "answer": ...} lines.')
    ],
    extraction: ExtractionOpt = "paper",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print metrics as one JSON object.")
    ] = False,
) -> None:
    """Score existing model outputs with the paper's metrics."""
    from rewardsmith.cli import console
    from rewardsmith.cli._render import metrics_table
    from rewardsmith.evaluation import read_scored_file, score_responses

    _check_extraction(extraction)
    responses, golds = read_scored_file(file)
    result = score_responses(responses, golds, mode=extraction)  # type: ignore[arg-type]
    if as_json:
        print(json.dumps(result.metrics.to_dict()))
    else:
        console.print(metrics_table(result.metrics, f"{file} ({extraction})"))


def bootstrap_model_command(
    preset: Annotated[
        str, typer.Option(help="Embedded model recipe: default or tiny.")
    ] = "default",
    force: Annotated[bool, typer.Option(help="Rebuild even when cached.")] = False,
    eval_limit: Annotated[int, typer.Option(min=1, help="Validation questions to check.")] = 200,
) -> None:
    """Build (or reuse) the embedded default policy and report what it reaches on validation."""
    from rewardsmith.bootstrap import (
        build_embedded_model,
        embedded_model_dir,
        ensure_embedded_model,
        get_preset,
    )
    from rewardsmith.cli import console
    from rewardsmith.cli._render import metrics_table, step_status

    cfg = get_preset(preset)
    if force or not (embedded_model_dir(cfg) / "bootstrap.json").is_file():
        with step_status(console, f"training the embedded model ({preset}) with SFT") as report:
            info = build_embedded_model(cfg, progress=report)
        console.print(
            f"built in {info['seconds']}s: {info['parameters']:,} parameters, "
            f"{info['steps']} SFT steps, final train loss {info['train_loss']:.3f}"
        )
    path = ensure_embedded_model(preset)
    console.print(f"embedded model: {path}")
    result = run_eval(
        f"embedded:{preset}" if preset != "default" else "embedded",
        task_name="synthetic",
        split="val",
        limit=eval_limit,
        batch_size=32,
    )
    console.print(metrics_table(result.metrics, f"embedded ({preset}) on synthetic/val"))


def register(app: typer.Typer) -> None:
    """Add the evaluation commands to ``app``."""
    app.command("bootstrap-model")(bootstrap_model_command)
    app.command("eval")(eval_command)
    app.command("score")(score_command)
