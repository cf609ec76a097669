"""Building a run manifest: config hash, data fingerprints and overlaps, versions, git commit.

Nothing here imports torch or any other heavy package: versions come from installed package
metadata, and the git commit from ``git rev-parse HEAD`` next to the rewardsmith sources (None
when git or the repository is absent, e.g. in an installed wheel).
"""

from __future__ import annotations

import logging
import subprocess
import time
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from rewardsmith.config import RunConfig
from rewardsmith.store.records import Manifest, json_safe

log = logging.getLogger(__name__)

PACKAGES = ("rewardsmith", "torch", "transformers", "trl", "peft", "sqlalchemy", "pydantic")
SPLITS = ("train", "val", "test")


class _TaskLike(Protocol):
    def split(self, name: str) -> list[dict[str, Any]]: ...
    def fingerprint(self, split: str) -> str: ...
    def overlap(self, a: str, b: str) -> int: ...


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each package, None for one that is not installed."""
    versions: dict[str, str | None] = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(where: Path | None = None) -> str | None:
    """HEAD commit of the repository holding ``where`` (default: the rewardsmith sources)."""
    where = where or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if len(commit) == 40 else None


def new_run_id(name: str | None = None) -> str:
    """``<name>-<YYYYmmdd-HHMMSS>-<6 hex>``, sortable by time and unique."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{name or 'run'}-{stamp}-{uuid.uuid4().hex[:6]}"


def data_manifest(task: _TaskLike) -> dict[str, dict[str, Any]]:
    """Fingerprints, sizes and pairwise overlaps of a task's train/val/test splits."""
    overlaps = {f"{a}/{b}": task.overlap(a, b) for a, b in (("train", "val"), ("train", "test"),
                                                             ("val", "test"))}  # fmt: skip
    for pair, count in overlaps.items():
        if count:
            log.warning("data splits %s share %d questions", pair, count)
    return {
        "fingerprints": {s: task.fingerprint(s) for s in SPLITS},
        "split_sizes": {s: len(task.split(s)) for s in SPLITS},
        "overlaps": overlaps,
    }


def build_manifest(
    config: RunConfig,
    *,
    task: _TaskLike | None = None,
    run_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Manifest:
    """The manifest of a new run of ``config``; data fields are empty when no task is given."""
    data = data_manifest(task) if task is not None else {}
    return Manifest(
        run_id=run_id or new_run_id(config.name),
        created_at=time.time(),
        config=config.model_dump(mode="json"),
        config_hash=config.config_hash(),
        fingerprints=data.get("fingerprints", {}),
        overlaps=data.get("overlaps", {}),
        split_sizes=data.get("split_sizes", {}),
        versions=package_versions(),
        git_commit=git_commit(),
        extra=json_safe(extra or {}),
    )
