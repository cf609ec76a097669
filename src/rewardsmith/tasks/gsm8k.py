"""GSM8K: from a folder in the openai/grade-school-math layout or from the hub dataset.

The folder holds ``train.jsonl`` and ``test.jsonl``; each line is ``{"question", "answer"}`` with
the gold answer after ``####``. Without a folder the hub dataset ``openai/gsm8k`` (config ``main``)
is loaded with `datasets` (needs network or a warm HF cache).

Validation is a fixed, seeded slice of train (default 500 questions) removed from the training
split, so GRPO never sees a validation question; test is left untouched.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rewardsmith.errors import DataError
from rewardsmith.tasks.base import PromptFormat, Task

log = logging.getLogger(__name__)

HUB_DATASET = "openai/gsm8k"


def parse_gold(answer_field: str, *, where: str) -> tuple[str, str]:
    """Split a GSM8K answer field into (worked solution, gold answer after ``####``).

    >>> parse_gold("3 + 4 = <<3+4=7>>7\\n#### 7", where="x")
    ('3 + 4 = <<3+4=7>>7', '7')
    """
    if "####" not in answer_field:
        raise DataError(f"{where}: answer has no '####' gold marker")
    solution, gold = answer_field.rsplit("####", 1)
    gold = gold.strip().replace(",", "")
    if not gold:
        raise DataError(f"{where}: empty gold answer after '####'")
    return solution.strip(), gold


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) from a JSONL file; a malformed line raises :class:`DataError`
    naming the file and line. Blank lines are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{lineno}: malformed JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
        yield lineno, row


def _to_examples(rows: Iterable[tuple[int, dict[str, Any]]], source: str) -> list[dict[str, Any]]:
    examples = []
    for lineno, row in rows:
        where = f"{source}:{lineno}"
        if "question" not in row or "answer" not in row:
            raise DataError(f"{where}: missing 'question' or 'answer' field")
        solution, gold = parse_gold(str(row["answer"]), where=where)
        examples.append({"question": str(row["question"]), "answer": gold, "solution": solution})
    return examples


def _load_rows(path: str | Path | None) -> tuple[dict[str, list[dict[str, Any]]], str]:
    if path is not None:
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise DataError(f"GSM8K folder not found: {folder}")
        splits = {}
        for split in ("train", "test"):
            file = folder / f"{split}.jsonl"
            if not file.is_file():
                raise DataError(f"GSM8K folder {folder} has no {split}.jsonl")
            splits[split] = _to_examples(iter_jsonl(file), str(file))
        return splits, str(folder)
    try:
        from datasets import load_dataset

        ds = load_dataset(HUB_DATASET, "main")
    except Exception as exc:  # noqa: BLE001 - datasets raises many kinds of network/cache errors
        raise DataError(
            f"cannot load {HUB_DATASET} from the hub ({type(exc).__name__}); "
            "point task.data_dir (or --data-dir) at a folder with train.jsonl/test.jsonl"
        ) from exc
    splits = {
        s: _to_examples(enumerate(map(dict, ds[s]), start=1), f"{HUB_DATASET}[{s}]")
        for s in ("train", "test")
    }
    return splits, HUB_DATASET


def load_gsm8k(
    path: str | Path | None = None,
    *,
    val_size: int = 500,
    seed: int = 3407,
    train_limit: int | None = None,
    test_limit: int | None = None,
    prompt: PromptFormat | None = None,
) -> Task:
    """Load GSM8K with a seeded validation slice carved out of train.

    ``train_limit``/``test_limit`` cap the splits (after carving validation) for quick runs.
    """
    splits, source = _load_rows(path)
    train = splits["train"]
    if val_size < 0 or val_size >= len(train):
        raise DataError(f"val_size must be in [0, {len(train)}), got {val_size}")
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    val_idx = set(order[:val_size])
    val = [train[i] for i in order[:val_size]]
    rest = [row for i, row in enumerate(train) if i not in val_idx]
    test = splits["test"]
    if train_limit is not None:
        rest = rest[:train_limit]
    if test_limit is not None:
        test = test[:test_limit]
    log.info("gsm8k from %s: %d train, %d val, %d test", source, len(rest), len(val), len(test))
    return Task("gsm8k", rest, val, test, prompt or PromptFormat(), source=source)
