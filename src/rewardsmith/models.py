"""Loading policies: any transformers causal LM, a GGUF file, or the embedded default model.

A model spec is one of

- ``embedded`` (or ``embedded:tiny``): the small Llama rewardsmith builds itself
  (:mod:`rewardsmith.bootstrap`), built on first use and cached;
- a path to a ``.gguf`` file: dequantised by transformers (needs the ``gguf`` package) into a
  float copy that no longer carries the quantisation marker, so LoRA/GRPO can train it;
- a local directory or a hub id (e.g. ``meta-llama/Llama-3.2-3B-Instruct``).

Tokenizers come back with a pad token and left padding, ready for batched generation.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardsmith.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A model with its tokenizer and where it came from."""

    model: Any
    tokenizer: Any
    spec: str
    path: str


def pick_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: str) -> Any:
    """bf16 on GPUs that support it; float32 on CPU (bf16 training on CPU is slow and lossy)."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def resolve_model_path(spec: str) -> tuple[str, str | None]:
    """Return (directory or hub id, gguf file name or None) for a model spec."""
    if spec == "embedded" or spec.startswith("embedded:"):
        from rewardsmith.bootstrap import ensure_embedded_model

        preset = spec.split(":", 1)[1] if ":" in spec else "default"
        return str(ensure_embedded_model(preset)), None
    path = Path(spec).expanduser()
    if spec.endswith(".gguf"):
        if not path.is_file():
            raise ConfigError(f"GGUF file not found: {path}")
        if importlib.util.find_spec("gguf") is None:
            raise ConfigError("loading a .gguf file needs the 'gguf' package: pip install gguf")
        return str(path.parent), path.name
    if path.exists():
        if not (path / "config.json").is_file():
            raise ConfigError(f"{path} is not a model directory (no config.json)")
        return str(path), None
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ConfigError(f"model path not found: {spec}")
    return spec, None  # a hub id


def _strip_quantization_marker(model: Any) -> None:
    """Make a dequantised GGUF model look like an ordinary float model to PEFT and Trainer."""
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False


def load_tokenizer(path: str, gguf_file: str | None = None) -> Any:
    """A tokenizer with a pad token and left padding (for batched generation)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, gguf_file=gguf_file)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def load_model(
    spec: str, *, adapter: str | None = None, device: str = "auto", dtype: Any = None
) -> LoadedModel:
    """Load a causal LM for generation or training; an ``adapter`` (PEFT/LoRA directory) is
    attached and merged into the weights, for evaluation."""
    from transformers import AutoModelForCausalLM

    path, gguf_file = resolve_model_path(spec)
    device = pick_device(device)
    try:
        tokenizer = load_tokenizer(path, gguf_file)
        model = AutoModelForCausalLM.from_pretrained(
            path, gguf_file=gguf_file, dtype=dtype or default_dtype(device)
        )
    except OSError as exc:
        raise ConfigError(f"cannot load model {spec!r}: {str(exc).splitlines()[0]}") from exc
    if gguf_file is not None:
        _strip_quantization_marker(model)
    if adapter is not None:
        model = _attach_adapter(model, adapter)
    model.to(device)
    model.eval()
    log.info("loaded %s (%s) on %s", spec, path, device)
    return LoadedModel(model=model, tokenizer=tokenizer, spec=spec, path=path)


def _attach_adapter(model: Any, adapter: str) -> Any:
    from peft import PeftModel

    if not (Path(adapter) / "adapter_config.json").is_file():
        raise ConfigError(f"adapter directory {adapter} has no adapter_config.json")
    # merged: generation runs at the base model's speed (the adapter files are unchanged)
    return PeftModel.from_pretrained(model, adapter).merge_and_unload()
