"""The probe battery: fresh, reproducible, correct golds, and exactly the kwargs TRL passes."""

from __future__ import annotations

import dataclasses
import doctest
import json
import re
import types
from fractions import Fraction

import pytest

from rewardsmith.extraction import extract_paper, format_patterns, normalize
from rewardsmith.rewards import _probe_texts, probes
from rewardsmith.rewards.base import check_answer, match_format_approximately, match_format_exactly
from rewardsmith.rewards.probes import (
    EOS_ID,
    GARBAGE_KINDS,
    KINDS,
    SYSTEM_PROMPT,
    TRAINER_STATE_FIELDS,
    TRL_REWARD_KWARGS,
    call_kwargs,
    cost_batch,
    make_battery,
    token_ids,
    trainer_state,
)

SEEDS = range(40)
BATCH_SIZES = {"batch1": 1, "batch4": 4, "batch16": 16}


def _all_probes(battery):
    return [p for batch in battery.batches.values() for p in batch]


# --- freshness and reproducibility ---


def test_same_seed_is_reproducible():
    a, b = make_battery(11), make_battery(11)
    assert a == b
    assert a.call_kwargs("batch16", True, step=5) == b.call_kwargs("batch16", True, step=5)


@pytest.mark.parametrize("seed_a, seed_b", [(0, 1), (1, 2), (7, 1007), (123, 124)])
def test_different_seeds_differ(seed_a, seed_b):
    a, b = make_battery(seed_a), make_battery(seed_b)
    assert not {q.text for q in a.questions} & {q.text for q in b.questions}
    correct = [{p.text for p in _all_probes(x) if p.kind == "correct"} for x in (a, b)]
    assert not correct[0] & correct[1]
    assert [p.text for p in _all_probes(a)] != [p.text for p in _all_probes(b)]


def test_unseeded_batteries_are_fresh_and_record_their_seed():
    a, b = make_battery(), make_battery()
    assert a.seed != b.seed and a.questions != b.questions
    assert make_battery(a.seed) == a


def test_no_fixed_wording_or_length_to_fingerprint():
    batteries = [make_battery(s) for s in SEEDS]
    questions = [q.text for b in batteries for q in b.questions]
    assert len(set(questions)) == len(questions)
    correct = [p.text for b in batteries for p in b.batches["batch16"] if p.kind == "correct"]
    assert len({len(t) for t in correct}) > len(correct) // 2
    layouts = {(t.startswith("\n"), "</thinking>\n" in t, "<solution>\n" in t) for t in correct}
    assert len(layouts) >= 4  # newlines or not, around and inside the tags
    first_kinds = {b.batches["batch16"][0].kind for b in batteries}
    assert len(first_kinds) > 3  # the correct completion is not always first in its group


# --- golds, recomputed from the question text alone ---

_N = r"(?P<{}>[\d.]+)"
_FACTORS = {"half": Fraction(1, 2), "a third": Fraction(1, 3), "a quarter": Fraction(1, 4),
            "a fifth": Fraction(1, 5), "twice": 2, "three times": 3}  # fmt: skip
_SOLVERS = [
    (r"sold (?P<n>\d+) .*?(?P<f>half|a third|twice|three times) as many",
     lambda g: int(g["n"]) * (1 + _FACTORS[g["f"]])),
    (r"\$(?P<r>[\d.]+) (?:an|per) hour .*?(?P<h>\d+) hours (?:a day for|on each of) (?P<d>\d+) ",
     lambda g: Fraction(g["r"]) * int(g["h"]) * int(g["d"])),
    (r"(?P<p>\d+)-page letter to (?P<f>\d+) different friends (?P<t>twice|three times) a week",
     lambda g: int(g["p"]) * int(g["f"]) * _FACTORS[g["t"]] * 52),
    (r"(?P<t>Twice|Three times) a week, \w+ writes (?P<p>\d+) pages to each of (?P<f>\d+) pen",
     lambda g: int(g["p"]) * int(g["f"]) * _FACTORS[g["t"].lower()] * 52),
    (r"needs \$(?P<c>\d+) .*? has (?P<k>half|a quarter|a fifth) of the money, .*?give "
     r"\$(?P<a>\d+), and .*? give (?P<m>twice|three times) as much",
     lambda g: int(g["c"]) * (1 - _FACTORS[g["k"]]) - int(g["a"]) * (1 + _FACTORS[g["m"]])),
    (r"makes (?P<r>\d+) .*? every hour\. It runs (?P<h>\d+) hours a day for (?P<d>\d+) days\."
     r"(?: (?P<x>\d+) of the .*? fail inspection\.)?",
     lambda g: int(g["r"]) * int(g["h"]) * int(g["d"]) - int(g["x"] or 0)),
    (r"for \$(?P<p>[\d.]+) each\. \w+ buys (?P<n>\d+) \w+ and gets (?P<c>\d+)% off",
     lambda g: Fraction(g["p"]) * int(g["n"]) * (100 - int(g["c"])) / 100),
    (r"buys (?P<n>\d+) \w+ at \$(?P<p>[\d.]+) each\. With a (?P<c>\d+)% discount",
     lambda g: Fraction(g["p"]) * int(g["n"]) * (100 - int(g["c"])) / 100),
    (r"(?P<b>\d+) (?:batches|trays) (?:of|with) (?P<s>\d+) \w+(?: on each)?[,.] \w* ?"
     r"(?:eats|keeps) (?P<e>\d+) .*? (?:among|between) (?P<k>\d+) friends",
     lambda g: Fraction(int(g["b"]) * int(g["s"]) - int(g["e"]), int(g["k"]))),
]  # fmt: skip


def _solve(text):
    found = [(rx, f) for rx, f in _SOLVERS if re.search(rx, text)]
    assert len(found) == 1, f"{len(found)} solvers match {text!r}"
    return Fraction(found[0][1](re.search(found[0][0], text).groupdict()))


def test_gold_answers_are_correct_and_written_like_gsm8k():
    golds = []
    for seed in range(150):
        for q in make_battery(seed).questions:
            value = _solve(q.text)
            assert value >= 0 and Fraction(q.answer) == value, q.text
            assert re.fullmatch(r"\d+(\.\d*[1-9])?", q.answer), q.answer  # no commas, no 1.50
            assert q.wrong != q.answer
            golds.append(value)
    assert any(g.denominator > 1 for g in golds), "no decimal answers drawn"
    assert any(g >= 1000 for g in golds), "no answers written with thousands separators"
    templates = {t.__name__ for t in _probe_texts.TEMPLATES}
    assert len(templates) == 7


@pytest.mark.parametrize(
    "value, gold, with_commas",
    [
        (Fraction(1248), "1248", "1,248"),
        (Fraction(375, 2), "187.5", "187.5"),
        (Fraction(24961, 2), "12480.5", "12,480.5"),
        (Fraction(27, 4), "6.75", "6.75"),
        (Fraction(0), "0", "0"),
    ],
)
def test_gold_and_comma_forms(value, gold, with_commas):
    assert _probe_texts.num(value) == gold  # as the GSM8K loader stores it
    assert _probe_texts.commas(gold) == with_commas  # as a model may write it
    assert normalize(with_commas) == gold


# --- groups and kinds ---


@pytest.mark.parametrize("seed", SEEDS)
def test_groups_have_one_correct_completion(seed):
    battery = make_battery(seed)
    for name, size in BATCH_SIZES.items():
        assert len(battery.batches[name]) == size
    batch16 = battery.batches["batch16"]
    kinds = [p.kind for p in batch16]
    assert sorted(kinds) == sorted([*KINDS, "correct", "correct", "correct"])  # every kind
    for g in range(4):
        group = batch16[4 * g : 4 * g + 4]  # consecutive, as TRL orders num_generations rows
        assert {p.question_index for p in group} == {g}
        assert [p.kind for p in group].count("correct") == 1
        assert {p.question for p in group} == {battery.questions[g].text}
    assert [p.kind for p in battery.batches["batch4"]].count("correct") == 1
    assert set(GARBAGE_KINDS) < set(KINDS)


@pytest.mark.parametrize("seed", SEEDS)
def test_correct_completions_are_correct_and_well_formed(seed):
    strict, _ = format_patterns()
    for p in _all_probes(make_battery(seed)):
        if p.kind == "correct":
            assert not p.truncated and strict.search(p.text), p.text
            assert normalize(extract_paper(p.text)) == p.answer


@pytest.mark.parametrize("reward", [check_answer, match_format_exactly, match_format_approximately])
def test_built_in_rewards_never_prefer_garbage(reward):
    for seed in SEEDS:
        batch = make_battery(seed).batches["batch16"]
        values = reward(**call_kwargs(batch, True))
        best = {
            p.question_index: v for p, v in zip(batch, values, strict=True) if p.kind == "correct"
        }
        for p, v in zip(batch, values, strict=True):
            assert p.kind not in GARBAGE_KINDS or v <= best[p.question_index], (seed, p)


# --- the keyword arguments ---


@pytest.mark.parametrize("conversational", [True, False])
@pytest.mark.parametrize("batch", list(BATCH_SIZES))
def test_kwargs_have_trls_keys_aligned(batch, conversational):
    battery = make_battery(3)
    kw = battery.call_kwargs(batch, conversational, step=7, with_callables=True)
    assert tuple(kw) == TRL_REWARD_KWARGS
    n = BATCH_SIZES[batch]
    assert all(len(kw[k]) == n for k in ("prompts", "completions", "completion_ids", "answer"))
    assert kw["log_metric"]("x", 1.0) is None and kw["log_extra"]("c", [1] * n) is None
    plain = battery.call_kwargs(batch, conversational, step=7)
    assert tuple(plain) == TRL_REWARD_KWARGS[:5]
    json.dumps(plain)  # everything but the callables crosses the sandbox as JSON
    assert "answer" not in battery.call_kwargs(batch, conversational, label_free=True)
    first = battery.batches[batch][0]
    if conversational:
        assert kw["prompts"][0] == [{"role": "system", "content": SYSTEM_PROMPT},
                                    {"role": "user", "content": first.question}]  # fmt: skip
        assert kw["completions"][0] == [{"role": "assistant", "content": first.text}]
    else:
        assert kw["prompts"][0].endswith(first.question) and kw["completions"][0] == first.text


@pytest.mark.parametrize(
    "text, n_ids",
    [
        ("", 1),  # an empty completion is its end-of-turn token alone
        ("72", 2),
        ("1,248", 4),  # digits, comma, digits
        ("<solution>72</solution>", 11),
        (" 🧮 résumé", 3),  # a word keeps its leading space
    ],
)
def test_token_ids_table(text, n_ids):
    ids = token_ids(text)
    assert len(ids) == n_ids and ids[-1] == EOS_ID and ids == token_ids(text)
    assert token_ids(text, eos=False) == ids[:-1]


@pytest.mark.parametrize("limit", [128, 256, 512])
def test_completion_ids_track_the_text(limit):
    cut = []
    for seed in range(10):
        battery = make_battery(seed, max_completion_length=limit)
        kw = call_kwargs(_all_probes(battery), True)
        for p, ids in zip(_all_probes(battery), kw["completion_ids"], strict=True):
            pieces = _probe_texts.token_pieces(p.text)
            assert "".join(pieces) == p.text
            assert len(ids) == len(pieces) + (0 if p.truncated else 1) <= limit + 1
            assert (ids[-1] == EOS_ID) != p.truncated
            assert not p.truncated or len(ids) == limit
            assert all(256 <= i < _probe_texts.VOCAB_SIZE for i in ids if i != EOS_ID)
            if len(p.text) > 20:
                assert 0.9 <= len(p.text) / len(ids) <= 8.0  # characters per token, like BPE
        cut += [p.truncated for p in _all_probes(battery) if p.kind == "very_long"]
    assert any(cut) and not all(cut)  # cut mid-thought at the limit, or verbose but complete


def test_trainer_state_is_a_consistent_json_run():
    early, late = (trainer_state(s, max_steps=200, run_seed=4) for s in (20, 120))
    assert tuple(early) == tuple(late) == TRAINER_STATE_FIELDS
    assert json.loads(json.dumps(late)) == late
    assert (early["global_step"], late["global_step"]) == (20, 120)
    assert early["epoch"] < late["epoch"] and early["total_flos"] < late["total_flos"]
    assert late["log_history"][: len(early["log_history"])] == early["log_history"]
    assert [e["step"] for e in late["log_history"]][-1] <= 120
    assert trainer_state(120, max_steps=200, run_seed=5) != late
    with pytest.raises(ValueError, match="step"):
        trainer_state(201, max_steps=200)


@pytest.mark.slow  # imports torch and TRL (several seconds)
def test_trl_passes_exactly_these_kwargs():
    """Run TRL's own ``_calculate_rewards`` on a battery and compare what the reward receives."""
    torch = pytest.importorskip("torch")
    trl = pytest.importorskip("trl")
    from transformers import TrainerState

    kw = make_battery(9).call_kwargs("batch16", True, step=12)
    received = {}

    def recorder(**kwargs):
        received.update(kwargs)
        return [0.0] * len(kwargs["prompts"])

    trainer = types.SimpleNamespace(
        accelerator=types.SimpleNamespace(device=torch.device("cpu"), is_main_process=True),
        args=types.SimpleNamespace(report_to=[]),
        reward_funcs=[recorder],
        reward_processing_classes=[None],
        reward_func_names=["recorder"],
        state=TrainerState(**kw["trainer_state"]),
        _log_completion_extra=lambda column, values: None,
        _log_metric=lambda name, value: None,
        environments=None,
    )
    # The dataset rows TRL samples: this project's columns, one row per generation.
    inputs = [{"prompt": p, "answer": a} for p, a in zip(kw["prompts"], kw["answer"], strict=True)]
    trl.GRPOTrainer._calculate_rewards(
        trainer, inputs, kw["prompts"], kw["completions"], kw["completion_ids"]
    )
    assert tuple(received) == TRL_REWARD_KWARGS, f"TRL {trl.__version__} changed its kwargs"
    for key in ("prompts", "completions", "completion_ids", "answer"):
        assert received[key] == kw[key]
    assert tuple(f.name for f in dataclasses.fields(TrainerState)) == TRAINER_STATE_FIELDS
    assert received["trainer_state"].global_step == 12


# --- the cost batch, the examples ---


def test_cost_batch_is_training_sized_and_reproducible():
    batch = cost_batch(5)
    assert batch == cost_batch(5) != cost_batch(6)
    assert len(batch) == 16 and len({p.question_index for p in batch}) == 4
    lengths = [len(token_ids(p.text, eos=False)) for p in batch]
    assert all(150 <= n <= 400 for n in lengths) and max(lengths) - min(lengths) > 50


@pytest.mark.parametrize("module", [probes, _probe_texts])
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
