"""Keyword arguments for TRL's ``GRPOConfig`` and PEFT's ``LoraConfig`` from a run config, and
the YAML loader that refuses repeated keys. Neither TRL nor PEFT is imported here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rewardsmith.errors import ConfigError

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


def _probe_cuda() -> tuple[bool, bool]:
    """(a CUDA device is visible, it supports bf16)."""
    import torch

    cuda = bool(torch.cuda.is_available())
    return cuda, cuda and bool(torch.cuda.is_bf16_supported())


def grpo_kwargs(
    cfg: RunConfig,
    *,
    output_dir: str | Path,
    seed: int | None = None,
    max_steps: int | None = None,
    cuda: tuple[bool, bool] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``trl.GRPOConfig`` (a plain dict; TRL is not imported).

    ``seed`` and ``max_steps`` override the config (a trial's own seed, the ensembles' budget).
    ``use_cpu``/``bf16`` "auto" resolve from ``cuda`` = (CUDA visible, bf16 supported), probed
    with torch when None: bf16 only on a CUDA device that supports it, never on CPU (TRL would
    otherwise default to bf16 even there); ``bf16: true`` without such a device raises
    :class:`ConfigError`. Checkpointing and trackers are off: the trial saves its adapter itself.
    ``model.load_in_4bit`` travels as ``model_init_kwargs`` (TRL's field for how the policy is
    loaded), which :func:`rewardsmith.training.trial.run_trial` reads to load the base model.
    """
    g = cfg.grpo
    has_cuda, has_bf16 = cuda if cuda is not None else _probe_cuda()
    use_cpu = (not has_cuda) if g.use_cpu == "auto" else g.use_cpu
    bf16 = (has_bf16 and not use_cpu) if g.bf16 == "auto" else g.bf16
    if bf16 and (use_cpu or not has_bf16):
        raise ConfigError("grpo.bf16: true needs a CUDA device with bf16; use 'auto' or false")
    excluded = {"max_steps", "warmup_ratio", "use_cpu", "bf16", *_OBJECTIVE_FIELDS, *_OWN_FIELDS}
    if g.optim is None:  # TRL's own default
        excluded.add("optim")
    passthrough = g.model_dump(exclude=excluded, mode="json")
    if cfg.model.load_in_4bit:
        # TRL's field for how the policy is loaded; the trial loads it (models.load_model)
        passthrough["model_init_kwargs"] = {"load_in_4bit": True}
    return passthrough | {
        "output_dir": str(output_dir),
        "max_steps": g.max_steps if max_steps is None else max_steps,
        # transformers 5 folds warmup_ratio into warmup_steps: a float in [0, 1) is a ratio.
        "warmup_steps": g.warmup_ratio,
        "seed": cfg.seed if seed is None else seed,
        "use_cpu": use_cpu,
        "bf16": bool(bf16),
        "fp16": False,
        "report_to": "none",
        "save_strategy": "no",
    }


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
