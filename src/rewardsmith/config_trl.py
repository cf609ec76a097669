"""Keyword arguments for TRL's ``GRPOConfig`` and PEFT's ``LoraConfig`` from a run config, and
the YAML loader that refuses repeated keys. Neither TRL nor PEFT is imported here."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rewardsmith.backends import (
    Facts,
    probe_facts,
    resolve_backend,
    resolve_precision,
    vllm_problem,
)
from rewardsmith.errors import ConfigError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from rewardsmith.config import RunConfig

#: GRPO-section fields that choose rewardsmith's objective, not TRL settings
_OBJECTIVE_FIELDS = frozenset({"objective", "oreal_eta", "oreal_one_pos_one_neg"})
#: GRPO-section fields mapped to TRL options by hand (not passed through under their names)
_OWN_FIELDS = frozenset({"activation_checkpointing", "generation"})


class UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key repeated in one mapping (YAML would keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _facts(cuda: tuple[bool, bool] | None, facts: Facts | None) -> Facts:
    """``facts`` as given, else built from ``cuda`` = (CUDA visible, bf16) and the installed
    vLLM, else probed (imports torch)."""
    if facts is not None:
        return facts
    if cuda is not None:
        return Facts(cuda=cuda[0], bf16=cuda[0] and cuda[1], vllm_missing=vllm_problem())
    return probe_facts()


def grpo_kwargs(
    cfg: RunConfig,
    *,
    output_dir: str | Path,
    seed: int | None = None,
    max_steps: int | None = None,
    cuda: tuple[bool, bool] | None = None,
    facts: Facts | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``trl.GRPOConfig`` (a plain dict; TRL is not imported).

    ``seed`` and ``max_steps`` override the config (a trial's own seed, the ensembles' budget).
    The machine's :class:`~rewardsmith.backends.Facts` come from ``facts``, else from ``cuda`` =
    (CUDA visible, bf16 supported), else a probe. ``use_cpu: auto`` is "no CUDA device".
    Precision (``bf16``/``fp16``) follows :func:`~rewardsmith.backends.resolve_precision`
    (``model.dtype`` and ``grpo.bf16``; fp16 is loss-scaled by the Trainer's GradScaler); the
    trial loads the policy in the same dtype (:func:`policy_dtype`). ``grpo.generation`` maps
    to TRL's ``use_vllm``/``vllm_*`` options (:func:`~rewardsmith.backends.resolve_backend`
    decides ``auto`` and refuses an explicit ``vllm`` that cannot run); the trial sets
    ``vllm_max_model_length`` from the longest prompt. ``grpo.activation_checkpointing`` is
    transformers' ``activation_checkpointing`` (non-reentrant, as PEFT needs). Both decisions
    are logged with their reasons. Checkpointing and trackers are off: the trial saves its
    adapter itself. ``model.load_in_4bit`` travels as ``model_init_kwargs`` (TRL's field for
    how the policy is loaded), which :func:`rewardsmith.training.trial.run_trial` reads.
    """
    g = cfg.grpo
    facts = _facts(cuda, facts)
    use_cpu = (not facts.cuda) if g.use_cpu == "auto" else g.use_cpu
    precision = resolve_precision(cfg.model.dtype, g.bf16, facts, use_cpu=use_cpu)
    log.info("training precision: %s", precision.reason)
    if precision.value == "float16" and cfg.model.dtype == "auto":
        log.warning("this GPU has no bf16: training in fp16 with loss scaling")
    excluded = {"max_steps", "warmup_ratio", "use_cpu", "bf16", *_OBJECTIVE_FIELDS, *_OWN_FIELDS}
    if g.optim is None:  # TRL's own default
        excluded.add("optim")
    passthrough = g.model_dump(exclude=excluded, mode="json")
    if cfg.model.load_in_4bit:
        # TRL's field for how the policy is loaded; the trial loads it (models.load_model)
        passthrough["model_init_kwargs"] = {"load_in_4bit": True}
    return (
        passthrough
        | {
            "output_dir": str(output_dir),
            "max_steps": g.max_steps if max_steps is None else max_steps,
            # transformers 5 folds warmup_ratio into warmup_steps: a float in [0, 1) is a ratio.
            "warmup_steps": g.warmup_ratio,
            "seed": cfg.seed if seed is None else seed,
            "use_cpu": use_cpu,
            "bf16": precision.value == "bfloat16",
            "fp16": precision.value == "float16",
            "report_to": "none",
            "save_strategy": "no",
        }
        | checkpointing_kwargs(g.activation_checkpointing)
        | generation_kwargs(cfg, facts, use_cpu=use_cpu)
    )


def checkpointing_kwargs(enabled: bool) -> dict[str, Any]:
    """transformers' activation checkpointing options (TRL would turn it on by default)."""
    if not enabled:
        return {"activation_checkpointing": False}
    # non-reentrant: PEFT's frozen base has no input that requires grad for reentrant replay
    return {
        "activation_checkpointing": True,
        "activation_checkpointing_kwargs": {"use_reentrant": False},
    }


def generation_kwargs(cfg: RunConfig, facts: Facts, *, use_cpu: bool) -> dict[str, Any]:
    """TRL's vLLM options for ``grpo.generation`` (``use_vllm: False`` for the hf backend)."""
    gen = cfg.grpo.generation
    choice = resolve_backend(
        gen.backend,
        facts,
        field="grpo.generation.backend",
        gguf=cfg.model.spec.endswith(".gguf"),
        objective=cfg.grpo.objective,
        use_cpu=use_cpu,
    )
    log.info("GRPO generation: %s", choice.reason)
    if choice.value != "vllm":
        return {"use_vllm": False}
    if gen.mode == "server" and not gen.server_base_url:
        raise ConfigError("grpo.generation.mode: server needs grpo.generation.server_base_url")
    out: dict[str, Any] = {
        "use_vllm": True,
        "vllm_mode": gen.mode,
        "vllm_enable_sleep_mode": gen.enable_sleep_mode,
    }
    if gen.mode == "server":
        out["vllm_server_base_url"] = gen.server_base_url
    else:
        out["vllm_gpu_memory_utilization"] = gen.gpu_memory_utilization
        out["vllm_tensor_parallel_size"] = gen.tensor_parallel_size
    return out


def policy_dtype(grpo_args: dict[str, Any]) -> str:
    """The dtype the trial loads its policy in: the one it trains in (``bf16``/``fp16`` flags
    of :func:`grpo_kwargs`; float32 otherwise). LoRA weights stay float32 (PEFT upcasts them),
    so fp16's GradScaler unscales float32 gradients."""
    if grpo_args.get("bf16"):
        return "bfloat16"
    return "float16" if grpo_args.get("fp16") else "float32"


def lora_kwargs(cfg: RunConfig) -> dict[str, Any]:
    """Keyword arguments for ``peft.LoraConfig`` (a plain dict; PEFT is not imported)."""
    lora = cfg.lora
    targets = lora.target_modules
    return {
        "r": lora.r,
        "lora_alpha": lora.alpha,
        "lora_dropout": lora.dropout,
        "target_modules": list(targets) if isinstance(targets, list) else targets,
        "bias": "none",
        "task_type": "CAUSAL_LM",
    }
