"""``init --watch`` shows what config history will version before anything is pushed.

A thin printer over ``config_vcs.scope.scope_report``: per watched directory, how many
files will be versioned (the first few named) and what is left out, grouped by reason,
each group truncated.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from config_vcs.reasons import DESCRIPTIONS
from config_vcs.scope import ScopeReport, scope_report
from tradevault.settings import load_settings

SHOWN = 5  # paths named per group; the rest are counted


def _names(paths: list[str] | tuple[str, ...]) -> str:
    shown = ", ".join(paths[:SHOWN])
    return shown + (f", ... and {len(paths) - SHOWN} more" if len(paths) > SHOWN else "")


def scope_lines(report: ScopeReport) -> list[str]:
    """The report as lines of text (no markup)."""
    if not report.exists:
        return [f"{report.root}: does not exist yet (nothing to version until it does)"]
    lines = [(f"{report.root}: {len(report.versioned)} file(s) will be versioned, "
              f"{len(report.excluded)} path(s) left out")]
    if report.versioned:
        lines.append(f"  versioned: {_names(report.versioned)}")
    for reason, paths in report.by_reason().items():
        lines.append(f"  left out, {DESCRIPTIONS.get(reason, reason)} ({len(paths)}): {_names(paths)}")
    return lines


def print_watch_scope(config_file: Path, console: Console) -> None:
    """Print the scope of every ``[config_vcs] paths`` directory of ``config_file``."""
    from tradevault.config_history import options_from

    settings = load_settings(config_file, must_exist=True)
    options = options_from(settings)
    for path in settings.config_vcs.paths:
        for line in scope_lines(scope_report(path, options)):
            console.print(line, markup=False, soft_wrap=True)
    console.print("(tune it with [config_vcs] include, exclude and max_file_size)", markup=False)
