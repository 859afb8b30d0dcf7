"""``restore --tables``: a restore of some tables of a SQLite source equals the same tables
of a full restore at the same point, holds no other table, keeps foreign keys into the
tables left out (unchecked, noted) and drops the views and triggers that need them. The
real CLI in a subprocess, real files."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest

from tests.cli_harness import TABLES, private_dir, tree_state
from trade_stream.sqlite.digest import database_digest


@pytest.fixture(scope="module")
def chain(cli) -> Iterator:
    """A workload source with a full backup and two incrementals."""
    setup = cli.new_setup(private_dir("partial"))
    setup.workload(60, seed=21)
    setup.ok("backup", "full")
    for seed in (22, 23):
        setup.workload(60, seed=seed)
        setup.ok("backup", "incremental")
    yield setup
    shutil.rmtree(setup.root, ignore_errors=True)


def _tables_of(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'")}
    finally:
        conn.close()


def _digest(path: Path, tables: dict[str, list[str]]) -> dict[str, str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return database_digest(conn, tables)
    finally:
        conn.close()


def _inside_last_incremental(setup) -> dict:
    entries = setup.ok("backups", "list", "--json").json()
    last = entries[-1]
    assert last["kind"] == "incremental" and last["last_seq"] - last["after_seq"] > 10, entries
    return last


@pytest.mark.parametrize("point", ["seq", "at"])
def test_restoring_some_tables_equals_those_tables_of_a_full_restore_at_the_same_point(chain, point):
    last = _inside_last_incremental(chain)
    if point == "seq":
        where = ["--seq", str((last["after_seq"] + last["last_seq"]) // 2)]
    else:
        middle = (last["first_ts"] + last["last_ts"]) // 2
        where = ["--at", datetime.fromtimestamp(middle / 1e6, tz=timezone.utc).isoformat()]
    full_db, part_db = chain.root / f"full-{point}.sqlite", chain.root / f"part-{point}.sqlite"
    full = chain.ok("restore", "--to", f"sqlite:///{full_db}", *where, "--json").json()
    part = chain.ok("restore", "--to", f"sqlite:///{part_db}", *where, "--tables", "trades,orders", "--json").json()

    assert part["last_seq"] == full["last_seq"] and part["last_ts"] == full["last_ts"]
    assert full["first_seq"] < part["last_seq"] < last["last_seq"]  # inside the last incremental
    assert sorted(part["tables"]) == ["orders", "trades"]
    assert part["tables"] == {t: full["tables"][t] for t in ("orders", "trades")}
    assert 0 < part["events"] < full["events"]  # the other tables' events were not replayed
    assert _tables_of(part_db) == {"orders", "trades"}
    wanted = {t: TABLES[t] for t in ("orders", "trades")}
    assert _digest(part_db, wanted) == _digest(full_db, wanted)
    assert part["notes"] == []  # orders' key points into trades, which is restored


def test_a_foreign_key_into_a_table_left_out_is_kept_unchecked_and_noted(chain):
    target = chain.root / "orders-only.sqlite"
    result = chain.ok("restore", "--to", f"sqlite:///{target}", "--tables", "orders,pairlocks", "--from", "local")
    assert "orders: foreign key to left-out table trades kept, not enforced" in result.out, result
    assert "(tables orders, pairlocks)" in result.out
    conn = sqlite3.connect(target)
    try:
        assert [row[2] for row in conn.execute("PRAGMA foreign_key_list(orders)")] == ["trades"]
    finally:
        conn.close()
    assert _tables_of(target) == {"orders", "pairlocks"}
    wanted = {t: TABLES[t] for t in ("orders", "pairlocks")}
    assert _digest(target, wanted) == _digest(chain.db, wanted)  # nothing pending: the latest point


def test_an_unknown_table_is_bad_input_and_leaves_the_target_untouched(chain):
    target_dir = chain.root / "untouched"
    target_dir.mkdir()
    target = target_dir / "db.sqlite"
    conn = sqlite3.connect(target)
    conn.execute("CREATE TABLE keep_me (x)")
    conn.close()
    before = tree_state(target_dir)
    result = chain.tv("restore", "--to", f"sqlite:///{target}", "--force", "--tables", "trades,nope")
    assert result.rc == 2, result
    message = result.err.strip()
    assert len(message.splitlines()) == 1 and "'nope'" in message, result
    assert "KeyValueStore, orders, pairlocks, trades" in message, result
    assert tree_state(target_dir) == before


def test_a_dry_run_lists_the_chosen_tables(chain):
    target = chain.root / "never.sqlite"
    planned = chain.ok("restore", "--to", f"sqlite:///{target}", "--tables", "trades, orders", "--dry-run",
                       "--json").json()
    assert planned["dry_run"] and planned["tables"] == ["orders", "trades"]
    entries = chain.ok("backups", "list", "--json").json()
    assert planned["rows"] == entries[0]["tables"]["orders"] + entries[0]["tables"]["trades"]
    assert chain.ok("restore", "--to", f"sqlite:///{target}", "--dry-run", "--json").json()["tables"] is None
    text = chain.ok("restore", "--to", f"sqlite:///{target}", "--tables", "trades", "--dry-run").out
    assert "(tables trades)" in text
    assert not target.exists()


APP_SCHEMA = [
    "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
    "CREATE TABLE positions (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL REFERENCES accounts(id),"
    " qty REAL)",
    "CREATE TABLE audit (id INTEGER PRIMARY KEY, position_id INTEGER, what TEXT)",
    "CREATE INDEX ix_positions_account ON positions (account_id)",
    "CREATE VIEW account_positions AS SELECT a.name, p.qty FROM positions p JOIN accounts a ON a.id = p.account_id",
    "CREATE VIEW big_positions AS SELECT id, qty FROM positions WHERE qty > 10",
    "CREATE TRIGGER positions_audit AFTER UPDATE ON positions BEGIN"
    " INSERT INTO audit (position_id, what) VALUES (new.id, 'update'); END",
    "CREATE TRIGGER positions_touch AFTER INSERT ON positions BEGIN"
    " UPDATE accounts SET name = name WHERE id = new.account_id; END",
]


def test_views_and_triggers_that_need_a_table_left_out_are_dropped_and_noted(cli):
    root = private_dir("partial-objects")
    db = root / "app.sqlite"
    conn = sqlite3.connect(db, isolation_level=None)
    for statement in APP_SCHEMA:
        conn.execute(statement)
    conn.execute("INSERT INTO accounts (name) VALUES ('a'), ('b')")
    conn.executemany("INSERT INTO positions (account_id, qty) VALUES (?, ?)", [(1 + i % 2, i) for i in range(30)])
    conn.close()
    config = root / "tradevault.toml"
    cli.write_config(config, db, {"local": root / "backups"})
    setup = cli.Setup(root, db, config, {"local": root / "backups"})
    setup.ok("backup", "full")
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("UPDATE positions SET qty = qty + 1 WHERE id % 3 = 0")
    conn.execute("INSERT INTO positions (account_id, qty) VALUES (2, 99)")
    conn.close()
    setup.ok("backup", "incremental")

    target = root / "positions.sqlite"
    result = setup.ok("restore", "--to", f"sqlite:///{target}", "--tables", "positions,audit", "--json").json()
    notes = result["notes"]
    assert "positions: foreign key to left-out table accounts kept, not enforced" in notes, notes
    assert any(n.startswith("view account_positions not kept: no such table") for n in notes), notes
    assert any(n.startswith("trigger positions_touch not kept: no such table") for n in notes), notes
    assert len(notes) == 3, notes
    conn = sqlite3.connect(target)
    try:
        objects = {(kind, name) for kind, name in conn.execute(
            "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite%'")}
        assert objects == {("table", "positions"), ("table", "audit"), ("index", "ix_positions_account"),
                           ("view", "big_positions"), ("trigger", "positions_audit")}
        assert conn.execute("SELECT count(*) FROM big_positions").fetchone()[0] > 0
    finally:
        conn.close()
    kept = {"positions": ["id"], "audit": ["id"]}
    assert _digest(target, kept) == _digest(db, kept)
    shutil.rmtree(root, ignore_errors=True)
