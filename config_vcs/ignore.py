"""Which paths of a watched directory are not configuration, by their names.

All patterns have gitignore semantics (dulwich.ignore). In order of precedence:

1. anything inside ``.git``;
2. the configured ``exclude`` globs (they always win);
3. the configured ``include`` globs: they re-admit what a default rule below excludes;
4. the default rules, each with its reason: editor and OS droppings, logs, well-known
   data directories of bot layouts, SQLite files by name (``DEFAULT_RULES``);
5. the directory's own ``.gitignore`` files and the user's part of ``.git/info/exclude``
   (``PathFilter``; an include does not override them).

Rules about contents (SQLite header, size, binary) are in ``content.py``; the protected
database in ``protected.py``. The default and exclude patterns, the protected database
and the files excluded by their contents are written into a managed block of
``.git/info/exclude`` so that plain ``git status`` agrees with us; that block is never
read back as a rule (it would defeat ``include``).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Sequence
from contextlib import suppress

from dulwich.ignore import IgnoreFilter, IgnoreFilterManager, default_user_ignore_filter_path

from config_vcs.errors import BadInput
from config_vcs.reasons import DATA_DIR, DROPPING, EXCLUDE, GIT, GITIGNORE, LOG, SQLITE

DROPPINGS: tuple[str, ...] = (
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
LOGS: tuple[str, ...] = ("*.log", "logs/")
#: freqtrade's user_data layout (and its look-alikes): candles, results, plots, notebooks
DATA_DIRS: tuple[str, ...] = (
    "data/", "backtest_results/", "hyperopt_results/", "plot/", "notebooks/",
)
#: SQLite databases by name; any other database is recognised by its header (content.py)
SQLITE_NAMES: tuple[str, ...] = tuple(
    f"*.{ext}{suffix}"
    for ext in ("sqlite", "sqlite3", "db")
    for suffix in (("-wal", "-shm", "-journal") if ext == "db" else ("", "-wal", "-shm", "-journal"))
)
#: (reason, patterns), checked in this order
DEFAULT_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (DROPPING, DROPPINGS),
    (LOG, LOGS),
    (DATA_DIR, DATA_DIRS),
    (SQLITE, SQLITE_NAMES),
)
DEFAULT_PATTERNS: tuple[str, ...] = tuple(p for _reason, group in DEFAULT_RULES for p in group)

_BEGIN = "# >>> tradevault: ignored by config history (managed block) >>>"
_END = "# <<< tradevault <<<"
_GLOB_CHARS = "*?["


def is_git_internal(rel: str) -> bool:
    """True for ``.git`` itself and anything below a ``.git`` at any depth."""
    return ".git" in rel.replace(os.sep, "/").split("/")


def glob_problem(glob: object, include: bool = False) -> str | None:
    """What is wrong with one configured glob, or None (pure: the settings use it too)."""
    if not isinstance(glob, str) or not glob.strip():
        return "an empty glob"
    if "\n" in glob or "\0" in glob:
        return f"a glob must be one line: {glob!r}"
    if include and glob.startswith("!"):
        return f"{glob!r}: include globs re-admit files; to leave something out use exclude"
    return None


def check_globs(key: str, globs: Iterable[str]) -> tuple[str, ...]:
    """Configured globs, refused with a one-line BadInput when they cannot mean anything."""
    out = tuple(globs)
    for glob in out:
        problem = glob_problem(glob, include=key == "include")
        if problem:
            raise BadInput(f"config_vcs.{key}: {problem}")
    return out


def _filter(patterns: Sequence[str]) -> IgnoreFilter:
    return IgnoreFilter(os.fsencode(p) for p in patterns)


class StaticIgnore:
    """The rules by name that need no disk access: defaults, exclude, include."""

    def __init__(
        self,
        exclude: Sequence[str] = (),
        include: Sequence[str] = (),
        defaults: Sequence[tuple[str, Sequence[str]]] = DEFAULT_RULES,
    ) -> None:
        self.exclude = check_globs("exclude", exclude)
        self.include = check_globs("include", include)
        #: what the managed block of .git/info/exclude holds (include is not there: what
        #: it re-admits is committed, and git never ignores a tracked file)
        self.patterns: tuple[str, ...] = (
            tuple(p for _reason, group in defaults for p in group) + self.exclude
        )
        self._defaults = [(reason, _filter(group)) for reason, group in defaults]
        self._exclude = _filter(self.exclude)
        self._include = _filter(self.include)

    def reason(self, rel: str, is_dir: bool = False) -> str | None:
        """Why ``rel`` (relative, ``/``-separated) is not configuration, or None."""
        rel = rel.strip("/")
        if not rel:
            return None
        if is_git_internal(rel):
            return GIT
        probe = rel + "/" if is_dir else rel
        if self._exclude.is_ignored(probe):
            return EXCLUDE
        if self.include and self._include.is_ignored(probe):
            return None
        for reason, rules in self._defaults:
            if rules.is_ignored(probe):
                return reason
        return None

    def ignores(self, rel: str, is_dir: bool = False) -> bool:
        return self.reason(rel, is_dir) is not None

    def included(self, rel: str) -> bool:
        """An include glob names this file: it is configuration whatever its contents."""
        return bool(self.include) and bool(self._include.is_ignored(rel.strip("/")))

    def may_prune(self, rel: str, reason: str) -> bool:
        """A directory excluded for ``reason`` can be skipped whole: no include glob can
        re-admit anything below it."""
        if reason in (GIT, EXCLUDE) or not self.include:
            return True
        return not any(_may_reach(glob, rel.strip("/")) for glob in self.include)


def _may_reach(glob: str, directory: str) -> bool:
    """Could gitignore pattern ``glob`` match ``directory`` or something below it?"""
    pattern = glob.rstrip("/")
    if "/" not in pattern or pattern.startswith("**"):
        return True  # a base-name pattern matches at any depth
    parts = pattern.lstrip("/").split("/")  # anchored: compare segment by segment
    for i, name in enumerate(directory.split("/")):
        if i >= len(parts) or parts[i] == "**":
            return True  # it names an ancestor (everything below is in), or any depth
        if not fnmatch.fnmatchcase(name, parts[i]):
            return False
    return True


class PathFilter:
    """StaticIgnore plus the directory's .gitignore files, for walking one work tree."""

    def __init__(self, static: StaticIgnore, manager: IgnoreFilterManager | None = None):
        self.static = static
        self._manager = manager

    @classmethod
    def for_repo(cls, repo: object, static: StaticIgnore) -> "PathFilter":
        """Re-create per scan: .gitignore files may have changed since the last one.

        As dulwich's ``IgnoreFilterManager.from_repo``, but without our managed block of
        ``.git/info/exclude``: it holds our own decisions, and ``include`` overrides them.
        """
        config = repo.get_config_stack()  # type: ignore[attr-defined]
        filters = [_filter(outside_block(_read(os.path.join(repo.controldir(), "info", "exclude"))))]  # type: ignore[attr-defined]
        with suppress(OSError):
            filters.append(IgnoreFilter.from_path(os.path.expanduser(default_user_ignore_filter_path(config))))
        ignorecase = config.get_boolean(b"core", b"ignorecase", False)
        return cls(static, IgnoreFilterManager(repo.path, filters, ignorecase))  # type: ignore[attr-defined]

    @classmethod
    def for_tree(cls, root: str | os.PathLike[str], static: StaticIgnore) -> "PathFilter":
        """A directory without ``.git`` yet: only its .gitignore files count."""
        return cls(static, IgnoreFilterManager(os.fspath(root), [], False))

    def dir_reason(self, rel: str) -> str | None:
        """Why the walk may skip this whole directory, or None to walk into it."""
        reason = self.static.reason(rel, is_dir=True)
        if reason is not None and self.static.may_prune(rel, reason):
            return reason
        if self._manager is not None and self._manager.may_prune_directory(rel):
            return GITIGNORE
        return None

    def file_reason(self, rel: str) -> str | None:
        reason = self.static.reason(rel, is_dir=False)
        if reason is not None:
            return reason
        if self._manager is not None and self._manager.is_ignored(rel):
            return GITIGNORE
        return None

    def path_reason(self, rel: str) -> str | None:
        """``file_reason``, also when a directory above the file would be skipped."""
        parts = rel.strip("/").split("/")
        for i in range(1, len(parts)):
            reason = self.dir_reason("/".join(parts[:i]))
            if reason is not None:
                return reason
        return self.file_reason(rel)

    def included(self, rel: str) -> bool:
        return self.static.included(rel)

    def skip_dir(self, rel: str) -> bool:
        return self.dir_reason(rel) is not None

    def skip_file(self, rel: str) -> bool:
        return self.file_reason(rel) is not None


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except OSError:
        return ""


def outside_block(text: str) -> list[str]:
    """The lines of an exclude file that are not in our managed block (the user's own)."""
    kept: list[str] = []
    inside = False
    for line in text.splitlines():
        if line == _BEGIN:
            inside = True
        elif line == _END and inside:
            inside = False
        elif not inside:
            kept.append(line)
    return kept


def managed_block(text: str) -> list[str]:
    """The lines inside our managed block of an exclude file."""
    lines = text.splitlines()
    if _BEGIN not in lines:
        return []
    start = lines.index(_BEGIN) + 1
    end = lines.index(_END, start) if _END in lines[start:] else len(lines)
    return lines[start:end]


def literal(rel: str) -> str:
    """A path as an anchored gitignore pattern that matches exactly that path."""
    escaped = "".join("\\" + ch if ch in _GLOB_CHARS + "\\" else ch for ch in rel)
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return "/" + escaped


def merge_exclude_file(existing: str, patterns: Sequence[str]) -> str:
    """``existing`` .git/info/exclude text with our managed block replaced by ``patterns``."""
    kept = outside_block(existing)
    while kept and not kept[-1].strip():
        kept.pop()
    block = [_BEGIN, *patterns, _END]
    return "\n".join([*kept, *([""] if kept else []), *block]) + "\n"
