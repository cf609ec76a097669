"""Table tests for the lenient JSON reader: each repair, each truncation, each refusal to guess."""

from __future__ import annotations

import doctest
import time

import pytest

from rewardsmith.generators import _json_repair, _reply_json, llm, parsing
from rewardsmith.generators._json_repair import (
    CutDict,
    CutList,
    ReadError,
    VerbatimStr,
    read_value,
    scan,
)

READS = [
    # (text, value, repairs, why)
    ('[{"a": 1}]', [{"a": 1}], (), "strict JSON"),
    ("[1, 2,]", [1, 2], ("trailing comma",), "trailing comma in an array"),
    ('{"a": 1,\n}', {"a": 1}, ("trailing comma",), "trailing comma in an object"),
    ("{'a': 'b'}", {"a": "b"}, ("single quotes",), "Python-style quotes"),
    ('{"a": "it\'s"}', {"a": "it's"}, (), "an apostrophe inside a double-quoted string"),
    ("{'a': \"it's\"}", {"a": "it's"}, ("single quotes",), "mixed quotes"),
    ("{'a': 'it\\'s'}", {"a": "it's"}, ("single quotes",), "escaped quote in single quotes"),
    ('{"a": """x\ny"""}', {"a": "x\ny"}, ("triple quotes",), "triple-quoted string"),
    ("[True, False, None]", [True, False, None], ("Python literal",), "Python literals"),
    ("[true, false, null]", [True, False, None], (), "JSON literals"),
    ("{a: 1}", {"a": 1}, ("unquoted key",), "a bare identifier key"),
    ('[{"a": 1} {"b": 2}]', [{"a": 1}, {"b": 2}], ("missing comma",), "objects without a comma"),
    ('["a\nb"]', ["a\nb"], ("control characters in a string",), "literal newline in a string"),
    ('["\\d+"]', ["\\d+"], ("unknown escape kept",), "regex escape kept as written"),
    ('["\\ud83d\\ude00 \\u00e9"]', ["\U0001f600 \u00e9"], (), "unicode escapes, surrogate pair"),
    ("[-1.5e3, 0, 7]", [-1500.0, 0, 7], (), "numbers"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "value", "repairs", "why"), READS, ids=[r[3] for r in READS])
def test_reads(text, value, repairs, why):
    read = read_value(text, 0)
    assert (read.value, read.cut, read.repairs, read.end) == (value, False, repairs, len(text)), why


CUTS = [
    # (text, value read so far, innermost place, why)
    ('[{"a": 1}, {"b": "xy', [{"a": 1}, {}], "mid-string (in 'b')", "inside a string value"),
    ('[{"a": 1},', [{"a": 1}], "between items", "after a comma"),
    ('[{"a": 1}, {"b": 2', [{"a": 1}, {}], "mid-value (in 'b')", "a number that may go on"),
    ('[{"a": 1}, {"b": 2,', [{"a": 1}, {"b": 2}], "mid-object", "inside an object"),
    ('[{"a": 1}, {"b', [{"a": 1}, {}], "mid-object", "inside a key"),
    ('{"rewards": [{"a": 1}, {"c": tr', {"rewards": [{"a": 1}, {}]}, "mid-value (in 'c')",
     "a literal cut short, in a wrapper"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "value", "where", "why"), CUTS, ids=[c[3] for c in CUTS])
def test_cut_values_keep_what_closed(text, value, where, why):
    read = read_value(text, 0)
    assert read.cut and read.end == len(text), why
    assert read.value == value, why
    items = read.value["rewards"] if isinstance(read.value, dict) else read.value
    assert isinstance(items, CutList) and items.where == where, why
    assert type(items[0]) is dict, "a closed object is a plain dict"
    if isinstance(items[-1], dict) and len(items) > 1:
        assert isinstance(items[-1], CutDict) and items[-1].where == where, why


FAILURES = [
    ("{'a': 'it's'}", "an apostrophe in a single-quoted string is not guessed at"),
    ("[1 2]", "a missing comma between numbers"),
    ("{see above}", "prose in braces"),
    ("[e.g. 0.2]", "prose in brackets"),
    ("[" * 1000 + "]" * 1000, "nesting beyond MAX_DEPTH (no RecursionError)"),
    ('{"a" 1}', "a missing colon"),
]


@pytest.mark.parametrize(("text", "why"), FAILURES, ids=[f[1] for f in FAILURES])
def test_malformed_text_fails_to_read(text, why):
    with pytest.raises(ReadError):
        read_value(text, 0)


def test_scan_skips_the_inside_of_values_read_in_full():
    reads = scan('See [1]. {"x": [{"y": 2}]} and [{"z": 3}')
    assert [(r.start, r.value, r.cut) for r in reads] == [
        (4, [1], False),
        (9, {"x": [{"y": 2}]}, False),
        (31, [{"z": 3}], True),
        (32, {"z": 3}, False),  # inside a cut value: its closed parts are read on their own
    ]


def test_scan_gives_up_after_max_starts():
    assert len(scan("[1] " * 500, max_starts=10)) == 10


def test_a_large_reply_is_read_quickly():
    item = '{"name": "n", "code": "' + "x = [1, {2: 3}]\\n" * 200 + '", "description": "d"}'
    text = "Intro {not json} [" + ", ".join([item] * 100)  # ~400 kB, cut at the end
    started = time.perf_counter()
    reads = scan(text)
    assert time.perf_counter() - started < 5.0
    assert len(reads[0].value) == 100 and reads[0].cut


def test_verbatim_reading_of_strings_with_literal_line_breaks():
    read = read_value('["a\n\\\\ b \\n c"]', 0)
    [value] = read.value
    assert isinstance(value, VerbatimStr)
    assert value == "a\n\\ b \n c" and value.verbatim == "a\n\\ b \\n c"


@pytest.mark.parametrize(
    "module", [_json_repair, _reply_json, parsing, llm], ids=lambda m: m.__name__
)
def test_doctests(module):
    assert doctest.testmod(module).failed == 0
