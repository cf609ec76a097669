"""The trainer of a trial: the GRPO dataset, SFT stages before GRPO, the TRL trainer (GRPO or
OREAL, with a LoRA adapter; vLLM's context sized from the longest prompt) and the training call,
which turns out-of-memory, an interrupt or a guard's stop into a FAILED state.
:func:`~rewardsmith.training.trial.run_trial` strings these together.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rewardsmith.training.trial import Method


def grpo_dataset(
    examples: Sequence[dict[str, Any]], prompt: Any, *, label_free: bool = False
) -> Any:
    """TRL's conversational prompt format plus the ``answer`` column rewards receive; a
    label-free dataset has no answer column at all, so no reward can read the gold."""
    from datasets import Dataset

    rows = []
    for ex in examples:
        row = {"prompt": prompt.messages(ex["question"])}
        if not label_free:
            row["answer"] = str(ex["answer"])
        rows.append(row)
    return Dataset.from_list(rows)


def _train(
    trainer: Any, guards: Sequence[Any], resume_from: str | None = None
) -> tuple[str, str | None]:
    """Train (on from the checkpoint ``resume_from``, when given); FAILED with the first guard's
    reason (in order) when a guard stopped it."""
    import torch

    try:
        trainer.train(resume_from_checkpoint=resume_from)
    except torch.OutOfMemoryError as exc:
        return "FAILED", f"out of memory: {str(exc).splitlines()[0]}"
    except KeyboardInterrupt:
        return "FAILED", "interrupted"
    reason = next((g.reason for g in guards if g.reason is not None), None)
    if reason is not None:
        return "FAILED", reason
    return "COMPLETE", None


def _trainer(
    model: Any,
    tokenizer: Any,
    task: Any,
    funcs: list[Any],
    weights: list[float],
    grpo_args: dict[str, Any],
    lora_args: dict[str, Any],
    method: Method,
    callbacks: list[Any],
) -> Any:
    from peft import LoraConfig
    from transformers import PrinterCallback, set_seed
    from trl import GRPOConfig, GRPOTrainer

    # The trainer seeds itself only after PEFT has drawn the LoRA weights: seed first, so the
    # adapter's initialisation follows the trial's seed (and differs between seeds).
    set_seed(int(grpo_args.get("seed", 0)))
    defaults = {
        "report_to": "none",
        "save_strategy": "no",
        # TRL turns it on by default; grpo.activation_checkpointing (config_trl) turns it on.
        "activation_checkpointing": False,
    }
    if grpo_args.get("use_vllm") and not grpo_args.get("vllm_max_model_length"):
        grpo_args = {
            **grpo_args,
            "vllm_max_model_length": _max_model_length(task, tokenizer, grpo_args),
        }
    args = GRPOConfig(**{**defaults, **grpo_args}, reward_weights=weights, disable_tqdm=True)
    kwargs: dict[str, Any] = {}
    trainer_cls = GRPOTrainer
    if method.objective == "oreal":
        from rewardsmith.training.oreal import OrealTrainer

        trainer_cls = OrealTrainer
        kwargs = {"eta": method.oreal_eta, "one_pos_one_neg": method.oreal_one_pos_one_neg}
    trainer = trainer_cls(
        model=model,
        reward_funcs=funcs,
        args=args,
        train_dataset=grpo_dataset(task.train, task.prompt, label_free=method.label_free),
        processing_class=tokenizer,
        peft_config=LoraConfig(**{"task_type": "CAUSAL_LM", **lora_args}),
        callbacks=callbacks,
        **kwargs,
    )
    trainer.remove_callback(PrinterCallback)  # library code logs; it does not print
    return trainer


def _max_model_length(task: Any, tokenizer: Any, grpo_args: dict[str, Any]) -> int:
    """vLLM's context for GRPO: the longest training prompt plus the completion cap."""
    from rewardsmith.evaluation import chat_prompt_ids

    prompts = chat_prompt_ids(
        tokenizer, [task.prompt.messages(ex["question"]) for ex in task.train]
    )
    return max(map(len, prompts)) + int(grpo_args.get("max_completion_length", 256))


def _sft(
    loaded: Any, task: Any, method: Method, lora_args: dict, grpo_args: dict, out: Path
) -> Any:
    from rewardsmith.training.stages import run_sft_stage

    model = loaded.model
    for i, stage in enumerate(method.sft_stages):
        model = run_sft_stage(
            model,
            loaded.tokenizer,
            task,
            stage,
            lora_args,
            out / f"sft-{i}",
            seed=int(grpo_args.get("seed", 0)),
            use_cpu=bool(grpo_args.get("use_cpu", False)),
            bf16=bool(grpo_args.get("bf16", False)),
        )
    return model
