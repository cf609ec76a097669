"""The LLM generator with truncated replies and reasoning models, against a local HTTP server."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from rewardsmith.cli import generate_cmds
from rewardsmith.generators import LLMGenerator, RetryPolicy, RoundContext
from rewardsmith.generators.llm import is_reasoning_model

REWARD = "def {n}(prompts, completions, answer, **kwargs):\n    return [1.0] * len(completions)\n"
CONTEXT = RoundContext(examples=[{"question": "What is 2 + 3?", "answer": "5"}] * 3)


def reply_of(*names: str) -> str:
    return json.dumps([{"name": n, "code": REWARD.format(n=n), "description": n} for n in names])


FULL = reply_of("a_reward", "b_reward", "c_reward")
CUT = FULL[: FULL.index("def c_reward") + 20]  # the token limit hit inside the third code string


def make(server, tmp_path, *, provider="openai", **options):
    base = server.url + ("/v1" if provider == "openai" else "")
    options.setdefault("model", "test-model")
    return LLMGenerator(
        out_dir=tmp_path,
        provider=provider,
        base_url=base,
        api_key="test-key",
        timeout_s=5.0,
        retry=RetryPolicy(max_attempts=1),
        **options,
    )


def asked(request: dict) -> str:
    """The 'JSON array of N objects' sentence of a recorded request."""
    body = request["body"]
    text = body["messages"][-1]["content"]
    return text[text.index("JSON array of") :].split(",")[0]


def test_truncated_reply_keeps_complete_items_and_asks_for_fewer(chat_server, tmp_path):
    chat_server.script = [chat_server.Reply(CUT, truncated=True), chat_server.Reply(FULL)]
    gen = make(chat_server, tmp_path)
    assert [c.name for c in gen.propose(1, 4, CONTEXT)] == ["a_reward", "b_reward"]
    assert [(r.stage, r.name) for r in gen.rejections] == [
        ("parse", "c_reward"),
        ("truncated", None),
    ]
    assert "item 3 truncated: reply ended mid-string (in 'code')" in gen.rejections[0].reason
    assert "token limit" in gen.rejections[1].reason
    assert "asked for 4, kept 2" in gen.rejections[1].reason
    assert "next request asks for 2" in gen.rejections[1].reason
    record = json.loads((tmp_path / "round_01" / "attempt_1.json").read_text())
    assert (record["asked_for"], record["finish_reason"], record["truncated"]) == (
        4,
        "length",
        True,
    )
    assert [r["stage"] for r in record["rejections"]] == ["parse", "truncated"]
    assert (tmp_path / "round_01" / "attempt_1.response.txt").read_text() == CUT
    gen.propose(1, 4, CONTEXT)  # same round: half as many
    gen.propose(2, 4, CONTEXT)  # a new round starts from the full count again
    assert [asked(r) for r in chat_server.requests] == [
        "JSON array of 4 objects",
        "JSON array of 2 objects",
        "JSON array of 4 objects",
    ]
    record = json.loads((tmp_path / "round_01" / "attempt_2.json").read_text())
    assert (record["asked_for"], record["truncated"]) == (2, False)


def test_ask_for_count_halves_down_to_one(chat_server, tmp_path):
    chat_server.script = [chat_server.Reply(CUT, truncated=True)]
    gen = make(chat_server, tmp_path)
    for _ in range(4):
        gen.propose(3, 5, CONTEXT)
    assert [asked(r) for r in chat_server.requests] == [
        f"JSON array of {n} objects" for n in (5, 2, 1, 1)
    ]
    assert gen.ask_for(3, 5) == 1 and gen.ask_for(3, 1) == 1 and gen.ask_for(4, 5) == 5


def test_anthropic_max_tokens_stop_is_a_truncation(chat_server, tmp_path):
    chat_server.script = [chat_server.Reply(CUT, truncated=True, reasoning="let me think")]
    gen = make(chat_server, tmp_path, provider="anthropic")
    assert len(gen.propose(1, 3, CONTEXT)) == 2
    record = json.loads((tmp_path / "round_01" / "attempt_1.json").read_text())
    assert (record["finish_reason"], record["truncated"]) == ("max_tokens", True)
    assert (tmp_path / "round_01" / "attempt_1.reasoning.txt").read_text() == "let me think"
    assert gen.ask_for(1, 3) == 1


def test_reply_cut_without_the_api_saying_so_is_still_a_truncation(chat_server, tmp_path):
    chat_server.script = [chat_server.Reply(CUT)]  # finish_reason "stop"
    gen = make(chat_server, tmp_path)
    assert len(gen.propose(1, 4, CONTEXT)) == 2
    [_, truncation] = gen.rejections
    assert truncation.stage == "truncated"
    assert "ended inside its JSON or code (finish_reason='stop')" in truncation.reason
    assert gen.ask_for(1, 4) == 2


def test_complete_reply_changes_nothing(chat_server, tmp_path):
    chat_server.script = [chat_server.Reply(FULL, reasoning="r")]
    gen = make(chat_server, tmp_path)
    assert len(gen.propose(1, 3, CONTEXT)) == 3
    assert gen.rejections == [] and gen.ask_for(1, 3) == 3
    record = json.loads((tmp_path / "round_01" / "attempt_1.json").read_text())
    assert (record["finish_reason"], record["truncated"], record["repairs"]) == ("stop", False, [])
    assert (tmp_path / "round_01" / "attempt_1.reasoning.txt").read_text() == "r"


SAMPLING = {"temperature": 0.5, "top_p": 0.9}

REQUESTS = [
    # (model, options, keys that must be sent, keys that must not, why)
    ("o3-mini", {**SAMPLING, "reasoning_effort": "high"},
     {"max_completion_tokens": 1234, "reasoning_effort": "high"},
     ("max_tokens", "temperature", "top_p"), "reasoning model by name"),
    ("openai/gpt-5", SAMPLING, {"max_completion_tokens": 1234},
     ("max_tokens", "temperature", "top_p"), "provider prefix in the name"),
    ("gpt-4o", SAMPLING, {"max_tokens": 1234, **SAMPLING},
     ("max_completion_tokens", "reasoning_effort"), "ordinary model"),
    ("o3-mini", {"reasoning": False}, {"max_tokens": 1234}, ("max_completion_tokens",),
     "reasoning switched off"),
    ("local-r1", {**SAMPLING, "reasoning": True}, {"max_completion_tokens": 1234},
     ("max_tokens", "temperature", "top_p"), "reasoning switched on for a local model"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "options", "sent", "absent", "why"), REQUESTS, ids=[r[4] for r in REQUESTS]
)
def test_request_parameters(chat_server, tmp_path, model, options, sent, absent, why):
    chat_server.script = [chat_server.Reply(FULL)]
    make(chat_server, tmp_path, model=model, max_tokens=1234, **options).propose(1, 3, CONTEXT)
    body = chat_server.requests[0]["body"]
    assert {key: body.get(key) for key in sent} == sent, why
    assert not set(absent) & set(body), why


@pytest.mark.parametrize(
    ("model", "expected"),
    [("o1", True), ("o1-preview", True), ("o3", True), ("o4-mini", True), ("gpt-5-mini", True),
     ("azure/o3-mini", True), ("gpt-4o", False), ("gpt-4.1", False), ("olmo-2", False),
     ("o10-model", False), ("claude-sonnet-4-5", False)],
)  # fmt: skip
def test_reasoning_models_by_name(model, expected):
    assert is_reasoning_model(model) is expected


def test_generate_cli_passes_token_and_reasoning_options(chat_server, tmp_path):
    app = typer.Typer()
    generate_cmds.register(app)
    app.command("noop", hidden=True)(lambda: None)
    chat_server.script = [chat_server.Reply(CUT, truncated=True)]
    out = tmp_path / "out"
    args = ["generate", "-g", "llm", "--provider", "openai", "--base-url", chat_server.url + "/v1",
            "--model", "local", "-n", "3", "-o", str(out), "--max-tokens", "77", "--reasoning",
            "--max-prompt-chars", "20000"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    body = chat_server.requests[0]["body"]
    assert body["max_completion_tokens"] == 77 and "max_tokens" not in body
    assert len(body["messages"][0]["content"]) + len(body["messages"][1]["content"]) <= 20000
    report = json.loads((out / "candidates.json").read_text())
    assert [c["name"] for c in report["candidates"]] == ["a_reward", "b_reward"]
    assert [r["stage"] for r in report["rejections"]] == ["parse", "truncated"]
