"""GPU smoke bench: the paper's GRPO recipe and a batched evaluation at Llama-3.2-3B's size.

Builds a random-weight Llama with Llama-3.2-3B's shapes (28 layers, hidden 3072, 24 heads, 8 KV
heads, MLP 8192, vocabulary 128,256, tied embeddings) and a tokenizer small enough to build on
the spot (a byte-level BPE trained on the synthetic task, its vocabulary padded to 128,256 with
tokens encoding never produces, so every id the random model samples decodes). Then it runs a few
paper-recipe GRPO steps (4 x 4 completions of up to 1,760 tokens, LoRA r=32 on the seven
projections, beta 0.04, bf16) through :func:`rewardsmith.training.trial.run_trial` with the
base rewards, and a batched greedy evaluation (256 new tokens), with the generation backends
``grpo.generation.backend`` / ``eval.backend`` pick (``--backend``: auto, hf or vllm).

It prints the seconds per GRPO step (median after the first), peak GPU memory, generated
tokens per second in training and in evaluation, and the hours the paper's protocol would take
on this GPU at that speed: 62 trials (50 candidates, 7 ensembles, 3 seeds, a control, a
baseline) x 500 steps, each evaluated on GSM8K's 1,319 test questions. A random model never
stops early, so every completion runs to its cap: the figures are an upper bound.

Without a CUDA device it says so and exits 1 (the test suite never needs a GPU);
``--cpu-check`` runs the same code at toy sizes on the CPU, to check the path.

    .venv/bin/python bench/gpu_smoke.py [--steps 4] [--eval-questions 128] [--backend auto]
    .venv/bin/python bench/gpu_smoke.py --cpu-check
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

LLAMA_3B = {
    "hidden_size": 3072,
    "intermediate_size": 8192,
    "num_hidden_layers": 28,
    "num_attention_heads": 24,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 131072,
    "rope_theta": 500000.0,
}
TOY = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1024,
    "max_position_embeddings": 2048,
    "rope_theta": 500000.0,
}
#: The paper's protocol (recipes/paper.yaml): trials, steps each, test questions per trial.
PAPER_TRIALS, PAPER_STEPS, GSM8K_TEST = 50 + 7 + 3 + 1 + 1, 500, 1319


def build_tokenizer(out: Path, vocab_size: int):
    """A byte-level BPE trained on the synthetic task, its vocabulary padded to ``vocab_size``
    with 3-character byte-level tokens (no merge produces them; they decode to stray bytes)."""
    from tokenizers import pre_tokenizers
    from transformers import AutoTokenizer

    from rewardsmith.bootstrap import train_tokenizer
    from rewardsmith.tasks import make_synthetic_task

    task = make_synthetic_task()
    texts = [task.prompt.system_text()] + [ex["question"] for ex in task.train]
    tokenizer = train_tokenizer(texts, 512)
    tokenizer.save_pretrained(out)
    path = out / "tokenizer.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    assert max(vocab.values()) + 1 == len(vocab), "BPE ids are not contiguous"
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    i = 0
    while len(vocab) < vocab_size:
        token = "".join(alphabet[(i // len(alphabet) ** k) % len(alphabet)] for k in range(3))
        vocab.setdefault(token, len(vocab))
        i += 1
    path.write_text(json.dumps(data), encoding="utf-8")
    return AutoTokenizer.from_pretrained(out)


def build_model(out: Path, shapes: dict, dtype: str) -> Path:
    """A random-weight Llama with ``shapes`` and the padded tokenizer, saved under ``out``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(out, shapes["vocab_size"])
    config = LlamaConfig(
        **shapes,
        head_dim=shapes["hidden_size"] // shapes["num_attention_heads"],
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = LlamaForCausalLM(config).to(getattr(torch, dtype))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)
    params = sum(p.numel() for p in model.parameters())
    print(f"model: random Llama, {params / 1e9:.2f}B parameters, {dtype}, saved to {out}")
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return out


def recipe(model_dir: Path, args: argparse.Namespace):
    """The paper's recipe on the random model: bf16 instead of a 4-bit base, AdamW in torch (no
    bitsandbytes needed), the synthetic task under the paper's prompt (no hub download)."""
    from rewardsmith.config import load_config, parse_config
    from rewardsmith.recipes import recipe_path

    data = load_config(recipe_path("paper")).model_dump(mode="json")
    data["model"].update(spec=str(model_dir), load_in_4bit=False, dtype=args.dtype)
    data["task"] = {"name": "synthetic", "prompt": "paper"}
    data["grpo"].update(optim="adamw_torch", max_steps=args.steps)
    data["grpo"]["generation"] = {"backend": args.backend}
    data["eval"].update(backend=args.backend, limit=args.eval_questions, selection="val")
    if args.cpu_check:
        data["grpo"].update(max_completion_length=16, per_device_train_batch_size=2)
        data["grpo"].update(gradient_accumulation_steps=2, num_generations=2)
        data["lora"]["r"] = data["lora"]["alpha"] = 4
        data["eval"]["max_new_tokens"] = 8
    return parse_config(data, source="gpu smoke recipe")


def run(args: argparse.Namespace, model_dir: Path, out: Path) -> dict:
    """Train ``args.steps`` GRPO steps and evaluate; return the timings and memory."""
    import torch

    from rewardsmith.config import grpo_kwargs, lora_kwargs
    from rewardsmith.rewards import BASE_REWARD_NAMES
    from rewardsmith.tasks import get_task
    from rewardsmith.training.trial import Method, RewardSpec, run_trial

    cfg = recipe(model_dir, args)
    task = get_task("synthetic", prompt="paper", n_val=max(args.eval_questions, 8))
    stamps: list[float] = []
    grpo = grpo_kwargs(cfg, output_dir=out / "trainer")
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    outcome = run_trial(
        model_spec=cfg.model.spec,
        task=task,
        rewards=[RewardSpec(name) for name in BASE_REWARD_NAMES],
        grpo_args=grpo,
        lora_args=lora_kwargs(cfg),
        out_dir=out,
        eval_split="val",
        eval_limit=args.eval_questions,
        eval_batch_size=cfg.eval.batch_size,
        eval_max_new_tokens=cfg.eval.max_new_tokens,
        progress=lambda step, total: stamps.append(time.perf_counter()),
        method=Method(objective=cfg.grpo.objective),
        eval_backend=cfg.eval.backend,
        eval_gpu_memory=cfg.eval.gpu_memory_utilization,
    )
    if outcome.state != "COMPLETE":
        raise SystemExit(f"the trial failed: {outcome.reason}")
    steps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)] or [outcome.train_seconds]
    lengths = [v for _, v in outcome.curves.get("completions/mean_length", [])]
    completions = cfg.grpo.per_device_train_batch_size * cfg.grpo.gradient_accumulation_steps
    mean_length = statistics.fmean(lengths) if lengths else cfg.grpo.max_completion_length
    records = [json.loads(line) for line in Path(outcome.records_path).open(encoding="utf-8")]
    from rewardsmith.models import load_tokenizer

    tok = load_tokenizer(str(model_dir))
    eval_tokens = sum(
        len(tok(r["response"], add_special_tokens=False)["input_ids"]) for r in records
    )
    peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        peak = max(
            peak, total - free
        )  # a vLLM engine's KV cache is allocated outside torch's stats
    return {
        "precision": "bf16" if grpo.get("bf16") else "fp16" if grpo.get("fp16") else "fp32",
        "generation": "vllm" if grpo.get("use_vllm") else "hf",
        "eval_backend": outcome.metrics.get("backend"),
        "step_s": statistics.median(steps),
        "train_tok_s": completions * mean_length / statistics.median(steps),
        "mean_completion": mean_length,
        "eval_s": outcome.eval_seconds,
        "eval_questions": len(records),
        "eval_tok_s": eval_tokens / max(outcome.eval_seconds, 1e-9),
        "peak_gib": peak / 2**30,
    }


def report(r: dict, cfg_steps: int) -> None:
    eval_per_trial = r["eval_s"] / max(r["eval_questions"], 1) * GSM8K_TEST
    hours = PAPER_TRIALS * (PAPER_STEPS * r["step_s"] + eval_per_trial) / 3600
    print(
        f"precision {r['precision']}, GRPO generation {r['generation']}, eval {r['eval_backend']}"
    )
    print(f"GRPO step: {r['step_s']:.2f} s (median of {cfg_steps} steps)")
    print(f"  generated {r['train_tok_s']:.0f} tok/s (mean completion {r['mean_completion']:.0f})")
    print(f"evaluation: {r['eval_questions']} questions in {r['eval_s']:.1f} s,")
    print(f"  {r['eval_tok_s']:.0f} tok/s; {eval_per_trial / 60:.1f} min for GSM8K test")
    print(f"peak GPU memory: {r['peak_gib']:.1f} GiB")
    print(
        f"paper protocol ({PAPER_TRIALS} trials x {PAPER_STEPS} steps + a test evaluation each):"
        f" {hours:.1f} GPU-hours at this speed (an upper bound: random weights never stop early)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--eval-questions", type=int, default=128)
    parser.add_argument("--backend", choices=["auto", "hf", "vllm"], default="auto")
    parser.add_argument("--dtype", choices=["bfloat16", "float16", "auto"], default="bfloat16")
    parser.add_argument("--cpu-check", action="store_true", help="toy sizes on the CPU")
    args = parser.parse_args()

    import torch

    if args.cpu_check:
        args.backend, args.dtype = "hf", "auto"
        args.steps, args.eval_questions = min(args.steps, 2), min(args.eval_questions, 4)
    elif not torch.cuda.is_available():
        print("no CUDA device: this bench needs a GPU (--cpu-check runs it at toy sizes on CPU)")
        sys.exit(1)
    with tempfile.TemporaryDirectory(prefix="gpu-smoke-") as tmp:
        model_dir = build_model(
            Path(tmp) / "model",
            TOY if args.cpu_check else LLAMA_3B,
            "float32" if args.cpu_check else "bfloat16",
        )
        result = run(args, model_dir, Path(tmp) / "trial")
    report(result, args.steps)
    if args.cpu_check:
        print("(--cpu-check: toy sizes on the CPU; the path works, the figures mean nothing)")


if __name__ == "__main__":
    main()
