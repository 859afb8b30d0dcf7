"""Database URLs: ``sqlite:///path`` and ``postgresql+psycopg://user@host/db``.

Which backend a URL names decides everything else (``trade_stream.source.open_source``),
so parsing it is part of the neutral core.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

from trade_stream.errors import BadInputError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL


class SqliteFileUrl(NamedTuple):
    """A plain ``sqlite:///path`` URL, parsed without SQLAlchemy (its import is slow, and a
    SQLite command needs nothing else from it); anything fancier goes through SQLAlchemy's
    own parser."""

    database: str

    @staticmethod
    def get_backend_name() -> str:
        return "sqlite"


_PLAIN_SQLITE = re.compile(r"sqlite(?:\+pysqlite)?:///([^?%]+)")


def parse_url(url: str) -> "URL | SqliteFileUrl":
    plain = _PLAIN_SQLITE.fullmatch(url)
    if plain and plain.group(1) != ":memory:":
        return SqliteFileUrl(plain.group(1))
    from sqlalchemy.engine import make_url  # imported here: it slows every CLI start
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise BadInputError(f"not a database URL: {url!r} (e.g. sqlite:///tradesv3.sqlite)") from None
    backend = parsed.get_backend_name()  # which backends exist: trade_stream.source.BACKENDS
    if backend == "sqlite" and (not parsed.database or parsed.database == ":memory:"):
        raise BadInputError(f"{url!r}: a SQLite database file is required (sqlite:///path/to/file)")
    return parsed
