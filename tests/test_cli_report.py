"""``rewardsmith report`` and ``rewardsmith export`` as a user runs them, on a real run store
(no training), including one-line errors and the exported module imported without rewardsmith."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rewardsmith.config import parse_config
from rewardsmith.store import RunStore
from tests.conftest import run_cli
from tests.report.test_from_store import CONFIG, build_store

BASE = ["match_format_exactly", "match_format_approximately", "check_answer"]

# Runs the exported module in a fresh interpreter where importing rewardsmith fails outright.
FRESH_SCRIPT = """
import importlib, json, sys

class NoRewardsmith:
    def find_spec(self, name, path=None, target=None):
        if name == "rewardsmith" or name.startswith("rewardsmith."):
            raise ImportError("rewardsmith is not available here")
        return None

sys.meta_path.insert(0, NoRewardsmith())
module = importlib.import_module(sys.argv[1])
completions = [[{"role": "assistant", "content": "<thinking>2+2</thinking><solution>4</solution>"}],
               [{"role": "assistant", "content": "no idea"}]]
values = {f.__name__: f(prompts=[[], []], completions=completions, answer=["4", "4"])
          for f in module.REWARD_FUNCS}
print(json.dumps({"values": values, "weights": module.REWARD_WEIGHTS,
                  "rewardsmith": any(m.startswith("rewardsmith") for m in sys.modules)}))
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("cli") / "run-1"
    build_store(run_dir)
    return run_dir


def _one_line_error(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], lines


def _run_exported(path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=str(path.parent), PYTHONNOUSERSITE="1")
    proc = subprocess.run(
        [sys.executable, "-c", FRESH_SCRIPT, path.stem],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=path.parent,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_report_writes_into_the_run_directory(run_dir: Path) -> None:
    result = run_cli("report", str(run_dir))
    assert result.returncode == 0, result.stderr
    printed = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    assert set(printed) == {"html", "markdown", "json"}
    for path in printed.values():
        assert Path(path).parent == run_dir / "report" and Path(path).stat().st_size > 0
    html = (run_dir / "report" / "report.html").read_text(encoding="utf-8")
    assert "good_reward" in html and "late_reward failed on 40% of calls" in html


def test_report_out_option(run_dir: Path, tmp_path: Path) -> None:
    result = run_cli("report", str(run_dir), "--out", str(tmp_path / "elsewhere"))
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "elsewhere" / "report.json").read_text(encoding="utf-8"))
    assert data["data"]["run_id"] == "run-1" and len(data["data"]["trials"]) == 9


def test_report_on_missing_or_corrupt_store_is_one_line(tmp_path: Path) -> None:
    _one_line_error(run_cli("report", str(tmp_path / "nope")), "no run store at")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "store.db").write_bytes(b"this is not a database" * 100)
    _one_line_error(run_cli("report", str(tmp_path / "bad")), "unreadable")


def test_export_top_k_runs_without_rewardsmith(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "mod" / "rewards.py"
    result = run_cli("export", str(run_dir), "--top", "2", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "from rewards import REWARD_FUNCS" in result.stdout
    assert "GRPOTrainer(reward_funcs=REWARD_FUNCS" in result.stdout
    assert result.stdout.index("good_reward") < result.stdout.index("manual_reward")
    source = out.read_text(encoding="utf-8")
    header = source[: source.index('"""', 3)]
    for text in ("run id:       run-1", "selection_split: val", "generator offline", "WARNING"):
        assert text in header
    assert "val: f1=" in header and "hack_reward" not in source  # ranked third: not exported
    got = _run_exported(out)
    assert got["rewardsmith"] is False
    assert list(got["values"]) == [*BASE, "good_reward", "manual_reward"]
    assert got["values"]["check_answer"] == [3.0, 0.0]
    assert got["values"]["good_reward"] == [0.5, 0.5]
    assert got["weights"] == [1.0, 1.0, 2.0, 1.0, 0.5]  # config and trial weights


def test_export_fewer_than_k_warns_and_no_base(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "only_candidates.py"
    result = run_cli("export", str(run_dir), "--top", "10", "-o", str(out), "--no-base")
    assert result.returncode == 0, result.stderr
    assert "only 3 screened candidate(s)" in result.stderr and "exporting 3" in result.stderr
    got = _run_exported(out)
    assert list(got["values"]) == ["good_reward", "manual_reward", "hack_reward"]


def test_export_errors(tmp_path: Path) -> None:
    with RunStore.create(tmp_path / "empty", parse_config(CONFIG)):
        pass
    out = tmp_path / "r.py"
    _one_line_error(run_cli("export", str(tmp_path / "empty"), "--top", "1", "-o", str(out)),
                    "nothing to export")  # fmt: skip
    assert not out.exists()
    _one_line_error(run_cli("export", str(tmp_path / "nope"), "--top", "1", "-o", str(out)),
                    "no run store at")  # fmt: skip
    usage = run_cli("export", str(tmp_path / "empty"), "--top", "0", "-o", str(out))
    assert usage.returncode == 2 and "--top" in usage.stderr
