"""Reward commands: ``validate`` and ``generate`` (filled in by the reward-code work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the reward commands to ``app``."""
