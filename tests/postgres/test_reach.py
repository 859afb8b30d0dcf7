"""What a PostgreSQL backup cannot protect as it is, it says: tables of a schema other than
``public`` are named by the full backup's warnings and by status (a backup that silently
skips a schema looks complete), unlogged and foreign tables are left out and named, and tables
related by inheritance are each backed up with their own rows."""

from __future__ import annotations

import sqlite3

import pytest

from tests.postgres.pg_helpers import connect, digest, engine, execute, make_store, restore
from trade_stream.errors import BadInputError
from trade_stream.postgres.backup import PostgresBackupEngine
from trade_stream.postgres.database import PostgresDatabase
from trade_stream.postgres.source import PostgresSource

pytestmark = pytest.mark.xdist_group("postgres")


def test_tables_of_other_schemas_are_named_by_the_full_backup_and_status(pg, work_dir):
    src = pg.new("src")
    execute(src, "CREATE TABLE trades (id bigint PRIMARY KEY, v text)",
            "CREATE SCHEMA bot", "CREATE TABLE bot.orders (id bigint PRIMARY KEY)",
            'CREATE SCHEMA "Odd"', 'CREATE TABLE "Odd"."Fills" (id bigint PRIMARY KEY)')
    store = make_store(work_dir)
    full = engine(src, store).full()
    assert full.tables == {"trades": 0}
    assert full.warnings == ['only schema public is backed up: 2 table(s) of other schemas are not '
                             '("Odd"."Fills", bot.orders; [database] schema chooses the schema)']
    status = PostgresSource(src).capture_status(store, store.entries())
    assert status["unprotected"] == ['"Odd"."Fills"', "bot.orders"]
    execute(src, "INSERT INTO trades VALUES (1, 'a')")
    assert engine(src, store).incremental().warnings == []  # said once, not every second by the agent


def test_an_unlogged_table_is_left_out_and_named_not_restored_stale(pg, work_dir):
    """Its changes never reach the WAL: a full backup of it would come back stale with no
    word (found so: the restore had the full's row, not the later ones)."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TABLE trades (id bigint PRIMARY KEY)",
            "CREATE UNLOGGED TABLE quotes (id int PRIMARY KEY, v text)", "INSERT INTO quotes VALUES (1, 'a')")
    store = make_store(work_dir)
    full = engine(src, store).full()
    assert full.tables == {"trades": 0}
    assert full.warnings == ["table 'quotes' is UNLOGGED: its changes never reach the WAL, so it is not backed up "
                             "(ALTER TABLE \"quotes\" SET LOGGED to protect it)"]
    assert PostgresSource(src).capture_status(store, store.entries())["unprotected"] == ["quotes"]
    with pytest.raises(BadInputError, match="include names table 'quotes', which is UNLOGGED"):
        PostgresBackupEngine(PostgresDatabase(src, include=["trades", "quotes"]), store).full()

    execute(src, "ALTER TABLE quotes SET LOGGED", "INSERT INTO quotes VALUES (2, 'b')")  # protected from now on
    engine(src, store).incremental()
    restore(store, dst)
    rows = "SELECT * FROM quotes ORDER BY id"
    assert connect(dst).execute(rows).fetchall() == connect(src).execute(rows).fetchall() == [(1, "a"), (2, "b")]


def test_tables_related_by_inheritance_come_back_with_their_own_rows(pg, work_dir):
    """COPY reads a table's own rows, and the counts and digests count them alike (ONLY): a
    backup of a parent with children used to fail its own restore (counts 1 against 2)."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TABLE base (id int PRIMARY KEY, v text)", "CREATE TABLE child (extra int) INHERITS (base)",
            "INSERT INTO base VALUES (1, 'a')", "INSERT INTO child VALUES (2, 'b', 3)")
    store = make_store(work_dir)
    full = engine(src, store).full()
    assert full.tables == {"base": 1, "child": 1}
    assert full.warnings == ["table 'child' inherits from 'base': each is backed up with its own rows and "
                             "restored without INHERITS"]
    execute(src, "INSERT INTO child VALUES (4, 'd', 5)", "UPDATE base SET v = 'z' WHERE id = 2")  # a child's row
    engine(src, store).incremental()
    restore(store, dst)
    for table in ("base", "child"):
        rows = f"SELECT * FROM ONLY {table} ORDER BY id"
        assert connect(dst).execute(rows).fetchall() == connect(src).execute(rows).fetchall()
    assert digest(dst, {"base": ["id"], "child": []}) == digest(src, {"base": ["id"], "child": []})


def test_a_restore_notes_what_reads_or_references_another_schema_and_goes_on(pg, work_dir):
    """A view over a table of another schema, a view over that view, a foreign key into one,
    a view, a default, a CHECK, an index and an (audit) trigger calling a function of another
    schema:
    those are not backed up, so
    these cannot come back; they made the restore fail (exit 3, or psycopg's own 'schema
    "bot" does not exist'). Now each is noted."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE SCHEMA bot", "CREATE TABLE bot.cfg (k text PRIMARY KEY, v text)",
            "INSERT INTO bot.cfg VALUES ('a', 'x')",
            "CREATE FUNCTION bot.now_ms() RETURNS bigint LANGUAGE sql AS 'SELECT 1'",
            "CREATE FUNCTION bot.positive(int) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 > 0'",
            "CREATE TABLE trades (id int PRIMARY KEY CONSTRAINT id_positive CHECK (bot.positive(id)),"
            " k text REFERENCES bot.cfg (k), at bigint DEFAULT bot.now_ms(), CHECK (id < 1000000))",
            "INSERT INTO trades VALUES (1, 'a')",
            "CREATE VIEW trade_cfg AS SELECT t.id, c.v FROM trades t JOIN bot.cfg c ON c.k = t.k",
            "CREATE VIEW trade_cfg_ids AS SELECT id FROM trade_cfg",
            "CREATE VIEW trade_ids AS SELECT id FROM trades",
            "CREATE VIEW trade_times AS SELECT id, bot.now_ms() AS now FROM trades",
            "CREATE FUNCTION bot.neg(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT -$1'",
            "CREATE INDEX trades_neg ON trades (bot.neg(id))",
            "CREATE TABLE bot.log (what text)",
            "CREATE FUNCTION bot.audit() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN INSERT INTO bot.log VALUES (TG_OP); RETURN NEW; END $$",
            "CREATE TRIGGER trades_audit AFTER INSERT ON trades FOR EACH ROW EXECUTE FUNCTION bot.audit()")
    store = make_store(work_dir)
    engine(src, store).full()
    result = restore(store, dst)
    assert sorted(result.notes) == [
        'trades.at: default bot.now_ms() not kept: schema "bot" does not exist',
        'trades: check id_positive not kept: schema "bot" does not exist',
        "trades: foreign key trades_k_fkey to bot.cfg not created (schema bot is not backed up)",
        "trades: index CREATE INDEX trades_neg ON public.trades USING btree (bot.neg(id)) not kept: "
        'schema "bot" does not exist',
        "trades: trigger CREATE TRIGGER trades_audit AFTER INSERT ON public.trades FOR EACH ROW EXECUTE FUNCTION "
        'bot.audit() not kept: schema "bot" does not exist',
        "view trade_cfg not created: it reads bot.cfg, of a schema that is not backed up",
        "view trade_cfg_ids not created: it reads trade_cfg, not created",
        'view trade_times not created: schema "bot" does not exist (only schema public is backed up)',
    ]
    assert connect(dst).execute("SELECT * FROM trade_ids").fetchall() == [(1,)]
    assert connect(dst).execute("SELECT conname FROM pg_constraint WHERE conrelid = 'trades'::regclass"
                                " AND contype = 'c'").fetchall() == [("trades_id_check",)]  # the other CHECK kept

    lite = work_dir / "trades.sqlite"
    notes = restore(store, f"sqlite:///{lite}").notes
    assert "trades: foreign key trades_k_fkey to bot.cfg not kept (schema bot is not backed up)" in notes
    with sqlite3.connect(lite) as conn:
        assert conn.execute("SELECT id, k FROM trades").fetchall() == [(1, "a")]


def test_foreign_tables_are_named_and_a_view_over_one_is_noted(pg, work_dir):
    """A foreign table's rows live on another server: neither they nor its definition are
    backed up. The full backup said nothing of it, and a view reading it failed the whole
    restore (exit 3: 'relation "rates" does not exist'). Now the full backup and status name
    it, the restore notes the view and goes on; event triggers calling another schema's
    function and operator classes are named too."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE EXTENSION file_fdw", "CREATE SERVER files FOREIGN DATA WRAPPER file_fdw",
            "CREATE FOREIGN TABLE rates (pair text, rate int) SERVER files"
            " OPTIONS (filename '/srv/rates.csv', format 'csv')",
            "CREATE TABLE trades (id int PRIMARY KEY, pair text)", "INSERT INTO trades VALUES (1, 'BTC')",
            "CREATE VIEW priced AS SELECT t.id, r.rate FROM trades t JOIN rates r USING (pair)",
            "CREATE VIEW trade_pairs AS SELECT id, pair FROM trades",
            "CREATE PUBLICATION bot_pub FOR TABLE trades",
            "CREATE SCHEMA ops",
            "CREATE FUNCTION ops.log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN NULL; END$$",
            "CREATE EVENT TRIGGER ddl_log ON ddl_command_end EXECUTE FUNCTION ops.log_ddl()",
            "CREATE OPERATOR CLASS text_by_length FOR TYPE text USING hash AS FUNCTION 1 hashtext(text)")
    store = make_store(work_dir)
    full = engine(src, store).full()
    assert full.tables == {"trades": 1}
    assert full.warnings == [
        "table 'rates' is a FOREIGN TABLE: its rows live on another server, and neither they nor its definition"
        " (nor its server and user mappings) are backed up; a restore lacks it, and the views that read it",
        "event trigger(s) ddl_log are not backed up: their functions are of another schema (pg_dump"
        " --schema-only has their CREATE EVENT TRIGGER)",
        "operator class(es) text_by_length (hash) are not backed up: a restore lacks them, and an index using one"
        " fails it"]
    assert PostgresSource(src).capture_status(store, store.entries())["unprotected"] == ["rates"]
    execute(src, "INSERT INTO trades VALUES (2, 'ETH')")
    assert engine(src, store).incremental().warnings == []

    result = restore(store, dst)
    assert result.notes == ["view priced not created: it reads foreign table(s) rates, which are not backed up"]
    assert connect(dst).execute("SELECT * FROM trade_pairs ORDER BY id").fetchall() == [(1, "BTC"), (2, "ETH")]
    lite = work_dir / "trades.sqlite"
    restore(store, f"sqlite:///{lite}")
    with sqlite3.connect(lite) as conn:
        assert conn.execute("SELECT id, pair FROM trades ORDER BY id").fetchall() == [(1, "BTC"), (2, "ETH")]


def test_large_objects_are_named_as_not_backed_up(pg, work_dir):
    """Writes to large objects are not logically decoded: a restore would give back the
    oids that point at them and no large object. pg_dump has them; the backup says so."""
    src = pg.new("src")
    execute(src, "CREATE TABLE docs (id int PRIMARY KEY, body oid)",
            "INSERT INTO docs SELECT 1, lo_from_bytea(0, 'a statement')")
    full = engine(src, make_store(work_dir)).full()
    assert full.warnings == ["the database holds 1 large object(s) (lo_create, lo_import): they are not backed up, "
                             "logical decoding does not carry them (pg_dump does; a bytea column would be backed up)"]
