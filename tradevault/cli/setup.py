"""``tradevault init`` (the configuration file) and ``tradevault demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tradevault.cli.support import ConfigOption, chosen_config, stdout


def init(
    ctx: typer.Context,
    db: Annotated[str, typer.Option("--db", metavar="URL", help="Database URL.")] = "sqlite:///tradesv3.sqlite",
    watch: Annotated[Optional[list[str]], typer.Option(
        "--watch", metavar="DIR", help="Config directory to watch.")] = None,
    location: Annotated[Optional[list[str]], typer.Option(
        "--location", metavar="URL", help="Backup location URL.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    config: ConfigOption = None,
) -> None:
    """Write a commented tradevault.toml with the embedded defaults (without --watch, the
    bot's config directory is detected: user_data/ with config*.json, or config/). It is
    written 0600, and an age identity is made so config secrets are sealed from the start."""
    from trade_stream.errors import BadInputError
    from trade_stream.source import open_source
    from trade_stream.storage.locations import open_location
    from tradevault.init_config import detect_watch, render
    from tradevault.init_secrets import prepare_identity
    from tradevault.private_files import write_private
    from tradevault.scope_view import print_watch_scope
    from tradevault.settings import load_settings

    path = chosen_config(ctx, config)
    if path.exists() and not force:
        raise BadInputError(f"{path} already exists (use --force to overwrite)")
    source = open_source(db)  # validates the URL
    urls = location or ["file://./tradevault-backups"]
    for i, url in enumerate(urls):
        open_location(f"location{i + 1}", url)
    if watch:
        chosen, why = list(watch), "given with --watch"
    else:
        chosen, why = detect_watch(Path.cwd(), source.database_file)
    identity = prepare_identity(path)  # credentials in watched files are sealed from the start
    text = render(db, chosen, urls, identity)
    write_private(path, text, check=lambda temp: load_settings(temp, must_exist=True), before_replace=identity.save)
    stdout.print(f"wrote {path} (mode 0600: it can hold credentials)", markup=False)
    stdout.print(identity.notice(), markup=False)
    if chosen:
        stdout.print(f"config history: watching {', '.join(chosen)} ({why})", markup=False)
        print_watch_scope(path, stdout)
    else:
        stdout.print(f"config history: off ({why}; add one with --watch DIR)", markup=False)
    flag = "" if path == Path("tradevault.toml") else f" -c {path}"
    stdout.print(f"next: tradevault{flag} run -- <your bot's command>   (e.g. freqtrade trade ...)\n"
                 f"      or run `tradevault{flag} agent` as a service: deploy/tradevault-agent.service",
                 markup=False)


def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where the demo puts its files.")] = Path("demo-out"),
    seconds: Annotated[float, typer.Option("--seconds", help="How long the agent and the bot run.")] = 30.0,
    rate: Annotated[float, typer.Option("--rate", help="Trading transactions per second.")] = 40.0,
) -> None:
    """The agent protecting a demo trading bot (live load, config edits), then restores checked."""
    from tradevault.demo import run_demo

    run_demo(directory, seconds=seconds, rate=rate)
