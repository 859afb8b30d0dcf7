"""Two databases of one server backed up under one source name (a config copied from one
bot to the next, ``name = "bot"`` in both). Replication slots are the server's, so the
second full backup took the first database's slot over: it dropped it and made its own, and
the first database's next incremental failed with a bare "replication slot ... was not
created in this database", its changes since lost to its chain. The second database's
backup now refuses, naming the database the slot belongs to, and changes nothing."""

from __future__ import annotations

import pytest

from tests.postgres.pg_helpers import engine, execute, fetch, make_store, restore
from trade_stream.errors import BadInputError

pytestmark = pytest.mark.xdist_group("postgres")


def test_a_second_database_under_the_same_source_name_is_refused(pg, work_dir):
    first, second = pg.new("bot_live"), pg.new("bot_dry")
    for url in (first, second):
        execute(url, "CREATE TABLE trades (id int PRIMARY KEY, pair text)", "INSERT INTO trades VALUES (1, 'BTC')")
    live, dry = make_store(work_dir / "live", source="bot"), make_store(work_dir / "dry", source="bot")
    engine(first, live).full()
    with pytest.raises(BadInputError, match="belongs to database 'bot_live.*give this one its own"):
        engine(second, dry).full()
    assert dry.entries() == []
    assert fetch(second, "SELECT to_regclass('public._tradevault_meta')") == [(None,)]  # nothing installed
    execute(first, "INSERT INTO trades VALUES (2, 'ETH')")
    assert engine(first, live).incremental().count == 1  # the first database's capture goes on
    restored = pg.new("restored")
    restore(live, restored)
    assert fetch(restored, "SELECT * FROM trades ORDER BY id") == [(1, "BTC"), (2, "ETH")]
