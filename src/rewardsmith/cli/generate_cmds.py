"""Generator commands: ``generate`` (filled in by the generator work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the generator commands to ``app``."""
