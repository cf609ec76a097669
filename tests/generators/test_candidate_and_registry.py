"""The candidate record and the generator registry."""

from __future__ import annotations

import hashlib
import json

import pytest

from rewardsmith.errors import ConfigError
from rewardsmith.generators import (
    GENERATORS,
    LLMGenerator,
    OfflineGenerator,
    RoundContext,
    SummaryEntry,
    default_generator_name,
    get_generator,
)
from rewardsmith.generators.base import Generator
from rewardsmith.generators.llm import default_provider
from rewardsmith.rewards.candidate import Candidate

CODE = "def r(prompts, completions, answer, **kwargs):\n    return [0.0] * len(completions)\n"


def test_candidate_round_trips_through_json_and_hashes_its_code():
    candidate = Candidate("r", CODE, "zero", 2, "offline", parent="r1_x")
    record = json.loads(json.dumps(candidate.to_dict()))
    assert Candidate.from_dict(record) == candidate
    assert record["code_hash"] == hashlib.sha256(CODE.encode()).hexdigest()
    assert Candidate("r", CODE + "#", "zero", 2, "offline").code_hash != candidate.code_hash


@pytest.mark.parametrize(
    ("change", "message"),
    [({"code": None}, "lacks code"), ({"code_hash": "0" * 64}, "does not match")],
    ids=["missing field", "edited code"],
)
def test_candidate_from_bad_records_raises(change, message):
    record = Candidate("r", CODE, "d", 1, "offline").to_dict()
    record.update(change)
    if change.get("code", "") is None:
        del record["code"]
    with pytest.raises(ValueError, match=message):
        Candidate.from_dict(record)


def test_candidate_is_immutable():
    candidate = Candidate("r", CODE, "d", 1, "offline")
    with pytest.raises(AttributeError):
        candidate.name = "other"  # type: ignore[misc]


def test_registry_builds_generators_by_name(tmp_path):
    assert set(GENERATORS) == {"llm", "offline"}
    offline = get_generator("offline", seed=4)
    assert isinstance(offline, OfflineGenerator) and offline.seed == 4
    assert isinstance(offline, Generator)
    llm = get_generator("llm", out_dir=tmp_path, base_url="http://127.0.0.1:9/v1", model="m")
    assert isinstance(llm, LLMGenerator) and llm.name == "llm/m"
    assert isinstance(llm, Generator)


def test_unknown_generator_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="offline, llm"):
        get_generator("genetic")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "offline"),
        ({"OPENAI_API_KEY": ""}, "offline"),
        ({"OPENAI_API_KEY": "sk-x"}, "llm"),
        ({"ANTHROPIC_API_KEY": "k"}, "llm"),
        ({"REWARDSMITH_API_KEY": "k"}, "llm"),
        ({"HOME": "/root"}, "offline"),
    ],
)
def test_default_generator_depends_on_a_configured_key(env, expected):
    assert default_generator_name(env) == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "openai"),
        ({"ANTHROPIC_API_KEY": "k"}, "anthropic"),
        ({"ANTHROPIC_API_KEY": "k", "OPENAI_API_KEY": "k"}, "openai"),
        ({"ANTHROPIC_API_KEY": "k", "REWARDSMITH_API_KEY": "k"}, "openai"),
    ],
)
def test_default_provider_follows_the_configured_key(env, expected):
    assert default_provider(env) == expected


def test_summary_entry_and_context_fingerprint():
    entry = SummaryEntry.from_dict({"name": "a", "metrics": {"f1": "0.5"}, "round": 2})
    assert entry.metrics == {"f1": 0.5} and entry.round == 2 and entry.code is None
    with pytest.raises(ValueError, match="name"):
        SummaryEntry.from_dict({"metrics": {}})
    one = RoundContext(examples=[{"question": "q", "answer": "1"}], summary=[entry])
    same = RoundContext(examples=[{"question": "q", "answer": "1"}], summary=[entry])
    assert one.fingerprint() == same.fingerprint()
    assert one.with_taken({"x"}).fingerprint() != one.fingerprint()
    assert one.with_taken({"x"}).taken_names == {"x"}
