"""Which tables to protect: ``[database] include/exclude`` globs over what exists.

Pure: takes the table names and whether each has a primary key.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from trade_stream.errors import BadInputError

INTERNAL_PREFIXES = ("_tradevault_", "sqlite_")


@dataclass
class Selection:
    tables: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def select_tables(has_pk: dict[str, bool], include: list[str], exclude: list[str]) -> Selection:
    """Every table with a primary key by default; an explicitly named table that is
    missing or has no primary key is an error, a glob match without one a warning."""
    candidates = {t: pk for t, pk in has_pk.items() if not t.startswith(INTERNAL_PREFIXES)}
    for pattern in include:
        if not _is_glob(pattern):
            if pattern not in candidates:
                raise BadInputError(f"[database] include names table {pattern!r}, which does not exist")
            if not candidates[pattern]:
                raise BadInputError(
                    f"[database] include names table {pattern!r}, which has no primary key"
                )
    selection = Selection()
    for table in sorted(candidates):
        if include and not any(fnmatch.fnmatchcase(table, p) for p in include):
            continue
        if any(fnmatch.fnmatchcase(table, p) for p in exclude):
            continue
        if not candidates[table]:
            selection.warnings.append(f"table {table!r} has no primary key: not protected")
            continue
        selection.tables.append(table)
    return selection
