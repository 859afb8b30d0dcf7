"""A point in time is a committed state: ``restore --at`` or ``--seq`` inside a transaction's
span gives the state before that transaction, never half of it. On SQLite the agent's watch
learns the commit boundaries (triggers know no transactions); without the agent, each
incremental's end is the only boundary known."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.cli_harness import tv, tv_start

SCHEMA = """
CREATE TABLE trades (id INTEGER PRIMARY KEY, pair TEXT NOT NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, trade_id INTEGER NOT NULL REFERENCES trades(id));
"""

# The bot's transaction: a trade, two seconds of thinking, its order, commit. Prints the
# time between the two statements.
SLOW_TX = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN")
conn.execute("INSERT INTO trades VALUES (2, 'ETH/USDT')")
time.sleep(1.0)
print(int(time.time() * 1e6), flush=True)
time.sleep(1.0)
conn.execute("INSERT INTO orders VALUES (20, 2)")
conn.execute("COMMIT")
"""


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, tz=timezone.utc).isoformat()


def _rows(path: Path) -> tuple[list, list]:
    conn = sqlite3.connect(path)
    try:
        return (conn.execute("SELECT id FROM trades ORDER BY id").fetchall(),
                conn.execute("SELECT id FROM orders ORDER BY id").fetchall())
    finally:
        conn.close()


def _setup(tmp: Path) -> Path:
    db = tmp / "bot.sqlite"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript(SCHEMA)
    conn.execute("INSERT INTO trades VALUES (1, 'BTC/USDT')")
    conn.execute("INSERT INTO orders VALUES (10, 1)")
    conn.close()
    (tmp / "tradevault.toml").write_text(f"""
[database]
url = "sqlite:///{db}"
[[locations]]
name = "local"
url = "file://{tmp / 'backups'}"
[schedule]
incremental = "1s"
verify = ""
[agent]
state_dir = "{tmp / 'state'}"
[config_vcs]
paths = []
""")
    return db


def _after_the_slow_transaction(db: Path) -> int:
    """Run the slow transaction, then one more small one; the time inside the first."""
    inside = int(subprocess.run([sys.executable, "-c", SLOW_TX, str(db)], capture_output=True, text=True,
                                check=True).stdout)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("INSERT INTO trades VALUES (3, 'SOL/USDT')")
    conn.close()
    return inside


def _restore(tmp: Path, name: str, *args: str) -> tuple[Path, dict]:
    target = tmp / name
    result = tv("restore", "--to", f"sqlite:///{target}", "--json", *args, cwd=tmp)
    assert result.rc == 0, str(result)
    return target, result.json()


@pytest.mark.parametrize("with_agent", [True, False], ids=["agent", "manual-backups"])
def test_restore_inside_a_transaction_gives_the_state_before_it(tmp_path, with_agent):
    db = _setup(tmp_path)
    assert tv("backup", "full", cwd=tmp_path).rc == 0
    agent = tv_start("agent", cwd=tmp_path) if with_agent else None
    try:
        if agent is not None:
            time.sleep(1.5)  # the agent's watch is reading the change log
        inside = _after_the_slow_transaction(db)
        time.sleep(1.5)
    finally:
        if agent is not None:
            agent.terminate()
            assert agent.wait(60) == 0
    if agent is None:
        assert tv("backup", "incremental", cwd=tmp_path).rc == 0

    target, info = _restore(tmp_path, "inside.sqlite", "--at", _iso(inside))
    assert _rows(target) == ([(1,)], [(10,)])  # neither the trade nor its order
    assert info["last_ts"] is None or info["last_ts"] <= inside

    target, _ = _restore(tmp_path, "latest.sqlite")
    assert _rows(target) == ([(1,), (2,), (3,)], [(10,), (20,)])

    if with_agent:  # the watch saw the commit: the instant after it is a restore point of its own
        entries = tv("backups", "list", "--json", cwd=tmp_path).json()
        first_incremental = next(e for e in entries if e["kind"] == "incremental")
        target, info = _restore(tmp_path, "seq.sqlite", "--seq", str(first_incremental["first_seq"]))
        assert _rows(target) == ([(1,)], [(10,)])  # the trade alone never existed: snapped down
