"""The LLM generator against a real HTTP server on localhost (OpenAI and Anthropic protocols)."""

from __future__ import annotations

import json

import pytest

from rewardsmith.errors import ConfigError
from rewardsmith.generators import LLMGenerator, RetryPolicy, RoundContext

REWARD = "def {n}(prompts, completions, answer, **kwargs):\n    return [1.0] * len(completions)\n"
GOOD = json.dumps(
    [
        {"name": "first_reward", "code": REWARD.format(n="first_reward"), "description": "a"},
        {"name": "second_reward", "code": REWARD.format(n="second_reward"), "description": "b"},
    ]
)
CONTEXT = RoundContext(examples=[{"question": "What is 2 + 3?", "answer": "5"}] * 3)


def make(server, tmp_path, *, attempts=3, provider="openai", timeout_s=5.0, sleeps=None):
    base = server.url + ("/v1" if provider == "openai" else "")
    return LLMGenerator(
        out_dir=tmp_path,
        provider=provider,
        model="test-model",
        base_url=base,
        api_key="test-key",
        timeout_s=timeout_s,
        retry=RetryPolicy(max_attempts=attempts, initial_delay_s=0.01, max_delay_s=0.05),
        sleep=(sleeps.append if sleeps is not None else lambda _: None),
    )


def test_good_reply_gives_candidates_and_saves_prompt_response_and_parse(chat_server, tmp_path):
    chat_server.script = [chat_server.Reply(GOOD)]
    gen = make(chat_server, tmp_path)
    candidates = gen.propose(1, 2, CONTEXT)
    assert [c.name for c in candidates] == ["first_reward", "second_reward"]
    assert all(c.round == 1 and c.generator == "llm/test-model" for c in candidates)
    assert gen.rejections == []
    request = chat_server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["model"] == "test-model"
    roles = [m["role"] for m in request["body"]["messages"]]
    assert roles == ["system", "user"]
    assert "JSON array of 2 objects" in request["body"]["messages"][1]["content"]
    saved = tmp_path / "round_01"
    assert "What is 2 + 3?" in (saved / "attempt_1.prompt.txt").read_text()
    assert (saved / "attempt_1.response.txt").read_text() == GOOD
    parsed = json.loads((saved / "attempt_1.json").read_text())
    assert [c["name"] for c in parsed["candidates"]] == ["first_reward", "second_reward"]


@pytest.mark.parametrize(
    "text",
    [
        f"```json\n{GOOD}\n```",  # fenced
        f"Sure! Here are two rewards:\n{GOOD}\nLet me know if you need more.",  # prose around
        json.dumps({"rewards": json.loads(GOOD)}),  # object with a rewards key
    ],
    ids=["fenced", "prose", "rewards-key"],
)
def test_wrapped_replies_parse(chat_server, tmp_path, text):
    chat_server.script = [chat_server.Reply(text)]
    candidates = make(chat_server, tmp_path).propose(1, 2, CONTEXT)
    assert [c.name for c in candidates] == ["first_reward", "second_reward"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [("I cannot help with that.", "no JSON array or Python reward"), ("", "empty reply")],
    ids=["malformed", "empty"],
)
def test_unusable_reply_is_a_recorded_rejection(chat_server, tmp_path, text, reason):
    chat_server.script = [chat_server.Reply(text)]
    gen = make(chat_server, tmp_path)
    assert gen.propose(2, 2, CONTEXT) == []
    assert len(chat_server.requests) == 1  # bad content is not retried
    [rejection] = gen.rejections
    assert (rejection.stage, rejection.round) == ("parse", 2)
    assert reason in rejection.reason
    saved = tmp_path / "round_02"
    assert (saved / "attempt_1.response.txt").read_text() == text
    assert json.loads((saved / "attempt_1.json").read_text())["rejections"][0]["stage"] == "parse"


def test_rate_limit_is_retried_with_backoff(chat_server, tmp_path):
    chat_server.script = [chat_server.Reply(status=429), chat_server.Reply(GOOD)]
    sleeps: list[float] = []
    gen = make(chat_server, tmp_path, sleeps=sleeps)
    assert len(gen.propose(1, 2, CONTEXT)) == 2
    assert len(chat_server.requests) == 2
    assert sleeps == [0.01]
    saved = tmp_path / "round_01"
    assert "HTTP 429" in (saved / "attempt_1.error.txt").read_text()
    assert (saved / "attempt_2.response.txt").read_text() == GOOD
    assert gen.rejections == []


def test_server_errors_until_retries_are_exhausted(chat_server, tmp_path):
    chat_server.script = [chat_server.Reply(status=500)]
    sleeps: list[float] = []
    gen = make(chat_server, tmp_path, attempts=3, sleeps=sleeps)
    assert gen.propose(1, 2, CONTEXT) == []
    assert len(chat_server.requests) == 3
    assert sleeps == [0.01, 0.02]  # exponential backoff between the three tries
    [rejection] = gen.rejections
    assert rejection.stage == "request"
    assert "3 attempt(s)" in rejection.reason and "HTTP 500" in rejection.reason
    saved = sorted(p.name for p in (tmp_path / "round_01").iterdir())
    assert saved == [f"attempt_{k}.{kind}.txt" for k in (1, 2, 3) for kind in ("error", "prompt")]


def test_client_error_is_not_retried(chat_server, tmp_path):
    chat_server.script = [chat_server.Reply(status=400)]
    gen = make(chat_server, tmp_path, attempts=4)
    assert gen.propose(1, 2, CONTEXT) == []
    assert len(chat_server.requests) == 1
    assert "HTTP 400" in gen.rejections[0].reason


def test_slow_reply_times_out_and_is_retried(chat_server, tmp_path):
    chat_server.script = [chat_server.Reply(GOOD, delay_s=1.5), chat_server.Reply(GOOD)]
    gen = make(chat_server, tmp_path, timeout_s=0.3)
    assert len(gen.propose(1, 2, CONTEXT)) == 2
    assert len(chat_server.requests) == 2
    assert "timed out" in (tmp_path / "round_01" / "attempt_1.error.txt").read_text()


def test_later_calls_in_a_round_do_not_overwrite_saved_files(chat_server, tmp_path):
    chat_server.script = [chat_server.Reply("nothing useful"), chat_server.Reply(GOOD)]
    gen = make(chat_server, tmp_path)
    assert gen.propose(1, 2, CONTEXT) == []
    assert len(gen.propose(1, 2, CONTEXT)) == 2
    saved = tmp_path / "round_01"
    assert (saved / "attempt_1.response.txt").read_text() == "nothing useful"
    assert (saved / "attempt_2.response.txt").read_text() == GOOD


def test_anthropic_messages_api(chat_server, tmp_path):
    chat_server.script = [chat_server.Reply(f"```json\n{GOOD}\n```")]
    gen = make(chat_server, tmp_path, provider="anthropic")
    assert [c.name for c in gen.propose(1, 2, CONTEXT)] == ["first_reward", "second_reward"]
    request = chat_server.requests[0]
    assert request["path"] == "/v1/messages"
    assert "reward functions" in request["body"]["system"]
    assert request["body"]["messages"][0]["role"] == "user"


def test_anthropic_overload_is_retried(chat_server, tmp_path):
    chat_server.script = [chat_server.Reply(status=529), chat_server.Reply(GOOD)]
    gen = make(chat_server, tmp_path, provider="anthropic")
    assert len(gen.propose(1, 2, CONTEXT)) == 2
    assert len(chat_server.requests) == 2


def test_missing_api_key_is_a_config_error(monkeypatch, tmp_path):
    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "REWARDSMITH_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        LLMGenerator(out_dir=tmp_path)
    monkeypatch.setenv("REWARDSMITH_API_KEY", "k")
    assert LLMGenerator(out_dir=tmp_path, provider="anthropic").model


def test_unknown_provider_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="openai, anthropic"):
        LLMGenerator(out_dir=tmp_path, provider="cohere", api_key="k")


def test_temperature_is_sent_only_when_set(chat_server, tmp_path):
    chat_server.script = [chat_server.Reply(GOOD)]
    make(chat_server, tmp_path).propose(1, 2, CONTEXT)
    gen = make(chat_server, tmp_path, provider="anthropic")
    gen.temperature = 0.7
    gen.propose(1, 2, CONTEXT)
    assert "temperature" not in chat_server.requests[0]["body"]
    assert chat_server.requests[1]["body"]["temperature"] == 0.7
