"""The probe battery: the GSM8K-style inputs validation feeds a candidate reward, as TRL feeds them.

What TRL passes (read from TRL 1.16.0's ``GRPOTrainer._calculate_rewards`` with transformers
5.24.0; ``tests/rewards/test_probes.py`` calls that code path and checks it). A synchronous reward
function is called with keyword arguments only, every list aligned with the completions (one
entry per generation: ``per_device_train_batch_size`` rows, ``num_generations`` consecutive rows
per question):

* ``prompts``: the dataset's ``prompt`` column, repeated per generation. This project's dataset is
  conversational (``grpo_dataset`` in :mod:`rewardsmith.training.trial`), so each prompt is
  ``[{"role": "system", ...}, {"role": "user", "content": question}]`` with the system text of
  :class:`rewardsmith.tasks.base.PromptFormat`; a standard dataset would pass strings.
* ``completions``: conversational, ``[{"role": "assistant", "content": text}]`` (the decoded
  completion, special tokens skipped); standard, the text itself.
* ``completion_ids``: ``list[list[int]]``, the sampled token ids. They end with the end-of-turn
  token unless the completion was cut at ``max_completion_length`` (so an empty completion is
  one id long).
* every other dataset column, per row: here ``answer`` (the gold as a string, ``"1248"``), absent
  from a label-free dataset. ``prompt`` itself, ``completion`` and ``completion_ids`` columns are
  not repeated.
* ``trainer_state``: the live :class:`transformers.TrainerState` (``global_step``, ``max_steps``,
  ``epoch``, ``log_history``...). Here it is a JSON dict of the same fields
  (:data:`TRAINER_STATE_FIELDS`); the sandbox worker rebuilds attribute access.
* ``log_extra(column, values)`` and ``log_metric(name, value)``: callables into the trainer's
  logs. JSON cannot carry them; :func:`call_kwargs` adds no-op stand-ins only when asked.
* ``environments``: only with an ``environment_factory``, which this project does not use.

The battery (:func:`make_battery`) is drawn afresh from a seed: questions from several templates
with random names, numbers and wording, completions of every kind a policy writes (:data:`KINDS`)
in varied layouts, each cut at ``max_completion_length`` stand-in tokens as a trainer cuts them,
so a reward cannot tell validation from training by exact strings, lengths or wording.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rewardsmith.rewards import _probe_texts as texts
from rewardsmith.rewards._probe_texts import EOS_ID, Question, token_ids
from rewardsmith.tasks.base import PromptFormat

__all__ = [
    "EOS_ID", "GARBAGE_KINDS", "KINDS", "SYSTEM_PROMPT", "TRAINER_STATE_FIELDS",
    "TRL_CALLABLE_KWARGS", "TRL_REWARD_KWARGS", "Battery", "Probe", "Question", "call_kwargs",
    "cost_batch", "make_battery", "token_ids", "trainer_state",
]  # fmt: skip

#: The keyword arguments TRL 1.16's GRPOTrainer passes a reward for this project's dataset.
TRL_REWARD_KWARGS = ("prompts", "completions", "completion_ids", "answer", "trainer_state",
                     "log_extra", "log_metric")  # fmt: skip
#: Those of them JSON cannot carry: a sandbox worker must supply stand-ins.
TRL_CALLABLE_KWARGS = ("log_extra", "log_metric")
#: The fields of transformers' ``TrainerState`` (5.24), the keys of :func:`trainer_state`.
TRAINER_STATE_FIELDS = (
    "epoch", "global_step", "max_steps", "logging_steps", "eval_steps", "save_steps",
    "train_batch_size", "num_train_epochs", "num_input_tokens_seen", "total_flos", "log_history",
    "best_metric", "best_global_step", "best_model_checkpoint", "is_local_process_zero",
    "is_world_process_zero", "is_hyper_param_search", "trial_name", "trial_params",
    "stateful_callbacks",
)  # fmt: skip
GARBAGE_KINDS = ("garbage_tags", "garbage_numbers", "garbage_text", "garbage_tag_spam",
                 "garbage_answer_only")  # fmt: skip
KINDS = ("correct", "wrong", "unformatted", "empty", "very_long", "unicode", "missing_tag",
         "unclosed_tag", *GARBAGE_KINDS)  # fmt: skip
SYSTEM_PROMPT = PromptFormat().system_text()
_CONTROL_STATE = {"args": {"should_training_stop": False, "should_epoch_stop": False,
                           "should_save": False, "should_evaluate": False, "should_log": False},
                  "attributes": {}}  # fmt: skip


@dataclass(frozen=True)
class Probe:
    """One completion to score: its kind, its group (``question_index``: completions of one
    question, like one prompt's ``num_generations``), its text, the question and the gold, and
    whether it was cut at the length limit (then its ids carry no end-of-turn token)."""

    kind: str
    question_index: int
    text: str
    question: str
    answer: str
    truncated: bool = False


@dataclass(frozen=True)
class Battery:
    """A freshly drawn battery: ``batches["batch1" | "batch4" | "batch16"]`` of probes whose
    ``question_index`` points into ``questions``. ``seed`` reproduces it."""

    seed: int
    questions: tuple[Question, ...]
    batches: dict[str, tuple[Probe, ...]]
    max_completion_length: int

    def call_kwargs(self, batch: str, conversational: bool, **options: Any) -> dict[str, Any]:
        """:func:`call_kwargs` for one of the batches, ``trainer_state`` drawn from ``seed``."""
        return call_kwargs(self.batches[batch], conversational, run_seed=self.seed, **options)


def _probe(
    rng: random.Random, kind: str, index: int, q: Question, limit: int, tokens: int = 0
) -> Probe:
    text, cut = texts.completion(rng, kind, q, limit, tokens)
    return Probe(kind, index, text, q.text, q.answer, cut)


def _group(
    rng: random.Random, kinds: Sequence[str], index: int, q: Question, limit: int
) -> list[Probe]:
    """One question's completions: a correct one plus ``kinds``, in random order."""
    order = ["correct", *kinds]
    rng.shuffle(order)
    return [_probe(rng, kind, index, q, limit, rng.randint(0, limit // 2)) for kind in order]


def make_battery(seed: int | None = None, *, max_completion_length: int = 256) -> Battery:
    """A new battery: batches of 1, 4 (one group) and 16 (four groups of four, each with one
    correct completion; every kind of :data:`KINDS` appears), reasoning padded at random up to
    half of ``max_completion_length`` and every text cut at it. ``seed=None`` draws a fresh seed,
    kept in :attr:`Battery.seed`.

    >>> b = make_battery(7)
    >>> [len(b.batches[k]) for k in ("batch1", "batch4", "batch16")]
    [1, 4, 16]
    >>> b == make_battery(7), b.questions == make_battery(8).questions
    (True, False)
    >>> sorted({p.kind for p in b.batches["batch16"]}) == sorted(KINDS)
    True
    """
    if max_completion_length < 128:
        raise ValueError(f"max_completion_length must be >= 128 (got {max_completion_length})")
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    limit = max_completion_length
    questions = texts.make_questions(rng, 6)
    others = [k for k in KINDS if k != "correct"]
    dealt = rng.sample(others, len(others))  # 12 kinds, three per group
    batch16: list[Probe] = []
    for g in range(4):
        batch16 += _group(rng, dealt[3 * g : 3 * g + 3], g, questions[g], limit)
    batch4 = _group(rng, rng.sample(others, 3), 4, questions[4], limit)
    batch1 = [_probe(rng, rng.choice(KINDS), 5, questions[5], limit, rng.randint(0, limit // 2))]
    batches = {"batch1": tuple(batch1), "batch4": tuple(batch4), "batch16": tuple(batch16)}
    return Battery(seed, questions, batches, limit)


def cost_batch(
    seed: int | None = None, *, min_tokens: int = 150, max_tokens: int = 400
) -> tuple[Probe, ...]:
    """A training-sized batch to time a reward on: four groups of four completions whose
    reasoning runs ``min_tokens`` to ``max_tokens`` stand-in tokens, mostly well-formed.

    >>> batch = cost_batch(3)
    >>> len(batch), all(150 <= len(token_ids(p.text)) <= 401 for p in batch)
    (16, True)
    """
    rng = random.Random(seed if seed is not None else random.SystemRandom().randrange(2**32))
    kinds = ("correct", "correct", "wrong", "wrong", "unformatted", "unicode", "unclosed_tag")
    probes = []
    for g, q in enumerate(texts.make_questions(rng, 4)):
        for kind in ("correct", *(rng.choice(kinds) for _ in range(3))):
            tokens = rng.randint(min_tokens, max_tokens)
            probes.append(_probe(rng, kind, g, q, max_tokens, tokens))
    return tuple(probes)


def _log_entry(rng: random.Random, step: int, max_steps: int, epoch: float) -> dict[str, float]:
    progress = step / max_steps
    length = rng.uniform(90, 230)
    return {
        "loss": round(rng.gauss(0.0, 0.02), 4),
        "grad_norm": round(rng.uniform(0.05, 2.0), 4),
        "learning_rate": 5e-6 * (1 - progress),
        "num_tokens": float(step * rng.randint(1800, 2600)),
        "completions/mean_length": round(length, 2),
        "completions/min_length": float(rng.randint(1, int(length))),
        "completions/max_length": float(rng.randint(int(length), 256)),
        "completions/clipped_ratio": round(rng.uniform(0, 0.2), 4),
        "reward": round(-1.0 + 4.0 * progress + rng.gauss(0, 0.5), 4),
        "reward_std": round(rng.uniform(0.3, 2.5), 4),
        "frac_reward_zero_std": round(rng.uniform(0, 0.5), 4),
        "kl": round(rng.uniform(0, 0.05) * progress, 6),
        "entropy": round(rng.uniform(0.3, 1.0), 4),
        "epoch": epoch,
        "step": step,
    }


def trainer_state(step: int = 0, *, max_steps: int = 500, run_seed: int = 0) -> dict[str, Any]:
    """A JSON-serialisable stand-in for ``TrainerState`` at ``global_step == step`` of a run of
    ``max_steps``: the run's constants and its ``log_history`` so far follow from ``run_seed``,
    so states of one run at different steps agree with each other.

    >>> s = trainer_state(20, max_steps=100, run_seed=1)
    >>> s["global_step"], s["max_steps"], s["log_history"][-1]["step"] <= 20 < s["total_flos"]
    (20, 100, True)
    >>> trainer_state(0)["log_history"], trainer_state(20, max_steps=100, run_seed=1) == s
    ([], True)
    """
    if not 0 <= step <= max_steps:
        raise ValueError(f"need 0 <= step <= max_steps (got step {step}, max_steps {max_steps})")
    rng = random.Random(f"run:{run_seed}:{max_steps}")
    steps_per_epoch = rng.randint(max(1, max_steps // 4), 3 * max_steps)
    logging_steps = rng.choice((1, 1, 5, 10))
    history = [
        _log_entry(random.Random(f"log:{run_seed}:{k}"), k, max_steps, k / steps_per_epoch)
        for k in range(logging_steps, step + 1, logging_steps)
    ]
    values = {
        "epoch": step / steps_per_epoch,
        "global_step": step,
        "max_steps": max_steps,
        "logging_steps": logging_steps,
        "eval_steps": logging_steps,
        "save_steps": 500,
        "train_batch_size": rng.choice((4, 8, 16)),
        "num_train_epochs": -(-max_steps // steps_per_epoch),
        "num_input_tokens_seen": 0,
        "total_flos": float(step * rng.randint(10**12, 10**13)),
        "log_history": history,
        "best_metric": None,
        "best_global_step": None,
        "best_model_checkpoint": None,
        "is_local_process_zero": True,
        "is_world_process_zero": True,
        "is_hyper_param_search": False,
        "trial_name": None,
        "trial_params": None,
        "stateful_callbacks": {"TrainerControl": _CONTROL_STATE},
    }
    return {key: values[key] for key in TRAINER_STATE_FIELDS}


def _log_extra(column: str, values: list[Any]) -> None:
    """No-op stand-in for the trainer's ``log_extra``."""


def _log_metric(name: str, value: float) -> None:
    """No-op stand-in for the trainer's ``log_metric``."""


def call_kwargs(
    probes: Sequence[Probe],
    conversational: bool,
    *,
    step: int = 0,
    max_steps: int = 500,
    run_seed: int = 0,
    prompt: PromptFormat | None = None,
    label_free: bool = False,
    with_callables: bool = False,
) -> dict[str, Any]:
    """The keyword arguments TRL passes a reward for ``probes``, in the module docstring's order:
    ``prompts``, ``completions``, ``completion_ids``, ``answer`` (not when ``label_free``),
    ``trainer_state`` (:func:`trainer_state` at ``step``), and with ``with_callables`` no-op
    ``log_extra`` and ``log_metric``. ``prompt`` sets the system text (the paper's by default).

    >>> kw = call_kwargs(make_battery(1).batches["batch4"], True, step=3)
    >>> list(kw), kw["completions"][0][0]["role"], kw["prompts"][0][0]["role"]
    (['prompts', 'completions', 'completion_ids', 'answer', 'trainer_state'], 'assistant', 'system')
    """
    fmt = prompt or PromptFormat()
    prompts: list[Any]
    completions: list[Any]
    if conversational:
        prompts = [fmt.messages(p.question) for p in probes]
        completions = [[{"role": "assistant", "content": p.text}] for p in probes]
    else:
        prompts = [f"{fmt.system_text()}\n\n{p.question}" for p in probes]
        completions = [p.text for p in probes]
    kwargs: dict[str, Any] = {
        "prompts": prompts,
        "completions": completions,
        "completion_ids": [token_ids(p.text, eos=not p.truncated) for p in probes],
    }
    if not label_free:
        kwargs["answer"] = [p.answer for p in probes]
    kwargs["trainer_state"] = trainer_state(step, max_steps=max_steps, run_seed=run_seed)
    if with_callables:
        kwargs["log_extra"], kwargs["log_metric"] = _log_extra, _log_metric
    return kwargs
