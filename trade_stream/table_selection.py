"""Which tables to protect: ``[database] include/exclude`` globs over what exists.

Every table is protected, with or without a primary key (a keyless table is captured by
its whole row); ``exclude`` is the only way to leave one out. Pure: takes the names.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field

from trade_stream.errors import BadInputError

INTERNAL_PREFIXES = ("_tradevault_", "sqlite_")


@dataclass
class Selection:
    tables: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: the tables that exist and are left out by ``include``/``exclude`` (status shows them)
    left_out: list[str] = field(default_factory=list)


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def select_tables(names: Iterable[str], include: list[str], exclude: list[str]) -> Selection:
    """Every table by default (``include`` narrows, ``exclude`` removes); an explicitly
    named table that is missing is an error."""
    candidates = {t for t in names if not t.startswith(INTERNAL_PREFIXES)}
    for pattern in include:
        if not _is_glob(pattern) and pattern not in candidates:
            raise BadInputError(f"[database] include names table {pattern!r}, which does not exist")
    selection = Selection()
    for table in sorted(candidates):
        if (include and not any(fnmatch.fnmatchcase(table, p) for p in include)
                or any(fnmatch.fnmatchcase(table, p) for p in exclude)):
            selection.left_out.append(table)
            continue
        selection.tables.append(table)
    return selection
