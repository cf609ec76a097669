"""``configs/paper.yaml`` carries every item of the published protocol (issue 10, part 1).

Each test reads the recipe and checks one item against REFERENCE.md, section 1: the policy
prompt word for word, the training and evaluation lengths, the seven named ensembles, the
generator preset, the replacement rule, and the library knobs the paper left unstated (each an
explicit field with its assumption written down). The last tests check what the recipe alone
cannot show: a chat template that prints today's date is pinned, and every way the defaults
differ from the paper is a documented switch.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from unittest import mock

import pytest

from rewardsmith.config import grpo_kwargs, load_config
from rewardsmith.generators import LLMGenerator, RoundContext, SummaryEntry
from rewardsmith.generators.llm import openai_arguments
from rewardsmith.generators.prompt import PAPER_EXAMPLE_REWARD, build_prompt
from rewardsmith.tasks import get_system_prompt, get_task

REPO = Path(__file__).resolve().parents[1]
PAPER = load_config(REPO / "configs" / "paper.yaml")
REFERENCE = REPO.parent / "shared" / "docs" / "REFERENCE.md"

#: REFERENCE.md, section 1, "Policy prompt" (the paper's released code), word for word.
PAPER_PROMPT = (
    "You are given a math problem. Think step by step and respond EXACTLY in this format:"
)
PAPER_PROMPT += """

<thinking>
[Your step-by-step reasoning here]
</thinking>
<solution>
[Your final numeric answer here, just the number]
</solution>

Example:
<thinking>
I need to add 2 + 3 = 5.
</thinking>
<solution>
5
</solution>"""


def test_the_quote_above_is_reference_md_s() -> None:
    if not REFERENCE.is_file():
        pytest.skip("../shared/docs/REFERENCE.md is not present")
    text = REFERENCE.read_text(encoding="utf-8")
    block = text[text.index("- Policy prompt:") :]
    quoted = re.search(r"```\n(.*?)\n  ```", block, flags=re.DOTALL)
    assert quoted is not None
    assert "\n".join(line.removeprefix("  ") for line in quoted.group(1).splitlines()) == (
        PAPER_PROMPT
    )


def test_policy_prompt_is_the_paper_s_exact_text() -> None:
    assert PAPER.task.prompt == "paper" and PAPER.task.system_prompt is None
    prompt = PAPER.task.task_kwargs()["prompt"]  # what every trial's task is built with
    task = get_task("synthetic", n_train=1, n_val=1, n_test=1, prompt=prompt)
    messages = task.prompt.messages("What is 2 + 2?")
    assert messages[0] == {"role": "system", "content": PAPER_PROMPT}
    assert messages[1] == {"role": "user", "content": "What is 2 + 2?"}
    assert get_system_prompt("default") != get_system_prompt("paper")  # a switch, not a default


def test_completion_lengths() -> None:
    # max sequence 2,048 - max prompt 288 = 1,760 in GRPO; greedy evaluation at most 256
    assert PAPER.grpo.max_completion_length == 2048 - 288 == 1760
    assert PAPER.eval.max_new_tokens == 256


def test_the_seven_named_ensembles() -> None:
    plan = [(e.name, e.rule, e.k, PAPER.search.steps_of(e)) for e in PAPER.search.ensemble_plan()]
    assert plan == [
        ("top-3", "top", 3, 300),
        ("top-5", "top", 5, 300),
        ("top-5 (500 steps)", "top", 5, 500),
        ("top-7", "top", 7, 300),
        ("top-10", "top", 10, 300),
        ("diverse-rounds", "diverse_rounds", None, 300),
        ("correctness", "correctness", 5, 300),
    ]
    assert "search.ensembles" in PAPER.assumptions  # the correctness size is not published


def _generator(tmp_path: Path) -> LLMGenerator:
    return LLMGenerator(out_dir=tmp_path, api_key="test-key", **PAPER.search.generator_options)


def test_generator_preset(tmp_path: Path) -> None:
    s = PAPER.search
    assert s.generator == "llm"
    gen = _generator(tmp_path)
    assert gen.model == "moonshotai/kimi-k2-instruct-0905"
    assert gen.base_url == "https://api.groq.com/openai/v1"  # Groq's OpenAI-compatible API
    assert (gen.temperature, gen.top_p, gen.max_tokens) == (0.6, 1.0, 8192)
    prompt = build_prompt(RoundContext(), 10, round=1, style=gen.prompt_style)
    arguments = openai_arguments(gen, prompt)
    # one user message, no system message
    assert [m["role"] for m in arguments["messages"]] == ["user"]
    assert (arguments["temperature"], arguments["top_p"], arguments["max_tokens"]) == (
        0.6,
        1.0,
        8192,
    )
    assert "score range ~ -2.0..+5.0" in prompt.user
    assert "def example_correctness_reward(" in prompt.user


EXAMPLE_CASES = [
    # (solution, gold, score, why)
    ("72", "72", 5.0, "correct"),
    ("1,000", "1000", 5.0, "commas dropped"),
    ("75", "72", 2.0, "within 10% of the gold"),
    ("90", "72", -1.0, "otherwise"),
    ("about seventy", "72", -1.0, "unparsable"),
]


@pytest.mark.parametrize(("solution", "gold", "score", "why"), EXAMPLE_CASES)
def test_example_reward_scores_plus_5_plus_2_minus_1(solution, gold, score, why) -> None:
    namespace: dict = {}
    exec(PAPER_EXAMPLE_REWARD, namespace)  # our own constant, not generated code
    completion = [{"role": "assistant", "content": f"<thinking>x</thinking><solution>{solution}"
                   "</solution>"}]  # fmt: skip
    assert namespace["example_correctness_reward"](None, [completion], [gold]) == [score], why


def test_feedback_is_name_round_accuracy_and_f1_only(tmp_path: Path) -> None:
    entry = SummaryEntry(
        "leader_reward",
        "pays for units",
        2,
        {"f1": 0.75, "accuracy": 0.6, "precision": 0.9},
        reflection="component curve: 0.1 0.2",
        code="def leader_reward(prompts, completions, answer, **kw):\n    return [0.0]\n",
    )
    prompt = build_prompt(RoundContext(summary=(entry,)), 10, round=3, style="paper")
    assert "1. leader_reward (round 2): accuracy=0.6, f1=0.75" in prompt.user
    assert "pays for units" in prompt.user  # the rewards so far, with their descriptions
    assert "component curve" not in prompt.user and "def leader_reward" not in prompt.user
    assert "precision" not in prompt.user and prompt.system == ""


def test_examples_are_the_same_every_round() -> None:
    assert PAPER.search.fixed_examples is True


def test_replacement_rule() -> None:
    # a trial whose F1 is 0 (crashes included) is regenerated, 3 attempts per slot
    assert PAPER.search.replace_failed is True and PAPER.search.replace_attempts == 3


def test_library_knobs_are_explicit_with_their_assumption(tmp_path: Path) -> None:
    g = PAPER.grpo
    # (field, the recipe's value): each stated in `assumptions`, with its reason
    knobs = {
        "grpo.per_device_train_batch_size": (g.per_device_train_batch_size, 4),
        "grpo.gradient_accumulation_steps": (g.gradient_accumulation_steps, 4),
        "grpo.beta": (g.beta, 0.04),
        "grpo.loss_type": (g.loss_type, "grpo"),
        "grpo.temperature": (g.temperature, 0.9),
        "model.load_in_4bit": (PAPER.model.load_in_4bit, True),
        "grpo.optim": (g.optim, "adamw_8bit"),
    }
    for path, (value, expected) in knobs.items():
        assert value == expected, path
        assert len(PAPER.assumptions.get(path, "")) > 20, f"{path}: no stated assumption"
    # effective batch: 4 prompts x 4 generations = 16 completions per optimiser step
    assert g.per_device_train_batch_size * g.gradient_accumulation_steps == 16
    kwargs = grpo_kwargs(PAPER, output_dir=tmp_path, cuda=(True, True))
    assert (kwargs["beta"], kwargs["loss_type"], kwargs["optim"]) == (0.04, "grpo", "adamw_8bit")
    assert kwargs["model_init_kwargs"] == {"load_in_4bit": True}
    assert (PAPER.seed, PAPER.eval.selection, PAPER.search.rank_metric) == (3407, "test", "f1")


# ------------------------------------------------------------------ beyond the recipe

LLAMA_DATE_TEMPLATE = """{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}<|start_header_id|>system<|end_header_id|>

Cutting Knowledge Date: December 2023
Today Date: {{ date_string }}
{% for m in messages %}{{ m.role }}: {{ m.content }}
{% endfor %}"""
DIRECT_TEMPLATE = "Today is {{ strftime_now('%Y-%m-%d') }}.\n{{ messages[-1].content }}"


class _Clock:
    """Stands in for the ``datetime`` class transformers' ``strftime_now`` calls."""

    def __init__(self, now: datetime.datetime) -> None:
        self._now = now

    def now(self) -> datetime.datetime:
        return self._now


@pytest.mark.parametrize(
    "template", [LLAMA_DATE_TEMPLATE, DIRECT_TEMPLATE], ids=["llama", "strftime"]
)
def test_chat_templates_get_a_fixed_date(tiny_model_dir: Path, template: str) -> None:
    import transformers.utils.chat_template_utils as chat_utils

    from rewardsmith.models import FIXED_CHAT_DATE, fix_chat_date, load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_dir))
    messages = [{"role": "user", "content": "What is 2 + 2?"}]

    def render(day: datetime.datetime, pinned: bool) -> str:
        tokenizer.chat_template = fix_chat_date(template) if pinned else template
        with mock.patch.object(chat_utils, "datetime", _Clock(day)):
            return tokenizer.apply_chat_template(messages, tokenize=False)

    days = (datetime.datetime(2025, 1, 2), datetime.datetime(2031, 6, 7))
    assert render(days[0], False) != render(days[1], False)  # the unpinned template drifts
    assert render(days[0], True) == render(days[1], True)
    pinned = render(days[0], True)
    assert FIXED_CHAT_DATE.strftime("%d %b %Y") in pinned or str(FIXED_CHAT_DATE) in pinned


def test_load_tokenizer_pins_the_date(tiny_model_dir: Path, tmp_path: Path) -> None:
    from rewardsmith.models import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_dir))
    tokenizer.chat_template = LLAMA_DATE_TEMPLATE
    tokenizer.save_pretrained(tmp_path)
    again = load_tokenizer(str(tmp_path))
    assert again.chat_template.startswith("{% set date_string = ")


#: Every field in which rewardsmith's defaults differ from the paper: (path, default, paper).
DIFFERENCES = [
    ("task.prompt", "default", "paper"),
    ("grpo.max_completion_length", 256, 1760),
    ("grpo.per_device_train_batch_size", 1, 4),
    ("grpo.beta", 0.0, 0.04),
    ("grpo.loss_type", "dapo", "grpo"),
    ("grpo.temperature", 1.0, 0.9),
    ("grpo.optim", None, "adamw_8bit"),
    ("model.load_in_4bit", False, True),
    ("eval.selection", "val", "test"),
    ("search.generator", "offline", "llm"),
    ("search.fixed_examples", False, True),
    ("search.replace_failed", False, True),
    ("search.screening.rank_by", "paired", "metric"),
]


@pytest.mark.parametrize(("path", "default", "paper"), DIFFERENCES)
def test_each_difference_from_the_paper_is_a_documented_switch(path, default, paper) -> None:
    from rewardsmith.config import parse_config

    def value(cfg, dotted: str):
        for name in dotted.split("."):
            cfg = getattr(cfg, name)
        return cfg

    assert value(parse_config({}), path) == default
    assert value(PAPER, path) == paper
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"`{path}`" in readme, f"README does not document the switch {path}"


def test_the_default_ensembles_are_the_paper_s() -> None:
    from rewardsmith.config import parse_config

    assert parse_config({}).search.ensemble_plan() == PAPER.search.ensemble_plan()
