"""Database URLs are parsed without SQLAlchemy (its import cost a PostgreSQL command 0.14 s
of start-up), to exactly what SQLAlchemy's own parser reads from them."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from trade_stream.database_url import SqliteFileUrl, parse_url
from trade_stream.errors import BadInputError
from trade_stream.sqlite.database import DatabaseService


@pytest.mark.parametrize("url", [
    "sqlite:///tradesv3.sqlite", "sqlite:////var/lib/bot/trades v3.sqlite", "sqlite+pysqlite:///x.db",
    "sqlite:///a#b.db", "sqlite:///user_data/tradesv3.dryrun.sqlite",
])
def test_plain_sqlite_urls_name_the_same_file_as_sqlalchemy(url):
    parsed = parse_url(url)
    assert isinstance(parsed, SqliteFileUrl)
    assert parsed.database == make_url(url).database
    assert DatabaseService(url).path.as_posix() == make_url(url).database


@pytest.mark.parametrize("url", [
    "sqlite:///a%20b.db", "sqlite:///x.db?mode=ro",
    "postgresql+psycopg://postgres@127.0.0.1:5432/trades",
    "postgresql+psycopg://us%40er:p%3Ass@host:5432/d%20b?host=/tmp&sslmode=require",
    "postgresql://[::1]:5433/db", "postgresql+psycopg:///db?host=/var/run/postgresql",
    "postgresql://u:@h/db", "postgresql://u@h", "postgres://h/db", "mysql://h/db",
])
def test_other_urls_read_as_sqlalchemy_reads_them(url):
    ours, theirs = parse_url(url), make_url(url)
    fields = ("drivername", "username", "password", "host", "port", "database")
    assert [getattr(ours, f) for f in fields] == [getattr(theirs, f) for f in fields]
    assert dict(ours.query) == dict(theirs.query)
    assert ours.get_backend_name() == theirs.get_backend_name()
    assert ours.render_as_string(hide_password=True) == theirs.render_as_string(hide_password=True)


@pytest.mark.parametrize("url", ["postgresql://h:port/db", "not a url", "://h/db"])
def test_malformed_urls_are_bad_input(url):
    with pytest.raises(BadInputError, match="not a database URL"):
        parse_url(url)


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://", "mysql://h/db", "not a url"])
def test_urls_that_name_no_sqlite_file_are_refused(url):
    with pytest.raises(BadInputError):
        DatabaseService(url)


def test_parsing_a_postgresql_url_does_not_import_sqlalchemy():
    import subprocess
    import sys

    code = ("import sys; from trade_stream.database_url import parse_url; "
            "parse_url('postgresql+psycopg://u@h:5432/db?sslmode=require'); "
            "sys.exit('sqlalchemy' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
