"""The ``tradevault`` command: a thin layer over the domain packages.

One module per command group; each imports the domain code it drives inside its
commands, so a command pays at start-up only for what it runs (a SQLite ``restore``
never imports Kafka, git or PostgreSQL code). Commands are listed in the order a user
needs them.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from typer.core import TyperGroup

from tradevault.cli import agent, backup, config, kafka, recover, restore, setup, standby, status, time_travel, verify
from tradevault.cli.support import ConfigOption, run

# The order a user needs them in (typer would list single commands before groups).
ORDER = ("init", "backup", "backups", "restore", "verify", "status", "history", "diff", "query", "agent", "run",
         "recover", "config",
         "locations", "follow", "promote", "kafka", "uninstall", "demo")


class _InOrder(TyperGroup):
    def list_commands(self, ctx: typer.Context) -> list[str]:
        names = super().list_commands(ctx)
        return sorted(names, key=lambda name: ORDER.index(name) if name in ORDER else len(ORDER))


app = typer.Typer(
    cls=_InOrder,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    help="Backup and disaster recovery for trading systems.",
)


def _version(value: bool) -> None:
    if value:
        from tradevault import __version__

        typer.echo(f"tradevault {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    config: ConfigOption = None,
    show_version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False,
) -> None:
    ctx.obj = {"config": config}


app.command("init")(setup.init)
app.add_typer(backup.backup_app, name="backup")
app.add_typer(backup.backups_app, name="backups")
app.command("restore")(restore.restore)
app.command("history")(time_travel.history)
app.command("diff")(time_travel.diff)
app.command("query")(time_travel.query)
app.command("verify")(verify.verify)
app.command("status")(status.status)
app.command("agent")(agent.agent)
app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(recover.run)
app.command("recover")(recover.recover)
app.add_typer(config.app, name="config", help="Configuration history (git).")
app.add_typer(backup.locations_app, name="locations")
app.command("follow")(standby.follow)
app.command("promote")(standby.promote)
app.add_typer(kafka.app, name="kafka", help="The Kafka sink: sync, check, status.")
app.command("uninstall")(status.uninstall)
app.command("demo")(setup.demo)


def main() -> None:
    sys.exit(run(app))
