"""One PostgreSQL transaction larger than every window of the pipeline (the capture's
20,000 events, the restore cut's 25,000): captured window by window, stored in many
chunks, restored exactly to the latest point and around it, and a capture killed at any
moment leaves nothing partial and loses nothing."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from restore.net_effect import WINDOW
from tests.postgres.pg_helpers import connect, digest, engine, execute, make_store, restore
from trade_stream import manifest as mf
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import events_of

pytestmark = pytest.mark.xdist_group("postgres")

ROWS = WINDOW + 10_000  # more than the restore folds at once, too
# text that COPY's text format escapes, and JSON escapes, on the way out of the server
SPECIAL = ["plain", 'quote " inside', "back\\slash \\\\ twice", "tab\there new\nline", "ünïcode €",
           '{"json": "like \\" this"}']
TABLES = {"t": ["id"], "marks": ["id"]}


def _source(pg) -> str:
    src = pg.new("src")
    specials = ", ".join("'" + s.replace("'", "''") + "'" for s in SPECIAL)
    execute(src, "CREATE TABLE t (id bigint PRIMARY KEY, v text NOT NULL, n numeric(20,8) NOT NULL)",
            f"INSERT INTO t SELECT g, 'row ' || g, g * 1.25 FROM generate_series(1, {ROWS}) g",
            "CREATE TABLE marks (id int PRIMARY KEY)",
            "CREATE TABLE specials (i int PRIMARY KEY, s text NOT NULL)",
            f"INSERT INTO specials SELECT i, (ARRAY[{specials}])[i] FROM generate_series(1, {len(SPECIAL)}) i")
    return src


def _big_transaction(src: str) -> None:
    conn = connect(src)
    try:
        with conn.transaction():
            conn.execute("UPDATE t SET v = t.v || ' ' || s.s, n = n + 1 FROM specials s"
                         f" WHERE s.i = 1 + t.id % {len(SPECIAL)}")
            conn.execute("INSERT INTO marks VALUES (1)")
    finally:
        conn.close()


def test_a_transaction_larger_than_every_window_is_stored_and_restored_exactly(pg, work_dir):
    src = _source(pg)
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "INSERT INTO marks VALUES (0)")  # a small transaction before it
    before = digest(src, TABLES)
    _big_transaction(src)
    execute(src, "INSERT INTO marks VALUES (2)")  # and one after
    result = engine(src, store).incremental()
    assert result.count == ROWS + 3
    (entry,) = [e for e in store.entries() if e.kind == mf.INCREMENTAL]
    windows = list(events_of(store, entry))
    assert len(windows) >= 3 and max(len(w) for w in windows) <= 20_000  # stored in chunks
    events = [e for w in windows for e in w]
    big = [e for e in events if e.table == "t"]
    assert len(big) == ROWS and len({e.tx for e in big}) == 1
    assert sorted(e.row[1].split(" ", 2)[2] for e in big[:len(SPECIAL)]) == sorted(SPECIAL)

    latest = pg.new("latest")
    restore(store, latest)
    assert digest(latest, TABLES) == digest(src, TABLES)
    after_big = pg.new("afterbig")  # the target at the transaction's last event: all of it
    restore(store, after_big, seq=[e for e in events if e.table == "marks"][1].seq)
    conn = connect(after_big)
    try:
        assert [r[0] for r in conn.execute("SELECT id FROM marks ORDER BY id")] == [0, 1]
    finally:
        conn.close()
    inside = pg.new("inside")  # a target inside it: the state before it
    restore(store, inside, seq=big[ROWS // 2].seq)
    assert digest(inside, TABLES) == before

    sqlite_path = work_dir / "copy.sqlite"
    restore(store, f"sqlite:///{sqlite_path}")
    with sqlite3.connect(sqlite_path) as lite:
        got = dict(lite.execute("SELECT id, v FROM t WHERE id <= 12").fetchall())
    conn = connect(src)
    try:
        assert got == dict(conn.execute("SELECT id, v FROM t WHERE id <= 12").fetchall())
    finally:
        conn.close()


_SCRIPT = Path(sys.executable).parent / "tradevault"
TV = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "tradevault.cli"]


def test_a_capture_killed_during_a_large_transaction_leaves_nothing_partial(pg, work_dir):
    src = _source(pg)
    config = work_dir / "tradevault.toml"
    config.write_text(f'[database]\nurl = "{src}"\nname = "bigtx"\n\n[[locations]]\nname = "local"\n'
                      f'url = "file://{work_dir / "backups"}"\n\n[config_vcs]\npaths = []\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEVAULT_")}

    def tv(*args: str) -> subprocess.Popen:
        return subprocess.Popen([*TV, *args, "-c", str(config), "--json"], cwd=work_dir, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    full = tv("backup", "full")
    assert full.wait(120) == 0, full.stderr.read() if full.stderr else ""
    _big_transaction(src)
    store = BackupStore("bigtx", [open_location("local", f"file://{work_dir / 'backups'}")])
    kept = [e.object for e in store.entries()]
    kills = 0
    for step in range(1, 60):  # later and later, through start-up, decoding and storing
        delay = 0.12 * step
        proc = tv("backup", "incremental")
        time.sleep(delay)
        proc.kill()
        proc.communicate(timeout=60)
        if proc.returncode == 0:  # it finished first: the transaction is stored whole
            break
        kills += 1
        entries = store.entries()
        if [e.object for e in entries] != kept:  # killed after publishing, before the slot moved
            assert [e.object for e in entries[:-1]] == kept and entries[-1].count == ROWS + 1, \
                f"killed at {delay:.2f} s: a partial backup is listed"
            break
    assert kills >= 4
    done = tv("backup", "incremental")
    out, err = done.communicate(timeout=300)
    assert done.returncode == 0, err
    incrementals = [e for e in store.entries() if e.kind == mf.INCREMENTAL]
    assert sum(e.count for e in incrementals) == ROWS + 1  # every change once: none lost, none twice
    verify = tv("verify")
    assert verify.wait(120) == 0
    latest = pg.new("latest")
    restore(store, latest)
    assert digest(latest, TABLES) == digest(src, TABLES)
    assert json.loads(out)["events"] in (0, ROWS + 1)
