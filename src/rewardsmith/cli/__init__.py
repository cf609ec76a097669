"""The ``rewardsmith`` command line: a thin layer over the library that owns the terminal.

Each group of commands lives in its own module and registers itself on :data:`app`. Errors meant
for the user (:class:`~rewardsmith.errors.RewardsmithError`) are printed as one line, with a
non-zero exit code, never as a traceback.
"""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from rewardsmith.errors import RewardsmithError

app = typer.Typer(
    name="rewardsmith",
    help="Search for reward functions for GRPO post-training of language models on math reasoning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns; logs can be wider.
console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True)


def _register_commands() -> None:
    from rewardsmith.cli import (
        compare_cmds,
        doctor_cmds,
        eval_cmds,
        generate_cmds,
        report_cmds,
        reward_cmds,
        search_cmds,
        train_cmds,
    )

    search_cmds.register(app)
    eval_cmds.register(app)
    train_cmds.register(app)
    reward_cmds.register(app)
    generate_cmds.register(app)
    report_cmds.register(app)
    compare_cmds.register(app)
    doctor_cmds.register(app)


def main() -> None:
    """Console entry point."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _register_commands()
    try:
        app()
    except RewardsmithError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
