"""Cross-dialect restores: a SQLite backup into PostgreSQL, a PostgreSQL backup into SQLite
(and on to PostgreSQL again), equal by value under the documented type mapping."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from restore.dispatch import restore_to
from restore.planner import Target, plan_restore
from tests.postgres.pg_helpers import connect, engine, execute, make_store, restore
from trade_stream.postgres.digest import table_rows
from trade_stream.schema import family_of
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore
from tradevault.workload import TradingWorkload, create_database

pytestmark = pytest.mark.xdist_group("postgres")

SQLITE_TABLES = {"trades": ["id"], "orders": ["id"], "pairlocks": ["id"], "KeyValueStore": ["key", "value_type"]}


def canonical(value: Any, family: str) -> Any:
    """A value as the type mapping promises to keep it, whichever dialect holds it."""
    if value is None:
        return None
    if family in ("integer", "boolean"):
        return int(value)
    if family == "float":
        return float(value)
    if family == "numeric":
        number = decimal.Decimal(repr(value)) if isinstance(value, float) else decimal.Decimal(value)
        return number.normalize() if number.is_finite() else str(number)
    if family == "datetime":
        moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
        return moment.astimezone(dt.timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment
    if family == "date":
        return dt.date.fromisoformat(value) if isinstance(value, str) else value
    if family in ("json", "array"):
        if isinstance(value, list):
            from restore.type_mapping import _json_text

            value = _json_text(value)
        return json.loads(value, parse_float=decimal.Decimal)
    if family == "uuid":
        return str(value)
    if family == "blob":
        return bytes(value)
    return str(value)


def sqlite_rows(path: Path, table: str, key: list[str]) -> tuple[list[str], list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        info = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
        families = [family_of(r[2] or "") for r in info]
        order = ", ".join(f'"{k}"' for k in key)
        rows = conn.execute(f'SELECT * FROM "{table}" ORDER BY {order}').fetchall()
    finally:
        conn.close()
    return families, [tuple(canonical(v, f) for v, f in zip(r, families)) for r in rows]


def pg_rows(url: str, table: str, key: list[str], families: list[str]) -> list[tuple]:
    conn = connect(url)
    try:
        return [tuple(canonical(v, f) for v, f in zip(r, families)) for r in table_rows(conn, table, key)]
    finally:
        conn.close()


def test_sqlite_backup_restores_into_postgres(pg, work_dir):
    dst = pg.new("dst")
    path = work_dir / "tradesv3.sqlite"
    create_database(path)
    workload = TradingWorkload(path, seed=11)
    try:
        workload.run(150)
        store = BackupStore("tradesv3", [open_location("one", f"file://{work_dir / 'loc'}")])
        sqlite_engine = BackupEngine(DatabaseService(f"sqlite:///{path}"), store)
        sqlite_engine.full()
        workload.run(150)
        BackupEngine(DatabaseService(f"sqlite:///{path}"), store).incremental()
    finally:
        workload.close()
    result = restore_to(store, plan_restore(store.entries(), Target()), dst, force=False)
    assert result.rows > 0 and result.events > 0
    for table, key in SQLITE_TABLES.items():
        families, expected = sqlite_rows(path, table, key)
        assert pg_rows(dst, table, key, families) == expected, table
    # the restored PostgreSQL database is usable as a source in its turn
    store2 = make_store(work_dir / "pg-store", source="restored")
    assert engine(dst, store2).full().count == result.rows


def test_postgres_backup_restores_into_sqlite_and_back(pg, work_dir):
    src, again = pg.new("src"), pg.new("dst")
    execute(src, """CREATE TABLE trades (id bigserial PRIMARY KEY, pair varchar(25) NOT NULL, is_open boolean,
                    amount numeric(20,8), rate double precision, open_date timestamp, close_date timestamptz,
                    day date, ref uuid, meta jsonb, fills int[], raw bytea)""",
            """INSERT INTO trades (pair, is_open, amount, rate, open_date, close_date, day, ref, meta, fills, raw)
               SELECT 'BTC/USDT', g % 2 = 0, g * 1.12345678, g / 7.0, '2024-01-01'::timestamp + g * interval '1 min',
                      '2024-01-01 00:00:00+02'::timestamptz + g * interval '1 h', '2024-01-01'::date + g,
                      gen_random_uuid(), jsonb_build_object('g', g, 'x', 1.50), ARRAY[g, NULL], '\\x00ff'
               FROM generate_series(1, 300) g""")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "UPDATE trades SET is_open = NOT is_open, amount = amount * 2 WHERE id % 3 = 0",
            "DELETE FROM trades WHERE id % 5 = 0", "INSERT INTO trades (pair, rate) VALUES ('ETH/USDT', -0.0)")
    engine(src, store).incremental()
    target = work_dir / "restored.sqlite"
    result = restore(store, f"sqlite:///{target}", force=False)
    assert result.rows == 241
    families, restored = sqlite_rows(target, "trades", ["id"])
    assert families[:3] == ["integer", "text", "boolean"] and families[9] == "json"
    families[10] = "array"  # int[] travels as JSON text into SQLite
    assert pg_rows(src, "trades", ["id"], families) == restored
    # and on into PostgreSQL again, from a backup of the SQLite copy
    sqlite_store = BackupStore("restored", [open_location("one", f"file://{work_dir / 'sqlite-store'}")])
    BackupEngine(DatabaseService(f"sqlite:///{target}"), sqlite_store).full()
    restore(sqlite_store, again, force=False)
    assert pg_rows(again, "trades", ["id"], families) == restored


def test_sqlite_full_text_tables_into_postgres_keep_their_rows_and_say_what_is_left(pg, tmp_path):
    from tests.trade_stream.test_virtual_tables import MIGRATION, _bot

    dst = pg.new("dst")
    path = tmp_path / "bot.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(MIGRATION)
    store = BackupStore("bot", [open_location("local", f"file://{tmp_path / 'backups'}")])
    sqlite_engine = BackupEngine(DatabaseService(f"sqlite:///{path}"), store)
    sqlite_engine.full()
    _bot(path, "INSERT INTO journal VALUES ('exit', 'scalp out')",
         "INSERT INTO trades (pair, note) VALUES ('SOL', 'x')")
    sqlite_engine.incremental()
    result = restore(store, dst)
    assert "virtual table journal (fts5) not kept: SQLite's own; its rows are in table journal_content" in result.notes
    assert "virtual table trades_fts (fts5) not kept: SQLite's own" in result.notes
    conn = connect(dst)
    assert conn.execute("SELECT c0, c1 FROM journal_content ORDER BY id").fetchall() == [
        ("plan", "buy the dip"), ("risk", "stop loss always"), ("exit", "scalp out")]
    assert conn.execute("SELECT count(*) FROM trades").fetchone()[0] == 3
    tables = {name for (name,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert not {t for t in tables if t.startswith(("journal_", "trades_fts"))} - {"journal_content"}
