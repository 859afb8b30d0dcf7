"""Cross-dialect restores give back the application's own database: its ORM models made
the source's schema, the restore in the other dialect keeps keys, unique constraints,
foreign keys, indexes, declared types and exact decimals, and the application's own
session then reads every row and inserts new rows without an id."""

from __future__ import annotations

import enum
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from restore.dispatch import mapping_of, restore_to
from restore.planner import Target, plan_restore
from tests.postgres.pg_helpers import connect, engine, execute, make_store, restore
from tests.postgres.test_cross_dialect import pg_rows, sqlite_rows
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore

pytestmark = pytest.mark.xdist_group("postgres")


class Side(enum.Enum):
    buy = "buy"
    sell = "sell"


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
                      sa.Index("ix_trades_open", "pair_id", postgresql_where=sa.text("is_open"),
                               sqlite_where=sa.text("is_open = 1")),
                      sa.Index("ix_trades_exchange_lower", sa.func.lower(sa.text("exchange_id"))))
    id: Mapped[int] = mapped_column(primary_key=True)
    pair_id: Mapped[int] = mapped_column(sa.ForeignKey("pairs.id", ondelete="CASCADE"))
    exchange_id: Mapped[str] = mapped_column(sa.String(40))
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(18, 8))
    side: Mapped[Side] = mapped_column(sa.Enum(Side))
    is_open: Mapped[bool] = mapped_column(server_default=sa.true())
    note: Mapped[str | None] = mapped_column(sa.String(10))


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(primary_key=True)
    trade_id: Mapped[int] = mapped_column(sa.ForeignKey("trades.id", ondelete="CASCADE"), index=True)
    price: Mapped[float] = mapped_column(sa.Float)


KEYS = {"pairs": ["id"], "trades": ["id"], "orders": ["id"]}


def _write(app: sa.Engine, first: int, count: int) -> None:
    with Session(app) as session, session.begin():
        for i in range(first, first + count):
            pair = Pair(symbol=f"P{i}/USDT")
            session.add(pair)
            session.flush()
            trade = Trade(pair_id=pair.id, exchange_id=f"X-{i}", amount=Decimal(f"{i}.12345678"),
                          side=Side.buy if i % 2 else Side.sell, is_open=i % 3 == 0)
            session.add(trade)
            session.flush()
            session.add(Order(trade_id=trade.id, price=i / 7))


def _columns(conn, table: str) -> dict[str, str]:
    return dict(conn.execute(
        "SELECT column_name, CASE WHEN data_type = 'USER-DEFINED' THEN udt_name ELSE"
        " format_type(atttypid, atttypmod) END FROM information_schema.columns c"
        " JOIN pg_attribute a ON a.attrelid = ('public.' || quote_ident(c.table_name))::regclass"
        " AND a.attname = c.column_name WHERE c.table_schema = 'public' AND c.table_name = %s", (table,)).fetchall())


def _equal_by_value(sqlite_path, pg_url) -> None:
    for table, key in KEYS.items():
        families, expected = sqlite_rows(sqlite_path, table, key)
        assert pg_rows(pg_url, table, key, families) == expected, table


def test_an_orm_made_sqlite_database_restores_into_postgres_the_application_can_use(pg, work_dir):
    path, dst = work_dir / "app.sqlite", pg.new("dst")
    app = sa.create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(app)
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("CREATE VIEW pair_symbols AS SELECT id, symbol FROM pairs")
    raw.execute("CREATE VIEW recent AS SELECT id FROM pairs WHERE created > datetime('now', '-1 day')")
    _write(app, 1, 30)
    raw.execute("UPDATE trades SET note = 'twelve chars' WHERE id = 2")  # SQLite keeps it in a String(10)
    raw.execute("DELETE FROM orders WHERE id > 28")  # AUTOINCREMENT: ids 29, 30 are never handed out again
    store = BackupStore("app", [open_location("one", f"file://{work_dir / 'loc'}")])
    BackupEngine(DatabaseService(f"sqlite:///{path}"), store).full()
    _write(app, 31, 5)
    raw.execute("UPDATE pairs SET symbol = 'A-SYMBOL-OF-THIRTY-CHARACTERS' WHERE id = 3")  # beyond String(25)
    raw.execute("UPDATE trades SET amount = 1.5, is_open = 0 WHERE id = 4")
    raw.execute("DELETE FROM orders WHERE id = 35")
    raw.close()
    BackupEngine(DatabaseService(f"sqlite:///{path}"), store).incremental()
    app.dispose()

    plan = plan_restore(store.entries(), Target())
    planned = mapping_of(store, plan, dst)  # what --dry-run lists
    assert "trades.note: VARCHAR(10) -> text: a value is longer than character varying(10) allows " \
           "(SQLite does not enforce it)" in planned
    assert "pairs.id: INTEGER PRIMARY KEY -> integer identity past the largest id" in planned
    assert "orders.id: INTEGER PRIMARY KEY -> integer identity past sqlite_sequence" in planned
    assert "view recent: created if PostgreSQL accepts its SQL" in planned
    result = restore(store, dst, force=False)
    # a value an incremental wrote is judged on the point's file, as the full's are
    assert "pairs.symbol: VARCHAR(25) -> text: a value is longer than character varying(25) allows " \
           "(SQLite does not enforce it)" in result.notes
    assert "view recent not kept: function datetime(unknown, unknown) does not exist" in result.notes
    _equal_by_value(path, dst)

    conn = connect(dst)
    try:
        assert _columns(conn, "trades") == {
            "id": "integer", "pair_id": "integer", "exchange_id": "character varying(40)",
            "amount": "numeric(18,8)", "side": "character varying(4)", "is_open": "boolean", "note": "text"}
        assert _columns(conn, "pairs")["symbol"] == "text" and _columns(conn, "pairs")["created"] == \
            "timestamp without time zone"
        constraints = {r[0]: r[1] for r in conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace")}
        assert constraints["uq_trade_exchange"] == "UNIQUE (pair_id, exchange_id)"
        assert constraints["trades_pair_id_fkey"] == "FOREIGN KEY (pair_id) REFERENCES pairs(id) ON DELETE CASCADE"
        assert constraints["pairs_symbol_key"] == "UNIQUE (symbol)"
        indexes = dict(conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"))
        assert indexes["ix_trades_open"].endswith("USING btree (pair_id) WHERE (is_open = true)")
        assert indexes["ix_trades_exchange_lower"].endswith("USING btree (lower((exchange_id)::text))")
        assert "ix_orders_trade_id" in indexes
        assert conn.execute("SELECT count(*) FROM pair_symbols").fetchone()[0] == 35
        assert conn.execute("SELECT column_default FROM information_schema.columns WHERE table_name = 'pairs'"
                            " AND column_name = 'created'").fetchone()[0] == "timezone('utc'::text, now())"
    finally:
        conn.close()

    inspected = {c["name"]: c["type"] for c in sa.inspect(sa.create_engine(dst)).get_columns("trades")}
    assert inspected["exchange_id"].length == 40  # what a migration check compares
    again = sa.create_engine(dst)
    try:
        with Session(again) as session, session.begin():
            assert len(session.scalars(sa.select(Trade)).all()) == 35
            assert session.get(Trade, 4).amount == Decimal("1.5") and session.get(Trade, 4).is_open is False
            pair = Pair(symbol="NEW/USDT")
            session.add(pair)
            session.flush()
            assert pair.id == 36  # past the largest id
            order = Order(trade_id=1, price=1.0)
            session.add(order)
            session.flush()
            assert order.id == 36  # past sqlite_sequence (35 was handed out, then deleted)
        with pytest.raises(sa.exc.IntegrityError, match="uq_trade_exchange"), Session(again) as session, \
                session.begin():
            session.add(Trade(pair_id=1, exchange_id="X-1", amount=Decimal(1), side=Side.buy))
    finally:
        again.dispose()


LEDGER = [
    "CREATE TABLE ledger (id serial PRIMARY KEY, exact numeric(38,18), plain numeric,"
    " kind text CHECK (kind <> ''))",
    "INSERT INTO ledger (exact, plain, kind) VALUES (7.000000000000000007, 123456.123456789012345678, 'a'),"
    " (0.1, 2, 'b'), (NULL, 'NaN', 'c')",
]


def test_an_orm_made_postgres_database_restores_into_sqlite_the_application_can_use(pg, work_dir):
    src = pg.new("src")
    app = sa.create_engine(src)
    Base.metadata.create_all(app)
    execute(src, *LEDGER)
    _write(app, 1, 20)
    store = make_store(work_dir)
    engine(src, store).full()
    _write(app, 21, 5)
    execute(src, "UPDATE trades SET amount = 0.00000001, is_open = false WHERE id = 3",
            "DELETE FROM pairs WHERE id = 25",  # and its trade and order, by the cascade
            "INSERT INTO ledger (exact) VALUES (123456789.000000000000000001)")
    engine(src, store).incremental()
    app.dispose()

    target = work_dir / "restored.sqlite"
    result = restore(store, f"sqlite:///{target}", force=False)
    assert "ledger: check ledger_kind_check not kept (PostgreSQL expression)" in result.notes
    for table, key in {**KEYS, "ledger": ["id"]}.items():
        families, restored = sqlite_rows(target, table, key)
        assert pg_rows(src, table, key, families) == restored, table

    conn = sqlite3.connect(target)
    try:  # every digit, in a column SQLite converts nothing in
        exact = conn.execute("SELECT exact, typeof(exact), plain, typeof(plain) FROM ledger ORDER BY id").fetchall()
        assert exact == [("7.000000000000000007", "text", "123456.123456789012345678", "text"),
                         (0.1, "real", 2, "integer"), (None, "null", "NaN", "text"),
                         ("123456789.000000000000000001", "text", None, "null")]
        assert {r[2]: r[3:] for r in conn.execute("PRAGMA foreign_key_list(trades)")} == {
            "pairs": ("pair_id", "id", "NO ACTION", "CASCADE", "NONE")}
        unique = [r for r in conn.execute("PRAGMA index_list(trades)") if r[3] == "u"]
        assert len(unique) == 1
        indexes = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"))
        assert indexes["ix_trades_open"] == 'CREATE INDEX ix_trades_open ON "trades" (pair_id) WHERE is_open'
        assert indexes["ix_trades_exchange_lower"] == \
            'CREATE INDEX ix_trades_exchange_lower ON "trades" (lower((exchange_id)))'
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()

    again = sa.create_engine(f"sqlite:///{target}")
    try:
        with Session(again) as session, session.begin():
            trades = session.scalars(sa.select(Trade).order_by(Trade.id)).all()
            assert len(trades) == 24 and trades[2].amount == Decimal("0.00000001") and trades[2].is_open is False
            assert {t.side for t in trades} == {Side.buy, Side.sell}
            pair = Pair(symbol="NEW/USDT")
            session.add(pair)
            session.flush()
            assert pair.id == 26  # the source's next value (25 was handed out, then deleted)
            session.add(Trade(pair_id=pair.id, exchange_id="X-new", amount=Decimal("2.5"), side=Side.sell))
        with pytest.raises(sa.exc.IntegrityError, match="UNIQUE"), Session(again) as session, session.begin():
            session.add(Pair(symbol="P1/USDT"))
    finally:
        again.dispose()


def _backed_up_bot(work_dir, *statements: str) -> tuple[Path, sqlite3.Connection, BackupStore]:
    """A hand-written SQLite database (``statements``), its full backup taken; with the
    connection the test goes on writing through."""
    path = work_dir / "bot.sqlite"
    raw = sqlite3.connect(path, isolation_level=None)
    for statement in statements:
        raw.execute(statement)
    store = BackupStore("bot", [open_location("one", f"file://{work_dir / 'loc'}")])
    BackupEngine(DatabaseService(f"sqlite:///{path}"), store).full()
    return path, raw, store


def test_insert_or_replace_in_a_sqlite_backup_restores_into_postgres(pg, work_dir):
    """``INSERT OR REPLACE`` deletes the rows its new one conflicts with, on the key or on
    any UNIQUE column, and fires no delete trigger: the stream holds an insert of a key
    the table still has. Replayed into PostgreSQL, that was a divergence (exit 3); the
    SQLite restore makes the point first, applying it as SQLite did."""
    path, raw, store = _backed_up_bot(
        work_dir, "CREATE TABLE settings (id INTEGER PRIMARY KEY, name VARCHAR(20) UNIQUE, value TEXT)",
        "CREATE TABLE prices (pair TEXT PRIMARY KEY, price REAL, at TEXT)",
        "INSERT INTO settings (name, value) VALUES ('stake', '10'), ('mode', 'dry'), ('max_open', '3')",
        "INSERT INTO prices VALUES ('BTC/USDT', 50000.5, '1'), ('ETH/USDT', 3000.25, '1')")
    raw.execute("INSERT OR REPLACE INTO settings (name, value) VALUES ('mode', 'live')")  # new id, old row gone
    raw.execute("REPLACE INTO settings (id, name, value) VALUES (1, 'stake', '20')")  # same id
    raw.execute("INSERT OR REPLACE INTO prices VALUES ('BTC/USDT', 51000.0, '2')")
    raw.execute("INSERT INTO prices VALUES ('ETH/USDT', 3100.0, '2') ON CONFLICT (pair) DO UPDATE SET"
                " price = excluded.price, at = excluded.at")
    raw.execute("INSERT OR REPLACE INTO prices VALUES ('SOL/USDT', 150.0, '2')")
    BackupEngine(DatabaseService(f"sqlite:///{path}"), store).incremental()
    raw.execute("REPLACE INTO settings (name, value) VALUES ('max_open', '5')")
    BackupEngine(DatabaseService(f"sqlite:///{path}"), store).incremental()
    raw.close()

    dst = pg.new("dst")
    result = restore(store, dst, force=False)
    assert result.tables == {"prices": 3, "settings": 3}
    for table, key in (("settings", ["id"]), ("prices", ["pair"])):
        families, expected = sqlite_rows(path, table, key)
        assert pg_rows(dst, table, key, families) == expected, table
    assert connect(dst).execute("SELECT id, name FROM settings ORDER BY id").fetchall() == [
        (1, "stake"), (4, "mode"), (5, "max_open")]
    execute(dst, "INSERT INTO settings (name, value) VALUES ('new', 'x')")  # ids continue past the largest
    with pytest.raises(Exception, match="settings_name_key"):  # the UNIQUE column holds
        execute(dst, "INSERT INTO settings (name, value) VALUES ('mode', 'paper')")

    first = plan_restore(store.entries(), Target(seq=store.entries()[1].last_seq))  # a point between them
    older = pg.new("older")
    restore_to(store, first, older)
    assert connect(older).execute("SELECT name, value FROM settings ORDER BY id").fetchall() == [
        ("stake", "20"), ("max_open", "3"), ("mode", "live")]


def test_columns_without_a_type_restore_into_postgres_typed_by_their_values(pg, work_dir):
    """A hand-written key-value table (``value`` without a type) and a counter table: bytea
    for every column without a type turned the bot's 5 and 'live' into bytes."""
    path, raw, store = _backed_up_bot(
        work_dir, "CREATE TABLE state (key TEXT PRIMARY KEY, value)",
        "CREATE TABLE counters (name TEXT PRIMARY KEY, n, ratio)",
        "INSERT INTO state VALUES ('mode', 'dry'), ('max_open', 3)",
        "INSERT INTO counters VALUES ('wins', 10, 0.5), ('losses', 4, 1)")
    raw.execute("INSERT OR REPLACE INTO state VALUES ('mode', 'live')")
    raw.execute("UPDATE counters SET n = n + 1, ratio = 0.25 WHERE name = 'wins'")
    BackupEngine(DatabaseService(f"sqlite:///{path}"), store).incremental()
    raw.close()

    dst = pg.new("dst")
    result = restore(store, dst, force=False)
    assert "state.value: (no type) -> text: its values are integer, text" in result.notes
    assert "counters.n: (no type) -> bigint: its values are integer" in result.notes
    assert "counters.ratio: (no type) -> double precision: its values are integer, real" in result.notes
    conn = connect(dst)
    try:
        assert conn.execute("SELECT key, value FROM state ORDER BY key").fetchall() == [
            ("max_open", "3"), ("mode", "live")]
        assert conn.execute("SELECT name, n, ratio FROM counters ORDER BY name").fetchall() == [
            ("losses", 4, 1.0), ("wins", 11, 0.25)]
    finally:
        conn.close()


def test_values_their_declared_type_cannot_take_restore_into_postgres(pg, work_dir):
    """SQLite keeps what it is given: a Unix time in a DATETIME column, 'n/a' in a REAL
    one. Such a column comes back typed by its values, noted; the others as declared."""
    path, raw, store = _backed_up_bot(
        work_dir, "CREATE TABLE fills (id INTEGER PRIMARY KEY, at DATETIME, price REAL, qty REAL)",
        "INSERT INTO fills VALUES (1, '2026-01-01 10:00:00', 1.5, 2), (2, 1767261600, 'n/a', 3)")
    raw.execute("INSERT INTO fills VALUES (3, '2026-01-02 11:00:00', 2.5, 4)")
    BackupEngine(DatabaseService(f"sqlite:///{path}"), store).incremental()
    raw.close()

    dst = pg.new("dst")
    result = restore(store, dst, force=False)
    assert ("fills.at: DATETIME -> text: its values are integer, text, not all of which a timestamp without "
            "time zone column takes (SQLite does not enforce types)") in result.notes
    conn = connect(dst)
    try:
        assert conn.execute("SELECT id, at, price, qty FROM fills ORDER BY id").fetchall() == [
            (1, "2026-01-01 10:00:00", "1.5", 2.0), (2, "1767261600", "n/a", 3.0),
            (3, "2026-01-02 11:00:00", "2.5", 4.0)]
    finally:
        conn.close()


def test_bytes_in_a_text_column_restore_into_postgres(pg, work_dir):
    """Python's sqlite3 stores ``bytes`` as a BLOB whatever the column's type (an ANY one
    too). UTF-8 bytes come back as the text they spell; a
    column with bytes PostgreSQL text cannot hold (not UTF-8, or a NUL) is typed by its
    values, bytea, noted. It crashed the load before (psycopg's UnicodeEncodeError)."""
    path, raw, store = _backed_up_bot(
        work_dir, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, raw TEXT, v ANY)",
        "INSERT INTO notes VALUES (1, 'plain', 'plain', 1.5), (2, x'6f6b', x'00ff', x'00ff')")
    raw.execute("INSERT INTO notes VALUES (3, 'c', 'c', 'txt')")
    BackupEngine(DatabaseService(f"sqlite:///{path}"), store).incremental()
    raw.close()

    dst = pg.new("dst")
    result = restore(store, dst, force=False)
    assert "notes.raw: TEXT -> bytea: its values are blob, text, not all of which a text column takes " \
           "(SQLite does not enforce types)" in result.notes, result.notes
    conn = connect(dst)
    try:
        assert conn.execute("SELECT id, body, raw, v FROM notes ORDER BY id").fetchall() == [
            (1, "plain", b"plain", b"1.5"), (2, "ok", b"\x00\xff", b"\x00\xff"), (3, "c", b"c", b"txt")]
    finally:
        conn.close()


class GenBase(DeclarativeBase):
    pass


class Fill(GenBase):
    """An application's computed columns (SQLAlchemy ``Computed``), as SQLite has them."""

    __tablename__ = "fills"
    id: Mapped[int] = mapped_column(primary_key=True)
    pair: Mapped[str] = mapped_column(sa.String(25))
    price: Mapped[float] = mapped_column(sa.Float)
    qty: Mapped[float] = mapped_column(sa.Float)
    lots: Mapped[int] = mapped_column(sa.Integer)
    # the same in PostgreSQL: kept generated
    cost: Mapped[float] = mapped_column(sa.Float, sa.Computed("price * qty"))
    pairs_of_lots: Mapped[int] = mapped_column(sa.Integer, sa.Computed("lots / 2", persisted=False))
    # PostgreSQL prints the REAL 2.0 as '2', SQLite as '2.0': some values differ
    label: Mapped[str] = mapped_column(sa.String(40), sa.Computed("pair || ':' || qty"))
    # no printf in PostgreSQL: refused
    shown: Mapped[str] = mapped_column(sa.Text, sa.Computed("printf('%.2f', price)"))


def test_generated_columns_of_a_sqlite_database_restore_into_postgres(pg, work_dir):
    """SQLite's generated columns were left out of a restore into PostgreSQL. They now come
    back generated where PostgreSQL takes SQLite's expression and computes the values
    SQLite computed, every value checked; otherwise as plain columns holding SQLite's
    values, noted. The application then inserts a row and PostgreSQL computes its cost."""
    path = work_dir / "bot.sqlite"
    app = sa.create_engine(f"sqlite:///{path}")
    GenBase.metadata.create_all(app)
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("CREATE TABLE quotes (pair TEXT, bid REAL, ask REAL, spread REAL AS (ask - bid),"  # no key
                " mid AS ((ask + bid) / 2), half INTEGER AS (bid / 2))")  # no type; REALs in an INTEGER one
    raw.executemany("INSERT INTO quotes (pair, bid, ask) VALUES (?, ?, ?)", [("BTC", 1.0, 1.5), ("ETH", 2.0, 2.25)])
    with Session(app) as session, session.begin():
        session.add_all([Fill(pair=f"P{i}", price=i * 1.5, qty=float(i % 3 + 1) / (1 if i % 2 else 4), lots=i)
                         for i in range(1, 41)])
    store = BackupStore("bot", [open_location("one", f"file://{work_dir / 'loc'}")])
    BackupEngine(DatabaseService(f"sqlite:///{path}"), store).full()
    with Session(app) as session, session.begin():
        session.get(Fill, 1).price = 7.25
        session.delete(session.get(Fill, 2))
    raw.execute("UPDATE quotes SET ask = 3.5 WHERE pair = 'ETH'")
    BackupEngine(DatabaseService(f"sqlite:///{path}"), store).incremental()
    expected = raw.execute("SELECT * FROM fills ORDER BY id").fetchall()
    quotes = raw.execute("SELECT * FROM quotes ORDER BY pair").fetchall()
    raw.close()

    dst = pg.new("dst")
    result = restore(store, dst, force=False)
    assert any(n.startswith("fills.label: generated column kept as a plain column holding the source's values: "
                            "PostgreSQL computes") for n in result.notes), result.notes
    assert any(n.startswith("fills.shown: generated column kept as a plain column holding the source's values: "
                            "PostgreSQL refuses its expression") for n in result.notes), result.notes
    conn = connect(dst)
    try:
        generated = dict(conn.execute("SELECT attrelid::regclass::text || '.' || attname, pg_get_expr(adbin, adrelid)"
                                      " FROM pg_attribute JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum"
                                      " WHERE attgenerated = 's'").fetchall())
        assert generated == {"fills.cost": "(price * qty)", "fills.pairs_of_lots": "(lots / 2)",
                             "quotes.spread": "(ask - bid)", "quotes.mid": "((ask + bid) / (2)::double precision)",
                             "quotes.half": "(bid / (2)::double precision)"}
        assert conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                            " WHERE attrelid = 'quotes'::regclass AND attname IN ('mid', 'half')").fetchall() == [
            ("double precision",), ("double precision",)]
        assert conn.execute("SELECT * FROM fills ORDER BY id").fetchall() == expected
        assert conn.execute("SELECT * FROM quotes ORDER BY pair").fetchall() == quotes
    finally:
        conn.close()
    restored = sa.create_engine(dst)
    with Session(restored) as session, session.begin():
        session.add(Fill(pair="NEW", price=2.0, qty=3.0, lots=5, label="NEW:3", shown="2.00"))
    with Session(restored) as session:
        new = session.scalars(sa.select(Fill).where(Fill.pair == "NEW")).one()
        assert (new.cost, new.pairs_of_lots, new.id) == (6.0, 2, 41)
    restored.dispose()
    app.dispose()
