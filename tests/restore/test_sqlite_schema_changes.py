"""An application's migrations after the full backup (a new index, a column added to an
indexed table, a view) arrive with the incrementals: the SQLite restore's schema is the
source's, statement for statement, and the restore drill compares schemas too."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from restore.drill import restore_drill, schema_differences, schema_objects
from restore.planner import Target, plan_restore
from restore.sqlite.replay import restore_sqlite
from restore.standby import Follower
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.database import DatabaseService
from trade_stream.sqlite.digest import database_digest
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore


class Base(DeclarativeBase):
    pass


class Trade(Base):
    __tablename__ = "trades"
    id: Mapped[int] = mapped_column(primary_key=True)
    pair: Mapped[str] = mapped_column(sa.String(25), index=True)
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(18, 8))


MIGRATION = [  # written by hand, as an application's migration tool would run it
    "CREATE INDEX ix_trades_amount ON trades (amount) WHERE amount > 0",
    "ALTER TABLE trades ADD COLUMN fee NUMERIC(10, 4) DEFAULT 0",
    "CREATE TABLE fills (id INTEGER PRIMARY KEY, trade_id INTEGER REFERENCES trades(id), qty REAL)",
    "CREATE UNIQUE INDEX ux_fills_trade ON fills (trade_id, qty)",
    "CREATE VIEW big_trades AS SELECT id, pair FROM trades WHERE amount > 10",
]


def _schema(path) -> dict:
    conn = sqlite3.connect(path)
    try:
        return schema_objects(conn, ["trades", "fills"])
    finally:
        conn.close()


def test_migrations_after_the_full_backup_arrive_with_the_incrementals(tmp_path):
    path = tmp_path / "app.sqlite"
    app = sa.create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(app)
    store = BackupStore("app", [open_location("one", f"file://{tmp_path / 'loc'}")])
    engine = BackupEngine(DatabaseService(f"sqlite:///{path}"), store)
    with Session(app) as session, session.begin():
        session.add_all([Trade(pair=f"P{i}", amount=Decimal(i)) for i in range(1, 21)])
    engine.full()
    app.dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATION:
        conn.execute(statement)
    conn.execute("INSERT INTO fills (trade_id, qty) VALUES (1, 0.5), (2, 1.5)")
    conn.execute("UPDATE trades SET fee = 0.1 WHERE id = 3")
    conn.close()
    engine.incremental()

    restored = tmp_path / "restored.sqlite"
    restore_sqlite(store, plan_restore(store.entries(), Target()), DatabaseService(f"sqlite:///{restored}"))
    assert _schema(restored) == _schema(path)
    keys = {"trades": ["id"], "fills": ["id"]}
    digests = []
    for database in (path, restored):
        conn = sqlite3.connect(database)
        digests.append(database_digest(conn, keys))
        conn.close()
    assert digests[0] == digests[1]

    drill = restore_drill(engine, str(tmp_path))
    assert drill.ok and drill.mismatches == []


def test_a_drill_reports_every_schema_difference():
    source = {("table", "t"): "CREATE TABLE t (a)", ("index", "ix"): "CREATE INDEX ix ON t (a)",
              ("view", "v"): "CREATE VIEW v AS SELECT a FROM t"}
    restored = {("table", "t"): "CREATE TABLE t (a)", ("view", "v"): "CREATE VIEW v AS SELECT 1",
                ("index", "other"): "CREATE INDEX other ON t (a)"}
    assert schema_differences(source, restored) == [
        "index ix: missing from the restore", "index other: not in the source", "view v: definition differs"]
    assert schema_differences(source, dict(source)) == []


MIGRATIONS = [  # an application's own migrations, versioned by PRAGMA user_version
    "CREATE TABLE pairlocks (id INTEGER PRIMARY KEY, pair TEXT NOT NULL)",
    "ALTER TABLE pairlocks ADD COLUMN reason TEXT",
    "CREATE INDEX ix_pairlocks_pair ON pairlocks (pair)",
]


def _migrate(conn: sqlite3.Connection, upto: int) -> None:
    """What the application runs at start: every migration past the file's user_version."""
    done = conn.execute("PRAGMA user_version").fetchone()[0]
    for version in range(done, upto):
        conn.execute(MIGRATIONS[version])
        conn.execute(f"PRAGMA user_version = {version + 1}")


def test_the_schema_version_in_the_file_header_comes_back_with_the_schema(tmp_path):
    """``user_version`` is not in the change stream: a restore gave back the migrated
    schema with the version of the full backup, and the application's start-up migrated
    it again ('duplicate column name: reason'). Each incremental now records it (with
    ``application_id``), and restores and the standby set it."""
    path = tmp_path / "bot.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    _migrate(conn, 1)
    conn.execute("PRAGMA application_id = 7357")
    conn.execute("INSERT INTO pairlocks (pair) VALUES ('BTC/USDT')")
    store = BackupStore("bot", [open_location("one", f"file://{tmp_path / 'loc'}")])
    engine = BackupEngine(DatabaseService(f"sqlite:///{path}"), store)
    engine.full()
    follower = tmp_path / "standby.sqlite"
    standby = Follower(store, DatabaseService(f"sqlite:///{follower}"))
    standby.sync_once()  # built from the full backup; the incremental below is applied to it
    _migrate(conn, 3)  # the application is upgraded
    conn.execute("INSERT INTO pairlocks (pair, reason) VALUES ('ETH/USDT', 'stoploss')")
    engine.incremental()
    conn.close()

    restored = tmp_path / "restored.sqlite"
    restore_sqlite(store, plan_restore(store.entries(), Target()), DatabaseService(f"sqlite:///{restored}"))
    assert standby.sync_once().rebuilt is False  # applied, not rebuilt
    for target in (restored, follower):
        again = sqlite3.connect(target, isolation_level=None)
        try:
            assert again.execute("PRAGMA user_version").fetchone() == (3,)
            assert again.execute("PRAGMA application_id").fetchone() == (7357,)
            _migrate(again, 3)  # the application starts: nothing to do
            again.execute("INSERT INTO pairlocks (pair, reason) VALUES ('SOL/USDT', 'manual')")
        finally:
            again.close()


def test_a_table_renamed_away_takes_its_indexes_along(tmp_path):
    """``ALTER TABLE trades RENAME TO trades_archive`` keeps the index ``ix_trades_pair``
    on the archive; the migration then makes a new ``trades`` and drops it again. The
    incremental's resynchronisation writes the archive (with that index) before the old
    name's drop, in one transaction, and the restore stopped: "index ix_trades_pair
    already exists"."""
    path = tmp_path / "app.sqlite"
    app = sa.create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(app)
    with Session(app) as session, session.begin():
        session.add_all([Trade(pair=f"P{i}", amount=Decimal(i)) for i in range(1, 11)])
    app.dispose()
    store = BackupStore("app", [open_location("one", f"file://{tmp_path / 'loc'}")])
    engine = BackupEngine(DatabaseService(f"sqlite:///{path}"), store)
    engine.full()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript("BEGIN; ALTER TABLE trades RENAME TO trades_archive;"
                       " CREATE TABLE trades (id INTEGER PRIMARY KEY, pair TEXT);"
                       " INSERT INTO trades (id, pair) SELECT id, pair FROM trades_archive; COMMIT;")
    conn.execute("DROP TABLE trades")
    conn.close()
    engine.incremental()
    out = tmp_path / "restored.sqlite"
    restore_sqlite(store, plan_restore(store.entries(), Target()), DatabaseService(f"sqlite:///{out}"))
    objects = []
    for db in (path, out):
        conn = sqlite3.connect(db)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            assert "trades" not in tables and "trades_archive" in tables
            indexes = conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'").fetchall()
            assert ("ix_trades_pair", "trades_archive") in indexes
            rows = conn.execute("SELECT * FROM trades_archive ORDER BY id").fetchall()
            objects.append(schema_objects(conn, ["trades_archive"]))
        finally:
            conn.close()
        assert len(rows) == 10
    assert objects[0] == objects[1]
    assert database_digest_of(out, "trades_archive") == database_digest_of(path, "trades_archive")


def database_digest_of(path, table: str) -> dict:
    conn = sqlite3.connect(path)
    try:
        return database_digest(conn, {table: ["id"]})
    finally:
        conn.close()
