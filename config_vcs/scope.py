"""What config history would version in a directory, and what it leaves out and why.

``scope_report`` walks a directory with the very scanner and rules a commit uses, but
writes nothing (no ``.git``, no objects): ``tradevault init --watch`` shows it before
the first push, and ``status`` lists the skipped paths from it when no agent runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dulwich.errors import NotGitRepository
from dulwich.repo import Repo

from config_vcs.ignore import PathFilter
from config_vcs.options import Options
from config_vcs.reasons import sort_key
from config_vcs.scanner import Scanner

#: at most this many skipped paths in a status report (the total is always given)
STATUS_LIMIT = 200


@dataclass(frozen=True)
class ScopeReport:
    root: Path
    exists: bool
    versioned: tuple[str, ...]  # files a commit would hold, sorted
    excluded: tuple[tuple[str, str], ...]  # (path, reason); a directory skipped whole ends with "/"

    def by_reason(self) -> dict[str, list[str]]:
        """reason -> paths, reasons in ``reasons.ORDER``."""
        grouped: dict[str, list[str]] = {}
        for path, reason in sorted(self.excluded, key=lambda e: (sort_key(e[1]), e[0])):
            grouped.setdefault(reason, []).append(path)
        return grouped

    def as_dict(self, limit: int = 20) -> dict[str, Any]:
        """For JSON: counts, and at most ``limit`` paths per list."""
        return {
            "path": str(self.root),
            "exists": self.exists,
            "versioned": len(self.versioned),
            "versioned_paths": list(self.versioned[:limit]),
            "excluded": len(self.excluded),
            "excluded_by_reason": {
                reason: {"count": len(paths), "paths": paths[:limit]}
                for reason, paths in self.by_reason().items()
            },
        }


class _Discard:
    """An object store that keeps nothing: a report reads files but stores no blob."""

    def __contains__(self, sha: object) -> bool:
        return False

    def add_object(self, obj: object) -> None:
        pass

    def add_objects(self, objects: object) -> None:
        pass


def _silent(_message: str) -> None:
    """A report says it all in its result: no log lines."""


def scope_report(root: Path | str, options: Options | None = None) -> ScopeReport:
    """Walk ``root`` as the next commit would (its .gitignore files included); read-only."""
    options = options or Options()
    root = Path(os.path.abspath(os.path.expanduser(str(root))))
    static = options.static_ignore()
    if not root.is_dir():
        return ScopeReport(root, False, (), ())
    scanner = Scanner(root, options.max_file_size, warn=_silent, protected=options.protected(),
                      note=_silent)
    try:
        repo = Repo(str(root)) if (root / ".git" / "HEAD").is_file() else None
    except NotGitRepository:
        repo = None
    try:
        pfilter = PathFilter.for_repo(repo, static) if repo is not None else PathFilter.for_tree(root, static)
        snapshot = scanner.scan(pfilter, _Discard())
    finally:
        if repo is not None:
            repo.close()
    versioned = sorted(os.fsdecode(p) for p in (*snapshot.files, *snapshot.unreadable))
    excluded = sorted((os.fsdecode(p), reason) for p, reason in snapshot.excluded.items())
    return ScopeReport(root, True, tuple(versioned), tuple(excluded))


def skipped_list(excluded: Mapping[bytes, str], limit: int = STATUS_LIMIT) -> list[dict[str, str]]:
    """``[{"path", "reason"}]`` for status, most important reasons first, at most ``limit``."""
    items = sorted(excluded.items(), key=lambda e: (sort_key(e[1]), e[0]))
    return [{"path": os.fsdecode(p), "reason": r} for p, r in items[:limit]]
