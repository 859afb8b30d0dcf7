"""``tradevault agent``: run the background agent in the foreground."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from tradevault.cli.support import ConfigOption, settings_for


def agent(
    ctx: typer.Context,
    log_format: Annotated[Optional[str], typer.Option("--log-format",
                                                      help="text or json (default from [agent]).")] = None,
    config: ConfigOption = None,
) -> None:
    """The background agent: config history, continuous capture, schedules, retention, drills."""
    from tradevault import logs
    from tradevault.agent import Agent

    settings = settings_for(ctx, config)
    logs.setup(log_format or settings.agent.log_format)
    raise typer.Exit(Agent(settings).run())
