"""``rewardsmith validate``: exit codes 0/1/2, one JSON object with ``--json``."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rewardsmith.cli import _register_commands, app

GOOD = """
import re
def units_reward(prompts, completions, answer, **kwargs):
    return [1.0 if re.search(r"<solution>\\s*\\d", c[0]["content"]) else 0.0 for c in completions]
"""
BAD = "import os\ndef r(completions, **kwargs):\n    return [0.0] * len(completions)\n"


@pytest.fixture(scope="module")
def runner():
    if not any(c.name == "validate" for c in app.registered_commands):
        _register_commands()
    return CliRunner()


def _run(runner, *args):
    return runner.invoke(app, ["validate", *map(str, args)])


def test_accepted_exits_0_with_one_json_object(runner, tmp_path):
    path = tmp_path / "good.py"
    path.write_text(GOOD)
    result = _run(runner, path, "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) == {"accepted", "name", "stage", "reason", "flags", "layers"}
    assert payload["layers"][0] == "language" and "rlimits" in payload["layers"]
    assert payload["accepted"] is True and payload["name"] == "units_reward"
    assert payload["flags"] == ["conversational_only"]


def test_rejected_exits_1(runner, tmp_path):
    path = tmp_path / "bad.py"
    path.write_text(BAD)
    result = _run(runner, path, "--json")
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert (payload["accepted"], payload["stage"]) == (False, "restrict")
    human = _run(runner, path)
    assert human.exit_code == 1 and "rejected" in human.stdout and "restrict" in human.stdout


def test_name_option_shadowing_a_base_reward_is_rejected(runner, tmp_path):
    path = tmp_path / "good.py"
    path.write_text(GOOD)
    result = _run(runner, path, "--json", "--name", "check_answer")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["stage"] == "name"


@pytest.mark.parametrize("target", ["missing.py", "."])
def test_unreadable_file_is_a_usage_error(runner, tmp_path, target):
    result = _run(runner, tmp_path / target, "--json")
    assert result.exit_code == 2
    assert result.stdout == ""


def test_unknown_option_is_a_usage_error(runner, tmp_path):
    assert _run(runner, tmp_path / "x.py", "--bogus").exit_code == 2
