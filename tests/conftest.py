"""Shared fixtures: an isolated model cache, the shared GSM8K folder, the tiny embedded model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_GSM8K = REPO.parent / "shared" / "data" / "gsm8k"


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test session builds its own models: nothing leaks from a user's cache."""
    cache = tmp_path_factory.mktemp("rewardsmith-cache")
    os.environ["REWARDSMITH_CACHE"] = str(cache)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return cache


@pytest.fixture(scope="session")
def gsm8k_dir() -> Path:
    if not (SHARED_GSM8K / "train.jsonl").is_file():
        pytest.skip("../shared/data/gsm8k is not present")
    return SHARED_GSM8K


@pytest.fixture(scope="session")
def tiny_model_dir(isolated_cache: Path) -> Path:
    """The embedded model's 'tiny' preset: the real build pipeline, in seconds."""
    from rewardsmith.bootstrap import ensure_embedded_model

    return ensure_embedded_model("tiny")


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI in a fresh interpreter, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "rewardsmith", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
    )
