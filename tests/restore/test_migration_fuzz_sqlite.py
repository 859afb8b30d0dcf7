"""Random migrations and changes between SQLite incrementals (the SQLite counterpart of
tests/postgres/test_migration_fuzz.py), restored at every backup: the restore equals the
file as it was then, table by table, column by column. Steps: columns added and renamed,
tables renamed away and rebuilt (as ORMs migrate SQLite), dropped and created, indexes,
with inserts, updates and deletes. 30 seeds passed when it was written; 6 run here."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from restore.planner import Target, plan_restore
from restore.sqlite.replay import restore_sqlite
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore


def _tables(c: sqlite3.Connection) -> list[str]:
    return [r[0] for r in c.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_tradevault%' ESCAPE '\\'"
        " AND name NOT LIKE 'sqlite_%' ORDER BY 1")]


def _state(path) -> dict:
    """Every table's column names and rows (columns by name)."""
    c = sqlite3.connect(path)
    out = {}
    for t in _tables(c):
        cols = sorted(r[1] for r in c.execute(f'PRAGMA table_info("{t}")'))
        out[t] = (cols, sorted(map(repr, c.execute(f'SELECT {", ".join(chr(34)+x+chr(34) for x in cols)} FROM "{t}"'))))
    c.close()
    return out


GENERATED = ["id * 2", "id + 0.5", "'k' || id", "id / 3", "printf('%d', id)"]


def _step(rng: random.Random, path, n: int, generated: bool = False) -> None:
    """One random step; ``generated``: sometimes a generated column (VIRTUAL: SQLite adds no
    STORED one to a table), typed or not, whose expression PostgreSQL may refuse
    (``printf``) or compute otherwise."""
    c = sqlite3.connect(path, isolation_level=None)
    t = rng.choice(_tables(c))
    if generated and rng.random() < 0.06:
        kind = rng.choice(["INTEGER", "TEXT", "REAL", ""])
        c.execute(f'ALTER TABLE "{t}" ADD COLUMN g{n} {kind} AS ({rng.choice(GENERATED)})')
        c.close()
        return
    cols = [(r[1], r[2]) for r in c.execute(f'PRAGMA table_info("{t}")') if r[1] != "id"]
    col = rng.choice(cols) if cols else None
    k = rng.random()
    try:
        if k < 0.4:
            names = "".join(f', "{x}"' for x, _ in cols)
            vals = "".join(f", {n}" for _ in cols)
            c.execute(f'INSERT INTO "{t}" (id{names}) VALUES ({n}{vals})')
        elif k < 0.6 and col:
            c.execute(f'UPDATE "{t}" SET "{col[0]}" = {n} WHERE id % 3 = {n % 3}')
        elif k < 0.68:
            c.execute(f'DELETE FROM "{t}" WHERE id % 5 = {n % 5}')
        elif k < 0.74:
            c.execute(f'ALTER TABLE "{t}" ADD COLUMN c{n} {rng.choice(["INTEGER", "TEXT", "REAL"])}')
        elif k < 0.80 and col:
            c.execute(f'ALTER TABLE "{t}" RENAME COLUMN "{col[0]}" TO r{n}')
        elif k < 0.85:
            c.execute(f'CREATE INDEX ix{n} ON "{t}" (id)')
        elif k < 0.90:
            c.executescript(f'BEGIN; ALTER TABLE "{t}" RENAME TO "{t}_old{n}";'
                            f' CREATE TABLE "{t}" (id INTEGER PRIMARY KEY, v TEXT);'
                            f' INSERT INTO "{t}" (id) SELECT id FROM "{t}_old{n}"; COMMIT;')
        elif k < 0.94:
            c.execute(f'DELETE FROM "{t}"')
        elif k < 0.97:
            c.execute(f"CREATE TABLE t{n} (id INTEGER PRIMARY KEY, v TEXT)")
            c.execute(f"INSERT INTO t{n} VALUES (1, 'x')")
        else:
            if len(_tables(c)) > 1:
                c.execute(f'DROP TABLE "{t}"')
    except sqlite3.DatabaseError:
        pass  # a step the data refuses (an insert of an existing id): the application would not have made it
    c.close()


def fuzzed(tmp_path: Path, seed: int, rounds: int = 8, generated: bool = False) -> tuple[BackupStore, list[dict]]:
    """A SQLite database migrated at random (``_step``), backed up after each of ``rounds``
    rounds: the store, and the database's state (``_state``) at each backup."""
    rng = random.Random(seed)
    path = tmp_path / "app.sqlite"
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, x INTEGER, y TEXT)")
    c.execute("CREATE TABLE b (id INTEGER PRIMARY KEY, z NUMERIC NOT NULL DEFAULT 0)")
    c.executemany("INSERT INTO a VALUES (?, ?, ?)", [(i, i, f"y{i}") for i in range(1, 21)])
    c.executemany("INSERT INTO b (id) VALUES (?)", [(i,) for i in range(1, 11)])
    c.close()
    store = BackupStore("app", [open_location("one", f"file://{tmp_path / 'loc'}")])
    engine = BackupEngine(DatabaseService(f"sqlite:///{path}"), store)
    engine.full()
    states = [_state(path)]
    n = 100
    for _ in range(rounds):
        for _ in range(rng.randint(1, 12)):
            n += 1
            _step(rng, path, n, generated)
        result = engine.incremental()
        if result.skipped:  # no change stored: the last backup stands for this state too
            states[-1] = _state(path)
        else:
            states.append(_state(path))
    assert len(store.entries()) == len(states)
    return store, states


@pytest.mark.parametrize("seed", range(6))
def test_random_migrations_restore_at_every_backup(tmp_path, seed):
    store, states = fuzzed(tmp_path, seed)
    for entry, expected in zip(store.entries(), states):
        out = tmp_path / f"r{entry.n}.sqlite"
        restore_sqlite(store, plan_restore(store.entries(), Target(seq=entry.last_seq)), DatabaseService(f"sqlite:///{out}"))
        assert _state(out) == expected, f"seed {seed}, backup {entry.n}"
