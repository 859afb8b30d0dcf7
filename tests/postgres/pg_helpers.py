"""Helpers shared by the PostgreSQL tests (library-level: engine, store, restore, digests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from restore.dispatch import restore_to
from restore.planner import Target, plan_restore
from trade_stream.postgres.backup import PostgresBackupEngine
from trade_stream.postgres.database import PostgresDatabase
from trade_stream.postgres.digest import database_digest
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore


def make_store(root: Path, source: str = "src") -> BackupStore:
    return BackupStore(source, [open_location("one", f"file://{root / 'loc1'}"),
                                open_location("two", f"file://{root / 'loc2'}")])


def engine(url: str, store: BackupStore) -> PostgresBackupEngine:
    return PostgresBackupEngine(PostgresDatabase(url), store)


def restore(store: BackupStore, target_url: str, *, seq: int | None = None, ts: int | None = None,
            force: bool = True) -> Any:
    plan = plan_restore(store.entries(), Target(seq=seq, ts=ts))
    return restore_to(store, plan, target_url, force=force)


def connect(url: str):
    return PostgresDatabase(url).connect()


def fetch(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    """The rows of one query, on a connection of its own."""
    conn = connect(url)
    try:
        return conn.execute(sql, params or None).fetchall()
    finally:
        conn.close()


def digest(url: str, tables: dict[str, list[str]]) -> dict[str, str]:
    conn = connect(url)
    try:
        return database_digest(conn, tables)
    finally:
        conn.close()


def execute(url: str, *statements: str | tuple[str, tuple]) -> None:
    conn = connect(url)
    try:
        for statement in statements:
            if isinstance(statement, tuple):
                conn.execute(statement[0], statement[1])
            else:
                conn.execute(statement)
    finally:
        conn.close()
