"""The GSM8K loader on the real data in ../shared/data/gsm8k, and its bad-input errors."""

import json
from pathlib import Path

import pytest

from rewardsmith.errors import DataError
from rewardsmith.tasks import get_task, load_gsm8k
from rewardsmith.tasks.gsm8k import parse_gold


def test_real_gsm8k(gsm8k_dir: Path) -> None:
    t = get_task("gsm8k", data_dir=str(gsm8k_dir))
    assert (len(t.train), len(t.val), len(t.test)) == (7473 - 500, 500, 1319)
    assert t.overlap("train", "val") == 0
    first = json.loads((gsm8k_dir / "test.jsonl").read_text().splitlines()[0])
    assert t.test[0]["question"] == first["question"]  # test untouched, in order
    assert t.test[0]["answer"] == first["answer"].split("####")[1].strip().replace(",", "")
    assert all("####" not in ex["answer"] for ex in t.train[:100])


def test_validation_slice_is_seeded(gsm8k_dir: Path) -> None:
    a = load_gsm8k(gsm8k_dir, val_size=50, seed=1)
    b = load_gsm8k(gsm8k_dir, val_size=50, seed=1)
    c = load_gsm8k(gsm8k_dir, val_size=50, seed=2)
    assert a.val == b.val and a.val != c.val
    assert a.fingerprint("val") == b.fingerprint("val") != c.fingerprint("val")


def test_gold_parsing() -> None:
    assert parse_gold("a\n#### 1,234", where="x") == ("a", "1234")
    with pytest.raises(DataError, match="no '####'"):
        parse_gold("no marker", where="f:3")


def _folder(
    tmp_path: Path, train: str, test: str = '{"question": "q", "answer": "#### 1"}\n'
) -> Path:
    (tmp_path / "train.jsonl").write_text(train)
    (tmp_path / "test.jsonl").write_text(test)
    return tmp_path


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    folder = _folder(tmp_path, '{"question": "q", "answer": "#### 1"}\n{not json\n')
    with pytest.raises(DataError, match=r"train\.jsonl:2: malformed JSON"):
        load_gsm8k(folder, val_size=0)


def test_missing_gold_marker(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path, '{"question": "q", "answer": "#### 1"}\n{"question": "q2", "answer": "2"}\n'
    )
    with pytest.raises(DataError, match=r"train\.jsonl:2: answer has no '####'"):
        load_gsm8k(folder, val_size=0)


def test_missing_folder_and_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_gsm8k(tmp_path / "nope")
    (tmp_path / "train.jsonl").write_text("")
    with pytest.raises(DataError, match="no test.jsonl"):
        load_gsm8k(tmp_path)


def test_empty_split(tmp_path: Path) -> None:
    folder = _folder(tmp_path, '{"question": "q", "answer": "#### 1"}\n', test="\n")
    task = load_gsm8k(folder, val_size=0)
    with pytest.raises(DataError, match="'test' of task 'gsm8k' is empty"):
        task.split("test")


def test_unknown_option_is_named(gsm8k_dir: Path) -> None:
    from rewardsmith.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown option 'colour'"):
        get_task("gsm8k", data_dir=str(gsm8k_dir), colour=1)
