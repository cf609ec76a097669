"""Recorded reply shapes (``replies/*.txt``, byte for byte): what each yields, and what it loses.

Each row names a fixture, the candidates it must give (in order), a fragment of each rejection
it must record (in order), whether the reply counts as truncated, and the JSON repairs reading it
must report. Every candidate's code must compile (here, on our own fixture text: the parser
itself never parses code) and define the candidate's function. Fixtures named ``smollm2_*`` are
replies of a real model (SmolLM2-135M-Instruct served by llama.cpp); the API reported the
:data:`API_TRUNCATED` ones as cut at the token limit.
"""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import pytest

from rewardsmith.generators.parsing import parse_reply

REPLIES = Path(__file__).parent / "replies"
API_TRUNCATED = {"smollm2_cut_at_token_limit"}  # finish_reason "length"

SHAPES = [
    # (fixture, candidate names, rejection fragments, truncated, repairs)
    ("fence_json_prose", ["solution_integer_reward", "reasoning_steps_reward",
                          "gold_mentioned_reward"], [], False, []),
    ("fence_python", ["last_number_match_reward", "closing_tag_reward"], [], False, []),
    ("fence_unlabelled", ["short_solution_reward"], [], False, []),
    ("prose_stray_brackets", ["units_free_reward", "no_repeat_reward"], [], False, []),
    # drafts inside <think> are never candidates, even when they outnumber the answer
    ("think_with_json_drafts", ["exact_answer_reward", "tag_order_reward"], [], False, []),
    ("think_with_code_drafts", ["sentence_count_reward"], [], False, []),
    ("think_unclosed", [], ["reply ended inside its <think> block"], True, []),
    ("wrapped_rewards", ["answer_line_reward"], [], False, []),
    ("wrapped_candidates_fenced", ["digit_only_reward", "no_question_echo_reward"], [], False, []),
    ("renamed_keys", ["boxed_free_reward", "single_solution_reward",
                      "thinking_nonempty_reward"], [], False, []),
    ("single_quotes_python_literals", ["positive_answer_reward", "gold_equal_reward"], [], False,
     ["Python literal", "single quotes"]),
    ("trailing_commas", ["answer_present_reward", "no_trailing_text_reward"], [], False,
     ["trailing comma"]),
    ("missing_comma", ["left_reward", "right_reward"], [], False, ["missing comma"]),
    # a schema example before the answer: more complete items win; a tie goes to the later one
    ("schema_example_first", ["answer_magnitude_reward", "thinking_first_reward"], [], False, []),
    ("schema_placeholder_then_one", ["integer_solution_reward"], [], False, []),
    ("schema_complete_then_one", ["solution_once_reward"], [], False, []),
    ("truncated_between_items", ["first_tag_reward", "second_tag_reward"],
     ["reply ended after item 2, before the JSON array closed"], True, []),
    ("truncated_mid_string", ["alpha_format_reward", "beta_format_reward"],
     ["item 3 truncated: reply ended mid-string (in 'description')"], True, []),
    ("truncated_mid_code", ["exact_gold_reward"],
     ["item 2 truncated: reply ended mid-string (in 'code')"], True, []),
    ("truncated_mid_object", ["one_reward", "two_reward", "three_reward"],
     ["item 4 truncated: reply ended mid-object"], True, []),
    ("truncated_python_block", ["first_number_reward"],
     ["reply ended inside a Python block: function 'second_number_reward' was cut off"], True,
     []),
    ("empty", [], ["empty reply"], False, []),
    ("refusal", [], ["no JSON array or Python reward found: \"I'm sorry"], False, []),
    ("duplicate_names", ["format_bonus_reward", "other_bonus_reward"],
     ["item 2: name 'format_bonus_reward' appears more than once"], False, []),
    ("crlf_line_endings", ["crlf_tag_reward", "crlf_literal_reward"], [], False,
     ["control characters in a string"]),
    ("literal_newlines", ["literal_lines_reward"], [], False, ["control characters in a string"]),
    ("escaped_newlines", ["escaped_lines_reward"], [], False, []),
    ("double_escaped_code", ["double_escaped_reward"], [], False, []),
    ("invalid_escapes_regex", ["regex_number_reward"], [], False, ["unknown escape kept"]),
    ("unfenced_python_after_prose", ["final_number_reward"], [], False, []),
    # recorded from SmolLM2-135M-Instruct behind llama_cpp.server (scripts/llm_server_check.sh)
    ("smollm2_no_reward", [], ["no JSON array or Python reward found: 'import re def"], False,
     []),
    ("smollm2_broken_python", [],
     ["Python block does not parse (line 19: unexpected indent): solution_is_number_reward lost"],
     False, []),
    ("smollm2_cut_at_token_limit", [],
     ["reply ended inside a Python block: function 'solution_is_number' was cut off"], True, []),
]  # fmt: skip


def read_reply(name: str) -> str:
    return (REPLIES / f"{name}.txt").read_bytes().decode("utf-8")


def test_every_fixture_has_a_row():
    assert sorted(p.stem for p in REPLIES.glob("*.txt")) == sorted(row[0] for row in SHAPES)


@pytest.mark.parametrize(
    ("fixture", "names", "reasons", "truncated", "repairs"), SHAPES, ids=[s[0] for s in SHAPES]
)
def test_reply_shape(fixture, names, reasons, truncated, repairs):
    result = parse_reply(
        read_reply(fixture), round=4, generator="llm/recorded", truncated=fixture in API_TRUNCATED
    )
    assert [c.name for c in result.candidates] == names
    assert [r.reason for r in result.rejections] == [
        next((r.reason for r in result.rejections if fragment in r.reason), fragment)
        for fragment in reasons
    ]
    assert all(r.stage == "parse" and r.round == 4 for r in result.rejections)
    assert result.truncated is truncated
    assert result.repairs == sorted(repairs)
    for candidate in result.candidates:
        assert (candidate.round, candidate.generator) == (4, "llm/recorded")
        assert f"def {candidate.name}(" in candidate.code
        assert "\r" not in candidate.code and "```" not in candidate.code
        assert candidate.code.endswith("\n") and candidate.code.count("\n") >= 2
        compile(candidate.code, candidate.name, "exec")  # our fixture text; nothing is run


def test_crlf_fixture_really_has_crlf_line_endings():
    assert "\r\n" in read_reply("crlf_line_endings")  # guards against a checkout converting it


def test_truncated_items_keep_the_name_they_had():
    result = parse_reply(read_reply("truncated_mid_code"), round=1, generator="g")
    assert [r.name for r in result.rejections] == ["near_gold_reward"]


def test_descriptions_come_from_aliased_keys():
    result = parse_reply(read_reply("renamed_keys"), round=1, generator="g")
    assert [c.description for c in result.candidates] == [
        "No LaTeX boxes: the task wants tags.",
        "Exactly one solution tag.",
        "Some reasoning inside the thinking tag.",
    ]


def test_regex_escapes_survive_as_written():
    [candidate] = parse_reply(
        read_reply("invalid_escapes_regex"), round=1, generator="g"
    ).candidates
    assert r'r"<solution>\s*-?\d+(\.\d+)?\s*</solution>"' in candidate.code


def test_escaped_newline_inside_code_stays_an_escape():
    [candidate] = parse_reply(read_reply("escaped_newlines"), round=1, generator="g").candidates
    assert "text.count('\\n')" in candidate.code  # the code's own "\n", not a line break


def test_replies_are_never_parsed_as_python_in_this_process(monkeypatch):
    """Reply code is split by a sandbox worker; here it is only ever data."""
    seen: list[str] = []

    def spy(real):
        def wrapper(source, *args, **kwargs):
            text = source.decode(errors="replace") if isinstance(source, bytes) else source
            if isinstance(text, str) and "completions" in text:
                seen.append(real.__name__)
            return real(source, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(ast, "parse", spy(ast.parse))
    monkeypatch.setattr(builtins, "compile", spy(builtins.compile))
    names = [
        len(parse_reply(read_reply(row[0]), round=1, generator="g").candidates) for row in SHAPES
    ]
    monkeypatch.undo()
    assert seen == []
    assert sum(names) == sum(len(row[1]) for row in SHAPES)
