"""Loading policies: any transformers causal LM, a GGUF file, or the embedded default model.

A model spec is one of

- ``embedded`` (or ``embedded:tiny``): the small Llama rewardsmith builds itself
  (:mod:`rewardsmith.bootstrap`), built on first use and cached;
- a path to a ``.gguf`` file: dequantised by transformers (needs the ``gguf`` package) into a
  float copy that no longer carries the quantisation marker, so LoRA/GRPO can train it;
- a local directory or a hub id (e.g. ``meta-llama/Llama-3.2-3B-Instruct``).

Tokenizers come back with a pad token and left padding, ready for batched generation, and with
a chat template that cannot print today's date: templates that insert it (Llama 3's
``strftime_now("%d %b %Y")`` / ``date_string``) get :data:`FIXED_CHAT_DATE` instead
(:func:`fix_chat_date`), so a prompt, and so a run, does not change with the calendar.

``load_in_4bit`` loads the base model quantised to 4-bit NF4 with bitsandbytes (the paper's
Unsloth set-up; CUDA only) for LoRA training on top of it.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import logging
import re
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


def torch_dtype(dtype: Any, device: str) -> Any:
    """A torch dtype from a name (``bfloat16``, ``float16``, ``float32``; ``auto`` or None:
    :func:`default_dtype`) or a torch dtype (returned as is)."""
    import torch

    if dtype is None or dtype == "auto":
        return default_dtype(device)
    if isinstance(dtype, str):
        value = getattr(torch, dtype, None)
        if not isinstance(value, torch.dtype):
            raise ConfigError(f"unknown dtype {dtype!r}; use bfloat16, float16 or float32")
        return value
    return dtype


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


#: The date a chat template that prints "today" gets: Llama 3.x's own fallback date.
FIXED_CHAT_DATE = datetime.date(2024, 7, 26)
_STRFTIME_CALL = re.compile(r"""strftime_now\(\s*(["'])(.*?)\1\s*\)""")


def fix_chat_date(template: str, day: datetime.date = FIXED_CHAT_DATE) -> str:
    """``template`` with today's date pinned to ``day``, for templates that print the date.

    Jinja preamble: ``date_string`` is set (Llama 3 uses it when defined) and a ``strftime_now``
    macro shadows transformers' global of that name, returning ``day`` in each format the
    template asks for. Templates that mention neither come back unchanged.

    >>> fix_chat_date("Today: {{ strftime_now('%Y-%m-%d') }}").startswith("{% set date_string")
    True
    >>> fix_chat_date("{{ messages[0].content }}")
    '{{ messages[0].content }}'
    """
    if "strftime_now" not in template and "date_string" not in template:
        return template
    default = day.strftime("%d %b %Y")
    formats = {m.group(2): day.strftime(m.group(2)) for m in _STRFTIME_CALL.finditer(template)}
    preamble = (
        f"{{% set date_string = {json.dumps(default)} %}}"
        f"{{% macro strftime_now(format) %}}{{{{ {json.dumps(formats)}.get(format, "
        f"{json.dumps(default)}) }}}}{{% endmacro %}}"
    )
    return preamble + template


def _pin_chat_date(tokenizer: Any) -> None:
    """Apply :func:`fix_chat_date` to the tokenizer's chat template(s), in place."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, str):
        tokenizer.chat_template = fix_chat_date(template)
    elif isinstance(template, dict):
        tokenizer.chat_template = {k: fix_chat_date(v) for k, v in template.items()}


def load_tokenizer(path: str, gguf_file: str | None = None) -> Any:
    """A tokenizer with a pad token, left padding (for batched generation) and a chat template
    whose date is fixed (:func:`fix_chat_date`)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, gguf_file=gguf_file)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    _pin_chat_date(tok)
    return tok


def quantization_kwargs(device: str, dtype: Any = None) -> dict[str, Any]:
    """``from_pretrained`` arguments for a 4-bit NF4 base model (bitsandbytes, on ``device``).

    Raises :class:`ConfigError` without a CUDA device or without the ``bitsandbytes`` package.
    """
    import torch

    if not device.startswith("cuda"):
        raise ConfigError("model.load_in_4bit needs a CUDA device (bitsandbytes 4-bit)")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError("model.load_in_4bit needs the 'bitsandbytes' package: pip install it")
    from transformers import BitsAndBytesConfig

    compute = torch_dtype(dtype, device)
    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute if compute != torch.float32 else torch.float16,
    )
    return {"quantization_config": config, "device_map": {"": torch.device(device)}}


def load_model(
    spec: str,
    *,
    adapter: str | None = None,
    device: str = "auto",
    dtype: Any = None,
    load_in_4bit: bool = False,
) -> LoadedModel:
    """Load a causal LM for generation or training; an ``adapter`` (PEFT/LoRA directory) is
    attached and merged into the weights, for evaluation. ``dtype`` is a torch dtype or its
    name (``model.dtype``; ``auto``/None: :func:`default_dtype`). ``load_in_4bit`` quantises
    the base model (:func:`quantization_kwargs`)."""
    from transformers import AutoModelForCausalLM

    path, gguf_file = resolve_model_path(spec)
    device = pick_device(device)
    dtype = torch_dtype(dtype, device)
    extra = quantization_kwargs(device, dtype) if load_in_4bit else {}
    try:
        tokenizer = load_tokenizer(path, gguf_file)
        model = AutoModelForCausalLM.from_pretrained(
            path, gguf_file=gguf_file, dtype=dtype, **extra
        )
    except OSError as exc:
        raise ConfigError(f"cannot load model {spec!r}: {str(exc).splitlines()[0]}") from exc
    if gguf_file is not None:
        _strip_quantization_marker(model)
    if adapter is not None:
        model = _attach_adapter(model, adapter)
    if not load_in_4bit:  # a quantised model is placed by device_map and cannot be moved
        model.to(device)
    model.eval()
    log.info("loaded %s (%s) on %s in %s", spec, path, device, dtype)
    return LoadedModel(model=model, tokenizer=tokenizer, spec=spec, path=path)


def _attach_adapter(model: Any, adapter: str) -> Any:
    from peft import PeftModel

    if not (Path(adapter) / "adapter_config.json").is_file():
        raise ConfigError(f"adapter directory {adapter} has no adapter_config.json")
    # merged: generation runs at the base model's speed (the adapter files are unchanged)
    return PeftModel.from_pretrained(model, adapter).merge_and_unload()
