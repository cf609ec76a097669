"""The eval/score/bootstrap commands as a user runs them, including one-line errors."""

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

OK = "<thinking>t</thinking><solution>{}</solution>"


def _write(path: Path, rows: list) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_score_json(tmp_path: Path) -> None:
    f = _write(
        tmp_path / "out.jsonl",
        [
            {"response": OK.format("4"), "answer": "4"},
            {"response": OK.format("5"), "answer": "4"},
            {"response": "four", "answer": "#### 4"},
        ],
    )
    res = run_cli("score", str(f), "--json")
    assert res.returncode == 0, res.stderr
    m = json.loads(res.stdout)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 1, 1)
    assert m["accuracy"] == pytest.approx(1 / 3)
    assert m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(0.5)
    assert m["extraction_rate"] == pytest.approx(2 / 3)
    assert {"f1", "ci", "errors"} <= set(m)


def test_score_table_and_flexible(tmp_path: Path) -> None:
    f = _write(tmp_path / "out.jsonl", [{"response": "<solution>-3</solution>", "answer": "-3"}])
    paper = json.loads(run_cli("score", str(f), "--json").stdout)
    flexible = json.loads(run_cli("score", str(f), "--json", "--extraction", "flexible").stdout)
    assert paper["accuracy"] == 0.0 and flexible["accuracy"] == 1.0
    table = run_cli("score", str(f))
    assert table.returncode == 0 and "accuracy" in table.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"response": "x", "answer": "1"}\n{oops\n', "out.jsonl:2: malformed JSON"),
        ('{"response": "x"}\n', "out.jsonl:1: record lacks"),
        ("\n", "no records"),
        ("[1, 2]\n", "expected a JSON object"),
    ],
)
def test_score_bad_input_one_line(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "out.jsonl"
    f.write_text(content)
    res = run_cli("score", str(f))
    assert res.returncode == 1
    assert message in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_bad_extraction_mode_is_usage_error(tmp_path: Path) -> None:
    f = _write(tmp_path / "o.jsonl", [{"response": "x", "answer": "1"}])
    res = run_cli("score", str(f), "--extraction", "fuzzy")
    assert res.returncode == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "/no/such/dir"], "model path not found"),
        (["--model", "x.gguf"], "GGUF file not found"),
        (["--model", "embedded:tiny", "--task", "nope"], "unknown task"),
        (["--model", "embedded:tiny", "--task", "gsm8k", "--data-dir", "/no/such"], "not found"),
    ],
)
def test_eval_bad_input_one_line(args: list[str], message: str) -> None:
    res = run_cli("eval", *args)
    assert res.returncode == 1, res.stdout
    assert message in res.stderr and "Traceback" not in res.stderr


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.parametrize("option", ["--dtype", "--backend"])
def test_eval_unknown_dtype_or_backend_is_a_usage_error(option: str) -> None:
    res = run_cli("eval", "--model", "embedded:tiny", option, "fp8")
    assert res.returncode == 2 and "choose one of" in res.stderr


@pytest.mark.skipif(_has_cuda(), reason="vLLM may run on this host")
def test_eval_with_vllm_without_cuda_says_why() -> None:
    res = run_cli("eval", "--model", "embedded:tiny", "--backend", "vllm")
    assert res.returncode == 1, res.stdout
    assert "--backend: vllm cannot run here: no CUDA device" in res.stderr
    assert "Traceback" not in res.stderr


def test_eval_embedded_tiny(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "records.jsonl"
    res = run_cli(
        "eval",
        "--model",
        "embedded:tiny",
        "--split",
        "val",
        "--limit",
        "4",
        "--max-new-tokens",
        "24",
        "--out",
        str(out),
        "--dtype",
        "float32",
        "--backend",
        "auto",
        "--json",
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1])["n"] == 4
    if not _has_cuda():  # auto says which backend it took, and why
        assert "--backend: hf (no CUDA device" in res.stdout
    assert len(out.read_text().splitlines()) == 4


def test_eval_gsm8k_folder(tiny_model_dir: Path, gsm8k_dir: Path) -> None:
    res = run_cli(
        "eval",
        "--model",
        "embedded:tiny",
        "--task",
        "gsm8k",
        "--data-dir",
        str(gsm8k_dir),
        "--split",
        "test",
        "--limit",
        "2",
        "--max-new-tokens",
        "8",
        "--json",
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1])["n"] == 2


def test_help_lists_commands() -> None:
    res = run_cli("--help")
    assert res.returncode == 0
    for command in ("demo", "bootstrap-model", "eval", "score", "validate", "generate"):
        assert command in res.stdout


def test_bootstrap_model_shows_progress_in_a_pipe(tmp_path: Path, monkeypatch) -> None:
    """Piped (CI log, `| tee`), a model build prints plain progress lines: it never looks hung."""
    monkeypatch.setenv("REWARDSMITH_CACHE", str(tmp_path / "cache"))
    res = run_cli("bootstrap-model", "--preset", "tiny", "--eval-limit", "4")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert any(line.startswith("training the embedded model (tiny) with SFT...") for line in lines)
    steps = [line for line in lines if "with SFT: step " in line]
    assert steps, res.stdout
    done, total = steps[-1].rsplit("step ", 1)[1].split("/")
    assert done == total  # the last step is always reported


def test_pipe_ticker_prints_news_only() -> None:
    """In a pipe: the first step, then at most one line per interval, the last step once."""
    import io

    from rich.console import Console

    from rewardsmith.cli._render import PipeTicker

    out = io.StringIO()
    ticker = PipeTicker(Console(file=out), every_s=3600)
    for step in (1, 2, 3, 4, 4, 4):
        ticker("trial", "trial #1", step, 4)
    assert out.getvalue().splitlines() == ["trial #1: step 1/4", "trial #1: step 4/4"]
