"""Task and evaluation commands (placeholder until filled in)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the evaluation commands to ``app``."""
