"""Database URLs: ``sqlite:///path`` and ``postgresql+psycopg://user@host/db``.

Which backend a URL names decides everything else (``trade_stream.source.open_source``),
so parsing it is part of the neutral core.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlencode

from trade_stream.errors import BadInputError


class SqliteFileUrl(NamedTuple):
    """A plain ``sqlite:///path`` URL: the common case, taken as it is."""

    database: str

    @staticmethod
    def get_backend_name() -> str:
        return "sqlite"


class DatabaseUrl(NamedTuple):
    """``driver://[user[:password]@][host][:port][/database][?key=value...]`` as SQLAlchemy
    reads it (user, password and database percent-decoded), parsed here because importing
    SQLAlchemy costs a PostgreSQL command about 0.14 s of start-up and it is needed for
    nothing else."""

    drivername: str
    username: str | None
    password: str | None
    host: str | None
    port: int | None
    database: str | None
    query: dict[str, str]

    def get_backend_name(self) -> str:
        return self.drivername.split("+", 1)[0]

    def render_as_string(self, hide_password: bool = True) -> str:
        """The URL for messages (password as ``***`` unless asked otherwise)."""
        text = f"{self.drivername}://"
        if self.username is not None:
            text += quote(self.username, safe="")
            if self.password is not None:
                text += ":" + ("***" if hide_password else quote(self.password, safe=""))
            text += "@"
        if self.host is not None:
            text += f"[{self.host}]" if ":" in self.host else self.host
        if self.port is not None:
            text += f":{self.port}"
        if self.database is not None:
            text += f"/{self.database}"
        if self.query:
            text += "?" + urlencode(self.query)
        return text


_PLAIN_SQLITE = re.compile(r"sqlite(?:\+pysqlite)?:///([^?%]+)")
_URL = re.compile(r"""
    (?P<name>[\w+]+)://
    (?:(?P<username>[^:/]*)(?::(?P<password>[^@]*))?@)?
    (?:(?:\[(?P<ipv6host>[^/?]+)\]|(?P<ipv4host>[^/:?]+))?(?::(?P<port>[^/?]*))?)?
    (?:/(?P<database>[^?]*))?
    (?:\?(?P<query>.*))?
    """, re.X)


def parse_url(url: str) -> SqliteFileUrl | DatabaseUrl:
    plain = _PLAIN_SQLITE.fullmatch(url)
    if plain and plain.group(1) != ":memory:":
        return SqliteFileUrl(plain.group(1))
    found = _URL.fullmatch(url)
    port = found.group("port") if found else None
    if found is None or (port and not port.isdigit()):
        raise BadInputError(f"not a database URL: {url!r} (e.g. sqlite:///tradesv3.sqlite)")
    user, password, database = found.group("username", "password", "database")
    parsed = DatabaseUrl(
        drivername=found.group("name"),
        username=unquote(user) if user is not None else None,
        password=unquote(password) if password is not None else None,
        host=found.group("ipv6host") or found.group("ipv4host"),
        port=int(port) if port else None,
        database=unquote(database) if database else None,
        query=dict(parse_qsl(found.group("query") or "")),
    )
    backend = parsed.get_backend_name()  # which backends exist: trade_stream.source.BACKENDS
    if backend == "sqlite" and (not parsed.database or parsed.database == ":memory:"):
        raise BadInputError(f"{url!r}: a SQLite database file is required (sqlite:///path/to/file)")
    return parsed
