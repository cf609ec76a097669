"""Precision and memory settings: model.dtype (bf16, fp16 with loss scaling, fp32) in TRL's flags
and in how the policy loads; grpo.activation_checkpointing reaching the trainer."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rewardsmith.backends import Facts, resolve_precision
from rewardsmith.config import grpo_kwargs, parse_config
from rewardsmith.config_trl import policy_dtype
from rewardsmith.errors import ConfigError

BF16_GPU = Facts(cuda=True, bf16=True, vllm_missing="absent")
OLD_GPU = Facts(cuda=True, bf16=False, vllm_missing="absent")  # e.g. a V100 or a T4
CPU = Facts(cuda=False, bf16=False, vllm_missing="absent")


@pytest.mark.parametrize(
    ("dtype", "bf16", "facts", "expected"),
    [
        ("auto", "auto", BF16_GPU, "bfloat16"),
        ("auto", "auto", OLD_GPU, "float16"),  # not fp32: half precision with loss scaling
        ("auto", "auto", CPU, "float32"),
        ("auto", True, BF16_GPU, "bfloat16"),
        ("auto", False, BF16_GPU, "float32"),  # grpo.bf16: false opts out of half precision
        ("bfloat16", "auto", BF16_GPU, "bfloat16"),
        ("float16", "auto", BF16_GPU, "float16"),
        ("float32", "auto", BF16_GPU, "float32"),
        ("float32", "auto", CPU, "float32"),
    ],
)
def test_precision_follows_model_dtype(dtype, bf16, facts, expected) -> None:
    assert resolve_precision(dtype, bf16, facts, use_cpu=not facts.cuda).value == expected


@pytest.mark.parametrize(
    ("dtype", "bf16", "facts", "message"),
    [
        ("bfloat16", "auto", OLD_GPU, "needs a CUDA device with bf16"),
        ("bfloat16", "auto", CPU, "needs a CUDA device with bf16"),
        ("float16", "auto", CPU, "float16 needs a CUDA device"),
        ("float16", True, BF16_GPU, "grpo.bf16: true conflicts with model.dtype: float16"),
        ("float32", True, BF16_GPU, "conflicts"),
        ("bfloat16", False, BF16_GPU, "grpo.bf16: false conflicts"),
    ],
)
def test_impossible_or_contradictory_precision_is_refused(dtype, bf16, facts, message) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_precision(dtype, bf16, facts, use_cpu=not facts.cuda)


def _kwargs(tmp_path: Path, facts: Facts, **sections: dict) -> dict:
    return grpo_kwargs(parse_config(sections), output_dir=tmp_path, facts=facts)


def test_trl_flags_and_load_dtype(tmp_path: Path, caplog) -> None:
    fp16 = _kwargs(tmp_path, BF16_GPU, model={"dtype": "float16"})
    assert (fp16["fp16"], fp16["bf16"], policy_dtype(fp16)) == (True, False, "float16")
    bf16 = _kwargs(tmp_path, BF16_GPU)
    assert (bf16["fp16"], bf16["bf16"], policy_dtype(bf16)) == (False, True, "bfloat16")
    fp32 = _kwargs(tmp_path, BF16_GPU, model={"dtype": "float32"})
    assert (fp32["fp16"], fp32["bf16"], policy_dtype(fp32)) == (False, False, "float32")
    with caplog.at_level(logging.INFO, logger="rewardsmith.config_trl"):
        old = _kwargs(tmp_path, OLD_GPU)
    assert (old["fp16"], old["bf16"]) == (True, False)  # never a silent fp32 on an old GPU
    assert "no bf16: training in fp16 with loss scaling" in caplog.text


def test_activation_checkpointing_reaches_grpo_config(tmp_path: Path) -> None:
    from trl import GRPOConfig

    off = GRPOConfig(**_kwargs(tmp_path, CPU))
    assert off.activation_checkpointing is False and off.gradient_checkpointing is False
    on = GRPOConfig(**_kwargs(tmp_path, CPU, grpo={"activation_checkpointing": True}))
    assert on.activation_checkpointing is True and on.gradient_checkpointing is True
    assert on.activation_checkpointing_kwargs == {"use_reentrant": False}


def test_load_model_honours_the_dtype(tiny_model_dir: Path) -> None:
    import torch

    from rewardsmith.models import load_model

    loaded = load_model("embedded:tiny", device="cpu", dtype="bfloat16")
    assert next(loaded.model.parameters()).dtype == torch.bfloat16
    with pytest.raises(ConfigError, match="unknown dtype"):
        load_model("embedded:tiny", device="cpu", dtype="float8")


def test_a_trial_step_with_activation_checkpointing_trains_the_adapter(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """One GRPO step with checkpointing on: the trainer checkpoints, and a backward pass through
    the checkpointed (frozen) layers still reaches the LoRA weights (non-reentrant)."""
    import torch

    from rewardsmith.config import lora_kwargs
    from rewardsmith.models import load_model
    from rewardsmith.rewards import get_reward
    from rewardsmith.tasks import get_task
    from rewardsmith.training.trainer import _trainer
    from rewardsmith.training.trial import Method

    cfg = parse_config(
        {
            "model": {"spec": "embedded:tiny"},
            "grpo": {
                "max_steps": 1,
                "max_completion_length": 8,
                "per_device_train_batch_size": 2,
                "gradient_accumulation_steps": 1,
                "num_generations": 2,
                "activation_checkpointing": True,
            },
        }
    )
    loaded = load_model(cfg.model.spec, device="cpu")
    task = get_task("synthetic", n_train=4, n_val=1, n_test=1)
    args = grpo_kwargs(cfg, output_dir=tmp_path, facts=CPU)
    trainer = _trainer(
        loaded.model,
        loaded.tokenizer,
        task,
        [get_reward("check_answer")],
        [1.0],
        args,
        lora_kwargs(cfg),
        Method(),
        [],
    )
    trainer.train()
    assert trainer.state.global_step == 1
    model = trainer.model
    assert model.is_activation_checkpointing
    model.train()
    batch = loaded.tokenizer(["2 + 2 = 4", "3 + 5 = 8"], return_tensors="pt", padding=True)
    model(**batch, labels=batch["input_ids"]).loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n]
    assert grads and all(g is not None for g in grads)
    assert any(torch.count_nonzero(g) > 0 for g in grads)
