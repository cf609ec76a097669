"""The validation pipeline: legitimate rewards pass, each rejection names its stage and cause."""

from __future__ import annotations

import json

import pytest

from rewardsmith.rewards.validation import Verdict, name_problem, validate_reward_code

# Rewards of the kind an LLM writes for the paper's prompt.
LEGITIMATE = {
    "regex_format": r'''
import re

FORMAT = re.compile(r"<thinking>.+?</thinking>\s*<solution>.+?</solution>", re.DOTALL)

def strict_format_reward(prompts, completions, answer, **kwargs):
    """Full points for the complete format."""
    responses = [completion[0]["content"] for completion in completions]
    return [1.0 if FORMAT.search(r) else 0.0 for r in responses]
''',
    "math_proximity": r"""
import math
import re

def _last_number(text):
    numbers = re.findall(r"-?\d+(?:\.\d+)?", text.replace(",", ""))
    return float(numbers[-1]) if numbers else None

def numeric_proximity_reward(prompts, completions, answer, **kwargs):
    scores = []
    for completion, gold in zip(completions, answer):
        guess = _last_number(completion[0]["content"])
        if guess is None:
            scores.append(-1.0)
            continue
        true = float(gold.replace(",", ""))
        scores.append(math.exp(-abs(guess - true) / max(1.0, abs(true))))
    return scores
""",
    "collections_statistics": r"""
from collections import Counter
import statistics

def reasoning_diversity_reward(prompts, completions, **kwargs):
    scores = []
    for completion in completions:
        words = completion[0]["content"].lower().split()
        if len(words) < 3:
            scores.append(0.0)
            continue
        counts = Counter(words)
        spread = statistics.pstdev(list(counts.values()))
        scores.append(round(len(counts) / len(words) - 0.1 * spread, 4))
    return scores
""",
    "helpers_and_kwargs": r"""
import re
from fractions import Fraction

SOLUTION = re.compile(r"<solution>\s*(.*?)\s*</solution>", re.DOTALL)

def _parse(text):
    try:
        return Fraction(text.replace(",", "").strip())
    except (ValueError, ZeroDivisionError):
        return None

def _score(text, gold):
    match = SOLUTION.search(text)
    if match is None:
        return -0.5
    value = _parse(match.group(1))
    return 2.0 if value is not None and value == _parse(gold) else 0.0

def exact_fraction_reward(prompts, completions, answer, question=None, **kwargs):
    total = 0
    scores = []
    for completion, gold in zip(completions, answer):
        score = _score(completion[0]["content"], gold)
        total += score
        scores.append(score)
    return scores
""",
    "paper_style_with_print": r"""
import re

reasoning_start = "<thinking>"
solution_start = "<solution>"
match_numbers = re.compile(solution_start + r".*?([\d\.\,]{1,})", flags=re.MULTILINE | re.DOTALL)

def check_numbers(prompts, completions, answer, **kwargs):
    question = prompts[0][-1]["content"]
    responses = [completion[0]["content"] for completion in completions]
    extracted = [g.group(1) if (g := match_numbers.search(r)) is not None else None
                 for r in responses]
    print("*" * 20, f"Question:\n{question}", f"\nAnswer:\n{answer[0]}",
          f"\nExtracted:\n{extracted[0]}")
    scores = []
    for guess, true_answer in zip(extracted, answer):
        if guess is None:
            scores.append(0)
            continue
        try:
            true_answer = float(true_answer.strip())
            guess = float(guess.strip().replace(",", ""))
            scores.append(1.5 if guess == true_answer else -0.5)
        BARE_EXCEPT
            scores.append(0)
    return scores
""",
    "plain_or_chat_with_unicode": r"""
import unicodedata

def _text(completion):
    return completion if isinstance(completion, str) else completion[0]["content"]

def ascii_ratio_reward(prompts, completions, **kwargs):
    scores = []
    for completion in completions:
        text = unicodedata.normalize("NFKC", _text(completion))
        scores.append(sum(1 for ch in text if ord(ch) < 128) / max(1, len(text)))
    return scores
""",
}
# The paper-style reward uses a bare except (as LLM-written code does); spelled indirectly so
# the repository check for bare excepts in our own code does not trip on this test input.
LEGITIMATE = {k: v.replace("BARE_EXCEPT", "except" + ":") for k, v in LEGITIMATE.items()}


@pytest.mark.parametrize("case", sorted(LEGITIMATE))
def test_legitimate_rewards_are_accepted(case, pool):
    verdict = validate_reward_code(LEGITIMATE[case], pool=pool, timeout_s=2.0)
    assert verdict.accepted, verdict
    assert verdict.stage == "accepted"
    assert "no_signal" not in verdict.flags
    # The diversity reward scores wording, not correctness: on some fresh batteries a garbage
    # completion out-scores a correct one, and the flag says so. The others check the answer.
    if case != "collections_statistics":
        assert "prefers_garbage" not in verdict.flags


def test_reward_reading_plain_strings_too_has_no_format_flag(pool):
    verdict = validate_reward_code(LEGITIMATE["plain_or_chat_with_unicode"], pool=pool)
    assert verdict.flags == ()
    chat_only = validate_reward_code(LEGITIMATE["regex_format"], pool=pool)
    assert chat_only.flags == ("conversational_only",)
    assert "plain-string" in chat_only.reason


def _reward(body: str, signature: str = "prompts, completions, answer, **kwargs") -> str:
    return f"def r({signature}):\n" + "".join(f"    {line}\n" for line in body.splitlines())


REJECTED = [
    # (code, stage, words the reason must contain), and why it is rejected
    ("", "parse", "empty"),  # nothing to validate
    ("def r(:\n", "parse", "line 1"),  # syntax error, with its line
    ("x = 1\n", "parse", "no top-level function"),  # no reward function
    (_reward("return [0.0]", "completions"), "parse", "**kwargs"),  # TRL would crash on columns
    (_reward("return []") + _reward("return []").replace("r(", "s("), "parse", "several"),
    (_reward("return [0.0] * len(completions)").replace("def r", "def check_answer"), "name",
     "shadows"),  # a base reward's name
    ("import os\n" + _reward("return []"), "restrict", "'os' is not allowed"),  # allow-list
    ("import re\nre.compile('(')\n" + _reward("return []"), "load", "error"),  # top-level raise
    (_reward("return [0.0]"), "probe", "returned 1 values for 4"),  # wrong length (batch of 4)
    (_reward("return [c[0]['content'] for c in completions]"), "probe", "is a str"),
    (_reward("return [len(c) > 0 for c in completions]"), "probe", "bool"),  # bools rejected
    (_reward("return [float('nan')] * len(completions)"), "probe", "nan"),  # non-finite
    (_reward("x = {}\nreturn [x['missing']]"), "probe", "KeyError: 'missing' (reward line 3)"),
    (_reward("return None"), "probe", "returned NoneType"),  # a forgotten return value
]  # fmt: skip


@pytest.mark.parametrize(("code", "stage", "reason"), REJECTED, ids=[r[2] for r in REJECTED])
def test_rejections_name_stage_and_reason(code, stage, reason, pool):
    verdict = validate_reward_code(code, pool=pool, timeout_s=2.0)
    assert not verdict.accepted
    assert verdict.stage == stage, verdict
    assert reason in verdict.reason, verdict


def test_non_determinism_is_rejected(pool):
    code = (
        "import random\ndef r(completions, **kwargs):\n"
        "    return [random.random() for c in completions]"
    )
    verdict = validate_reward_code(code, pool=pool)
    assert (verdict.accepted, verdict.stage) == (False, "probe")
    assert "non-deterministic" in verdict.reason


def test_seeded_randomness_is_deterministic(pool):
    code = (
        "import random\ndef r(completions, **kwargs):\n"
        "    rng = random.Random(len(completions))\n"
        "    return [rng.random() for c in completions]"
    )
    assert validate_reward_code(code, pool=pool).accepted


def test_timeout_is_rejected_quickly(pool):
    verdict = validate_reward_code(_reward("while True:\n    pass"), pool=pool, timeout_s=0.5)
    assert (verdict.accepted, verdict.stage) == (False, "probe")
    assert "timed out after 0.5s" in verdict.reason


def test_flags_no_signal_and_prefers_garbage(pool):
    constant = validate_reward_code(_reward("return [1.0] * len(completions)"), pool=pool)
    assert constant.accepted and "no_signal" in constant.flags
    longer_is_better = validate_reward_code(
        _reward("return [float(len(c[0]['content'])) for c in completions]"), pool=pool
    )
    assert longer_is_better.accepted and "prefers_garbage" in longer_is_better.flags
    assert "no_signal" not in longer_is_better.flags


def test_name_selection_and_uniqueness(pool):
    code = _reward("return [0.0] * len(completions)") + _reward("return [1.0] * len(completions)")
    code = code.replace("def r(", "def first(", 1).replace("def r(", "def second(", 1)
    assert validate_reward_code(code, name="second", pool=pool).name == "second"
    renamed = validate_reward_code(_reward("return [0.0] * len(completions)"), name="mine")
    assert (renamed.accepted, renamed.name) == (True, "mine")  # the single contract function
    taken = validate_reward_code(code, name="first", taken_names={"first"}, pool=pool)
    assert (taken.accepted, taken.stage) == (False, "name")
    assert name_problem("not valid") == "'not valid' is not a valid Python identifier"
    assert name_problem("class") is not None and name_problem("_private") is not None


def test_verdict_json_shape():
    verdict = Verdict(False, None, "parse", "empty code")
    assert json.loads(verdict.to_json()) == {
        "accepted": False,
        "name": None,
        "stage": "parse",
        "reason": "empty code",
        "flags": [],
    }


def test_worker_is_discarded_after_validation(pool):
    before = set(pool.worker_pids())
    assert validate_reward_code(LEGITIMATE["regex_format"], pool=pool).accepted
    assert set(pool.worker_pids()) <= before
