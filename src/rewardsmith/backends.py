"""Which generation backend and which precision a run uses, decided from facts about the machine.

Both decisions are pure functions of a :class:`Facts` record (CUDA visible, bf16 supported, vLLM
importable) plus the config, so they are tested without a GPU; :func:`probe_facts` fills the
record from torch and the installed packages. Each decision comes back with its reason, which
the caller logs: a run never silently picks a slower or less precise path.

Backends (``grpo.generation.backend``, ``eval.backend``): ``hf`` is transformers' ``generate``;
``vllm`` is a vLLM engine (TRL's ``use_vllm`` for GRPO, :mod:`rewardsmith.evaluation_vllm` for
evaluation); ``auto`` picks vLLM only where it can run: a CUDA device, an importable vLLM in the
range TRL supports, a model that is not a GGUF file, and an objective whose loss applies TRL's
correction for vLLM's sampling (GRPO does; OREAL refuses vLLM). A 4-bit base
(``model.load_in_4bit``) runs in vLLM as bitsandbytes-quantised weights (TRL detects it).

Precision (``model.dtype``, ``grpo.bf16``): ``bfloat16`` trains in bf16 autocast (needs a GPU with
bf16), ``float16`` in fp16 autocast with loss scaling (transformers' GradScaler; CUDA only),
``float32`` in full precision. ``auto`` is bf16 on a GPU that has it, fp16 with loss scaling on a
GPU that does not (logged as a warning: fp16 can overflow where bf16 would not), fp32 on CPU.
``grpo.bf16: true`` means ``bfloat16``; ``grpo.bf16: false`` with ``model.dtype: auto`` means
``float32`` (it opted out of half precision); a contradiction between the two is an error.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from typing import Literal

from rewardsmith.errors import ConfigError

#: vLLM versions TRL 1.16 supports (``trl.import_utils.is_vllm_available``); the ``gpu`` extra.
VLLM_RANGE = ("0.22.0", "0.31.0")
#: Objectives whose trainer can generate with vLLM (OREAL's loss has no importance correction).
VLLM_OBJECTIVES = frozenset({"grpo"})

Backend = Literal["hf", "vllm"]
Precision = Literal["bfloat16", "float16", "float32"]


@dataclass(frozen=True)
class Facts:
    """What the machine offers: a CUDA device, bf16 on it, an importable vLLM (or why not)."""

    cuda: bool
    bf16: bool
    vllm_missing: str | None  # None: vLLM is importable and in range; else why not


@dataclass(frozen=True)
class Choice:
    """A decision and the sentence that explains it (for the log)."""

    value: str
    reason: str


def vllm_problem() -> str | None:
    """Why vLLM cannot be used here (not installed, version outside :data:`VLLM_RANGE`), or None.

    Checks the installed distribution without importing vLLM (its import is slow and needs CUDA).
    """
    if importlib.util.find_spec("vllm") is None:
        return "vllm is not installed (pip install 'rewardsmith[gpu]')"
    from packaging.version import Version

    try:
        version = Version(importlib.metadata.version("vllm"))
    except importlib.metadata.PackageNotFoundError:
        return "vllm is importable but has no package metadata"
    low, high = VLLM_RANGE
    if not Version(low) <= Version(version.base_version) <= Version(high):
        return f"vllm {version} is outside the range TRL supports ({low} to {high})"
    return None


def probe_facts() -> Facts:
    """The facts of this machine (imports torch)."""
    import torch

    cuda = bool(torch.cuda.is_available())
    bf16 = cuda and bool(torch.cuda.is_bf16_supported())
    return Facts(cuda=cuda, bf16=bf16, vllm_missing=vllm_problem())


def resolve_backend(
    setting: str,
    facts: Facts,
    *,
    field: str,
    gguf: bool = False,
    objective: str = "grpo",
    use_cpu: bool = False,
) -> Choice:
    """``hf`` or ``vllm`` for ``setting`` (``hf|vllm|auto``) and why.

    An explicit ``vllm`` that cannot run raises :class:`ConfigError` naming ``field`` and the
    reason; ``auto`` falls back to ``hf`` with the reason.

    >>> resolve_backend("auto", Facts(False, False, None), field="eval.backend").value
    'hf'
    """
    if setting == "hf":
        return Choice("hf", f"{field}: hf (as configured)")
    blockers = [
        (use_cpu or not facts.cuda, "no CUDA device (vLLM runs on GPUs only)"),
        (facts.vllm_missing is not None, facts.vllm_missing),
        (gguf, "the model is a GGUF file (vLLM's GGUF loader cannot take LoRA weight updates)"),
        (objective not in VLLM_OBJECTIVES, f"objective {objective!r} does not support vLLM"),
    ]
    reason = next((why for blocked, why in blockers if blocked), None)
    if reason is None:
        return Choice("vllm", f"{field}: vllm (CUDA, vllm importable, model and objective fit)")
    if setting == "vllm":
        raise ConfigError(f"{field}: vllm cannot run here: {reason}")
    return Choice("hf", f"{field}: hf ({reason})")


def resolve_precision(
    model_dtype: str, grpo_bf16: bool | str, facts: Facts, *, use_cpu: bool
) -> Choice:
    """The training precision (``bfloat16``/``float16``/``float32``) and why; see the module
    docstring. Raises :class:`ConfigError` for a precision the device lacks or a conflict."""
    gpu = facts.cuda and not use_cpu
    if grpo_bf16 is True and model_dtype not in ("auto", "bfloat16"):
        raise ConfigError(f"grpo.bf16: true conflicts with model.dtype: {model_dtype}")
    if grpo_bf16 is False and model_dtype == "bfloat16":
        raise ConfigError("grpo.bf16: false conflicts with model.dtype: bfloat16")
    wanted = "bfloat16" if grpo_bf16 is True else model_dtype
    if grpo_bf16 is False and wanted == "auto":
        return Choice("float32", "float32 (grpo.bf16: false)")
    if wanted == "bfloat16":
        if not (gpu and facts.bf16):
            raise ConfigError(
                "model.dtype bfloat16 (or grpo.bf16: true) needs a CUDA device with bf16; "
                "use 'auto', float16 (loss-scaled) or float32"
            )
        return Choice("bfloat16", "bfloat16 (as configured)")
    if wanted == "float16":
        if not gpu:
            raise ConfigError(
                "model.dtype float16 needs a CUDA device (fp16 training with loss scaling)"
            )
        return Choice("float16", "float16 with loss scaling (as configured)")
    if wanted == "float32":
        return Choice("float32", "float32 (as configured)")
    if not gpu:
        return Choice("float32", "float32 (auto: no CUDA device)")
    if facts.bf16:
        return Choice("bfloat16", "bfloat16 (auto: the GPU supports bf16)")
    return Choice("float16", "float16 with loss scaling (auto: this GPU has no bf16)")
