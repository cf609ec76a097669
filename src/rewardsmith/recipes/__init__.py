"""Packaged recipes (``configs/*.yaml`` in the repository links here), so an installed
rewardsmith finds its demo recipe without a checkout."""

from __future__ import annotations

from pathlib import Path

from rewardsmith.errors import ConfigError

_HERE = Path(__file__).resolve().parent


def recipe_names() -> list[str]:
    return sorted(p.stem for p in _HERE.glob("*.yaml"))


def recipe_path(name: str) -> Path:
    """Path of the packaged recipe ``name`` (e.g. ``demo``, ``paper``)."""
    path = _HERE / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown recipe {name!r}; choose one of {', '.join(recipe_names())}")
    return path
