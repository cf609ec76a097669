"""The embedded default policy: a small Llama that rewardsmith trains itself in minutes on a CPU.

It stands in for "a 3B instruct model on GSM8K" where no hub model can be downloaded: it follows
the ``<thinking>``/``<solution>`` format and answers the synthetic task correctly only part of
the time, so reward design has room to matter.

Building it (:func:`build_embedded_model`):

1. train a byte-level BPE tokenizer (digits split one by one, so arithmetic is learnable) with a
   ChatML-style chat template on the task's prompts and worked solutions;
2. initialise a Llama-architecture model from a small config;
3. supervised fine-tuning with TRL's ``SFTTrainer`` on prompt/completion pairs (loss on the
   completion only), where the completion is the worked solution in the paper's format.

The result is cached under the user cache dir (``$REWARDSMITH_CACHE`` overrides it), keyed by a
hash of its config, so a changed recipe builds a new model rather than reusing a stale one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rewardsmith.errors import ConfigError

log = logging.getLogger(__name__)

RECIPE_VERSION = 2
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|pad|>", "<|im_start|>", "<|im_end|>"]


@dataclass(frozen=True)
class EmbeddedModelConfig:
    """Recipe of the embedded model: task knobs, architecture and SFT budget."""

    task: dict[str, Any] = field(default_factory=dict)  # synthetic-task knobs (defaults if empty)
    vocab_size: int = 512
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 384
    max_length: int = 320
    epochs: float = 3.0
    batch_size: int = 16
    learning_rate: float = 3e-3
    seed: int = 0
    # A habit a reward can fix: for these items the model writes the unit inside the solution
    # tag ("<solution>22 eggs</solution>"), which the paper's exact metric counts as wrong; real
    # instruct models do the same with "$18" or "18 dollars".
    unit_items: tuple[str, ...] = ("apples", "books", "coins", "stickers", "marbles", "pencils")
    unit_rate: float = 0.75  # how often the habit shows: the rest is what RL can reinforce

    def key(self) -> str:
        payload = json.dumps({"v": RECIPE_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


PRESETS: dict[str, EmbeddedModelConfig] = {
    "default": EmbeddedModelConfig(),
    # A seconds-scale build for the test suite: same pipeline, far less training.
    "tiny": EmbeddedModelConfig(
        task={"n_train": 300},
        hidden_size=64,
        num_layers=2,
        num_heads=2,
        intermediate_size=128,
        epochs=1.0,
    ),
}


def cache_dir() -> Path:
    """Where rewardsmith caches built models (``$REWARDSMITH_CACHE`` or the user cache dir)."""
    env = os.environ.get("REWARDSMITH_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("rewardsmith"))


def embedded_model_dir(cfg: EmbeddedModelConfig) -> Path:
    return cache_dir() / "models" / f"embedded-{cfg.key()}"


def get_preset(name: str) -> EmbeddedModelConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown embedded model preset {name!r}; choose one of {list(PRESETS)}")
    return PRESETS[name]


def ensure_embedded_model(
    preset: str = "default", progress: Callable[[int, int], None] | None = None
) -> Path:
    """Path of the cached embedded model, building it first if it is not cached.

    ``progress(step, max_steps)`` is called after each SFT step of a build."""
    cfg = get_preset(preset)
    out = embedded_model_dir(cfg)
    if (out / "bootstrap.json").is_file():
        return out
    log.warning("embedded model %r not cached; building it now (a few minutes on a CPU)", preset)
    build_embedded_model(cfg, progress=progress)
    return out


def train_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer with single-digit tokens and a ChatML-style chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(False)]
    )
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<|pad|>", eos_token="<|im_end|>", bos_token=None
    )
    tok.chat_template = CHAT_TEMPLATE
    tok.padding_side = "left"
    return tok


def sft_targets(task: Any, cfg: EmbeddedModelConfig) -> list[str]:
    """The SFT responses for the train split, with the unit habit (seeded) for ``unit_items``."""
    rng = random.Random(cfg.seed)
    targets = []
    for example in task.train:
        answer = example["answer"]
        if example.get("item") in cfg.unit_items and rng.random() < cfg.unit_rate:
            answer = f"{answer} {example['item']}"
        targets.append(task.prompt.response(example["solution"], answer))
    return targets


def _sft_dataset(task: Any, targets: list[str]) -> Any:
    from datasets import Dataset

    rows = [
        {
            "prompt": task.prompt.messages(ex["question"]),
            "completion": [{"role": "assistant", "content": target}],
        }
        for ex, target in zip(task.train, targets, strict=True)
    ]
    return Dataset.from_list(rows)


def build_embedded_model(
    cfg: EmbeddedModelConfig,
    out: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Train the embedded model from scratch and save it (with ``bootstrap.json``) to ``out``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from rewardsmith.tasks import make_synthetic_task
    from rewardsmith.training.curves import StepProgress

    out = out or embedded_model_dir(cfg)
    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    task = make_synthetic_task(**cfg.task)
    targets = sft_targets(task, cfg)
    texts = [task.prompt.system_text()] + [
        ex["question"] + "\n" + target for ex, target in zip(task.train, targets, strict=True)
    ]
    tokenizer = train_tokenizer(texts, cfg.vocab_size)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=cfg.hidden_size,
            intermediate_size=cfg.intermediate_size,
            num_hidden_layers=cfg.num_layers,
            num_attention_heads=cfg.num_heads,
            num_key_value_heads=cfg.num_heads,
            max_position_embeddings=cfg.max_length + 256,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=None,
            tie_word_embeddings=True,
        )
    )
    work = out.with_name(out.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    args = SFTConfig(
        output_dir=str(work / "trainer"),
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,  # a float below 1 is a ratio of the total steps
        weight_decay=0.0,
        max_length=cfg.max_length,
        logging_steps=20,
        save_strategy="no",
        report_to=[],
        seed=cfg.seed,
        use_cpu=not torch.cuda.is_available(),
        bf16=False,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=_sft_dataset(task, targets),
        processing_class=tokenizer,
    )
    trainer.remove_callback(PrinterCallback)  # library code logs; it does not print
    if progress is not None:
        trainer.add_callback(StepProgress(progress))
    result = trainer.train()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(work)
    tokenizer.save_pretrained(work)
    shutil.rmtree(work / "trainer", ignore_errors=True)
    info = {
        "config": asdict(cfg),
        "key": cfg.key(),
        "train_loss": float(result.training_loss),
        "steps": int(result.global_step),
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds": round(time.perf_counter() - started, 1),
    }
    (work / "bootstrap.json").write_text(json.dumps(info, indent=2))
    shutil.rmtree(out, ignore_errors=True)
    work.rename(out)  # atomic: a killed build never leaves a half-written cache entry
    log.info("built embedded model in %.0fs at %s", info["seconds"], out)
    return info


def with_overrides(cfg: EmbeddedModelConfig, **overrides: Any) -> EmbeddedModelConfig:
    """A copy of ``cfg`` with some fields replaced (unknown fields are a ConfigError)."""
    try:
        return replace(cfg, **overrides)
    except TypeError as exc:
        raise ConfigError(f"embedded model: {exc}") from exc
