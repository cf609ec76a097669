"""SFT stages before GRPO: supervised fine-tuning on the task's worked solutions (TRL SFTTrainer).

A stage trains the policy on prompt/completion pairs whose completion is the worked solution in
the task's response format, with the loss on the completion only. ``mode: full`` updates all
weights; ``mode: lora`` trains a LoRA adapter and merges it, so the GRPO stage that follows
starts a fresh adapter on the improved weights either way.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from rewardsmith.errors import ConfigError

log = logging.getLogger(__name__)


def sft_dataset(task: Any, limit: int | None = None) -> Any:
    """Conversational prompt/completion pairs from the train split's worked solutions."""
    from datasets import Dataset

    rows = []
    for example in task.train[: limit or None]:
        if not example.get("solution"):
            raise ConfigError(f"task {task.name!r} has no worked solutions for an SFT stage")
        response = task.prompt.response(example["solution"], str(example["answer"]))
        rows.append(
            {
                "prompt": task.prompt.messages(example["question"]),
                "completion": [{"role": "assistant", "content": response}],
            }
        )
    return Dataset.from_list(rows)


def run_sft_stage(
    model: Any,
    tokenizer: Any,
    task: Any,
    stage: Any,
    lora_args: dict[str, Any],
    out_dir: Path,
    *,
    seed: int,
    use_cpu: bool,
    bf16: bool,
) -> Any:
    """Run one SFT stage and return the trained (merged) model."""
    from peft import LoraConfig
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        output_dir=str(out_dir),
        num_train_epochs=stage.epochs,
        per_device_train_batch_size=stage.batch_size,
        learning_rate=stage.learning_rate,
        max_length=stage.max_length,
        lr_scheduler_type="cosine",
        logging_steps=10,
        save_strategy="no",
        report_to="none",
        seed=seed,
        use_cpu=use_cpu,
        bf16=bf16,
        disable_tqdm=True,
        activation_checkpointing=False,
    )
    peft_config = (
        LoraConfig(**{"task_type": "CAUSAL_LM", **lora_args}) if stage.mode == "lora" else None
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=sft_dataset(task, stage.limit),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    trainer.remove_callback(PrinterCallback)
    result = trainer.train()
    log.info(
        "SFT stage (%s): %d steps, loss %.3f", stage.mode, result.global_step, result.training_loss
    )
    trained = trainer.model
    if hasattr(trained, "merge_and_unload"):
        trained = trained.merge_and_unload()
    return trained
