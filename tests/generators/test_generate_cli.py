"""``rewardsmith generate``: candidates and verdicts on disk, offline and against a local LLM."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from rewardsmith.cli import generate_cmds
from rewardsmith.errors import DataError, RewardsmithError

pytest.importorskip("rewardsmith.rewards.validation")

EXAMPLES = [
    {"question": f"What is {i} + 1?", "answer": f"{i} + 1 = {i + 1}\n#### {i + 1}"}
    for i in range(30)
]


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    generate_cmds.register(app)
    app.command("noop", hidden=True)(lambda: None)  # keep "generate" a named subcommand
    return app


@pytest.fixture
def examples_file(tmp_path):
    path = tmp_path / "examples.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in EXAMPLES) + "\n")
    return path


def invoke(app, *args: str):
    return CliRunner().invoke(app, ["generate", *args])


def test_offline_round_writes_candidates_and_verdicts(app, tmp_path, examples_file):
    out = tmp_path / "round1"
    result = invoke(
        app,
        "--generator",
        "offline",
        "--round-size",
        "4",
        "--out",
        str(out),
        "--examples",
        str(examples_file),
        "--seed",
        "1",
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "candidates.json").read_text())
    assert (report["round"], report["generator"], report["seed"]) == (1, "offline", 1)
    assert len(report["candidates"]) == 4 and report["rejections"] == []
    for record in report["candidates"]:
        assert (out / record["file"]).read_text() == record["code"]
        assert record["verdict"]["accepted"] is True
        assert record["verdict"]["name"] == record["name"]
        assert set(record) >= {"name", "code", "description", "round", "generator", "code_hash"}
    assert "4/4 accepted" in result.output


def test_round_two_from_the_previous_candidates_json(app, tmp_path, examples_file):
    first, second = tmp_path / "r1", tmp_path / "r2"
    assert (
        invoke(
            app, "-g", "offline", "-n", "3", "-o", str(first), "--examples", str(examples_file)
        ).exit_code
        == 0
    )
    result = invoke(
        app,
        "-g",
        "offline",
        "-n",
        "4",
        "-o",
        str(second),
        "--round",
        "2",
        "--summary",
        str(first / "candidates.json"),
        "--examples",
        str(examples_file),
    )
    assert result.exit_code == 0, result.output
    round1 = {c["name"] for c in json.loads((first / "candidates.json").read_text())["candidates"]}
    round2 = json.loads((second / "candidates.json").read_text())["candidates"]
    assert all(c["round"] == 2 and c["name"].startswith("r2_") for c in round2)
    assert any(c["parent"] in round1 for c in round2)


def test_synthetic_task_is_the_default_source_of_examples(app, tmp_path):
    result = invoke(app, "-g", "offline", "-n", "2", "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert len(json.loads((tmp_path / "out" / "candidates.json").read_text())["candidates"]) == 2


def test_llm_round_keeps_rejections_and_transcripts(app, tmp_path, examples_file, chat_server):
    good = "def fine_reward(prompts, completions, answer, **kwargs):\n    return [1.0 if 'solution' in str(c) else 0.0 for c in completions]\n"  # noqa: E501
    evil = "import os\ndef evil_reward(prompts, completions, answer, **kwargs):\n    return [float(len(os.listdir('/')))] * len(completions)\n"  # noqa: E501
    reply = json.dumps(
        [
            {"name": "fine_reward", "code": good, "description": "mentions a solution"},
            {"name": "evil_reward", "code": evil, "description": "reads the disk"},
            {"name": "check_answer", "code": good.replace("fine_reward", "check_answer")},
            {"name": "no_code_reward"},
        ]
    )
    chat_server.script = [chat_server.Reply(f"Here:\n```json\n{reply}\n```")]
    out = tmp_path / "llm"
    result = invoke(
        app,
        "-g",
        "llm",
        "-n",
        "4",
        "-o",
        str(out),
        "--examples",
        str(examples_file),
        "--base-url",
        chat_server.url + "/v1",
        "--model",
        "local",
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "candidates.json").read_text())
    verdicts = {c["name"]: c["verdict"] for c in report["candidates"]}
    assert verdicts["fine_reward"]["accepted"] is True
    assert (verdicts["evil_reward"]["accepted"], verdicts["evil_reward"]["stage"]) == (
        False,
        "restrict",
    )
    assert verdicts["check_answer"]["stage"] == "name"
    [rejection] = report["rejections"]
    assert rejection["stage"] == "parse" and "no 'code'" in rejection["reason"]
    assert (out / "evil_reward.py").is_file()  # rejected candidates are kept, with reasons
    assert (out / "transcripts" / "round_01" / "attempt_1.response.txt").is_file()
    assert chat_server.requests[0]["body"]["model"] == "local"


def test_nothing_accepted_is_an_error_exit(app, tmp_path, examples_file, chat_server):
    chat_server.script = [chat_server.Reply(status=500)]
    result = invoke(
        app,
        "-g",
        "llm",
        "-n",
        "2",
        "-o",
        str(tmp_path / "x"),
        "--examples",
        str(examples_file),
        "--base-url",
        chat_server.url + "/v1",
        "--max-attempts",
        "2",
    )
    assert result.exit_code != 0
    assert len(chat_server.requests) == 2
    assert isinstance(result.exception, RewardsmithError)
    report = json.loads((tmp_path / "x" / "candidates.json").read_text())
    assert report["candidates"] == [] and report["rejections"][0]["stage"] == "request"


def test_bad_examples_file_is_a_user_error(app, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "no answer"}\n')
    result = invoke(app, "-g", "offline", "-o", str(tmp_path / "o"), "--examples", str(bad))
    assert isinstance(result.exception, DataError) and "bad.jsonl:1" in str(result.exception)
    missing = invoke(app, "-g", "offline", "-o", str(tmp_path / "o"), "--examples", "nope.jsonl")
    assert isinstance(missing.exception, DataError)


def test_gsm8k_answers_are_reduced_to_the_gold_number(examples_file):
    rows = generate_cmds.load_examples(examples_file)
    assert rows[0] == {"question": "What is 0 + 1?", "answer": "1"}
