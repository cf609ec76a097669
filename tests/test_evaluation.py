"""Evaluation of the embedded model: batched == one-at-a-time, records, JSONL round trip."""

import json
from pathlib import Path

import pytest

from rewardsmith.evaluation import evaluate, generate
from rewardsmith.models import load_model
from rewardsmith.tasks import get_task


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path):
    return load_model("embedded:tiny")


def test_batched_matches_one_at_a_time(tiny) -> None:
    task = get_task("synthetic", n_train=10, n_val=6, n_test=1)
    convs = [task.prompt.messages(ex["question"]) for ex in task.val]
    batched = generate(tiny.model, tiny.tokenizer, convs, batch_size=6, max_new_tokens=24)
    single = generate(tiny.model, tiny.tokenizer, convs, batch_size=1, max_new_tokens=24)
    assert batched == single


def test_evaluate_records(tiny, tmp_path: Path) -> None:
    task = get_task("synthetic", n_train=10, n_val=8, n_test=1)
    seen = []
    result = evaluate(
        tiny.model,
        tiny.tokenizer,
        task.val,
        task.prompt,
        batch_size=4,
        max_new_tokens=32,
        progress=seen.append,
    )
    assert sum(seen) == 8
    m = result.metrics
    assert m.n == 8 and m.tp + m.fp + m.fn == 8
    assert set(m.ci) == {"f1", "accuracy"}
    assert len(result.correct) == 8
    path = result.save_records(tmp_path / "r.jsonl")
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert [r["question"] for r in rows] == [ex["question"] for ex in task.val]
    assert {"question", "gold", "response", "extracted", "correct"} <= set(rows[0])


def test_evaluate_empty_split_is_an_error(tiny) -> None:
    from rewardsmith.errors import DataError

    task = get_task("synthetic", n_train=1, n_val=1, n_test=1)
    with pytest.raises(DataError):
        evaluate(tiny.model, tiny.tokenizer, [], task.prompt)
