"""Reward commands: ``validate`` checks a generated reward file and prints its verdict.

Exit codes: 0 accepted, 1 rejected, 2 usage error (bad option, missing or unreadable file).
``--json`` adds ``layers``: the sandbox layers active on this machine, as one worker reports
them (``language`` first), asked while the validation runs.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import typer

EXIT_ACCEPTED, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2


def _read_source(path: Path) -> str:
    """The file's text; a usage error (exit 2) when it is missing, a directory or unreadable."""
    from rewardsmith.cli import err_console

    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        err_console.print(f"[bold red]error:[/] cannot read {path}: {reason}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None


def _active_layers() -> list[str]:
    """The sandbox layers one worker applies here; only the language layer if none starts."""
    from rewardsmith.sandbox._doctor import active_layers

    try:
        return active_layers()
    except OSError:
        return ["language"]


def validate(
    file: Annotated[Path, typer.Argument(help="Python file defining one reward function.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a summary.")
    ] = False,
    name: Annotated[
        str | None, typer.Option("--name", help="The reward's name (and function to use).")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds allowed per probe call.")
    ] = 5.0,
) -> None:
    """Validate a reward file: parse, restrictions, sandboxed load and the probe battery."""
    from rewardsmith.cli import console
    from rewardsmith.rewards.validation import validate_reward_code

    source = _read_source(file)
    with ThreadPoolExecutor(max_workers=1) as background:
        layers = background.submit(_active_layers) if as_json else None
        verdict = validate_reward_code(source, name=name, timeout_s=timeout)
    if layers is not None:
        typer.echo(json.dumps({**verdict.to_dict(), "layers": layers.result()}))
    else:
        mark = "[bold green]accepted[/]" if verdict.accepted else "[bold red]rejected[/]"
        console.print(f"{mark} {verdict.name or file.name} [dim](stage: {verdict.stage})[/]")
        console.print(f"  {verdict.reason}", highlight=False, markup=False)
        if verdict.flags:
            console.print(f"  [yellow]flags:[/] {', '.join(verdict.flags)}")
    raise typer.Exit(EXIT_ACCEPTED if verdict.accepted else EXIT_REJECTED)


def register(app: typer.Typer) -> None:
    """Add the reward commands to ``app``."""
    app.command("validate")(validate)
