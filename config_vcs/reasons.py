"""Why a path of a watched directory is not configuration.

The words are stable: ``status --json``, ``init --watch`` and commit messages carry them,
and scripts may read them. ``ORDER`` is the order reports list them in (most important
first); ``DESCRIPTIONS`` is what a human reads.
"""

from __future__ import annotations

DATABASE = "database"  # the protected database ([database] url) or its -wal/-shm/-journal
SQLITE = "sqlite"  # any other SQLite database (header or name) and its -wal/-shm/-journal
TOO_LARGE = "too_large"  # above max_file_size
BINARY = "binary"  # a NUL byte in the first 8 KiB, not an allow-listed config type
LOG = "log"  # *.log, logs/
DATA_DIR = "data_dir"  # market data and results directories of bot layouts
DROPPING = "dropping"  # editor and OS droppings (*.swp, *~, __pycache__/, ...)
EXCLUDE = "exclude"  # a configured [config_vcs] exclude glob
GITIGNORE = "gitignore"  # the directory's own .gitignore files or .git/info/exclude
GIT = "git"  # .git itself: never listed

ORDER: tuple[str, ...] = (
    DATABASE, SQLITE, TOO_LARGE, BINARY, LOG, DATA_DIR, EXCLUDE, GITIGNORE, DROPPING,
)

DESCRIPTIONS: dict[str, str] = {
    DATABASE: "the protected database and its -wal/-shm/-journal (always excluded)",
    SQLITE: "SQLite databases and their -wal/-shm/-journal",
    TOO_LARGE: "above max_file_size",
    BINARY: "binary files",
    LOG: "logs",
    DATA_DIR: "data directories (market data, results, plots, notebooks)",
    EXCLUDE: "[config_vcs] exclude globs",
    GITIGNORE: ".gitignore",
    DROPPING: "editor and OS droppings",
}

#: decided from a file's contents or size (not its name): the paths themselves go into
#: the managed block of .git/info/exclude so that plain ``git status`` agrees
CONTENT_REASONS: frozenset[str] = frozenset({DATABASE, SQLITE, TOO_LARGE, BINARY})


def sort_key(reason: str) -> int:
    return ORDER.index(reason) if reason in ORDER else len(ORDER)
