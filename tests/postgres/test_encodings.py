"""Databases not encoded in UTF-8 (``CREATE DATABASE ... ENCODING``): wal2json writes its
JSON in the database's encoding, and tradevault reads UTF-8. Their text is backed up and
restored exactly, into PostgreSQL and into SQLite, full backup and incremental alike."""

from __future__ import annotations

import sqlite3

import pytest

from tests.postgres.pg_helpers import engine, execute, fetch, make_store, restore

pytestmark = pytest.mark.xdist_group("postgres")

# every character is one the encoding holds (the euro sign is in WIN1252, not in LATIN1)
TEXTS = {"LATIN1": ["café über", "naïve été", "Ærø ½ ¿"], "WIN1252": ["café €", "“quoted” — dash", "ŽŒ"],
         "SQL_ASCII": ["café über", "日本語", "€ 😀"]}


@pytest.mark.parametrize("encoding", sorted(TEXTS))
def test_text_of_a_database_in_another_encoding_comes_back_exactly(pg, work_dir, encoding):
    name = f"enc_{encoding.lower()}_{work_dir.name[-6:]}".replace("-", "_")
    with pg.cluster.admin() as conn:
        conn.execute(f"CREATE DATABASE {name} ENCODING '{encoding}' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
    pg.names.append(name)
    src = pg.cluster.url(name)
    first, second, third = TEXTS[encoding]
    execute(src, "CREATE TABLE t (id int PRIMARY KEY, v text, c varchar(40))",
            ("INSERT INTO t VALUES (1, %s, %s)", (first, first)))
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, ("INSERT INTO t VALUES (2, %s, %s)", (second, second)),
            ("UPDATE t SET v = v || %s WHERE id = 1", (third,)))
    assert engine(src, store).incremental().count == 2
    expected = [(1, first + third, first), (2, second, second)]
    assert fetch(src, "SELECT * FROM t ORDER BY id") == expected
    dst = pg.new("dst")
    restore(store, dst)
    assert fetch(dst, "SELECT * FROM t ORDER BY id") == expected
    path = work_dir / "restored.sqlite"
    restore(store, f"sqlite:///{path}")
    with sqlite3.connect(path) as lite:
        assert lite.execute("SELECT * FROM t ORDER BY id").fetchall() == expected
