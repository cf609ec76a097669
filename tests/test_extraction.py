"""Answer extraction and comparison: a table of edge cases for both modes."""

import pytest

from rewardsmith.extraction import Tags, answers_match, extract_answer, normalize

WELL = "<thinking>\n2+2\n</thinking>\n<solution>\n{}\n</solution>"

PAPER_CASES = [
    # (response, expected extraction, why)
    (WELL.format("4"), "\n4\n", "strict capture keeps the raw span; normalize strips it"),
    ("<thinking>x</thinking><solution>1,234</solution>", "1,234", "commas kept until normalised"),
    ("<thinking>x</thinking><solution>-7</solution>", "-7", "strict capture keeps a minus sign"),
    ("<solution>-7</solution>", "7", "fallback (no thinking) drops the sign, as the paper did"),
    ("<solution>about 3.5 apples", "3.5", "fallback: first number run after an open tag"),
    ("<thinking>x</thinking><solution>5</solution> trailing", "5", "text after: fallback run"),
    ("The answer is 42", None, "no solution tag: nothing extracted"),
    ("", None, "empty response"),
    ("<thinking>x</thinking><solution></solution>", None, "empty solution, no digits after it"),
    (
        "<thinking>a</thinking><solution>1</solution><solution>2</solution>",
        "1</solution><solution>2",
        "several solutions: the strict lazy capture spans both, as the paper's regex does",
    ),
    ("<thinking>x</thinking>\n<solution>\n12.50\n</solution>\n\n", "\n12.50\n", "decimals"),
    ("<thinking>x</thinking><solution> </solution>", None, "white space only: not extracted"),
    ("<thinking>x</thinking><solution>,</solution>", None, "a comma only: not extracted"),
    ("<thinking>x</thinking><solution> , </solution>", None, "comma and spaces: not extracted"),
    ("<solution>,,, then</solution>", None, "fallback run of commas only: not extracted"),
]


@pytest.mark.parametrize(("response", "expected", "why"), PAPER_CASES)
def test_paper_extraction(response: str, expected: str | None, why: str) -> None:
    assert extract_answer(response, "paper") == expected, why


FLEX_CASES = [
    (WELL.format("4"), "4", "plain"),
    ("<solution>-7</solution>", "-7", "keeps the sign"),
    ("<solution>$1,234.50 dollars</solution>", "1,234.50", "currency and units ignored"),
    ("<solution>1</solution> then <solution>2</solution>", "2", "several solutions: the last"),
    ("<solution>x = 3, so 5 apples", "5", "unclosed tag: last number in the tail"),
    ("so the result is \\boxed{17}", "17", "boxed"),
    ("work...\n#### 9", "9", "GSM8K marker"),
    ("The answer is 3/4.", "3/4", "fraction after an answer phrase"),
    ("no answer here", None, "nothing extracted"),
    ("", None, "empty"),
    ("<solution>seven</solution>", "seven", "a span without digits is kept as text"),
]


@pytest.mark.parametrize(("response", "expected", "why"), FLEX_CASES)
def test_flexible_extraction(response: str, expected: str | None, why: str) -> None:
    assert extract_answer(response, "flexible") == expected, why


MATCH_CASES = [
    ("\n4\n", "4", "paper", True, "white space stripped"),
    ("1,200", "1200", "paper", True, "commas dropped"),
    ("12.0", "12", "paper", True, "floats within 1e-6"),
    ("12.00001", "12", "paper", False, "outside 1e-6"),
    ("-3", "3", "paper", False, "sign matters"),
    ("3/4", "0.75", "paper", False, "the paper's rule does not read fractions"),
    ("3/4", "0.75", "flexible", True, "the flexible rule does"),
    ("abc", "12", "paper", False, "unparsable"),
    (None, "12", "paper", False, "nothing extracted is never correct"),
]


@pytest.mark.parametrize(("pred", "gold", "mode", "expected", "why"), MATCH_CASES)
def test_answers_match(pred, gold, mode, expected, why) -> None:
    assert answers_match(pred, gold, mode) is expected, why


def test_custom_tags() -> None:
    tags = Tags("<reasoning>", "</reasoning>", "<answer>", "</answer>")
    text = "<reasoning>r</reasoning><answer>8</answer>"
    assert extract_answer(text, "paper", tags) == "8"
    assert extract_answer(text, "paper") is None


def test_normalize() -> None:
    assert normalize("  1,000 \n") == "1000"


def test_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown extraction mode"):
        extract_answer("x", "fuzzy")  # type: ignore[arg-type]
