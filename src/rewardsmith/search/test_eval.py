"""Evaluate a finished trial's adapter on another split (the finalists on test).

The selection split ranks candidates during the search; test is touched only here, once per
finalist, and the result is stored as an evaluation of that trial. When the selection split is
test itself (``selection: test``, the paper's protocol) the trial's own result is reused.

Kill-safe like trials: the policy loaded is the one the trial's COMPLETE transaction recorded;
each evaluation attempt writes its records to a file of its own, and the evaluation row (first
writer wins, immutable) names the file that counts, so an evaluation killed half-way and redone
on resume never leaves a half-written file behind a recorded evaluation.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

from rewardsmith.config import parse_config
from rewardsmith.store import RunStore

log = logging.getLogger(__name__)


def load_policy(model_spec: str, saved: str | None) -> Any:
    """A trial's trained policy: the base model plus its LoRA adapter, or, for trials whose SFT
    stages changed the base weights, the whole merged policy saved in its place."""
    from rewardsmith.models import load_model

    if saved and (Path(saved) / "config.json").is_file():
        return load_model(saved)
    return load_model(model_spec, adapter=saved)


def _evaluate_policy(cfg: Any, saved: str | None, task: Any, split: str) -> Any:
    """Greedy evaluation of a trial's saved policy with the backend ``eval.backend`` picks
    (:func:`rewardsmith.backends.resolve_backend`; the result records which)."""
    from rewardsmith.backends import probe_facts, resolve_backend
    from rewardsmith.evaluation import evaluate

    choice = resolve_backend(
        cfg.eval.backend,
        probe_facts(),
        field="eval.backend",
        gguf=cfg.model.spec.endswith(".gguf"),
    )
    log.info("test evaluation: %s", choice.reason)
    if choice.value == "vllm":
        from rewardsmith.evaluation_vllm import evaluate_saved_policy

        return evaluate_saved_policy(
            cfg.model.spec,
            saved,
            task.split(split),
            task.prompt,
            max_new_tokens=cfg.eval.max_new_tokens,
            mode=cfg.eval.extraction,
            dtype=cfg.model.dtype,
            quantization="bitsandbytes" if cfg.model.load_in_4bit else None,
            gpu_memory_utilization=cfg.eval.gpu_memory_utilization,
        )
    loaded = load_policy(cfg.model.spec, saved)
    return evaluate(
        loaded.model,
        loaded.tokenizer,
        task.split(split),
        task.prompt,
        batch_size=cfg.eval.batch_size,
        max_new_tokens=cfg.eval.max_new_tokens,
        mode=cfg.eval.extraction,
    )


def evaluate_trial(store: RunStore, trial: Any, split: str, task: Any) -> Any:
    """Evaluate ``trial``'s recorded policy on ``split`` (whole split) and store the evaluation;
    return the stored one (an earlier evaluation of the same split wins)."""
    result = store.result(trial.id)
    if result is None:
        raise ValueError(f"trial {trial.id} has no result to evaluate")
    if result.metrics.get("split") == split:
        return store.add_evaluation(
            trial.id, split, result.metrics, result.correctness, result.eval_path
        )
    cfg = parse_config(trial.config, source=f"trial {trial.id}")
    outcome = _evaluate_policy(cfg, store.local_path(result.adapter_path), task, split)
    attempt = secrets.token_hex(4)
    path = outcome.save_records(store.evals_dir / f"trial-{trial.id}-{split}-{attempt}.jsonl")
    log.info("trial %d on %s: accuracy %.3f", trial.id, split, outcome.metrics.accuracy)
    stored = store.add_evaluation(
        trial.id,
        split,
        {**outcome.metrics_dict(), "split": split},
        [int(c) for c in outcome.correct],
        str(path),
    )
    if stored.records_path != store.artifact_uri(path):  # another one was recorded first
        Path(path).unlink(missing_ok=True)
    return stored
