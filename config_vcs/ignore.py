"""Which paths of a watched directory are not configuration.

Three sources, all with gitignore semantics (dulwich.ignore): editor and OS droppings
(DEFAULT_PATTERNS), the configured ``exclude`` globs, and the directory's own
``.gitignore`` files plus ``.git/info/exclude``. Anything inside ``.git`` is never
configuration. The first two are pure and also written into ``.git/info/exclude`` so
that plain ``git status`` agrees with us.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from dulwich.ignore import IgnoreFilter, IgnoreFilterManager

DEFAULT_PATTERNS: tuple[str, ...] = (
    "*.swp",
    "*.swo",
    "*.swx",
    "*~",
    ".#*",
    "#*#",
    "*.tmp",
    "__pycache__/",
    ".DS_Store",
)

_BEGIN = "# >>> tradevault: ignored by config history (managed block) >>>"
_END = "# <<< tradevault <<<"


def is_git_internal(rel: str) -> bool:
    """True for ``.git`` itself and anything below a ``.git`` at any depth."""
    return ".git" in rel.replace(os.sep, "/").split("/")


class StaticIgnore:
    """DEFAULT_PATTERNS + configured exclude globs (no disk access)."""

    def __init__(self, exclude: Sequence[str] = (), defaults: Sequence[str] = DEFAULT_PATTERNS):
        self.patterns: tuple[str, ...] = tuple(defaults) + tuple(exclude)
        self._filter = IgnoreFilter(os.fsencode(p) for p in self.patterns)

    def ignores(self, rel: str, is_dir: bool = False) -> bool:
        """``rel`` is relative to the watched directory, ``/``-separated."""
        rel = rel.strip("/")
        if not rel:
            return False
        if is_git_internal(rel):
            return True
        return bool(self._filter.is_ignored(rel + "/" if is_dir else rel))


class PathFilter:
    """StaticIgnore plus the directory's .gitignore files, for walking one work tree."""

    def __init__(self, static: StaticIgnore, manager: IgnoreFilterManager | None = None):
        self.static = static
        self._manager = manager

    @classmethod
    def for_repo(cls, repo: object, static: StaticIgnore) -> "PathFilter":
        """Re-create per scan: .gitignore files may have changed since the last one."""
        return cls(static, IgnoreFilterManager.from_repo(repo))  # type: ignore[arg-type]

    def skip_dir(self, rel: str) -> bool:
        if self.static.ignores(rel, is_dir=True):
            return True
        return self._manager is not None and self._manager.may_prune_directory(rel)

    def skip_file(self, rel: str) -> bool:
        if self.static.ignores(rel, is_dir=False):
            return True
        return self._manager is not None and bool(self._manager.is_ignored(rel))


def merge_exclude_file(existing: str, patterns: Sequence[str]) -> str:
    """``existing`` .git/info/exclude text with our managed block replaced by ``patterns``."""
    lines = existing.splitlines()
    kept: list[str] = []
    inside = False
    for line in lines:
        if line == _BEGIN:
            inside = True
        elif line == _END and inside:
            inside = False
        elif not inside:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    block = [_BEGIN, *patterns, _END]
    return "\n".join([*kept, *([""] if kept else []), *block]) + "\n"
