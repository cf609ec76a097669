"""One screening trial: GRPO + LoRA under a set of rewards, then evaluation on the selection split.

Built-in rewards (the paper's base rewards, registry entries) run in-process; generated rewards
are :class:`~rewardsmith.sandbox.pool.SandboxedReward` objects, so their code only ever runs
in sandbox workers. Each reward is passed to TRL as its own function, so each keeps its own
logged statistics (``rewards/<name>/mean``), which :class:`CurveRecorder` keeps as curves.

Each sandboxed reward is wrapped in a :class:`~rewardsmith.training.monitor.RewardMonitor`
(unless ``rewards.monitor.enabled`` is off) that watches it while it trains; its findings and
counters come back in :attr:`TrialOutcome.monitors`, whether the trial completes or fails.

A trial that fails (a reward failing past the threshold, a reward's monitor findings past theirs,
a NaN loss, out of memory, an interrupt) returns a :class:`TrialOutcome` with ``state="FAILED"``
and the reason: a failure is data.

The trainer itself (the GRPO dataset, SFT stages, the GRPO or OREAL trainer and the training
call) is built in :mod:`rewardsmith.training.trainer`; ``grpo_dataset`` is re-exported here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardsmith.errors import ConfigError
from rewardsmith.evaluation import evaluate
from rewardsmith.training.trainer import _sft, _train, _trainer
from rewardsmith.training.trainer import grpo_dataset as grpo_dataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RewardSpec:
    """A reward in a trial: a built-in by name (``code is None``) or generated code."""

    name: str
    code: str | None = None
    weight: float = 1.0


@dataclass
class TrialOutcome:
    """What a trial produced; ``metrics``/``correct`` are empty when it FAILED before evaluation."""

    state: str
    reason: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    correct: list[bool] = field(default_factory=list)
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    reward_failures: dict[str, dict[str, Any]] = field(default_factory=dict)
    # reward name -> {"summary": {...counters}, "findings": [Finding.to_dict(), ...]}
    monitors: dict[str, dict[str, Any]] = field(default_factory=dict)
    adapter_dir: str | None = None
    records_path: str | None = None
    train_seconds: float = 0.0
    eval_seconds: float = 0.0


def build_reward_funcs(
    specs: Sequence[RewardSpec], *, pool: Any, timeout_s: float, tags: Any = None
) -> tuple[list[Any], list[Any]]:
    """Return (all reward functions in order, the sandboxed ones) for ``specs``."""
    from rewardsmith.rewards import get_reward
    from rewardsmith.sandbox.reward import SandboxedReward

    funcs, sandboxed = [], []
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"reward names must be unique in a trial, got {names}")
    for spec in specs:
        if spec.code is None:
            funcs.append(get_reward(spec.name))
        else:
            reward = SandboxedReward(spec.code, spec.name, pool=pool, timeout_s=timeout_s)
            funcs.append(reward)
            sandboxed.append(reward)
    return funcs, sandboxed


def monitor_rewards(
    funcs: list[Any],
    sandboxed: list[Any],
    settings: Any,
    *,
    tags: Any = None,
    group_size: int | None = None,
    seed: int = 0,
) -> tuple[list[Any], list[Any]]:
    """Wrap each sandboxed reward of ``funcs`` in a :class:`RewardMonitor` (same name, same
    values); return (the functions for the trainer, the monitors). ``settings`` is a
    :class:`~rewardsmith.config.MonitorSection`; when it is disabled nothing is wrapped."""
    from rewardsmith.extraction import DEFAULT_TAGS
    from rewardsmith.rewards.base import get_check_answer_reward
    from rewardsmith.training.monitor import RewardMonitor

    if not settings.enabled:
        return funcs, []
    tags = tags or DEFAULT_TAGS
    checker = get_check_answer_reward(tags)
    monitors = {
        id(r): RewardMonitor(
            r, settings, checker=checker, tags=tags, group_size=group_size, seed=seed
        )
        for r in sandboxed
    }
    return [monitors.get(id(f), f) for f in funcs], list(monitors.values())


@dataclass(frozen=True)
class Method:
    """How a trial trains beyond its rewards: SFT stages first, the objective, label-free data."""

    sft_stages: tuple[Any, ...] = ()
    objective: str = "grpo"
    oreal_eta: float = 0.5
    oreal_one_pos_one_neg: bool = False
    label_free: bool = False


def run_trial(
    *,
    model_spec: str,
    task: Any,
    rewards: Sequence[RewardSpec],
    grpo_args: dict[str, Any],
    lora_args: dict[str, Any],
    out_dir: str | Path,
    pool: Any = None,
    reward_timeout_s: float = 5.0,
    failure_threshold: float = 0.2,
    eval_split: str = "val",
    eval_limit: int | None = None,
    eval_batch_size: int = 32,
    eval_max_new_tokens: int = 256,
    extraction: str = "paper",
    progress: Callable[[int, int], None] | None = None,
    method: Method | None = None,
    monitor: Any = None,
    eval_backend: str = "hf",
    eval_gpu_memory: float = 0.5,
    stop_at: int | None = None,
    resume_from: str | None = None,
) -> TrialOutcome:
    """Train (SFT stages, then GRPO/OREAL with a LoRA adapter) under ``rewards`` and evaluate
    the policy on ``eval_split``. ``monitor`` (a :class:`~rewardsmith.config.MonitorSection`,
    default settings when None) says how sandboxed rewards are watched in training.

    ``grpo_args["seed"]`` also seeds the LoRA initialisation; ``grpo_args["model_init_kwargs"]``
    (``{"load_in_4bit": True}``) says how the base model is loaded and is not passed to TRL; the
    policy loads in the dtype it trains in (``bf16``/``fp16`` flags, :func:`policy_dtype`).
    ``eval_backend`` (``hf|vllm|auto``, :func:`~rewardsmith.backends.resolve_backend`) is
    decided before training, so an explicit ``vllm`` that cannot run fails early.

    ``stop_at`` stops GRPO after that many steps of its ``max_steps`` schedule and keeps a
    checkpoint in the adapter; ``resume_from`` continues such a checkpoint
    (:mod:`rewardsmith.training.continuation`)."""
    from rewardsmith.config import MonitorSection
    from rewardsmith.config_trl import policy_dtype
    from rewardsmith.models import load_model
    from rewardsmith.training.continuation import StopAfter, keep_checkpoint
    from rewardsmith.training.curves import CurveRecorder, FailureGuard, StepProgress
    from rewardsmith.training.monitor import MonitorGuard

    method = method or Method()
    backend = _eval_backend(eval_backend, model_spec, grpo_args)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    funcs, sandboxed = build_reward_funcs(rewards, pool=pool, timeout_s=reward_timeout_s)
    for reward in sandboxed:  # workers start and confine themselves while the model loads
        reward.prestart()
    funcs, monitors = monitor_rewards(
        funcs,
        sandboxed,
        monitor or MonitorSection(),
        tags=getattr(task.prompt, "tags", None),
        group_size=grpo_args.get("num_generations"),
        seed=int(grpo_args.get("seed", 0)),
    )
    # TRL's field for how the policy is loaded; we load it ourselves (4-bit, see config_trl)
    init_kwargs = dict(grpo_args.get("model_init_kwargs") or {})
    grpo_args = {k: v for k, v in grpo_args.items() if k != "model_init_kwargs"}
    loaded = load_model(
        model_spec,
        dtype=policy_dtype(grpo_args),
        load_in_4bit=bool(init_kwargs.get("load_in_4bit")),
    )
    model = _sft(loaded, task, method, lora_args, grpo_args, out)
    recorder = CurveRecorder()
    guards = [FailureGuard(sandboxed, failure_threshold), MonitorGuard(monitors)]
    callbacks = [recorder, *guards] + ([StepProgress(progress)] if progress else [])
    callbacks += [StopAfter(stop_at)] if stop_at else []
    grpo_args = {"output_dir": str(out / "trainer"), **grpo_args}
    weights = [r.weight for r in rewards]
    trainer = _trainer(
        model, loaded.tokenizer, task, funcs, weights, grpo_args, lora_args, method, callbacks
    )
    started = time.perf_counter()
    state, reason = _train(trainer, guards, resume_from)
    outcome = _trained(
        state, reason, recorder.curves, sandboxed, monitors, time.perf_counter() - started
    )
    if state != "COMPLETE":
        log.warning("trial failed: %s", reason)
        return outcome
    policy = _save_policy(trainer, loaded.tokenizer, out, merged_copy=bool(method.sft_stages))
    outcome.adapter_dir = str(policy["path"])
    if stop_at:  # a halving rung: the next rung resumes from this checkpoint
        keep_checkpoint(grpo_args["output_dir"], stop_at, policy["path"])
    started = time.perf_counter()
    examples = task.split(eval_split)[: eval_limit or None]
    if backend == "vllm":
        trainer = model = loaded.model = policy["model"] = None  # free the GPU for the engine
        from rewardsmith.evaluation_vllm import evaluate_saved_policy

        result = evaluate_saved_policy(
            model_spec,
            policy["path"],
            examples,
            task.prompt,
            dtype=policy_dtype(grpo_args),
            quantization="bitsandbytes" if init_kwargs.get("load_in_4bit") else None,
            max_new_tokens=eval_max_new_tokens,
            mode=extraction,
            gpu_memory_utilization=eval_gpu_memory,
        )
    else:
        result = evaluate(
            policy["model"],
            loaded.tokenizer,
            examples,
            task.prompt,
            batch_size=eval_batch_size,
            max_new_tokens=eval_max_new_tokens,
            mode=extraction,  # type: ignore[arg-type]
        )
    outcome.eval_seconds = time.perf_counter() - started
    outcome.metrics = result.metrics_dict()
    outcome.correct = result.correct
    outcome.records_path = str(result.save_records(out / f"eval_{eval_split}.jsonl"))
    return outcome


def _eval_backend(setting: str, model_spec: str, grpo_args: dict[str, Any]) -> str:
    """``hf`` or ``vllm`` for the trial's evaluation (logged with the reason)."""
    from rewardsmith.backends import probe_facts, resolve_backend

    choice = resolve_backend(
        setting,
        probe_facts(),
        field="eval.backend",
        gguf=model_spec.endswith(".gguf"),
        use_cpu=bool(grpo_args.get("use_cpu")),
    )
    log.info("evaluation: %s", choice.reason)
    return choice.value


def _trained(
    state: str, reason: str | None, curves: dict, sandboxed: list, monitors: list, seconds: float
) -> TrialOutcome:
    """The outcome of the training phase: state, curves, reward failures, monitor findings."""
    return TrialOutcome(
        state=state,
        reason=reason,
        curves=curves,
        reward_failures={
            r.__name__: {"calls": r.calls, "failures": r.failures, "last_error": r.last_error}
            for r in sandboxed
        },
        monitors={
            m.__name__: {"summary": m.summary(), "findings": [f.to_dict() for f in m.findings]}
            for m in monitors
        },
        train_seconds=seconds,
    )


def _save_policy(trainer: Any, tokenizer: Any, out: Path, *, merged_copy: bool) -> dict[str, Any]:
    """Save the adapter (or, after SFT stages changed the base weights, the whole merged policy)
    and return ``{"path", "model"}`` with the merged model ready for fast greedy evaluation."""
    adapter_dir = out / "adapter"
    if not merged_copy:
        trainer.model.save_pretrained(adapter_dir)
    model = trainer.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    if merged_copy:  # the adapter alone would not reproduce the policy on the original base
        adapter_dir = out / "policy"
        model.save_pretrained(adapter_dir)
        tokenizer.save_pretrained(adapter_dir)
    model.eval()
    return {"path": adapter_dir, "model": model}
