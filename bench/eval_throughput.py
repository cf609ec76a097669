"""Evaluation throughput: one question at a time (the published protocol) vs batched.

Evaluates the same questions with the same model twice, side by side in one run, and prints
questions/s for each and the ratio; it also checks that both produce identical greedy outputs.

    .venv/bin/python bench/eval_throughput.py [--model embedded] [--questions 64] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import time

from rewardsmith.evaluation import evaluate
from rewardsmith.models import load_model
from rewardsmith.tasks import get_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    args = parser.parse_args()

    loaded = load_model(args.model)
    task = get_task("synthetic")
    examples = task.val[: args.questions]
    timings = {}
    results = {}
    for label, batch in (("one-at-a-time", 1), (f"batched({args.batch_size})", args.batch_size)):
        start = time.perf_counter()
        results[label] = evaluate(
            loaded.model,
            loaded.tokenizer,
            examples,
            task.prompt,
            batch_size=batch,
            max_new_tokens=args.max_new_tokens,
        )
        timings[label] = time.perf_counter() - start
    print(f"model={args.model} questions={len(examples)} max_new_tokens={args.max_new_tokens}")
    for label, seconds in timings.items():
        acc = results[label].metrics.accuracy
        print(f"{label:>16}: {len(examples) / seconds:8.2f} q/s  ({seconds:.1f}s, acc {acc:.3f})")
    single, batched = timings.values()
    same = [r["response"] for r in results["one-at-a-time"].records] == [
        r["response"] for r in list(results.values())[1].records
    ]
    print(f"speed-up batched / one-at-a-time: {single / batched:.1f}x  (identical outputs: {same})")


if __name__ == "__main__":
    main()
