"""What change capture costs a trading commit on a table without a primary key, against a
keyed table of the same width.

A keyless table is captured by its whole row (an update or delete logs every old column),
a keyed one by its key. Four databases with one 11-column table of 10,000 rows: keyed and
keyless, each with capture installed and without. The keyless table has a plain index on
``id`` so the bot's own UPDATE finds its row the same way on both. One transaction: INSERT a
row; UPDATE one row by id; COMMIT, timed from BEGIN to the end of COMMIT, the four sides
interleaved in batches in a random order per round. The goal compares capture's overhead
(p99 with capture / p99 without) of the keyless table with that of the keyed one.
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

from bench.latency import summary
from trade_stream.sqlite.capture import SqliteCapture
from trade_stream.sqlite.database import DatabaseService

ROWS = 10_000
COLUMNS = ("id INTEGER{pk}, pair TEXT, side TEXT, price REAL, amount REAL, cost NUMERIC, fee REAL, "
           "status TEXT, opened TEXT, closed TEXT, exchange_ts INTEGER")


def _database(path: Path, keyed: bool, capture: bool) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"CREATE TABLE t ({COLUMNS.format(pk=' PRIMARY KEY' if keyed else '')})")
    if not keyed:
        conn.execute("CREATE INDEX t_id ON t (id)")
    rng = random.Random(3)
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t VALUES (?, 'BTC/USDT', 'buy', ?, ?, ?, ?, 'open', '2026-01-01 00:00:00',"
                     " NULL, ?)", [(i, rng.uniform(1, 60000), rng.uniform(0.01, 5), f"{rng.uniform(1, 9):.8f}",
                                    rng.uniform(0, 1), rng.getrandbits(62)) for i in range(1, ROWS + 1)])
    conn.execute("COMMIT")
    conn.close()
    if capture:
        db = DatabaseService(f"sqlite:///{path}")
        conn = db.connect()
        try:
            SqliteCapture(db).sync(conn)
        finally:
            conn.close()


class _Side:
    def __init__(self, path: Path, seed: int) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.rng = random.Random(seed)
        self.next_id = ROWS + 1

    def transaction(self) -> int:
        rng, conn = self.rng, self.conn
        new = (self.next_id, rng.uniform(1, 60000), rng.uniform(0.01, 5), f"{rng.uniform(1, 9):.8f}",
               rng.getrandbits(62))
        self.next_id += 1
        change = (rng.uniform(0, 1), "closed", rng.randint(1, ROWS))
        started = time.perf_counter_ns()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?, 'ETH/USDT', 'sell', ?, ?, ?, 0.001, 'open', '2026-01-02 00:00:00',"
                     " NULL, ?)", new)
        conn.execute("UPDATE t SET fee = ?, status = ? WHERE id = ?", change)
        conn.execute("COMMIT")
        return time.perf_counter_ns() - started

    def close(self) -> None:
        self.conn.close()


def measure(work: Path, transactions: int, batch: int = 50, warmup: int = 100, seed: int = 17) -> dict:
    sides: dict[str, _Side] = {}
    for name, keyed, capture in (("keyed_off", True, False), ("keyed_on", True, True),
                                 ("keyless_off", False, False), ("keyless_on", False, True)):
        path = work / f"keyless-latency-{name}.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        _database(path, keyed, capture)
        sides[name] = _Side(path, seed)
    try:
        for side in sides.values():
            for _ in range(warmup):
                side.transaction()
        samples: dict[str, list[int]] = {name: [] for name in sides}
        order = random.Random(seed + 1)
        names = list(sides)
        while len(samples["keyed_off"]) < transactions:
            size = min(batch, transactions - len(samples["keyed_off"]))
            order.shuffle(names)
            for name in names:
                samples[name].extend(sides[name].transaction() for _ in range(size))
        result = {name: summary(values) for name, values in samples.items()}
        for kind in ("keyed", "keyless"):
            result[f"{kind}_overhead_p99"] = result[f"{kind}_on"]["p99_ms"] / result[f"{kind}_off"]["p99_ms"]
        result["overhead_ratio_p99"] = result["keyless_overhead_p99"] / result["keyed_overhead_p99"]
        result["on_ratio_p99"] = result["keyless_on"]["p99_ms"] / result["keyed_on"]["p99_ms"]
        return result
    finally:
        for side in sides.values():
            side.close()
