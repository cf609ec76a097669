"""The generator prompt of arXiv 2605.02073, with Eureka-style feedback, under a size bound.

:func:`build_prompt` shows the model ~20 sampled training problems with their gold answers, the
response format, the reward signature, an example reward, the constraints the validator enforces,
the ranked summary of earlier rounds (metrics, reflection text, the code of the top few), the
reasons earlier candidates were rejected, and asks for a JSON array of
``{"name", "code", "description"}`` objects.

The prompt never exceeds ``max_chars``: when the full version is too long, detail is shed in a
fixed order (code of all but the leader, reflection length, lower-ranked entries, rejections, then
examples) until it fits. The sampled examples depend only on (seed, round), so prompts are
reproducible.

``style="paper"`` (:data:`PROMPT_STYLES`) reproduces the published protocol's prompt: one user
message and no system message (:attr:`Prompt.system` is empty), the paper's example reward
(+5 correct, +2 within 10%, -1 otherwise) and score range (about -2..+5), the examples in the
order given, and feedback of name, round, F1 and accuracy (with the description) only: no
reflection, code, tips or rejections.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from rewardsmith.generators.base import RoundContext, SummaryEntry

DEFAULT_MAX_CHARS = 60_000  # about 15k tokens: fits every current frontier model's context

SYSTEM_PROMPT = (
    "You are an expert in reinforcement learning for language models. You design reward "
    "functions for GRPO training and write correct, fast, deterministic Python."
)

EXAMPLE_REWARD = '''import re

def solution_is_number_reward(prompts, completions, answer, **kwargs):
    """+0.5 when the solution tag holds only a number, -0.5 otherwise."""
    scores = []
    for completion in completions:
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        match = re.search(r"<solution>(.*?)</solution>", text, flags=re.DOTALL)
        ok = match is not None and re.fullmatch(r"\\s*-?[\\d,]+(\\.\\d+)?\\s*", match.group(1))
        scores.append(0.5 if ok else -0.5)
    return scores
'''

PAPER_EXAMPLE_REWARD = '''import re

def example_correctness_reward(prompts, completions, answer, **kwargs):
    """+5 for the correct answer, +2 within 10% of it, -1 otherwise or when unparsable."""
    scores = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        match = re.search(r"<solution>(.*?)</solution>", text, flags=re.DOTALL)
        try:
            guess = float(match.group(1).strip().replace(",", ""))
            true = float(str(gold).strip().replace(",", ""))
        except (AttributeError, ValueError):
            scores.append(-1.0)
            continue
        if guess == true:
            scores.append(5.0)
        elif true != 0 and abs(guess - true) / abs(true) <= 0.1:
            scores.append(2.0)
        else:
            scores.append(-1.0)
    return scores
'''

SIGNATURE = "def <name>(prompts, completions, answer, **kwargs) -> list[float]"
#: The paper states the expected scale of a reward's scores next to the signature.
PAPER_SCORE_RANGE = "score range ~ -2.0..+5.0"
#: ``default``: rewardsmith's prompt (system message, rich feedback); ``paper``: the published one.
PROMPT_STYLES = ("default", "paper")

ALLOWED_IMPORTS = (
    "re", "math", "random", "statistics", "json", "itertools", "functools", "operator",
    "string", "collections", "typing", "fractions", "decimal",
)  # fmt: skip

TIPS = (
    "The three base rewards (match_format_exactly, match_format_approximately, check_answer) "
    "are fixed and always added; every tip and statistic below is about the reward you wrote.",
    "If your reward's accuracy stays near zero, rewrite it rather than tune it.",
    "GRPO compares completions within each group of the same prompt: if your reward gives "
    "every completion of a group the same score it teaches nothing, whatever its mean; make it "
    "separate better answers from worse ones.",
    "If your reward's spread dwarfs the base rewards' (or is negligible next to them), rescale it.",
    "'vs baseline' compares the policy trained with your reward to the one trained with the "
    "base rewards only, on the same questions: delta accuracy with a 95% CI and a McNemar p.",
    "Rewards that pay for surface features (keywords, length) without correctness invite reward "
    "hacking: check that a garbage completion cannot outscore a correct one.",
    "Lines starting 'in training' come from watching the reward during GRPO: audits score "
    "copies of correct completions with the answer removed, the tags broken or the words "
    "shuffled, and a reward must never score such a copy above the original.",
)


@dataclass(frozen=True)
class Prompt:
    """A chat prompt: the system message (empty: none is sent) and the user message."""

    system: str
    user: str

    def __len__(self) -> int:
        return len(self.system) + len(self.user)

    def as_text(self) -> str:
        """The messages in one readable text, as saved next to the model's reply."""
        system = f"### system\n{self.system}\n\n" if self.system else ""
        return f"{system}### user\n{self.user}\n"


@dataclass(frozen=True)
class _Detail:
    n_examples: int
    code_top: int
    reflection_chars: int
    max_entries: int
    max_rejections: int
    question_chars: int = 700


# From the full prompt to the leanest one; build_prompt takes the first that fits.
_LEVELS = (
    _Detail(20, 3, 2000, 50, 20),
    _Detail(20, 1, 1200, 50, 20),
    _Detail(16, 1, 600, 25, 10),
    _Detail(10, 0, 300, 15, 5),
    _Detail(6, 0, 0, 8, 3, 400),
    _Detail(3, 0, 0, 3, 0, 300),
)


def build_prompt(
    context: RoundContext,
    n: int,
    *,
    round: int,
    seed: int = 0,
    max_chars: int = DEFAULT_MAX_CHARS,
    n_examples: int = 20,
    style: str = "default",
) -> Prompt:
    """The prompt asking for ``n`` rewards in ``round``; ``len(prompt) <= max_chars``.

    ``style`` is one of :data:`PROMPT_STYLES` (see the module docstring). Raises ``ValueError``
    for an unknown style, or when even the leanest prompt exceeds ``max_chars``.
    """
    if style not in PROMPT_STYLES:
        raise ValueError(f"unknown prompt style {style!r}; choose one of {PROMPT_STYLES}")
    paper = style == "paper"
    examples = list(context.examples)
    if not paper:  # the paper shows its examples as sampled
        rng = random.Random(f"prompt:{seed}:{round}")
        examples = [examples[i] for i in rng.sample(range(len(examples)), len(examples))]
    for level in _LEVELS:
        detail = _Detail(
            min(level.n_examples, n_examples),
            level.code_top,
            level.reflection_chars,
            level.max_entries,
            level.max_rejections,
            level.question_chars,
        )
        user = _user_message(context, n, examples, detail, paper=paper)
        prompt = Prompt("", f"{SYSTEM_PROMPT}\n\n{user}") if paper else Prompt(SYSTEM_PROMPT, user)
        if len(prompt) <= max_chars:
            return prompt
    raise ValueError(f"max_chars={max_chars} is too small for the leanest prompt ({len(prompt)})")


def _user_message(
    context: RoundContext, n: int, examples: list, detail: _Detail, *, paper: bool = False
) -> str:
    tags = context.tags
    signature = f"```python\n{SIGNATURE}\n```"
    if paper:
        signature += f"\n\nReturn one float per completion ({PAPER_SCORE_RANGE})."
    sections = [
        "You design reward functions for GRPO training of a language model on math word problems "
        "(GSM8K style). The model is asked to answer in exactly this format:\n\n"
        f"{tags.reasoning_start}\n[step-by-step reasoning]\n{tags.reasoning_end}\n"
        f"{tags.solution_start}\n[final numeric answer, just the number]\n{tags.solution_end}\n\n"
        "Each reward you write is added to three base rewards that are always on: "
        "match_format_exactly (+3.0 when the whole format matches), match_format_approximately "
        "(+0.5 per tag present exactly once, -1.0 otherwise) and check_answer (+3.0 for the exact "
        "answer, +1.0/+0.5 when within 10%/20%, -1.5 otherwise). Add signal they lack.",
        _examples_section(examples[: detail.n_examples], detail.question_chars),
        f"## Signature\n\n{signature}\n\n`completions` holds plain strings or "
        'conversations `[{"role": "assistant", "content": "..."}]`; `answer` holds the gold '
        "answer string of each completion's problem (same length as `completions`).",
        f"## Example reward\n\n```python\n{PAPER_EXAMPLE_REWARD if paper else EXAMPLE_REWARD}```",
        _constraints_section(),
        _paper_summary_section(context.summary, detail)
        if paper
        else _summary_section(context.summary, detail),
        "" if paper else _rejections_section(context, detail.max_rejections),
        _task_section(context, n),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def _examples_section(examples: list[dict[str, str]], question_chars: int) -> str:
    if not examples:
        return ""
    lines = [f"## Training problems ({len(examples)} samples, with gold answers)"]
    for index, example in enumerate(examples, 1):
        question = " ".join(example["question"].split())
        if len(question) > question_chars:
            question = question[: question_chars - 3] + "..."
        lines.append(f"{index}. Q: {question}\n   A: {example['answer'].strip()}")
    return "\n".join(lines)


def _constraints_section() -> str:
    return "\n".join(
        [
            "## Constraints (checked automatically; a violation rejects the reward)",
            f"- Import only from: {', '.join(ALLOWED_IMPORTS)}. No file, network, process or "
            "environment access; no exec/eval/open/__import__; no names starting with '_'.",
            "- Return a list of finite floats with exactly one value per completion.",
            "- Deterministic (the same input gives the same output) and fast: well under 10 ms "
            "for a batch of 16 completions; no unbounded loops.",
            "- Never raise: handle missing tags, empty completions, unicode and very long text. "
            "range() is limited to 1,000 elements.",
            "- A garbage completion must not score higher than a correct, well-formatted one.",
        ]
    )


def _summary_section(summary: tuple[SummaryEntry, ...], detail: _Detail) -> str:
    if not summary:
        return "## Results so far\n\nNo reward has been evaluated yet: this is the first round."
    shown = summary[: detail.max_entries]
    lines = [
        f"## Results so far ({len(summary)} rewards, best first"
        + (f"; top {len(shown)} shown" if len(shown) < len(summary) else "")
        + ")",
        "Tips: " + " ".join(TIPS),
    ]
    for rank, entry in enumerate(shown, 1):
        lines.append(_entry_text(rank, entry, detail, with_code=rank <= detail.code_top))
    return "\n\n".join(lines)


def _paper_summary_section(summary: tuple[SummaryEntry, ...], detail: _Detail) -> str:
    """The paper's feedback: every reward so far with its round, accuracy and F1, best first."""
    if not summary:
        return "## Rewards so far\n\nNone yet: this is the first round."
    shown = summary[: detail.max_entries]
    lines = [f"## Rewards so far ({len(summary)}, best first)"]
    for rank, entry in enumerate(shown, 1):
        metrics = entry.metrics
        scores = ", ".join(f"{k}={_fmt(metrics[k])}" for k in ("accuracy", "f1") if k in metrics)
        text = f"{rank}. {entry.name} (round {entry.round}): {scores or 'failed'}"
        if entry.description:
            text += f"\n   {_clip(' '.join(entry.description.split()), 300)}"
        lines.append(text)
    return "\n".join(lines)


def _entry_text(rank: int, entry: SummaryEntry, detail: _Detail, *, with_code: bool) -> str:
    metrics = ", ".join(f"{key}={_fmt(value)}" for key, value in list(entry.metrics.items())[:8])
    text = f"{rank}. {entry.name} (round {entry.round}): {metrics or 'no metrics'}"
    if entry.description:
        text += f"\n   {_clip(' '.join(entry.description.split()), 300)}"
    reflection = entry.reflection
    if not reflection and entry.stats:
        reflection = json.dumps(entry.stats, sort_keys=True, default=str)
    if reflection and detail.reflection_chars:
        body = _clip(reflection.strip(), detail.reflection_chars)
        text += "\n   Reflection:\n" + "\n".join(f"   | {line}" for line in body.splitlines())
    if with_code and entry.code:
        text += f"\n```python\n{_clip(entry.code.rstrip(), 6000)}\n```"
    return text


def _rejections_section(context: RoundContext, limit: int) -> str:
    if not context.rejections or limit <= 0:
        return ""
    recent = context.rejections[-limit:]
    lines = [f"## Recently rejected candidates (last {len(recent)}): avoid these mistakes"]
    for rejection in recent:
        who = rejection.name or "(unnamed)"
        reason = _clip(" ".join(rejection.reason.split()), 300)
        lines.append(f"- {who}, round {rejection.round}, {rejection.stage}: {reason}")
    return "\n".join(lines)


def _task_section(context: RoundContext, n: int) -> str:
    taken = sorted(context.taken_names)
    avoid = ", ".join(taken[:150]) + (", ..." if len(taken) > 150 else "")
    return (
        f"## Your task\n\nWrite {n} new, diverse reward functions that should raise accuracy on "
        "held-out problems when added to the base rewards. Return ONLY a JSON array of "
        f'{n} objects, each with keys "name" (a valid Python identifier, the name of the '
        'function in the code), "code" (the complete Python source, including imports) and '
        '"description" (one or two sentences on what it rewards and why).'
        + (f" Do not reuse these names: {avoid}." if taken else "")
    )


def _fmt(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 15)] + " ...[truncated]"
