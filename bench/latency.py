"""Commit latency of a typical trading transaction with change capture off and on.

Two copies of the same database: one without capture (as it was before tradevault), one
with capture installed by a full backup (the AFTER INSERT/UPDATE/DELETE triggers that
write the change log). Both in WAL mode, each written through a fresh connection with
SQLite's defaults (synchronous = FULL), the way a bot's own connection has them.

One transaction: BEGIN IMMEDIATE; INSERT an order; UPDATE a trade; COMMIT, timed from
BEGIN to the end of COMMIT. Batches of both sides are interleaved (the order of each pair
of batches chosen at random) so drift of the machine (page cache, other load, WAL
checkpoints) falls on both alike; a warm-up on each side is not counted.
"""

from __future__ import annotations

import math
import random
import sqlite3
import time
from pathlib import Path


class Trader:
    def __init__(self, path: Path, seed: int) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.rng = random.Random(seed)
        self.max_trade = self.conn.execute("SELECT coalesce(max(id), 1) FROM trades").fetchone()[0]
        self.next_order = self.conn.execute("SELECT coalesce(max(id), 0) + 1 FROM orders").fetchone()[0]
        self.settings = {
            "journal_mode": self.conn.execute("PRAGMA journal_mode").fetchone()[0],
            "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(
                self.conn.execute("PRAGMA synchronous").fetchone()[0], "?"),
            "wal_autocheckpoint": self.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0],
        }
        self.triggers = self.conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").fetchone()[0]

    def transaction(self) -> int:
        """One trading transaction; returns its latency in nanoseconds."""
        rng = self.rng
        order_id = self.next_order
        self.next_order += 1
        trade_id = rng.randint(1, self.max_trade)
        price = rng.uniform(1, 60000)
        params_order = (order_id, trade_id, f"ord-{order_id}", price, rng.uniform(0.01, 5),
                        f"{price:.8f}", "2026-01-01 00:00:00.000000", rng.getrandbits(63))
        params_trade = (rng.uniform(-100, 100), trade_id)
        conn = self.conn
        started = time.perf_counter_ns()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO orders (id, ft_trade_id, ft_order_side, order_id, status, price, amount, filled,"
            " cost, order_date, exchange_ts) VALUES (?, ?, 'sell', ?, 'open', ?, ?, 0.0, ?, ?, ?)",
            params_order,
        )
        conn.execute("UPDATE trades SET realized_profit = ? WHERE id = ?", params_trade)
        conn.execute("COMMIT")
        return time.perf_counter_ns() - started

    def close(self) -> None:
        self.conn.close()


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summary(ns: list[int]) -> dict:
    ms = sorted(v / 1e6 for v in ns)
    return {
        "samples_ms": [round(v / 1e6, 4) for v in ns],  # raw, in measurement order
        "transactions": len(ms),
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": ms[-1] if ms else float("nan"),
        "mean_ms": sum(ms) / len(ms) if ms else float("nan"),
    }


def measure(off_path: Path, on_path: Path, transactions: int, batch: int = 50, warmup: int = 100,
            seed: int = 11) -> dict:
    off, on = Trader(off_path, seed), Trader(on_path, seed)
    try:
        if off.triggers != 0 or on.triggers == 0:
            raise RuntimeError(f"latency copies are wrong: {off.triggers} triggers without capture, "
                               f"{on.triggers} with capture")
        for _ in range(warmup):
            off.transaction()
            on.transaction()
        samples: dict[str, list[int]] = {"off": [], "on": []}
        sides = {"off": off, "on": on}
        order_rng = random.Random(seed + 1)
        while len(samples["off"]) < transactions:
            size = min(batch, transactions - len(samples["off"]))
            pair = ["off", "on"]
            order_rng.shuffle(pair)
            for side in pair:
                trader = sides[side]
                samples[side].extend(trader.transaction() for _ in range(size))
        result = {"off": summary(samples["off"]), "on": summary(samples["on"])}
        result["p50_ratio"] = result["on"]["p50_ms"] / result["off"]["p50_ms"]
        result["p99_ratio"] = result["on"]["p99_ms"] / result["off"]["p99_ms"]
        result["settings"] = {"off": off.settings, "on": on.settings, "batch": batch, "warmup": warmup,
                              "triggers_on": on.triggers}
        return result
    finally:
        off.close()
        on.close()


def measure_during(path: Path, transactions: int, background_running, warmup: int = 100, seed: int = 13) -> dict:
    """Commit latency on ``path`` while some background work runs (``background_running()``
    says whether it still does; samples taken after it stopped are not counted)."""
    trader = Trader(path, seed)
    try:
        for _ in range(warmup):
            trader.transaction()
        samples: list[int] = []
        while len(samples) < transactions and background_running():
            samples.append(trader.transaction())
        result = summary(samples)
        result["settings"] = trader.settings
        result["triggers"] = trader.triggers
        return result
    finally:
        trader.close()
