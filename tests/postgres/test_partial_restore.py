"""``restore --tables`` from a PostgreSQL source into PostgreSQL and into SQLite (and from
a SQLite source into PostgreSQL): the chosen tables equal the same tables of a full
restore at the same point; a foreign key into a table left out is not created in
PostgreSQL (SQLite keeps it unchecked), and a view that needs one is not created; each is
noted. The real CLI in a subprocess against the test cluster."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.cli_harness import TV_CMD, clean_env
from tests.postgres.pg_helpers import connect, digest, execute
from trade_stream.sqlite.digest import database_digest
from tradevault.workload import TradingWorkload, create_database

pytestmark = pytest.mark.xdist_group("postgres")

CHOSEN = {"trades": ["id"], "fills": ["id"]}


def tv(work_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*TV_CMD, *args, "-c", str(work_dir / "tradevault.toml")], capture_output=True,
                          text=True, cwd=work_dir, env=clean_env(), timeout=120)


def ok(work_dir: Path, *args: str) -> dict:
    done = tv(work_dir, *args, "--json")
    assert done.returncode == 0, f"{args}: {done.stderr}"
    return json.loads(done.stdout)


def configure(work_dir: Path, url: str) -> None:
    (work_dir / "tradevault.toml").write_text(
        f'[database]\nurl = "{url}"\nname = "partial"\n\n[[locations]]\nname = "local"\n'
        f'url = "file://{work_dir / "backups"}"\n\n[agent]\nstate_dir = "{work_dir / "state"}"\n'
        f'\n[config_vcs]\npaths = []\n')


def sqlite_digest(path: Path, tables: dict[str, list[str]]) -> dict[str, str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return database_digest(conn, tables)
    finally:
        conn.close()


def public_tables(url: str) -> set[str]:
    conn = connect(url)
    try:
        return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    finally:
        conn.close()


def foreign_keys(url: str) -> set[tuple[str, str]]:
    """(table, referenced table) of every foreign key in ``public``."""
    conn = connect(url)
    try:
        return set(conn.execute("SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint"
                                " WHERE contype = 'f'").fetchall())
    finally:
        conn.close()


def middle_of_last_incremental(work_dir: Path) -> str:
    entries = ok(work_dir, "backups", "list")
    last = entries[-1]
    assert last["kind"] == "incremental", entries
    return str((last["after_seq"] + last["last_seq"]) // 2)


@pytest.fixture
def pg_source(pg, work_dir):
    """A PostgreSQL source: accounts <- trades <- fills (foreign keys), two views, a trigger
    on fills; a full backup and two incrementals of changes to every table."""
    src = pg.new("src")
    execute(src, "CREATE TABLE accounts (id serial PRIMARY KEY, name text NOT NULL)",
            "CREATE TABLE trades (id bigserial PRIMARY KEY, account_id int NOT NULL REFERENCES accounts(id),"
            " pair varchar(25) NOT NULL, amount numeric(20, 8), opened timestamptz DEFAULT now())",
            "CREATE TABLE fills (id bigserial PRIMARY KEY, trade_id bigint REFERENCES trades(id) ON DELETE CASCADE,"
            " qty numeric, note text)",
            "CREATE INDEX fills_trade ON fills (trade_id)",
            "CREATE VIEW account_names AS SELECT id, name FROM accounts",
            "CREATE VIEW trade_fills AS SELECT t.pair, f.qty FROM trades t JOIN fills f ON f.trade_id = t.id",
            "CREATE FUNCTION fill_note() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN NEW.note := coalesce(NEW.note, 'filled'); RETURN NEW; END $$",
            "CREATE TRIGGER fills_note BEFORE INSERT ON fills FOR EACH ROW EXECUTE FUNCTION fill_note()",
            "INSERT INTO accounts (name) SELECT 'acct' || g FROM generate_series(1, 5) g",
            "INSERT INTO trades (account_id, pair, amount) SELECT 1 + g % 5, 'P' || g, g * 1.25"
            " FROM generate_series(1, 200) g",
            "INSERT INTO fills (trade_id, qty) SELECT 1 + g % 200, g / 3.0 FROM generate_series(1, 400) g")
    configure(work_dir, src)
    ok(work_dir, "backup", "full")
    for round_ in (1, 2):
        for i in range(20):  # small transactions, so a seq inside an incremental cuts between them
            execute(src, "SET synchronous_commit = on",
                    f"UPDATE trades SET amount = amount + {round_} WHERE id % 20 = {i}",
                    f"INSERT INTO fills (trade_id, qty) VALUES ({1 + i}, {round_ * i})",
                    f"UPDATE accounts SET name = name || '{i}' WHERE id = {1 + i % 5}",
                    f"DELETE FROM fills WHERE id = {round_ * 100 + i}")
        ok(work_dir, "backup", "incremental")
    return src


def test_partial_postgres_restore_equals_those_tables_of_a_full_one_and_leaves_the_key_out(pg, pg_source, work_dir):
    seq = middle_of_last_incremental(work_dir)
    full, part = pg.new("full"), pg.new("part")
    whole = ok(work_dir, "restore", "--to", full, "--seq", seq)
    some = ok(work_dir, "restore", "--to", part, "--seq", seq, "--tables", "trades,fills")

    assert some["last_seq"] == whole["last_seq"] and some["last_ts"] == whole["last_ts"]
    assert some["tables"] == {t: whole["tables"][t] for t in CHOSEN}
    assert public_tables(part) == set(CHOSEN)
    assert digest(part, CHOSEN) == digest(full, CHOSEN)
    assert "trades: foreign key to left-out table accounts not created" in some["notes"], some["notes"]
    assert "view account_names not created: what it reads was left out" in some["notes"], some["notes"]
    assert len(some["notes"]) == 2, some["notes"]
    assert foreign_keys(part) == {("fills", "trades")}
    assert foreign_keys(full) == {("fills", "trades"), ("trades", "accounts")}
    conn = connect(part)
    try:  # what needs only the chosen tables is there and works
        assert conn.execute("SELECT count(*) FROM trade_fills").fetchone()[0] > 0
        note = conn.execute("INSERT INTO fills (trade_id, qty) VALUES (1, 1) RETURNING note").fetchone()[0]
        assert note == "filled"
        conn.rollback()
    finally:
        conn.close()


def test_partial_restore_of_a_postgres_backup_into_sqlite_equals_those_tables_of_a_full_one(pg_source, work_dir):
    seq = middle_of_last_incremental(work_dir)
    full_db, part_db = work_dir / "full.sqlite", work_dir / "part.sqlite"
    whole = ok(work_dir, "restore", "--to", f"sqlite:///{full_db}", "--seq", seq)
    some = ok(work_dir, "restore", "--to", f"sqlite:///{part_db}", "--seq", seq, "--tables", "fills,trades")

    assert some["last_seq"] == whole["last_seq"]
    assert some["tables"] == {t: whole["tables"][t] for t in CHOSEN}
    assert sqlite_digest(part_db, CHOSEN) == sqlite_digest(full_db, CHOSEN)
    assert "trades: foreign key to left-out table accounts kept, not enforced" in some["notes"], some["notes"]
    conn = sqlite3.connect(part_db)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                            " AND name NOT LIKE 'sqlite%'")}
        assert names == set(CHOSEN)
        assert {r[2] for r in conn.execute("PRAGMA foreign_key_list(trades)")} == {"accounts"}
    finally:
        conn.close()


def test_partial_restore_of_a_sqlite_backup_into_postgres_equals_those_tables_of_a_full_one(pg, work_dir):
    db = work_dir / "tradesv3.sqlite"
    create_database(db)
    configure(work_dir, f"sqlite:///{db}")
    workload = TradingWorkload(db, seed=31)
    try:
        workload.run(80)
        ok(work_dir, "backup", "full")
        workload.run(80)
        ok(work_dir, "backup", "incremental")
    finally:
        workload.close()
    seq = middle_of_last_incremental(work_dir)
    full, part = pg.new("full"), pg.new("part")
    whole = ok(work_dir, "restore", "--to", full, "--seq", seq)
    some = ok(work_dir, "restore", "--to", part, "--seq", seq, "--tables", "orders,pairlocks")

    chosen = {"orders": ["id"], "pairlocks": ["id"]}
    assert some["last_seq"] == whole["last_seq"]
    assert public_tables(part) == set(chosen)
    assert digest(part, chosen) == digest(full, chosen)
    assert "orders: foreign key to left-out table trades not created" in some["notes"], some["notes"]
    assert foreign_keys(part) == set() and ("orders", "trades") in foreign_keys(full)
