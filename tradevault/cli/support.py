"""What every command shares: the ``-c/--config`` option (before or after the command),
JSON output, and the mapping of errors to the exit codes of the CLI contract.

Domain packages signal bad input / integrity failures with exceptions carrying an
``exit_code`` attribute (2 or 3); this module is the only place that turns them into a
one-line message and an exit status.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:  # imported by the commands that use them: start-up is paid per command
    from rich.console import Console

    from tradevault.settings import Settings

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_INTEGRITY = 0, 1, 2, 3

ConfigOption = Annotated[
    str | None,
    typer.Option(
        "-c",
        "--config",
        metavar="FILE",
        help="Configuration file (default ./tradevault.toml or $TRADEVAULT_CONFIG).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]



class _LazyConsole:
    """A rich Console made on first use: importing rich costs ~15 ms that ``--version``
    and a command that prints nothing need not pay."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    @property
    def real(self) -> "Console":
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


stderr = _LazyConsole(stderr=True, highlight=False, soft_wrap=True)  # one message, one line
stdout = _LazyConsole(highlight=False, soft_wrap=True)


def chosen_config(ctx: typer.Context, config: str | None) -> Path:
    """The config file named after the command wins over one named before it."""
    from tradevault.settings import config_path

    root = ctx.find_root()
    before = (root.obj or {}).get("config") if isinstance(root.obj, dict) else None
    return config_path(config or before)


def settings_for(ctx: typer.Context, config: str | None) -> "Settings":
    from tradevault.settings import load_settings

    path = chosen_config(ctx, config)
    explicit = bool(config or (ctx.find_root().obj or {}).get("config"))
    return load_settings(path, must_exist=explicit)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
    sys.stdout.flush()


_TYPE_NAMES = {"str": "TEXT", "text": "TEXT", "int": "INTEGER", "integer": "INTEGER", "float": "NUMBER",
               "path": "PATH"}


def readable_types(command: Any) -> None:
    """Help shows what each option and argument takes as a word a user reads (TEXT,
    INTEGER, PATH, or the metavar the option names) instead of typer's ``<str>``/``<int>``."""
    import copy

    from typer.core import TyperArgument, TyperOption

    for param in getattr(command, "params", []):
        word = _TYPE_NAMES.get(getattr(param.type, "name", ""))
        if isinstance(param, TyperOption) and param.is_flag:
            param.metavar = ""
        elif isinstance(param, TyperOption) and param.metavar is None and word:
            param.metavar = word
        elif isinstance(param, TyperArgument) and word:  # its name is its metavar; the type column:
            param.type = copy.copy(param.type)  # types are shared: change this argument's only
            param.type.get_metavar = lambda *args, word=word, **kwargs: word
    for sub in getattr(command, "commands", {}).values():
        readable_types(sub)


def run(app: typer.Typer, argv: list[str] | None = None) -> int:
    """Run the CLI and return the contract's exit status instead of raising.

    Usage errors are handled by typer itself (exit 2); domain errors arrive here.
    """
    try:
        command = typer.main.get_command(app)
        readable_types(command)
        command(args=argv, prog_name="tradevault")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_FAILURE)
    except KeyboardInterrupt:
        stderr.print("tradevault: interrupted")
        return EXIT_FAILURE
    except Exception as exc:
        code = getattr(exc, "exit_code", EXIT_FAILURE)
        if not isinstance(code, int) or code not in (EXIT_BAD_INPUT, EXIT_INTEGRITY):
            code = EXIT_FAILURE
        text = str(exc).strip()
        message = text.splitlines()[0] if text else type(exc).__name__
        prefix = {EXIT_BAD_INPUT: "error", EXIT_INTEGRITY: "integrity failure"}.get(code, "failed")
        stderr.print(f"tradevault: {prefix}: {message}", markup=False, soft_wrap=True)
        if code == EXIT_FAILURE and os.environ.get("TRADEVAULT_DEBUG"):
            raise
        return code
    return EXIT_OK


class progress_display:
    """A rich progress bar on stderr (so ``--json`` output stays clean); a Progress callback."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()  # rich (~40 ms to import) only for a person
        self._tasks: dict[str, Any] = {}
        if not self.enabled:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(TextColumn("{task.description:>10}"), BarColumn(),
                             TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
                             TimeElapsedColumn(), console=stderr.real, transient=True)

    def __enter__(self) -> "progress_display":
        if self.enabled:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._bar.stop()

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        task = self._tasks.get(phase)
        if task is None:
            task = self._tasks[phase] = self._bar.add_task(phase, total=total)
        self._bar.update(task, completed=done, total=total)
