"""Shared fixtures for the reward tests: one sandbox pool and a no-side-effect checker."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from rewardsmith.sandbox.pool import SandboxPool


@pytest.fixture(scope="session")
def pool():
    with SandboxPool(max_workers=4) as shared:
        yield shared


def process_groups() -> dict[int, int]:
    """pid -> process group of every process on the machine."""
    groups = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            groups[int(entry.name)] = int(fields[2])
    return groups


def leftover_processes(pool: SandboxPool) -> list[int]:
    """Processes still running in the group of a worker the pool no longer holds."""
    gone = set(pool.spawned_pids) - set(pool.worker_pids())
    return [pid for pid, group in process_groups().items() if group in gone or pid in gone]


@pytest.fixture
def no_side_effects(pool, tmp_path, monkeypatch):
    """A secret file and env var to steal and a marker path to write; checked afterwards."""
    secret = "sk-test-0123456789-do-not-leak"
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(secret)
    secret_file.chmod(0o644)  # world-readable: only the sandbox (not file modes) protects it
    marker = Path("/tmp") / f"rewardsmith-hostile-{os.getpid()}-{tmp_path.name}"
    monkeypatch.setenv("REWARDSMITH_TEST_API_KEY", secret)
    env_before = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    context = {"secret": secret, "secret_file": str(secret_file), "marker": str(marker)}
    yield context
    assert not marker.exists(), "the hostile code wrote a file"
    env_after = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    assert env_after == env_before, "the parent's environment changed"
    assert leftover_processes(pool) == [], "processes outlived their worker"


def accept_once(server: socket.socket) -> bool:
    """Whether one connection arrives before the listener's timeout."""
    try:
        connection, _ = server.accept()
    except TimeoutError:
        return False
    connection.close()
    return True
