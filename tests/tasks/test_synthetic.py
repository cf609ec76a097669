"""The synthetic task: determinism, disjoint splits, worked solutions that check out."""

import re

import pytest

from rewardsmith.errors import ConfigError
from rewardsmith.tasks import get_task, make_synthetic_task


def test_deterministic_for_a_seed() -> None:
    a = make_synthetic_task(n_train=50, n_val=10, n_test=10, seed=7)
    b = make_synthetic_task(n_train=50, n_val=10, n_test=10, seed=7)
    c = make_synthetic_task(n_train=50, n_val=10, n_test=10, seed=8)
    assert a.train == b.train and a.val == b.val and a.test == b.test
    assert a.train != c.train


def test_splits_are_disjoint_and_sized() -> None:
    t = get_task("synthetic")
    assert (len(t.train), len(t.val), len(t.test)) == (4000, 200, 300)
    assert t.overlap("train", "val") == t.overlap("train", "test") == t.overlap("val", "test") == 0


def test_worked_solution_computes_the_answer() -> None:
    t = make_synthetic_task(n_train=300, n_val=0, n_test=0, max_steps=4, seed=3)
    for ex in t.train:
        for lhs, rhs in re.findall(r"^([\d +\-*/]+) = (\d+)$", ex["solution"], flags=re.M):
            assert eval(lhs.replace("/", "//")) == int(rhs), ex  # noqa: S307 - our own arithmetic
        assert int(ex["answer"]) >= 0
        assert ex["solution"].endswith(f"has {ex['answer']} {ex['question'].split()[3]}")


def test_difficulty_knobs() -> None:
    easy = make_synthetic_task(n_train=100, n_val=0, n_test=0, min_steps=1, max_steps=1)
    hard = make_synthetic_task(n_train=100, n_val=0, n_test=0, min_steps=4, max_steps=4)
    assert all(ex["question"].count("Then") == 1 for ex in easy.train)
    assert all(ex["question"].count("Then") == 4 for ex in hard.train)


@pytest.mark.parametrize(
    "knobs",
    [
        {"min_steps": 0},
        {"min_steps": 3, "max_steps": 2},
        {"max_number": 1},
        {"n_train": -1},
        {"colour": "red"},
    ],
)
def test_bad_knobs(knobs: dict) -> None:
    with pytest.raises(ConfigError):
        make_synthetic_task(**knobs)


def test_prompt_format_defaults_and_custom_tags() -> None:
    from rewardsmith.extraction import Tags

    t = get_task("synthetic", n_train=1, n_val=1, n_test=1)
    system = t.prompt.messages("q")[0]["content"]
    assert "<thinking>" in system and "<solution>" in system
    tags = Tags("<r>", "</r>", "<a>", "</a>")
    t2 = get_task(
        "synthetic", n_train=1, n_val=1, n_test=1, tags=tags, system_prompt="Use {solution_start}."
    )
    assert t2.prompt.messages("q")[0]["content"] == "Use <a>."
    assert t2.prompt.response("r", "5").endswith("<a>\n5\n</a>")


def test_unknown_task() -> None:
    with pytest.raises(ConfigError, match="unknown task"):
        get_task("mathqa")
