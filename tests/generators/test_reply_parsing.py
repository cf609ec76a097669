"""Table tests for parsing model replies: every accepted form, and malformed ones as rejections."""

from __future__ import annotations

import json

import pytest

from rewardsmith.generators.parsing import parse_reply


def reward(name: str, body: str = "return [0.0] * len(completions)") -> str:
    return f"def {name}(prompts, completions, answer, **kwargs):\n    {body}\n"


ITEMS = [
    {"name": "alpha_reward", "code": reward("alpha_reward"), "description": "first"},
    {"name": "beta_reward", "code": reward("beta_reward"), "description": "second"},
]
ARRAY = json.dumps(ITEMS)

TWO_REWARDS_BLOCK = '''Here you go:

```python
import re

LIMIT = 3

def helper(text):
    return len(re.findall(r"\\d+", text))

def gamma_reward(prompts, completions, answer, **kwargs):
    """Counts numbers, capped."""
    return [min(helper(str(c)), LIMIT) * 1.0 for c in completions]

def delta_reward(prompts, completions, answer, **kwargs):
    return [float(helper(str(c)) > 0) for c in completions]
```
'''

ACCEPTED = [
    # (reply, expected names, why)
    (ARRAY, ["alpha_reward", "beta_reward"], "bare JSON array"),
    (json.dumps({"rewards": ITEMS}), ["alpha_reward", "beta_reward"], "object with a rewards key"),
    (json.dumps(ITEMS[0]), ["alpha_reward"], "a single object"),
    (f"```json\n{ARRAY}\n```", ["alpha_reward", "beta_reward"], "json-fenced block"),
    (f"```\n{ARRAY}\n```", ["alpha_reward", "beta_reward"], "fence without a language"),
    (f"Sure, here are [2] ideas:\n\n{ARRAY}\n\nHope it helps!", ["alpha_reward", "beta_reward"],
     "prose around JSON, with a stray bracket before it"),
    ('[{"name": "alpha_reward", "code": "def alpha_reward(prompts, completions, answer, **kw):\n'
     '    return [0.0] * len(completions)\n", "description": "x"}]', ["alpha_reward"],
     "literal newlines inside a JSON string (invalid strict JSON)"),
    (json.dumps([{"name": "alpha_reward", "code": "```python\n" + reward("alpha_reward") + "```"}]),
     ["alpha_reward"], "code wrapped in a fence inside the JSON string"),
    (json.dumps([{"name": "Alpha reward!", "code": reward("alpha_reward")}]), ["alpha_reward"],
     "name that is not an identifier: taken from the code's reward function"),
    (json.dumps([{"code": reward("alpha_reward")}]), ["alpha_reward"], "no name at all"),
    (f"```python\n{reward('epsilon_reward')}```", ["epsilon_reward"], "one python block"),
    (TWO_REWARDS_BLOCK, ["gamma_reward", "delta_reward"], "two rewards sharing helpers"),
    ("Here is my reward.\nimport math\n\n" + reward("zeta_reward"), ["zeta_reward"],
     "unfenced python after a line of prose"),
]  # fmt: skip


@pytest.mark.parametrize(("reply", "names", "why"), ACCEPTED, ids=[a[2] for a in ACCEPTED])
def test_accepted_forms(reply, names, why):
    result = parse_reply(reply, round=3, generator="llm/x")
    assert [c.name for c in result.candidates] == names, why
    assert result.rejections == [], why
    for candidate in result.candidates:
        assert candidate.round == 3 and candidate.generator == "llm/x"
        assert f"def {candidate.name}(" in candidate.code
        assert candidate.code.endswith("\n") and "```" not in candidate.code
        compile(candidate.code, candidate.name, "exec")  # parsing only; nothing is run


def test_json_descriptions_are_kept():
    result = parse_reply(ARRAY, round=1, generator="g")
    assert [c.description for c in result.candidates] == ["first", "second"]


def test_python_blocks_keep_shared_helpers_and_docstring_description():
    gamma, delta = parse_reply(TWO_REWARDS_BLOCK, round=1, generator="g").candidates
    for candidate in (gamma, delta):
        assert "import re" in candidate.code and "def helper(" in candidate.code
        assert "LIMIT = 3" in candidate.code
    assert "def delta_reward" not in gamma.code and "def gamma_reward" not in delta.code
    assert gamma.description == "Counts numbers, capped."
    namespace: dict = {}
    exec(compile(gamma.code, "gamma", "exec"), namespace)  # our own test code, trusted
    assert namespace["gamma_reward"](None, ["1 2 3 4 5", "none"], None) == [3.0, 0.0]


REJECTED = [
    # (reply, expected accepted names, expected reason fragments, why)
    ("", [], ["empty reply"], "empty"),
    ("   \n\t", [], ["empty reply"], "white space only"),
    (None, [], ["empty reply"], "no content at all"),
    ("I am sorry, I cannot write code today.", [], ["no JSON array or Python reward found"],
     "prose only"),
    ('[{"name": "alpha_reward", "code": "def alpha', [],
     ["item 1 truncated: reply ended mid-string (in 'code')"], "truncated JSON"),
    ("[1, 2, 3]", [], ["no JSON array or Python reward"], "a list without objects"),
    ("[]", [], ["empty JSON list"], "an empty list"),
    (json.dumps([{"name": "no_code"}, ITEMS[1]]), ["beta_reward"], ["item 1 has no 'code'"],
     "an item without code; the rest is kept"),
    (json.dumps([ITEMS[0], "just a string"]), ["alpha_reward"], ["item 2 is not an object"],
     "an item that is not an object"),
    (json.dumps([{"name": "bad name", "code": "x = 1\n"}]), [], ["not a valid Python identifier"],
     "invalid name and no function to take a name from"),
    (json.dumps([{"name": "class", "code": "x = 1\n"}]), [], ["not a valid Python identifier"],
     "a keyword as name"),
    (json.dumps([ITEMS[0], ITEMS[0]]), ["alpha_reward"], ["appears more than once"],
     "a duplicate name in one reply"),
    (json.dumps([{"code": "x = 1\n"}]), [], ["no name given"], "no name and no function"),
    ("```python\ndef broken(:\n```", [], ["no JSON array or Python reward"],
     "python with a syntax error"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("reply", "names", "reasons", "why"), REJECTED, ids=[r[3] for r in REJECTED]
)
def test_malformed_replies_become_rejections(reply, names, reasons, why):
    result = parse_reply(reply, round=2, generator="g")
    assert [c.name for c in result.candidates] == names, why
    assert len(result.rejections) == len(reasons), why
    for rejection, fragment in zip(result.rejections, reasons, strict=True):
        assert fragment in rejection.reason, why
        assert (rejection.stage, rejection.round, rejection.generator) == ("parse", 2, "g")


def test_rejection_reason_quotes_an_excerpt_of_the_reply():
    result = parse_reply("nonsense " * 100, round=1, generator="g")
    [rejection] = result.rejections
    assert "nonsense nonsense" in rejection.reason and len(rejection.reason) < 300


def test_terminal_escapes_in_a_reply_never_reach_reasons_or_descriptions():
    reply = (
        '[{"name": "ok_reward", "description": "\\u001b[2Jwipes\\u001b]0;t\\u0007 screen",'
        ' "code": "def ok_reward(prompts, completions, **kw):\\n    return []\\n"},'
        ' {"name": "\\u001b[31mred", "code": "x = 1"}]'
    )
    result = parse_reply(reply, round=1, generator="t")
    texts = [c.description for c in result.candidates] + [r.reason for r in result.rejections]
    assert result.candidates and result.rejections
    assert all("\x1b" not in t and "\x07" not in t for t in texts), texts
