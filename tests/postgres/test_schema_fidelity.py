"""PostgreSQL -> PostgreSQL gives back the whole schema: ``pg_dump --schema-only`` of the
restore equals the source's (tradevault's own objects aside), for a schema made by an
ORM's models and one written by hand (partial and expression indexes, a view and a
materialized view, a trigger function, a domain, a sequence owned by a column, foreign keys
with their actions, unique, check and exclusion constraints, comments). Sequences continue
where the source's would; changes of the schema after the full backup (an index, a
constraint, a column) arrive with the incrementals; and the application's own ORM session
keeps working on the restore."""

from __future__ import annotations

import dataclasses
import re
import shutil
import sqlite3
import subprocess
from decimal import Decimal

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from restore.dispatch import restore_to
from restore.planner import Target, plan_restore
from tests.postgres.pg_helpers import connect, engine, execute, make_store, restore
from trade_stream.errors import BadInputError

pytestmark = pytest.mark.xdist_group("postgres")


class Base(DeclarativeBase):
    pass


class Pair(Base):
    __tablename__ = "pairs"
    id: Mapped[int] = mapped_column(sa.Identity(start=1), primary_key=True)
    symbol: Mapped[str] = mapped_column(sa.String(25), unique=True)
    created: Mapped[str] = mapped_column(sa.DateTime, server_default=sa.func.now())


class Trade(Base):
    __tablename__ = "trades"
    __table_args__ = (sa.UniqueConstraint("pair_id", "exchange_id", name="uq_trade_exchange"),
                      sa.CheckConstraint("amount > 0", name="ck_amount_positive"),
                      sa.Index("ix_trades_open", "pair_id", postgresql_where=sa.text("is_open")))
    id: Mapped[int] = mapped_column(primary_key=True)
    pair_id: Mapped[int] = mapped_column(sa.ForeignKey("pairs.id", ondelete="CASCADE", onupdate="CASCADE"))
    exchange_id: Mapped[str] = mapped_column(sa.String(40))
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(18, 8))
    is_open: Mapped[bool] = mapped_column(server_default=sa.true())
    note: Mapped[str | None] = mapped_column(sa.Text, comment="free text from the strategy")


class Fill(Base):
    """``GENERATED ALWAYS AS IDENTITY``: the form PostgreSQL's own docs recommend."""
    __tablename__ = "fills"
    id: Mapped[int] = mapped_column(sa.Identity(always=True), primary_key=True)
    price: Mapped[Decimal] = mapped_column(sa.Numeric(18, 8))


HANDWRITTEN = [
    "CREATE EXTENSION btree_gist",
    "CREATE DOMAIN pct AS numeric(6,3) CHECK (VALUE BETWEEN -100 AND 100)",
    "CREATE SEQUENCE order_no START 1000 INCREMENT 5",
    """CREATE TABLE orders (
         id bigserial PRIMARY KEY,
         trade_id int REFERENCES trades(id) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED,
         no bigint NOT NULL DEFAULT nextval('order_no'),
         side text NOT NULL CHECK (side IN ('buy', 'sell')),
         fee pct DEFAULT 0,
         valid tstzrange,
         updated timestamptz,
         EXCLUDE USING gist (trade_id WITH =, valid WITH &&)
       )""",
    "COMMENT ON TABLE orders IS 'one row per exchange order'",
    "CREATE INDEX orders_side_lower ON orders (lower(side))",
    """CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN NEW.updated := now(); RETURN NEW; END $$""",
    "CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch()",
    "CREATE VIEW open_trades AS SELECT t.id, p.symbol, t.amount FROM trades t JOIN pairs p ON p.id = t.pair_id"
    " WHERE t.is_open",
    "CREATE VIEW big_open_trades AS SELECT * FROM open_trades WHERE amount > 1",
    "CREATE MATERIALIZED VIEW volume AS SELECT pair_id, sum(amount) AS total FROM trades GROUP BY pair_id",
    "CREATE UNIQUE INDEX volume_pair ON volume (pair_id)",
    # a result type no column uses, a function of a table's row type (it cannot exist before
    # the table), comments on an index and a constraint, CLUSTER ON, extended statistics, a
    # rule, an INSTEAD OF trigger on a view
    "CREATE TYPE order_cost AS (fee numeric, side text)",
    "CREATE FUNCTION cost_of(orders) RETURNS order_cost LANGUAGE sql AS $$ SELECT ROW($1.fee, $1.side)::order_cost $$",
    "COMMENT ON INDEX orders_side_lower IS 'for case-blind lookups'",
    "COMMENT ON CONSTRAINT orders_side_check ON orders IS 'two sides only'",
    "ALTER TABLE orders CLUSTER ON orders_pkey",
    "CREATE STATISTICS orders_trade_side (dependencies) ON trade_id, side FROM orders",
    "CREATE TABLE deleted_orders (id bigint, at timestamptz DEFAULT now())",
    "CREATE RULE keep_deleted AS ON DELETE TO orders DO ALSO INSERT INTO deleted_orders (id) VALUES (OLD.id)",
    "CREATE VIEW order_sides AS SELECT id, side FROM orders",
    """CREATE FUNCTION order_sides_update() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN UPDATE orders SET side = NEW.side WHERE id = OLD.id; RETURN NEW; END $$""",
    "CREATE TRIGGER order_sides_update INSTEAD OF UPDATE ON order_sides FOR EACH ROW"
    " EXECUTE FUNCTION order_sides_update()",
]


def _pg_dump(url: str, *, owners: bool = False) -> list[str]:
    """``pg_dump --schema-only`` as statements, tradevault's own objects and session
    settings left out; ``owners``: with owners and privileges."""
    binary = shutil.which("pg_dump") or "/usr/lib/postgresql/15/bin/pg_dump"
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    flags = [] if owners else ["--no-owner", "--no-privileges"]
    text = subprocess.run([binary, "--schema-only", *flags, plain],
                          capture_output=True, text=True, check=True).stdout
    statements = []
    for statement in re.split(r";\n", text):
        lines = [line for line in statement.splitlines() if line.strip() and not line.startswith("--")
                 and not line.startswith(("SET ", "SELECT pg_catalog.set_config", "\\restrict", "\\unrestrict"))]
        if not lines:
            continue
        joined = "\n".join(lines)
        if "_tradevault_" in joined:  # tradevault's own objects
            continue
        statements.append(joined)
    return statements


def same_schema(restored: str, source: str, *, owners: bool = False) -> list[str]:
    """Asserts that no ``_pg_dump`` statement is in one database only; returns the source's."""
    ours, theirs = _pg_dump(restored, owners=owners), _pg_dump(source, owners=owners)
    only_ours, only_theirs = [s for s in ours if s not in theirs], [s for s in theirs if s not in ours]
    assert (only_ours, only_theirs) == ([], []), "\n---\n".join(only_ours + ["======"] + only_theirs)
    return theirs


def test_pg_dump_schema_only_of_the_restore_equals_the_source(pg, work_dir):
    src, dst = pg.new("src"), pg.new("dst")
    orm = sa.create_engine(src)
    Base.metadata.create_all(orm)
    execute(src, *HANDWRITTEN,
            "INSERT INTO pairs (symbol) VALUES ('BTC/USDT'), ('ETH/USDT')",
            "INSERT INTO trades VALUES (1, 1, 'x-1', 0.5, true, NULL), (2, 2, 'x-2', 3, false, 'closed')",
            "INSERT INTO orders (trade_id, side, valid) VALUES (1, 'buy', '[2026-01-01,2026-01-02)')",
            "REFRESH MATERIALIZED VIEW volume")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "INSERT INTO pairs (symbol) VALUES ('SOL/USDT')",
            "INSERT INTO orders (trade_id, side) VALUES (2, 'sell')",
            "UPDATE orders SET fee = 0.1 WHERE id = 1")
    engine(src, store).incremental()
    execute(src, "CREATE INDEX trades_note ON trades (note)",  # the schema changes after the full backup
            "ALTER TABLE pairs ADD COLUMN active boolean NOT NULL DEFAULT true",
            "ALTER TABLE trades ADD CONSTRAINT ck_note_short CHECK (length(note) < 100)",
            "INSERT INTO trades VALUES (3, 3, 'x-3', 1.25, true, 'new')")
    engine(src, store).incremental()
    restore(store, dst)

    ours, theirs = _pg_dump(dst), _pg_dump(src)
    only_ours, only_theirs = [s for s in ours if s not in theirs], [s for s in theirs if s not in ours]
    assert (only_ours, only_theirs) == ([], []), "\n---\n".join(only_ours + ["======"] + only_theirs)
    assert ours == theirs
    conn = connect(dst)
    try:  # sequences continue where the source's would
        for sequence in ("order_no", "orders_id_seq", "pairs_id_seq"):
            ours = conn.execute(f"SELECT nextval('{sequence}')").fetchone()[0]
            theirs = connect(src).execute(f"SELECT nextval('{sequence}')").fetchone()[0]
            assert ours == theirs, sequence
        # a materialized view's rows are not in the change stream: it is refreshed from the
        # restored tables, as the source's would be by a REFRESH now
        execute(src, "REFRESH MATERIALIZED VIEW volume")
        assert conn.execute("SELECT * FROM volume ORDER BY 1").fetchall() == connect(src).execute(
            "SELECT * FROM volume ORDER BY 1").fetchall()
    finally:
        conn.close()
    with pytest.raises(Exception, match="uq_trade_exchange"):  # the constraints are enforced
        execute(dst, "INSERT INTO trades VALUES (9, 1, 'x-1', 1, true, NULL)")
    with pytest.raises(Exception, match="violates foreign key"):
        execute(dst, "INSERT INTO trades VALUES (9, 99, 'x-9', 1, true, NULL)")

    app = sa.create_engine(dst)  # the application keeps working on its restored database
    try:
        with Session(app) as session, session.begin():
            pair = Pair(symbol="ADA/USDT")
            session.add(pair)
            session.flush()
            session.add(Trade(id=10, pair_id=pair.id, exchange_id="x-10", amount=Decimal("2")))
        execute(dst, "UPDATE orders SET side = 'sell' WHERE id = 1")
        conn = connect(dst)
        try:
            assert conn.execute("SELECT updated IS NOT NULL FROM orders WHERE id = 1").fetchone()[0]  # trigger
            assert conn.execute("SELECT (cost_of(o)).side FROM orders o WHERE id = 1").fetchone() == ("sell",)
            conn.execute("UPDATE order_sides SET side = 'buy' WHERE id = 1")  # through the view's trigger
            conn.execute("DELETE FROM orders WHERE id = 2")  # the rule keeps a copy
            assert conn.execute("SELECT side FROM orders WHERE id = 1").fetchone() == ("buy",)
            assert conn.execute("SELECT id FROM deleted_orders").fetchall() == [(2,)]
            conn.commit()
        finally:
            conn.close()
    finally:
        app.dispose()


def test_an_always_identity_table_replays_row_changes_and_stays_always(pg, work_dir):
    """The replay writes the identity column (INSERTs and UPDATEs of a few rows are
    statements, not COPY), which a GENERATED ALWAYS column refuses: the restore keeps it BY
    DEFAULT until the replay is over."""
    src, dst = pg.new("src"), pg.new("dst")
    orm = sa.create_engine(src)
    try:
        Fill.__table__.create(orm)
        with Session(orm) as session, session.begin():
            session.add_all([Fill(price=Decimal(n)) for n in range(1, 6)])
        store = make_store(work_dir)
        engine(src, store).full()
        with Session(orm) as session, session.begin():
            session.add(Fill(price=Decimal("6.5")))
            session.get(Fill, 2).price = Decimal("2.25")
            session.delete(session.get(Fill, 3))
        engine(src, store).incremental()
    finally:
        orm.dispose()
    restore(store, dst)

    assert _pg_dump(dst) == _pg_dump(src)
    rows = "SELECT id, price FROM fills ORDER BY id"
    assert connect(dst).execute(rows).fetchall() == connect(src).execute(rows).fetchall()
    with pytest.raises(Exception, match="GENERATED ALWAYS"):
        execute(dst, "INSERT INTO fills (id, price) VALUES (99, 1)")
    app = sa.create_engine(dst)
    try:
        with Session(app) as session, session.begin():
            fill = Fill(price=Decimal("7"))
            session.add(fill)
            session.flush()
            assert fill.id == 7  # past the source's last id, as the source's next would be
    finally:
        app.dispose()


PARTITIONED = [
    "CREATE TABLE venues (id int PRIMARY KEY, name text)",
    "INSERT INTO venues VALUES (1, 'binance'), (2, 'kraken')",
    """CREATE TABLE fills_log (id bigint, venue int REFERENCES venues(id) ON DELETE CASCADE,
         day date NOT NULL, price numeric(18,8) DEFAULT 0, side text,
         CONSTRAINT ck_price CHECK (price >= 0), PRIMARY KEY (id, day)) PARTITION BY RANGE (day)""",
    "CREATE INDEX fills_log_side ON fills_log (side) WHERE side IS NOT NULL",
    "CREATE TABLE fills_2026 PARTITION OF fills_log FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')"
    " PARTITION BY RANGE (id)",  # partitioned again
    "CREATE TABLE fills_2026_low PARTITION OF fills_2026 FOR VALUES FROM (MINVALUE) TO (3)",
    "CREATE TABLE fills_2026_other PARTITION OF fills_2026 DEFAULT",
    "CREATE TABLE fills_rest PARTITION OF fills_log DEFAULT",
    "COMMENT ON TABLE fills_log IS 'every fill, by day'",
    "INSERT INTO fills_log VALUES (1, 1, '2026-03-01', 10, 'buy'), (2, 2, '2026-04-01', 11, 'sell'),"
    " (3, 1, '2025-12-31', 12, NULL)",
    """CREATE TABLE fill_notes (id int PRIMARY KEY, fill_id bigint, fill_day date, note text,
         FOREIGN KEY (fill_id, fill_day) REFERENCES fills_log (id, day))""",
    "INSERT INTO fill_notes VALUES (1, 1, '2026-03-01', 'first')",
]


def test_a_partitioned_table_comes_back_over_its_partitions(pg, work_dir):
    """Its partitions hold the rows and are backed up as tables (wal2json reports changes
    under them); the partitioned tables are rebuilt over them as pg_dump does it: sub-
    partitions, a default partition, keys, a partial index, a CHECK, a foreign key, a
    partition added after the full backup."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, *PARTITIONED)
    store = make_store(work_dir)
    full = engine(src, store).full()
    assert set(full.tables) == {"venues", "fills_2026_low", "fills_2026_other", "fills_rest", "fill_notes"}
    execute(src, "UPDATE fills_log SET day = '2025-01-01' WHERE id = 2",  # moves to another partition
            "UPDATE fills_log SET side = 'sell' WHERE id = 1",
            "INSERT INTO fills_log VALUES (4, 2, '2026-05-01', 13, 'buy')",
            "CREATE TABLE fills_2027 PARTITION OF fills_log FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')",
            "INSERT INTO fills_log VALUES (5, 1, '2027-01-02', 14, 'sell')")
    engine(src, store).incremental()
    restore(store, dst)

    assert _pg_dump(dst) == _pg_dump(src)
    rows = "SELECT tableoid::regclass::text, * FROM fills_log ORDER BY id"
    assert connect(dst).execute(rows).fetchall() == connect(src).execute(rows).fetchall()
    execute(dst, "INSERT INTO fills_log VALUES (6, 2, '2027-06-01', 15, 'buy')")  # routed by the server
    assert connect(dst).execute("SELECT tableoid::regclass::text FROM fills_log WHERE id = 6").fetchone() == (
        "fills_2027",)
    with pytest.raises(Exception, match="fills_2026_low_pkey"):
        execute(dst, "INSERT INTO fills_log VALUES (1, 1, '2026-03-01', 1, 'buy')")
    execute(dst, "DELETE FROM venues WHERE id = 2")  # the foreign key's cascade
    assert connect(dst).execute("SELECT count(*) FROM fills_log WHERE venue = 2").fetchone() == (0,)
    with pytest.raises(Exception, match="fill_notes_fill_id_fill_day_fkey"):  # the key into it
        execute(dst, "INSERT INTO fill_notes VALUES (2, 99, '2026-01-01', 'none')")
    restore(store, dst, force=True)  # replaced, partitioned tables included
    assert connect(dst).execute(rows).fetchall() == connect(src).execute(rows).fetchall()

    part = pg.new("part")  # without one of its partitions, a partitioned table cannot exist
    plan = plan_restore(store.entries(), Target())
    plan.tables = frozenset({"venues", "fills_2026_low", "fill_notes"})
    notes = restore_to(store, plan, part).notes
    assert sorted(notes) == [
        "fill_notes: foreign key to left-out table fills_log not created",
        "partitioned table fills_2026 not created: partitions left out (fills_2026_other)",
        "partitioned table fills_log not created: partitions left out (fills_2026, fills_2027, fills_rest)",
    ], notes
    assert connect(part).execute("SELECT count(*) FROM fills_2026_low").fetchone() == (1,)

    lite = work_dir / "fills.sqlite"  # into SQLite: the partitions, as tables
    restore(store, f"sqlite:///{lite}")
    with sqlite3.connect(lite) as conn:
        assert conn.execute("SELECT count(*) FROM fills_rest").fetchone() == (2,)


SETTINGS = [
    "DO $$ BEGIN CREATE ROLE tradevault_reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    """CREATE TABLE accounts (id int PRIMARY KEY, code text COLLATE "C" UNIQUE, owner text, note text)
         WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.05)""",
    "ALTER TABLE accounts ALTER COLUMN note SET STORAGE EXTERNAL",
    "ALTER TABLE accounts ALTER COLUMN owner SET STATISTICS 500",
    "ALTER TABLE accounts ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE accounts FORCE ROW LEVEL SECURITY",
    "CREATE POLICY own ON accounts USING (owner = current_user)",
    "CREATE POLICY readers ON accounts AS RESTRICTIVE FOR SELECT TO tradevault_reader, PUBLIC USING (code <> 'secret')",
    "CREATE POLICY adds ON accounts FOR INSERT WITH CHECK (owner = current_user)",
    "INSERT INTO accounts VALUES (1, 'b', 'postgres', 'x'), (2, 'B', 'postgres', NULL), (3, 'a', 'bob', 'y'),"
    " (5, 'd', 'tradevault_reader', NULL), (6, 'secret', 'tradevault_reader', NULL)",
]


def test_a_tables_settings_come_back_collation_storage_and_row_security(pg, work_dir):
    """What pg_dump prints beyond columns and constraints: a column's collation (which
    orders and compares its values), storage parameters, a column's statistics target and
    storage, row security (enabled, forced) and its policies. Row security is turned on
    once the tables are published: forced, it would filter the restore's own statements."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, *SETTINGS)
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "INSERT INTO accounts VALUES (4, 'c', 'bob', NULL)", "UPDATE accounts SET note = 'z' WHERE id = 1")
    engine(src, store).incremental()
    restore(store, dst)

    assert _pg_dump(dst) == _pg_dump(src)
    ordered = "SELECT code FROM accounts ORDER BY code"  # "C" collation: upper case first
    assert connect(dst).execute(ordered).fetchall() == connect(src).execute(ordered).fetchall() == [
        ("B",), ("a",), ("b",), ("c",), ("d",), ("secret",)]
    execute(dst, "GRANT SELECT ON accounts TO tradevault_reader")  # privileges are not restored
    conn = connect(dst)
    try:  # the policies hold for a role they apply to: its own rows, not the secret one
        conn.execute("SET ROLE tradevault_reader")
        conn.execute("SET row_security = on")
        assert conn.execute("SELECT id FROM accounts").fetchall() == [(5,)]
    finally:
        conn.close()


def test_a_backup_role_that_row_security_would_filter_is_refused_not_served_some_rows(pg, work_dir):
    """As pg_dump does, the backup's connections turn row_security off: a role whose
    policies hide rows gets an error, never a backup of the rows it may see."""
    src = pg.new("src")
    execute(src, "DO $$ BEGIN CREATE ROLE tradevault_backup LOGIN REPLICATION; "
                 "EXCEPTION WHEN duplicate_object THEN NULL; END $$",
            "CREATE TABLE accounts (id int PRIMARY KEY, owner text)", "ALTER TABLE accounts ENABLE ROW LEVEL SECURITY",
            "CREATE POLICY own ON accounts USING (owner = current_user)",
            "INSERT INTO accounts VALUES (1, 'tradevault_backup'), (2, 'someone')",
            "GRANT SELECT ON accounts TO tradevault_backup", "GRANT CREATE ON SCHEMA public TO tradevault_backup")
    as_backup = re.sub(r"//[^@/]*@", "//tradevault_backup@", src) if "@" in src else src.replace(
        "://", "://tradevault_backup@", 1)
    with pytest.raises(BadInputError, match="row-level security of table.s. 'accounts' applies to this role"):
        engine(as_backup, make_store(work_dir)).full()
    assert connect(src).execute("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"
                                ).fetchone() == (0,)  # refused before anything changed


class Position(Base):
    """A generated column, as SQLAlchemy's ``Computed`` makes it."""
    __tablename__ = "positions"
    id: Mapped[int] = mapped_column(primary_key=True)
    price: Mapped[Decimal] = mapped_column(sa.Numeric(18, 8))
    qty: Mapped[Decimal] = mapped_column(sa.Numeric(18, 8))
    value: Mapped[Decimal] = mapped_column(sa.Numeric(36, 16), sa.Computed("price * qty", persisted=True))
    note: Mapped[str | None] = mapped_column(sa.Text)


def test_a_generated_column_is_computed_again_by_the_restore(pg, work_dir):
    """Its values are the server's: the rows carry the other columns (wal2json prints the
    generated value too; the decoder skips it in place, so the table's messages still match
    its description and no incremental resynchronises it), and the restore creates the
    column with its expression. It used to refuse the whole table."""
    src, dst = pg.new("src"), pg.new("dst")
    orm = sa.create_engine(src)
    try:
        Position.__table__.create(orm)
        with Session(orm) as session, session.begin():
            session.add_all([Position(id=i, price=Decimal(i), qty=Decimal("0.5"), note=f"n{i}") for i in range(1, 5)])
        store = make_store(work_dir)
        assert engine(src, store).full().tables == {"positions": 4}
        with Session(orm) as session, session.begin():
            session.add(Position(id=5, price=Decimal("2.5"), qty=Decimal(4)))
            session.get(Position, 2).qty = Decimal(3)
            session.delete(session.get(Position, 3))
        incremental = engine(src, store).incremental()
    finally:
        orm.dispose()
    assert incremental.count == 3  # the three changes, no resynchronising snapshot

    restore(store, dst)
    assert _pg_dump(dst) == _pg_dump(src)
    rows = "SELECT * FROM positions ORDER BY id"
    assert connect(dst).execute(rows).fetchall() == connect(src).execute(rows).fetchall()
    app = sa.create_engine(dst)
    try:
        with Session(app) as session, session.begin():
            position = Position(id=6, price=Decimal(3), qty=Decimal(2))
            session.add(position)
            session.flush()
            session.refresh(position)
            assert position.value == Decimal(6)
    finally:
        app.dispose()

    # into SQLite the column is generated too, SQLite computing the expression: the
    # application's model (which selects it) reads every row and adds one
    lite = work_dir / "positions.sqlite"
    notes = restore(store, f"sqlite:///{lite}").notes
    assert "positions.value: generated column kept, SQLite computes (price * qty) (in its own arithmetic)" in notes
    with sqlite3.connect(lite) as conn:
        assert conn.execute("SELECT id, qty, note FROM positions ORDER BY id").fetchall() == [
            (1, 0.5, "n1"), (2, 3, "n2"), (4, 0.5, "n4"), (5, 4, None)]
    app = sa.create_engine(f"sqlite:///{lite}")
    try:
        with Session(app) as session, session.begin():
            assert [(p.id, p.value) for p in session.scalars(sa.select(Position).order_by(Position.id))] == [
                (1, Decimal("0.5")), (2, Decimal(6)), (4, Decimal(2)), (5, Decimal(10))]
            position = Position(id=7, price=Decimal("1.5"), qty=Decimal(2))
            session.add(position)
            session.flush()
            session.refresh(position)
            assert position.value == Decimal(3)
    finally:
        app.dispose()


def test_extensions_kept_in_a_schema_of_their_own_come_back_there(pg, work_dir):
    """Many a database keeps its extensions in a schema named ``extensions`` and calls them
    qualified; the restore failed: 'schema "extensions" does not exist'."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE SCHEMA extensions", "CREATE EXTENSION pgcrypto WITH SCHEMA extensions",
            "CREATE EXTENSION citext WITH SCHEMA extensions",
            "CREATE TABLE accounts (id uuid PRIMARY KEY DEFAULT extensions.gen_random_uuid(),"
            " email extensions.citext UNIQUE, token bytea DEFAULT extensions.digest('x', 'sha256'))",
            "INSERT INTO accounts (email) VALUES ('A@example.com')")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "INSERT INTO accounts (email) VALUES ('b@example.com')")
    engine(src, store).incremental()
    restore(store, dst)

    assert _pg_dump(dst) == _pg_dump(src)
    rows = "SELECT id, email::text, token FROM accounts ORDER BY email"
    assert connect(dst).execute(rows).fetchall() == connect(src).execute(rows).fetchall()
    with pytest.raises(Exception, match="accounts_email_key"):  # citext: case-blind
        execute(dst, "INSERT INTO accounts (email) VALUES ('a@EXAMPLE.com')")


def test_what_follows_a_key_s_columns_comes_back(pg, work_dir):
    """A primary key or unique constraint's INCLUDE columns, DEFERRABLE and its index's
    storage parameters (which pg_get_constraintdef leaves out of both)."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TABLE quotes (id int, px numeric, venue text,"
                 " CONSTRAINT quotes_pk PRIMARY KEY (id) INCLUDE (px) WITH (fillfactor = 70),"
                 " CONSTRAINT quotes_venue UNIQUE (venue) WITH (fillfactor = 60) DEFERRABLE)",
            "INSERT INTO quotes VALUES (1, 1.5, 'a')")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "INSERT INTO quotes VALUES (2, 2.5, 'b')")
    engine(src, store).incremental()
    restore(store, dst)
    theirs = same_schema(dst, src)
    assert any("INCLUDE (px) WITH (fillfactor='70')" in s for s in theirs)  # the check can fail


def test_aggregates_of_every_shape_come_back_and_answer_alike(pg, work_dir):
    """The server prints no definition of an aggregate: the backup writes CREATE AGGREGATE
    from pg_aggregate. Each option is covered: a combine function and sort operator, a
    moving-aggregate form, state space, an initial state, an ordered-set and a hypothetical
    one, one over ``*``."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TABLE fills (id int PRIMARY KEY, qty int8, px float8)",
            "INSERT INTO fills SELECT g, g % 7, g * 1.5 FROM generate_series(1, 50) g",
            "CREATE AGGREGATE top_qty(int8) (SFUNC = int8larger, STYPE = int8, COMBINEFUNC = int8larger,"
            " SORTOP = >, SSPACE = 8, PARALLEL = SAFE)",
            "CREATE AGGREGATE running(int8) (SFUNC = int8pl, STYPE = int8, INITCOND = '0', MSFUNC = int8pl,"
            " MINVFUNC = int8mi, MSTYPE = int8, MINITCOND = '0')",
            "CREATE AGGREGATE fill_count(*) (SFUNC = int8inc, STYPE = int8, INITCOND = '0')",
            "CREATE AGGREGATE px_at(float8 ORDER BY anyelement) (SFUNC = ordered_set_transition, STYPE = internal,"
            " FINALFUNC = percentile_disc_final, FINALFUNC_EXTRA)",
            'CREATE AGGREGATE fill_rank(VARIADIC "any" ORDER BY VARIADIC "any") (SFUNC = ordered_set_transition_multi,'
            " STYPE = internal, FINALFUNC = rank_final, FINALFUNC_EXTRA, HYPOTHETICAL)",
            "CREATE VIEW fill_stats AS SELECT top_qty(qty), fill_count(*), px_at(0.5) WITHIN GROUP (ORDER BY px),"
            " fill_rank(3) WITHIN GROUP (ORDER BY qty) FROM fills",
            "CREATE VIEW running_qty AS SELECT id, running(qty) OVER (ORDER BY id ROWS 2 PRECEDING) FROM fills")
    store = make_store(work_dir)
    engine(src, store).full()
    restore(store, dst)

    same_schema(dst, src)
    for query in ("SELECT * FROM fill_stats", "SELECT * FROM running_qty ORDER BY id"):
        assert connect(dst).execute(query).fetchall() == connect(src).execute(query).fetchall()


def test_text_search_configurations_come_back_for_the_indexes_and_columns_using_them(pg, work_dir):
    """A full-text index and a generated tsvector column of a configuration of the
    application's own (a dictionary of its own in it): the restore failed whole, 'text search
    configuration "bot_english" does not exist'."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TEXT SEARCH DICTIONARY bot_stem (TEMPLATE = snowball, language = 'english')",
            "COMMENT ON TEXT SEARCH DICTIONARY bot_stem IS 'stems English'",
            "CREATE TEXT SEARCH CONFIGURATION bot_english (COPY = english)",
            "ALTER TEXT SEARCH CONFIGURATION bot_english ALTER MAPPING FOR asciiword, word WITH bot_stem, simple",
            "ALTER TEXT SEARCH CONFIGURATION bot_english DROP MAPPING FOR url",
            "COMMENT ON TEXT SEARCH CONFIGURATION bot_english IS 'notes search'",
            "CREATE TABLE notes (id int PRIMARY KEY, body text,"
            " words tsvector GENERATED ALWAYS AS (to_tsvector('bot_english', coalesce(body, ''))) STORED)",
            "CREATE INDEX notes_body ON notes USING gin (to_tsvector('bot_english'::regconfig, body))",
            "INSERT INTO notes (id, body) VALUES (1, 'Stopped buying when the markets were falling')")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "INSERT INTO notes (id, body) VALUES (2, 'Buys resumed at http://example.com')")
    engine(src, store).incremental()
    restore(store, dst)

    same_schema(dst, src)
    search = ("SELECT id, words::text FROM notes"
              " WHERE to_tsvector('bot_english', body) @@ to_tsquery('bot_english', 'buy')")
    assert connect(dst).execute(search).fetchall() == connect(src).execute(search).fetchall()
    assert [row[0] for row in connect(dst).execute(search).fetchall()] == [1, 2]
    lite = work_dir / "notes.sqlite"
    notes = restore(store, f"sqlite:///{lite}").notes
    with sqlite3.connect(lite) as conn:
        assert [row[0] for row in conn.execute("SELECT id FROM notes ORDER BY id")] == [1, 2]
    assert {"text search dictionary bot_stem not kept (PostgreSQL only)",
            "text search configuration bot_english not kept (PostgreSQL only)"} <= set(notes)


def test_operators_and_casts_come_back_for_the_views_and_constraints_using_them(pg, work_dir):
    """Operators of the application's own (infix, with itself as commutator, and prefix) in
    a view, and an assignment cast to one of its types: the restore failed whole ('operator
    does not exist'), or came back without the cast."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TYPE side AS ENUM ('buy', 'sell')",
            "CREATE FUNCTION side_of(int) RETURNS side LANGUAGE sql IMMUTABLE"
            " AS $$SELECT CASE WHEN $1 > 0 THEN 'buy'::side ELSE 'sell'::side END$$",
            "CREATE CAST (int AS side) WITH FUNCTION side_of(int) AS ASSIGNMENT",
            "COMMENT ON CAST (int AS side) IS 'a signed quantity''s side'",
            "CREATE FUNCTION near(numeric, numeric) RETURNS boolean LANGUAGE sql IMMUTABLE"
            " AS 'SELECT abs($1 - $2) < 0.01'",
            "CREATE OPERATOR ~= (FUNCTION = near, LEFTARG = numeric, RIGHTARG = numeric, COMMUTATOR = ~=)",
            "COMMENT ON OPERATOR ~= (numeric, numeric) IS 'within a cent'",
            "CREATE FUNCTION opposite(numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS 'SELECT -$1'",
            "CREATE OPERATOR !- (FUNCTION = opposite, RIGHTARG = numeric)",
            "CREATE TABLE quotes (id int PRIMARY KEY, px numeric, s side)",
            "CREATE VIEW close_quotes AS SELECT a.id, b.id AS other, !- a.px AS short FROM quotes a"
            " JOIN quotes b ON a.px ~= b.px AND a.id < b.id",
            "INSERT INTO quotes VALUES (1, 10.001, 1), (2, 10.005, -1), (3, 11, -5)")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "INSERT INTO quotes VALUES (4, 11.002, 2)")
    engine(src, store).incremental()
    restore(store, dst)

    same_schema(dst, src)
    query = "SELECT * FROM close_quotes ORDER BY id"
    assert connect(dst).execute(query).fetchall() == connect(src).execute(query).fetchall() == [
        (1, 2, Decimal("-10.001")), (3, 4, Decimal("-11"))]
    execute(dst, "INSERT INTO quotes (id, px, s) VALUES (5, 12, 7)")  # the assignment cast
    assert connect(dst).execute("SELECT s FROM quotes WHERE id = 5").fetchone() == ("buy",)


def test_types_no_table_uses_come_back_for_the_views_casts_and_functions_using_them(pg, work_dir):
    """Tables bring their types; these are used elsewhere: an enum a view casts to, a domain
    a cast targets, a composite a function builds in its body, a range of nothing yet. The
    restore failed whole ('type "side" does not exist') or lacked them."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TABLE trades (id int PRIMARY KEY, side text, qty numeric)",
            "CREATE TYPE side AS ENUM ('buy', 'sell')",
            "CREATE DOMAIN positive AS numeric CHECK (VALUE > 0)",
            "CREATE CAST (int AS positive) WITH INOUT AS ASSIGNMENT",
            "CREATE TYPE fill AS (px numeric, qty positive)",
            "CREATE TYPE span AS RANGE (subtype = numeric)",
            "CREATE VIEW sides AS SELECT id, side::side AS s FROM trades",
            "CREATE FUNCTION first_fill() RETURNS numeric LANGUAGE sql AS $$SELECT (ROW(1, 2)::fill).qty$$",
            "INSERT INTO trades VALUES (1, 'buy', 2)")
    store = make_store(work_dir)
    engine(src, store).full()
    restore(store, dst)

    same_schema(dst, src)
    assert connect(dst).execute("SELECT s::text FROM sides").fetchall() == [("buy",)]
    assert connect(dst).execute("SELECT first_fill(), 5::positive, numrange(1, 2)::text").fetchone() == (
        Decimal("2"), Decimal("5"), "[1,2)")


def test_a_domain_whose_check_and_default_call_functions_comes_back(pg, work_dir):
    """Types come before functions (a signature may use one); a domain whose CHECK or
    DEFAULT calls a function of the application made the whole restore fail: 'function
    is_pair(text) does not exist'. It is created bare, and finished once the functions are."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE FUNCTION is_pair(text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$SELECT $1 LIKE '%/%'$$",
            "CREATE FUNCTION default_pair() RETURNS text LANGUAGE sql AS $$SELECT 'BTC/USDT'$$",
            "CREATE DOMAIN pair AS text DEFAULT default_pair() NOT NULL CHECK (is_pair(VALUE))",
            "CREATE TABLE trades (id int PRIMARY KEY, p pair)",
            "INSERT INTO trades VALUES (1, 'ETH/USDT')")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "INSERT INTO trades (id) VALUES (2)")
    engine(src, store).incremental()
    restore(store, dst)

    same_schema(dst, src)
    execute(dst, "INSERT INTO trades (id) VALUES (3)")
    assert connect(dst).execute("SELECT p FROM trades ORDER BY id").fetchall() == [
        ("ETH/USDT",), ("BTC/USDT",), ("BTC/USDT",)]
    with pytest.raises(psycopg.errors.CheckViolation):
        execute(dst, "INSERT INTO trades VALUES (4, 'nonsense')")


def test_a_forced_restore_over_the_database_itself_gives_its_functions_and_domains_back(pg, work_dir):
    """The 3 a.m. case: restoring with --force over the damaged database, which still holds
    the old tables and functions. A function taking a table's row type was created against
    the old table, which publishing then dropped with it: the restore failed ('function
    total(trades) does not exist', from the view calling it). A domain's CHECK calling a
    function bound to the old function and was dropped with it, silently."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TYPE side AS ENUM ('buy', 'sell')",
            "CREATE TABLE trades (id int PRIMARY KEY, s side, qty numeric)",
            "CREATE FUNCTION flip(side) RETURNS side LANGUAGE sql"
            " AS $$SELECT CASE WHEN $1 = 'buy' THEN 'sell'::side ELSE 'buy'::side END$$",
            "CREATE FUNCTION total(t trades) RETURNS numeric LANGUAGE sql AS $$SELECT $1.qty * 2$$",
            "CREATE FUNCTION is_pos(numeric) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$SELECT $1 > 0$$",
            "CREATE DOMAIN pos AS numeric CHECK (is_pos(VALUE))",
            "CREATE TABLE fills (id int PRIMARY KEY, q pos)",
            "CREATE VIEW flipped AS SELECT id, flip(s), total(trades) FROM trades",
            # an aggregate over a function: the function's CASCADE took the old aggregate first
            "CREATE FUNCTION add_up(numeric, numeric) RETURNS numeric LANGUAGE sql STRICT AS 'SELECT $1 + $2'",
            "CREATE AGGREGATE summed(numeric) (SFUNC = add_up, STYPE = numeric)",
            "CREATE OPERATOR ~= (FUNCTION = numeric_eq, LEFTARG = numeric, RIGHTARG = numeric)",
            "CREATE VIEW sums AS SELECT summed(qty), bool_or(qty ~= 2) FROM trades",
            "INSERT INTO trades VALUES (1, 'buy', 2)", "INSERT INTO fills VALUES (1, 3)")
    store = make_store(work_dir)
    engine(src, store).full()
    restore(store, dst)
    execute(dst, "INSERT INTO trades VALUES (2, 'sell', 5)")  # the damaged database went on

    restore(store, dst, force=True)
    same_schema(dst, src)
    assert connect(dst).execute("SELECT * FROM flipped").fetchall() == [(1, "sell", Decimal("4"))]
    assert connect(dst).execute("SELECT * FROM sums").fetchall() == [(Decimal("2"), True)]
    with pytest.raises(psycopg.errors.CheckViolation):
        execute(dst, "INSERT INTO fills VALUES (2, -1)")


def test_publications_come_back_for_their_subscribers(pg, work_dir):
    """pg_dump keeps publications; a restore had none, and a change-data pipeline reading
    the restored database found nothing to subscribe to. Each form comes back: a table
    list with a column list and a row filter, a schema's tables, all tables, and publish
    options; one naming a table of another schema keeps the rest and says so."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TABLE trades (id int PRIMARY KEY, pair text, secret text)",
            "CREATE TABLE orders (id int PRIMARY KEY, trade_id int)",
            "CREATE SCHEMA audit", "CREATE TABLE audit.log (id int PRIMARY KEY)",
            "CREATE PUBLICATION trades_feed FOR TABLE trades (id, pair) WHERE (id > 0), TABLE orders, audit.log"
            " WITH (publish = 'insert, update')",
            "COMMENT ON PUBLICATION trades_feed IS 'for the dashboard'",
            "CREATE PUBLICATION everything FOR ALL TABLES WITH (publish_via_partition_root = true)",
            "CREATE PUBLICATION bot_schema FOR TABLES IN SCHEMA public",
            "INSERT INTO trades VALUES (1, 'BTC/USDT', 'k')")
    store = make_store(work_dir)
    engine(src, store).full()
    result = restore(store, dst)

    assert result.notes == ["publication trades_feed: its tables of other schemas are not backed up (log)"]
    ours = _pg_dump(dst)
    theirs = [s for s in _pg_dump(src) if "audit" not in s]  # the schema audit is not backed up
    assert ([s for s in ours if s not in theirs], [s for s in theirs if s not in ours]) == ([], [])

    some = dataclasses.replace(plan_restore(store.entries(), Target()), tables=frozenset({"orders"}))
    notes = restore_to(store, some, pg.new("some"), force=True).notes
    assert "publication trades_feed not created: it names tables left out (trades)" in notes
    assert not [n for n in notes if "privilege" in n]  # its owner's statement is left out with it


def test_event_triggers_come_back_last_and_fire_on_the_applications_ddl_only(pg, work_dir):
    """An application's DDL audit: an event trigger whose function logs into a table. It
    comes back with its tag filter and firing state, created after every DDL statement
    of the restore itself, so the log holds the source's rows and nothing of the restore."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TABLE ddl_log (id serial PRIMARY KEY, tag text)",
            "CREATE FUNCTION log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS"
            " $$BEGIN INSERT INTO ddl_log (tag) SELECT command_tag FROM pg_event_trigger_ddl_commands(); END$$",
            "CREATE EVENT TRIGGER audit_ddl ON ddl_command_end WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')"
            " EXECUTE FUNCTION log_ddl()",
            "ALTER EVENT TRIGGER audit_ddl ENABLE ALWAYS",
            "COMMENT ON EVENT TRIGGER audit_ddl IS 'who changed what'",
            "CREATE TABLE trades (id int PRIMARY KEY)")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "ALTER TABLE trades ADD COLUMN pair text")
    engine(src, store).incremental()
    assert restore(store, dst).notes == []

    same_schema(dst, src)
    log = "SELECT id, tag FROM ddl_log ORDER BY id"
    assert connect(dst).execute(log).fetchall() == connect(src).execute(log).fetchall()
    execute(dst, "CREATE TABLE fills (id int)")
    assert connect(dst).execute(log).fetchall()[-1][1] == "CREATE TABLE"
