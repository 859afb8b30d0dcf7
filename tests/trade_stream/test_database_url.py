"""Plain SQLite URLs are parsed without SQLAlchemy, to the same database path."""

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
def test_plain_sqlite_urls_skip_sqlalchemy_and_name_the_same_file(url):
    parsed = parse_url(url)
    assert isinstance(parsed, SqliteFileUrl)
    assert parsed.database == make_url(url).database
    assert DatabaseService(url).path.as_posix() == make_url(url).database


@pytest.mark.parametrize("url", ["sqlite:///a%20b.db", "sqlite:///x.db?mode=ro"])
def test_other_sqlite_urls_still_go_through_sqlalchemy(url):
    parsed = parse_url(url)
    assert not isinstance(parsed, SqliteFileUrl)
    assert parsed.database == make_url(url).database


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://", "mysql://h/db", "not a url"])
def test_urls_that_name_no_sqlite_file_are_refused(url):
    with pytest.raises(BadInputError):
        DatabaseService(url)
