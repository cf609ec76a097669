"""Evaluation: batched greedy generation, answer extraction and the paper's metrics.

The published protocol generates one question at a time; here questions are sorted by prompt
length and generated in left-padded batches (same greedy outputs, many times faster; see
``bench/eval_throughput.py``). Every question gets a record (question, gold, response, extracted,
correct), and the correctness vector is kept for McNemar tests between policies.

Prompts are built once, as token ids (:func:`chat_prompt_ids`), for both backends: this module's
transformers path pads them into batches, :mod:`rewardsmith.evaluation_vllm` hands the same ids
to vLLM. Each evaluation records its ``backend`` (:meth:`EvalResult.metrics_dict`); McNemar
pairs only evaluations from the same backend (:func:`same_backend`), since two backends' greedy
outputs can differ in floating-point ties.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardsmith.errors import DataError
from rewardsmith.extraction import DEFAULT_TAGS, ExtractionMode, Tags, answers_match, extract_answer
from rewardsmith.metrics import Metrics, score_outcomes

log = logging.getLogger(__name__)

Progress = Callable[[int], None]


@dataclass
class EvalResult:
    """Metrics plus per-question records; ``correct`` is the vector McNemar tests compare."""

    metrics: Metrics
    records: list[dict[str, Any]] = field(default_factory=list)
    backend: str = "hf"

    def metrics_dict(self) -> dict[str, Any]:
        """The metrics as a dict, with the ``backend`` that generated the responses."""
        return {**self.metrics.to_dict(), "backend": self.backend}

    @property
    def correct(self) -> list[bool]:
        return [bool(r["correct"]) for r in self.records]

    def save_records(self, path: str | Path) -> Path:
        """Write the records as JSONL (one question per line)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as fh:
            for rec in self.records:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        return path


def score_responses(
    responses: Sequence[str],
    golds: Sequence[str],
    *,
    mode: ExtractionMode = "paper",
    tags: Tags = DEFAULT_TAGS,
    questions: Sequence[str] | None = None,
    ci: bool = True,
) -> EvalResult:
    """Extract, compare and score responses against gold answers."""
    if len(responses) != len(golds):
        raise ValueError("responses and golds must have the same length")
    records = []
    for i, (response, gold) in enumerate(zip(responses, golds, strict=True)):
        extracted = extract_answer(response, mode, tags)
        record = {
            "question": questions[i] if questions is not None else None,
            "gold": gold,
            "response": response,
            "extracted": extracted,
            "correct": answers_match(extracted, gold, mode),
            "exact": extracted is not None and extracted.strip().replace(",", "") == gold.strip(),
        }
        records.append(record)
    metrics = score_outcomes(
        [r["extracted"] is not None for r in records],
        [r["correct"] for r in records],
        [r["exact"] for r in records],
        ci=ci,
    )
    return EvalResult(metrics, records)


def backend_of(metrics: dict[str, Any] | None) -> str:
    """The backend an evaluation's stored metrics name (``hf`` for evaluations stored before
    the backend was recorded: they could only be transformers')."""
    return str((metrics or {}).get("backend") or "hf")


def same_backend(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Whether two evaluations' metrics come from the same backend (McNemar pairs only those).

    >>> same_backend({"backend": "vllm"}, {}), same_backend({"backend": "hf"}, {})
    (False, True)
    """
    return backend_of(a) == backend_of(b)


def chat_prompt_ids(
    tokenizer: Any, conversations: Sequence[list[dict[str, str]]]
) -> list[list[int]]:
    """The token ids each backend generates from: the chat template with the generation prompt,
    tokenized without adding special tokens again (the template already has them)."""
    texts = [
        tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
        for c in conversations
    ]
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def generate(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[list[dict[str, str]]],
    *,
    batch_size: int = 16,
    max_new_tokens: int = 256,
    progress: Progress | None = None,
) -> list[str]:
    """Greedy completions for chat prompts, in left-padded batches sorted by prompt length."""
    import torch

    prompts = chat_prompt_ids(tokenizer, conversations)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
    outputs: list[str] = [""] * len(prompts)
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = pad_prompts(tokenizer, [prompts[i] for i in idx]).to(device)
        with torch.inference_mode():
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=tokenizer.pad_token_id,
            )
        new = out[:, enc["input_ids"].shape[1] :]
        for i, text in zip(idx, tokenizer.batch_decode(new, skip_special_tokens=True), strict=True):
            outputs[i] = text
        if progress is not None:
            progress(len(idx))
    return outputs


def pad_prompts(tokenizer: Any, prompts: Sequence[list[int]]) -> Any:
    """A left-padded batch (``input_ids``, ``attention_mask`` tensors) of prompt ids."""
    tokenizer.padding_side = "left"
    return tokenizer.pad({"input_ids": list(prompts)}, padding=True, return_tensors="pt")


def evaluate(
    model: Any,
    tokenizer: Any,
    examples: Sequence[dict[str, Any]],
    prompt: Any,
    *,
    batch_size: int = 16,
    max_new_tokens: int = 256,
    mode: ExtractionMode = "paper",
    progress: Progress | None = None,
) -> EvalResult:
    """Generate greedily for ``examples`` (``question``/``answer`` dicts) and score them."""
    if not examples:
        raise DataError("nothing to evaluate: the split is empty")
    questions = [ex["question"] for ex in examples]
    responses = generate(
        model,
        tokenizer,
        [prompt.messages(q) for q in questions],
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        progress=progress,
    )
    golds = [str(ex["answer"]) for ex in examples]
    return score_responses(responses, golds, mode=mode, tags=prompt.tags, questions=questions)


def read_scored_file(path: str | Path) -> tuple[list[str], list[str]]:
    """Read ``{"response", "answer"}`` JSONL for ``score``; errors name the file and line."""
    from rewardsmith.tasks.gsm8k import iter_jsonl

    path = Path(path)
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    responses, golds = [], []
    for lineno, row in iter_jsonl(path):
        if "response" not in row or "answer" not in row:
            raise DataError(f"{path}:{lineno}: record lacks a 'response' or 'answer' field")
        answer = str(row["answer"])
        if "####" in answer:  # a raw GSM8K answer field: keep only the gold
            answer = answer.rsplit("####", 1)[1]
        responses.append(str(row["response"]))
        golds.append(answer.strip())
    if not responses:
        raise DataError(f"{path}: no records")
    return responses, golds
