"""The files config history never records, whatever the rules say: the protected database.

The composition root passes the database's path in (``Options.protected_files``); this
package never reads the application's settings. With the database go its SQLite
companions (``-wal``, ``-shm``, ``-journal``), which do not start with SQLite's magic
string and could not be recognised otherwise. Paths are compared after resolving
symbolic links, so a watched directory reached through a link still matches.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from config_vcs.content import SIDECAR_SUFFIXES


class ProtectedFiles:
    """A set of absolute file paths (each database with its companions)."""

    def __init__(self, databases: Iterable[str | os.PathLike[str]] = ()) -> None:
        self.databases = tuple(os.path.realpath(os.fspath(p)) for p in databases if os.fspath(p))
        self._paths = frozenset(
            db + suffix for db in self.databases for suffix in ("", *SIDECAR_SUFFIXES)
        )

    def __bool__(self) -> bool:
        return bool(self._paths)

    def contains(self, real_path: str) -> bool:
        """``real_path``: absolute, symbolic links of its directories already resolved."""
        return real_path in self._paths

    def below(self, root: Path) -> list[str]:
        """The protected paths inside ``root``, relative and ``/``-separated, sorted."""
        base = os.path.realpath(root)
        prefix = base.rstrip(os.sep) + os.sep
        return sorted(
            os.path.relpath(p, base).replace(os.sep, "/") for p in self._paths if p.startswith(prefix)
        )
