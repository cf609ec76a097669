"""Greedy evaluation with vLLM: one engine per GPU, each trial's adapter served as a LoRA request.

A process holds at most one engine (:func:`engine_for`); the executor pins each worker process to
one GPU, so that is one engine per GPU, reused by every trial the worker evaluates: the base model
loads once and each trial's adapter rides along as a ``LoRARequest`` (policies whose SFT stages
rewrote the base weights are served as a model of their own, without an adapter).

The prompts are the exact token ids the transformers path builds
(:func:`rewardsmith.evaluation.chat_prompt_ids`), generation is greedy with the same
``max_new_tokens``, the completions are decoded by the same tokenizer, and scoring is the same
code (:func:`rewardsmith.evaluation.score_responses`). The result records ``backend: vllm``.

vLLM is imported only here, inside functions; without it (or without CUDA) the caller gets a
:class:`~rewardsmith.errors.ConfigError` that says why (:func:`require_vllm`).
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardsmith.errors import ConfigError, DataError
from rewardsmith.evaluation import EvalResult, chat_prompt_ids, score_responses
from rewardsmith.extraction import ExtractionMode

log = logging.getLogger(__name__)

#: LoRA ranks vLLM accepts for ``max_lora_rank``.
_VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


@dataclass
class _Engine:
    key: tuple[str, str, int, str | None]
    max_model_len: int
    llm: Any


_ENGINE: _Engine | None = None  # this process's engine (one per GPU: a worker owns one GPU)
_lora_ids: dict[str, int] = {}  # adapter directory -> vLLM's integer LoRA id


def require_vllm() -> None:
    """Raise :class:`ConfigError` saying why vLLM cannot evaluate here (no CUDA, not installed,
    a version TRL does not support)."""
    from rewardsmith.backends import probe_facts, resolve_backend

    resolve_backend("vllm", probe_facts(), field="eval.backend")


def lora_rank(adapter: str | Path | None) -> int:
    """The smallest ``max_lora_rank`` vLLM accepts that holds ``adapter``'s rank (8 without one)."""
    if adapter is None:
        return _VLLM_LORA_RANKS[0]
    config = Path(adapter) / "adapter_config.json"
    if not config.is_file():
        raise ConfigError(f"adapter directory {adapter} has no adapter_config.json")
    r = int(json.loads(config.read_text(encoding="utf-8"))["r"])
    fits = [rank for rank in _VLLM_LORA_RANKS if rank >= r]
    if not fits:
        raise ConfigError(f"LoRA rank {r} is above vLLM's largest ({_VLLM_LORA_RANKS[-1]})")
    return fits[0]


def engine_for(
    model_path: str,
    *,
    dtype: str,
    max_lora_rank: int,
    max_model_len: int,
    memory: float,
    quantization: str | None = None,
) -> Any:
    """This process's vLLM engine for ``model_path``, built on first use and rebuilt only when
    the model, dtype, quantization or LoRA rank changes or a longer context is needed."""
    global _ENGINE
    key = (model_path, dtype, max_lora_rank, quantization)
    if _ENGINE is not None and _ENGINE.key == key and _ENGINE.max_model_len >= max_model_len:
        return _ENGINE.llm
    close_engine()
    from vllm import LLM

    log.info(
        "starting a vLLM engine for %s (%s, max_model_len %d)", model_path, dtype, max_model_len
    )
    llm = LLM(
        model=model_path,
        dtype=dtype,
        enable_lora=True,
        max_lora_rank=max_lora_rank,
        max_loras=1,
        max_model_len=max_model_len,
        gpu_memory_utilization=memory,
        quantization=quantization,
        seed=0,
    )
    _ENGINE = _Engine(key=key, max_model_len=max_model_len, llm=llm)
    return llm


def close_engine() -> None:
    """Drop this process's engine and free its GPU memory."""
    global _ENGINE
    if _ENGINE is None:
        return
    _ENGINE = None
    _lora_ids.clear()
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def lora_request(adapter: str | Path) -> Any:
    """A ``LoRARequest`` for ``adapter``; each directory keeps one id for the engine's life."""
    from vllm.lora.request import LoRARequest

    path = str(Path(adapter).resolve())
    lora_id = _lora_ids.setdefault(path, len(_lora_ids) + 1)
    return LoRARequest(f"adapter-{lora_id}", lora_id, path)


def vllm_prompts(tokenizer: Any, conversations: Sequence[list[dict[str, str]]]) -> list[dict]:
    """vLLM token prompts: the ids :func:`~rewardsmith.evaluation.chat_prompt_ids` builds."""
    return [{"prompt_token_ids": ids} for ids in chat_prompt_ids(tokenizer, conversations)]


def evaluate_vllm(
    model_spec: str,
    examples: Sequence[dict[str, Any]],
    prompt: Any,
    *,
    adapter: str | Path | None = None,
    max_new_tokens: int = 256,
    mode: ExtractionMode = "paper",
    dtype: str = "auto",
    quantization: str | None = None,
    gpu_memory_utilization: float = 0.5,
) -> EvalResult:
    """Greedy evaluation of ``model_spec`` (plus ``adapter``, a LoRA directory) with vLLM.

    A policy saved whole (a directory with ``config.json``, after SFT stages) is passed as
    ``model_spec`` with no adapter. ``quantization="bitsandbytes"`` serves a base trained in
    4-bit (``model.load_in_4bit``) quantised the same way. Raises :class:`ConfigError` when
    vLLM cannot run here.
    """
    from rewardsmith.models import load_tokenizer, resolve_model_path

    if not examples:
        raise DataError("nothing to evaluate: the split is empty")
    require_vllm()
    path, gguf_file = resolve_model_path(model_spec)
    if gguf_file is not None:
        raise ConfigError("eval.backend: vllm cannot serve a GGUF model with LoRA; use hf")
    tokenizer = load_tokenizer(path)
    questions = [ex["question"] for ex in examples]
    prompts = vllm_prompts(tokenizer, [prompt.messages(q) for q in questions])
    longest = max(len(p["prompt_token_ids"]) for p in prompts)
    llm = engine_for(
        path,
        dtype=dtype,
        max_lora_rank=lora_rank(adapter),
        max_model_len=longest + max_new_tokens,
        memory=gpu_memory_utilization,
        quantization=quantization,
    )
    responses = _generate(llm, tokenizer, prompts, adapter, max_new_tokens)
    golds = [str(ex["answer"]) for ex in examples]
    result = score_responses(responses, golds, mode=mode, tags=prompt.tags, questions=questions)
    result.backend = "vllm"
    return result


def evaluate_saved_policy(
    model_spec: str,
    saved: str | Path | None,
    examples: Sequence[dict[str, Any]],
    prompt: Any,
    *,
    quantization: str | None = None,
    **settings: Any,
) -> EvalResult:
    """:func:`evaluate_vllm` of a trial's saved policy: the base ``model_spec`` with the trial's
    adapter as a LoRA request, or a policy saved whole (a directory with ``config.json``, after
    SFT stages rewrote the base weights) served by itself, unquantised. ``saved=None`` evaluates
    the base model. ``settings`` are :func:`evaluate_vllm`'s keyword arguments."""
    gc.collect()  # weights the caller has just released (a trainer's) before the engine loads
    whole = saved is not None and (Path(saved) / "config.json").is_file()
    return evaluate_vllm(
        str(saved) if whole else model_spec,
        examples,
        prompt,
        adapter=None if whole else saved,
        quantization=None if whole else quantization,
        **settings,
    )


def _generate(
    llm: Any, tokenizer: Any, prompts: list[dict], adapter: str | Path | None, max_new: int
) -> list[str]:
    """Greedy completions, decoded by ``tokenizer`` as the transformers path decodes them."""
    from vllm import SamplingParams

    params = SamplingParams(temperature=0.0, max_tokens=max_new, skip_special_tokens=True)
    request = lora_request(adapter) if adapter is not None else None
    outputs = llm.generate(prompts, params, lora_request=request, use_tqdm=False)
    return [
        tokenizer.decode(list(out.outputs[0].token_ids), skip_special_tokens=True)
        for out in outputs
    ]
