"""Sandbox overhead: median per-call latency of a typical reward, in-process vs sandboxed.

The reward is the kind an LLM writes for the paper (regex extraction of the ``<solution>`` number,
a numeric comparison with the gold answer, a format bonus), called as TRL calls it on a batch of
16 conversational completions. Both variants run the same code in the same run, side by side.

    python bench/sandbox_overhead.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time

from rewardsmith.rewards.probes import call_kwargs, cost_batch
from rewardsmith.sandbox.pool import SandboxPool

TYPICAL_REWARD = """
import re

SOLUTION = re.compile(r"<solution>\\s*([-\\d\\.,]+)\\s*</solution>", re.DOTALL)
FORMAT = re.compile(r"^\\s*<thinking>.+?</thinking>\\s*<solution>.+?</solution>\\s*$", re.DOTALL)


def _number(text):
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def numeric_closeness_reward(prompts, completions, answer, **kwargs):
    scores = []
    for completion, gold in zip(completions, answer):
        text = completion[0]["content"]
        score = 0.5 if FORMAT.search(text) else 0.0
        match = SOLUTION.search(text)
        guess = _number(match.group(1)) if match else None
        true = _number(gold)
        if guess is not None and true is not None:
            error = abs(guess - true) / max(1.0, abs(true))
            score += 2.0 if error < 1e-6 else max(0.0, 1.0 - error)
        scores.append(score)
    return scores
"""
NAME = "numeric_closeness_reward"


def _median_ms(func, calls: int) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per variant")
    args = parser.parse_args()
    # What TRL passes mid-run: 16 completions of 150-400 tokens, their ids, the trainer state.
    kwargs = call_kwargs(cost_batch(seed=0), conversational=True, step=250)

    namespace: dict = {}
    exec(compile(TYPICAL_REWARD, "<reward>", "exec"), namespace)  # trusted benchmark code
    in_process = namespace[NAME]

    with SandboxPool(max_workers=1) as pool:
        warm = pool.call(TYPICAL_REWARD, NAME, **kwargs)
        assert warm.ok, warm.error
        assert list(warm.values) == in_process(**kwargs), "sandbox and in-process disagree"
        for _ in range(50):  # warm-up both paths
            in_process(**kwargs)
            pool.call(TYPICAL_REWARD, NAME, **kwargs)
        local_ms = _median_ms(lambda: in_process(**kwargs), args.calls)
        sandbox_ms = _median_ms(lambda: pool.call(TYPICAL_REWARD, NAME, **kwargs), args.calls)

    print(f"reward: {NAME}, batch of {len(kwargs['completions'])} completions, "
          f"{args.calls} calls per variant")  # fmt: skip
    print(f"{'variant':<12}{'median ms/call':>16}")
    print(f"{'in-process':<12}{local_ms:>16.3f}")
    print(f"{'sandboxed':<12}{sandbox_ms:>16.3f}")
    print(f"ratio {sandbox_ms / local_ms:.1f}x, added {sandbox_ms - local_ms:.3f} ms per call "
          f"(target <= 3 ms)")  # fmt: skip


if __name__ == "__main__":
    main()
