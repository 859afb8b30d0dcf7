"""The ``tradevault`` command: a thin layer over the domain packages."""

from __future__ import annotations

import sys

import typer

from tradevault.cli_support import ConfigOption, run

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="Backup and disaster recovery for trading systems.",
)


@app.callback()
def _root(ctx: typer.Context, config: ConfigOption = None) -> None:
    ctx.obj = {"config": config}


def _register() -> None:
    from tradevault import config_commands

    app.add_typer(config_commands.app, name="config", help="Configuration history (git).")


_register()


def main() -> None:
    sys.exit(run(app))


if __name__ == "__main__":
    main()
