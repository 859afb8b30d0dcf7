"""``tradevault config ...`` (configuration history). Filled in by the config_vcs work."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)
