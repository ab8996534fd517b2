"""The `smartgate` command line: serve, migrate, keys, and the sub-commands of each area."""

from __future__ import annotations

import typer

app = typer.Typer(help="smartgate: the digital platform of a smart road border gate.", no_args_is_help=True)
