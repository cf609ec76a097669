"""``rewardsmith doctor``: which sandbox layers are active on this machine, and what each stops.

Starts one sandbox worker (no reward), prints a table of every layer (active, missing, or not
needed here) and one warning line per missing layer. Always exits 0: a missing layer is
information, the sandbox runs with the layers it has.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

_STYLE = {"active": "green", "missing": "bold red", "not needed": "dim"}


def doctor(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a table.")
    ] = False,
) -> None:
    """Show which sandbox layers are active on this machine and what each stops."""
    from rewardsmith.cli import console
    from rewardsmith.sandbox._doctor import diagnose

    diagnosis = diagnose()
    if as_json:
        typer.echo(json.dumps(diagnosis.to_dict()))
        raise typer.Exit(0)
    table = Table(
        title=f"sandbox layers (worker started in {diagnosis.start_ms:.0f} ms)",
        header_style="bold",
    )
    for column in ("layer", "status", "detail", "what it stops"):
        table.add_column(column, overflow="fold")
    for layer in diagnosis.layers:
        status = f"[{_STYLE[layer.status]}]{layer.status}[/]"
        table.add_row(layer.name, status, layer.detail, layer.stops)
    console.print(table)
    active = ", ".join(diagnosis.active)
    console.print(f"active: {active}", highlight=False, markup=False, soft_wrap=True)
    for warning in diagnosis.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    raise typer.Exit(0)


def register(app: typer.Typer) -> None:
    """Add ``doctor`` to ``app``."""
    app.command("doctor")(doctor)
