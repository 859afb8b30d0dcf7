"""The synthetic trading database and what the benchmark does to it."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from trade_stream.sqlite.capture import CHANGES
from trade_stream.sqlite.database import DatabaseService
from trade_stream.sqlite.digest import database_digest
from tradevault.workload import bulk_fill, create_database

CAPTURE_PREFIX = "_tradevault_"


def build(path: Path, rows: int) -> dict:
    """create_database + bulk_fill, then WAL mode (the journal mode of a bot's database once
    tradevault has switched it; a bot's own database is usually already in WAL)."""
    started = time.perf_counter()
    create_database(path)
    bulk_fill(path, rows)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in ("trades", "orders")}
    finally:
        conn.close()
    return {"seconds": time.perf_counter() - started, "db_bytes": path.stat().st_size,
            "journal_mode": mode, "tables": counts}


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy (SQLite online backup API), switched to WAL like the source."""
    target.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target, isolation_level=None)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode = WAL")
    finally:
        src.close()
        dst.close()


def user_tables(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Every table of the trading database (not tradevault's capture tables) and its key."""
    db = DatabaseService("sqlite:///unused.sqlite")
    tables = {}
    for name in db.user_tables(conn):
        if name.startswith(CAPTURE_PREFIX) or name.startswith("sqlite_"):
            continue
        tables[name] = db.table_schema(conn, name).primary_key
    return tables


def digest(path: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = user_tables(conn)
        return database_digest(conn, tables), tables
    finally:
        conn.close()


def change_random(path: Path, changes: int, seed: int, chunk: int = 10_000) -> dict:
    """UPDATE ``changes`` distinct rows picked at random (seeded), a third in trades and the
    rest in orders, in transactions of ``chunk`` rows (every update is one change event).
    Random rows are the hard case for a file-level deduplicating backup (restic): a change
    lands on pages all over the file; tradevault's incremental only sees the events."""
    import random

    rng = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    started = time.perf_counter()
    done = {"trades": 0, "orders": 0}
    sql = {
        "trades": "UPDATE trades SET realized_profit = coalesce(realized_profit, 0) + 1.25,"
                  " close_rate = open_rate * 1.01, is_open = 0 WHERE id = ?",
        "orders": "UPDATE orders SET status = 'filled', filled = filled + 0.5,"
                  " order_filled_date = order_date WHERE id = ?",
    }
    try:
        for table, want in (("trades", changes // 3), ("orders", changes - changes // 3)):
            top = conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
            if top == 0 or want == 0:
                continue
            ids = rng.sample(range(1, top + 1), min(want, top))
            for i in range(0, len(ids), chunk):
                conn.execute("BEGIN IMMEDIATE")
                cur = conn.executemany(sql[table], [(x,) for x in ids[i:i + chunk]])
                conn.execute("COMMIT")
                done[table] += cur.rowcount
    finally:
        conn.close()
    return {"rows_updated": sum(done.values()), "per_table": done, "seconds": time.perf_counter() - started,
            "pattern": "random rows"}


def checkpoint(path: Path) -> None:
    """Move the WAL into the database file (before a file-level backup of it)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def last_seq(path: Path) -> int:
    conn = sqlite3.connect(path, timeout=30)
    try:
        return conn.execute(f"SELECT coalesce(max(seq), 0) FROM {CHANGES}").fetchone()[0]
    finally:
        conn.close()
