"""Fixtures for the run store: a small valid config, candidates, a fresh store per test.

Every test here runs twice, on SQLite (``store.db``) and on PostgreSQL (a fresh database of the
session's throwaway server, reaching the store through ``REWARDSMITH_STORE_URL`` as it reaches
workers); a test about SQLite itself is marked :data:`tests._postgres.SQLITE_ONLY`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rewardsmith.config import RunConfig, parse_config
from rewardsmith.rewards.candidate import Candidate
from rewardsmith.store import RunStore
from tests._postgres import fresh_database

SMALL = {
    "name": "store-test",
    "grpo": {"max_steps": 3, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1},
    "search": {"rounds": 2, "candidates_per_round": 3, "ensemble_sizes": [1, 2], "control_k": 2},
}


@pytest.fixture(autouse=True, params=["sqlite", "postgresql"])
def store_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The database every store of the test lives in: SQLite, or a PostgreSQL database named by
    ``REWARDSMITH_STORE_URL`` (inherited by the test's subprocesses)."""
    monkeypatch.delenv("REWARDSMITH_STORE_URL", raising=False)
    if request.param == "sqlite":
        yield "sqlite"
        return
    with fresh_database() as url:
        monkeypatch.setenv("REWARDSMITH_STORE_URL", url)
        yield "postgresql"


@pytest.fixture
def config() -> RunConfig:
    return parse_config(SMALL)


def make_candidate(name: str, round: int = 1, value: float = 1.0) -> Candidate:
    """A tiny reward obeying TRL's contract that always returns ``value``."""
    code = (
        f"def {name}(prompts, completions, answer, **kwargs):\n"
        f"    return [{value!r}] * len(completions)\n"
    )
    return Candidate(
        name=name, code=code, description=f"constant {value}", round=round, generator="offline"
    )


@pytest.fixture
def candidate() -> Callable[..., Candidate]:
    return make_candidate


@pytest.fixture
def store(tmp_path: Path, config: RunConfig) -> Iterator[RunStore]:
    with RunStore.create(tmp_path / "run", config) as opened:
        yield opened
