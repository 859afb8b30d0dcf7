"""Updates that leave a large value unchanged: wal2json leaves TOASTed values an update did
not change out of its message (the WAL holds only a pointer to them). Every restore point
must still hold them: they were restored as NULL before, without a word."""

from __future__ import annotations

import sqlite3
import time

import pytest

from tests.postgres.pg_helpers import connect, engine, execute, make_store, restore
from trade_stream.errors import IntegrityError
from trade_stream.postgres.stored_images import RowImages
from trade_stream.postgres.wal2json import UNCHANGED, StreamDecoder, UnchangedValuesMissing
from trade_stream.schema import Column, TableSchema

pytestmark = pytest.mark.xdist_group("postgres")


def big(seed: int) -> str:
    """About 13 kB that pglz cannot compress below the TOAST threshold: stored out of line."""
    return f"(SELECT string_agg(md5(i::text || '{seed}'), '') FROM generate_series(1, 400) i)"


STATE = "SELECT id, n, md5(doc), md5(meta::text) FROM t ORDER BY id"


def _points(src: str, steps: list[list[str]]) -> list[tuple[int, list[tuple]]]:
    """Run each step as one transaction; after each, (a time just past its commit, the table)."""
    out = []
    for statements in steps:
        conn = connect(src)
        with conn.transaction():
            for statement in statements:
                conn.execute(statement)
        out.append((time.time_ns() // 1000, conn.execute(STATE).fetchall()))
        conn.close()
        time.sleep(0.01)
    return out


def test_every_restore_point_keeps_unchanged_toasted_values(pg, work_dir):
    src = pg.new("src")
    execute(src, "CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL, doc text, meta jsonb)",
            *[f"INSERT INTO t VALUES ({i}, 0, {big(i)}, jsonb_build_object('blob', {big(10 + i)}))" for i in (1, 2, 3)])
    store = make_store(work_dir)
    engine(src, store).full()
    first = _points(src, [
        ["UPDATE t SET n = n + 1 WHERE id = 1"],  # both values only in the full backup
        [f"UPDATE t SET doc = {big(99)} WHERE id = 1"],  # meta: from the update before
        ["UPDATE t SET n = n + 1 WHERE id = 1"],  # both: from the stream
        ["UPDATE t SET n = n + 1 WHERE id = 2", "DELETE FROM t WHERE id = 2"],
        [f"INSERT INTO t VALUES (4, 0, {big(4)}, jsonb_build_object('blob', {big(14)}))",
         "UPDATE t SET n = n + 1 WHERE id = 4"],
        ["UPDATE t SET id = 30 WHERE id = 3", "UPDATE t SET n = n + 1 WHERE id = 30"],  # the key changes
    ])
    engine(src, store).incremental()
    second = _points(src, [
        ["UPDATE t SET n = n + 1 WHERE id IN (1, 30)"],  # found in the incremental before
        ["UPDATE t SET n = n + 1 WHERE id = 4", f"UPDATE t SET meta = jsonb_build_object('blob', {big(44)})"],
    ])
    engine(src, store).incremental()
    for i, (ts, expected) in enumerate(first + second):
        dst = pg.new(f"dst{i}")
        restore(store, dst, ts=ts)
        assert connect(dst).execute(STATE).fetchall() == expected, f"point {i}"
        assert None not in [v for row in expected for v in row]  # the check can fail


def test_restore_into_sqlite_keeps_unchanged_toasted_values(pg, work_dir):
    src = pg.new("src")
    execute(src, "CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL, doc text, meta jsonb)",
            f"INSERT INTO t VALUES (1, 0, {big(1)}, jsonb_build_object('blob', {big(2)}))")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "UPDATE t SET n = 5")
    warnings = engine(src, store).incremental().warnings
    assert any("table 't': 1 update(s) left large (TOASTed) values out" in w for w in warnings), warnings
    target = work_dir / "restored.sqlite"
    restore(store, f"sqlite:///{target}")
    doc, meta = connect(src).execute("SELECT doc, meta::text FROM t").fetchone()
    conn = sqlite3.connect(target)
    assert conn.execute("SELECT n, doc FROM t").fetchone() == (5, doc)
    assert conn.execute("SELECT meta FROM t").fetchone()[0].replace(" ", "") == meta.replace(" ", "")


def test_a_table_without_key_takes_them_from_its_old_row(pg, work_dir):
    """REPLICA IDENTITY FULL (what tradevault sets on a keyless table) writes the old row
    whole: the left-out values come from it, the store is not read."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TABLE t (n int, doc text)", "ALTER TABLE t REPLICA IDENTITY FULL",
            f"INSERT INTO t VALUES (1, {big(1)}), (2, {big(2)})")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "UPDATE t SET n = n + 10")
    engine(src, store).incremental()
    restore(store, dst)
    query = "SELECT n, md5(doc) FROM t ORDER BY n"
    assert connect(dst).execute(query).fetchall() == connect(src).execute(query).fetchall()


def test_a_schema_change_in_the_same_incremental(pg, work_dir):
    """The stream read again (to fill values) also ends at the resynchronisation's
    snapshot; an update the known columns no longer match fills them all the same."""
    src = pg.new("src")
    execute(src, "CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL, doc text, meta jsonb)",
            f"INSERT INTO t VALUES (1, 0, {big(1)}, '{{}}')")
    store = make_store(work_dir)
    engine(src, store).full()
    points = _points(src, [["UPDATE t SET n = 1"], ["ALTER TABLE t ADD COLUMN extra int"],
                           ["UPDATE t SET n = 2, extra = 3"]])
    engine(src, store).incremental()
    for i, (ts, expected) in enumerate(points):
        dst = pg.new(f"dst{i}")
        restore(store, dst, ts=ts)
        assert connect(dst).execute(STATE).fetchall() == expected, f"point {i}"
    dst = pg.new("last")
    restore(store, dst)
    assert connect(dst).execute("SELECT extra FROM t").fetchall() == [(3,)]


@pytest.mark.parametrize("key", ["id numeric(30, 10) PRIMARY KEY", "id timestamptz PRIMARY KEY", "id uuid PRIMARY KEY"])
def test_rows_keyed_by_values_that_travel_as_extensions_are_found(pg, work_dir, key):
    """A numeric, timestamp or uuid key travels as a msgpack extension: the stored row is
    found by its value (before, by the extension object's address: never)."""
    src, dst = pg.new("src"), pg.new("dst")
    value = {"numeric": "12345.6789", "timestamptz": "2026-01-01 12:00+02",
             "uuid": "00000000-0000-0000-0000-000000000007"}
    literal = next(v for k, v in value.items() if k in key)
    execute(src, f"CREATE TABLE t ({key}, n int NOT NULL, doc text)",
            f"INSERT INTO t VALUES ('{literal}', 0, {big(1)})")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "UPDATE t SET n = 1")
    engine(src, store).incremental()
    execute(src, "UPDATE t SET n = 2")  # now from the incremental before, through its key index
    engine(src, store).incremental()
    restore(store, dst)
    query = "SELECT n, md5(doc) FROM t"
    assert connect(dst).execute(query).fetchall() == connect(src).execute(query).fetchall()


# -- the decoder alone ----------------------------------------------------------------------------

TABLE = TableSchema(name="t", columns=[Column("id", "integer", "integer"), Column("n", "integer", "integer"),
                                       Column("doc", "text", "text")], primary_key=["id"], dialect="postgresql")


def _messages(update: bytes) -> list[bytes]:
    return [b'{"action":"B","xid":7,"timestamp":"2026-12-03 10:00:00+00","nextlsn":"0/100"}', update,
            b'{"action":"C","xid":7,"nextlsn":"0/100"}']


UPDATE = (b'{"action":"U","schema":"public","table":"t","columns":[{"name":"id","type":"integer","value":1},'
          b'{"name":"n","type":"integer","value":2}],"identity":[{"name":"id","type":"integer","value":1}]}')


def test_decoder_asks_for_the_stored_row_when_nothing_it_holds_has_the_value():
    decoder = StreamDecoder([TABLE])
    with pytest.raises(UnchangedValuesMissing):
        for message in _messages(UPDATE):
            decoder.feed(message)


def test_decoder_collects_the_keys_then_fills_from_the_rows_it_is_given():
    images = RowImages()
    scan = StreamDecoder([TABLE])
    scan.collect_into(images)
    for message in _messages(UPDATE):
        scan.feed(message)
    assert images.counts == {"t": 1} and images.wanted("t", b"1") and not images.wanted("t", b"2")
    assert scan.take()[0].row == [1, 2, UNCHANGED]
    images.put("t", b"1", [1, 1, "the stored text"])
    decoder = StreamDecoder([TABLE])
    decoder.fill_from(images)
    for message in _messages(UPDATE):
        decoder.feed(message)
    assert decoder.take()[0].row == [1, 2, "the stored text"]
    assert decoder.changed == set()  # not mistaken for a schema change
    assert images.get("t", b"1") == [1, 2, "the stored text"]  # kept up to date


def test_decoder_refuses_to_store_a_value_nothing_holds():
    decoder = StreamDecoder([TABLE])
    decoder.fill_from(RowImages())
    with pytest.raises(IntegrityError, match="left out the unchanged value of doc"):
        for message in _messages(UPDATE):
            decoder.feed(message)


def test_decoder_fills_from_the_old_row_of_replica_identity_full():
    decoder = StreamDecoder([TABLE])
    update = UPDATE.replace(b'"identity":[{"name":"id","type":"integer","value":1}]',
                            b'"identity":[{"name":"id","type":"integer","value":1},'
                            b'{"name":"n","type":"integer","value":1},{"name":"doc","type":"text","value":"old"}]')
    for message in _messages(update):
        decoder.feed(message)
    assert decoder.take()[0].row == [1, 2, "old"]


def test_decoder_does_not_stop_the_capture_on_a_table_that_changed_its_columns():
    """A message with a column the decoder does not know (an ALTER not resynchronised yet)
    and without ``doc``: the table is resynchronised after the stream; a value no stored
    row gives is NULL there, not an error every later incremental would meet again."""
    decoder = StreamDecoder([TABLE])
    decoder.fill_from(RowImages())
    update = UPDATE.replace(b'{"name":"n","type":"integer","value":2}]',
                            b'{"name":"n","type":"integer","value":2},{"name":"added","type":"integer","value":5}]')
    for message in _messages(update):
        decoder.feed(message)
    assert decoder.take()[0].row == [1, 2, None]
    assert decoder.changed == {"t"}
