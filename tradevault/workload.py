"""A synthetic trading workload on a freqtrade-like schema (demo, tests, benchmark).

Trades and orders are opened, filled, updated, closed and deleted in small transactions,
the way a trading bot writes; values cover what exactness must survive: 64-bit integers,
floats with full mantissas, decimals as NUMERIC, BLOBs, Unicode, NULLs, booleans, dates.
"""

from __future__ import annotations

import random
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

SCHEMA = [
    """CREATE TABLE trades (
        id INTEGER PRIMARY KEY,
        exchange VARCHAR(25) NOT NULL,
        pair VARCHAR(25) NOT NULL,
        is_open BOOLEAN NOT NULL,
        fee_open FLOAT NOT NULL,
        open_rate FLOAT NOT NULL,
        close_rate FLOAT,
        amount FLOAT NOT NULL,
        stake_amount NUMERIC(18, 8) NOT NULL,
        realized_profit FLOAT,
        open_date DATETIME NOT NULL,
        close_date DATETIME,
        strategy VARCHAR(100),
        exit_reason TEXT,
        leverage FLOAT DEFAULT 1.0,
        custom_data JSON
    )""",
    """CREATE TABLE orders (
        id INTEGER PRIMARY KEY,
        ft_trade_id INTEGER NOT NULL REFERENCES trades(id),
        ft_order_side VARCHAR(25) NOT NULL,
        order_id VARCHAR(255) NOT NULL,
        status VARCHAR(255),
        price FLOAT,
        amount FLOAT,
        filled FLOAT,
        cost NUMERIC,
        order_date DATETIME,
        order_filled_date DATETIME,
        exchange_ts BIGINT,
        raw BLOB
    )""",
    """CREATE TABLE pairlocks (
        id INTEGER PRIMARY KEY,
        pair VARCHAR(25) NOT NULL,
        reason VARCHAR(255),
        lock_time DATETIME NOT NULL,
        lock_end_time DATETIME NOT NULL,
        active BOOLEAN NOT NULL
    )""",
    """CREATE TABLE "KeyValueStore" (
        key VARCHAR(25) NOT NULL,
        value_type VARCHAR(20) NOT NULL,
        string_value TEXT,
        float_value FLOAT,
        int_value BIGINT,
        PRIMARY KEY (key, value_type)
    ) WITHOUT ROWID""",
]

PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "ÄÖÜ/€", "DOGE/USDT", "币/USDT", "XRP/BTC"]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def create_database(path: Path) -> None:
    """A fresh demo trading database (the schema of a small freqtrade-like bot)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in SCHEMA:
            conn.execute(statement)
    finally:
        conn.close()


class TradingWorkload:
    """One writer doing what a trading bot does, one small transaction per ``step``."""

    def __init__(self, path: Path, seed: int = 0, synchronous: str = "") -> None:
        """``synchronous``: e.g. "NORMAL" for a bot that runs WAL without an fsync per
        commit (how high-rate bots run); default: SQLite's own (FULL)."""
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.conn.execute("PRAGMA busy_timeout = 30000")
        if synchronous:
            self.conn.execute(f"PRAGMA synchronous = {synchronous}")
        self.rng = random.Random(seed)
        self.clock = datetime(2026, 1, 1, tzinfo=timezone.utc)
        self.transactions = 0
        next_ids = [self.conn.execute(f"SELECT coalesce(max(id), 0) FROM {t}").fetchone()[0]
                    for t in ("trades", "orders", "pairlocks")]
        self.next_trade, self.next_order, self.next_lock = (i + 1 for i in next_ids)

    def close(self) -> None:
        self.conn.close()

    def _float(self) -> float:
        return self.rng.uniform(0.0001, 70000.0) * (1 + self.rng.random() * 1e-9)

    def step(self) -> None:
        """One trading transaction: open, fill, update, close or clean up."""
        self.clock += timedelta(milliseconds=self.rng.randint(1, 5000))
        action = self.rng.choices(["open", "fill", "tick", "close", "cleanup", "lock", "kv"],
                                  weights=[30, 25, 20, 15, 4, 3, 3])[0]
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            getattr(self, f"_{action}")()
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.transactions += 1

    def _random_id(self, table: str, condition: str) -> int | None:
        """A random recent row matching ``condition``: a bot works on its latest trades, and
        a pivot on the primary key keeps this O(log n) on a large database."""
        top = {"trades": self.next_trade, "orders": self.next_order}[table]
        pivot = self.rng.randint(max(1, top - 5000), max(1, top))
        for sql in (f"SELECT id FROM {table} WHERE {condition} AND id >= ? ORDER BY id LIMIT 1",
                    f"SELECT id FROM {table} WHERE {condition} AND id < ? ORDER BY id DESC LIMIT 1"):
            row = self.conn.execute(sql, (pivot,)).fetchone()
            if row:
                return row[0]
        return None

    def _open(self) -> None:
        trade_id, order_id = self.next_trade, self.next_order
        self.next_trade += 1
        self.next_order += 1
        pair = self.rng.choice(PAIRS)
        rate = self._float()
        amount = self.rng.uniform(0.001, 10)
        self.conn.execute(
            "INSERT INTO trades (id, exchange, pair, is_open, fee_open, open_rate, amount, stake_amount,"
            " open_date, strategy, leverage, custom_data) VALUES (?, 'binance', ?, 1, 0.001, ?, ?, ?, ?, ?, ?, ?)",
            (trade_id, pair, rate, amount, f"{rate * amount:.8f}", _iso(self.clock), "SampleStrategy",
             self.rng.choice([1.0, 2.0, 3.0]), '{"note": "∑ entry"}' if self.rng.random() < 0.2 else None),
        )
        self.conn.execute(
            "INSERT INTO orders (id, ft_trade_id, ft_order_side, order_id, status, price, amount, filled,"
            " cost, order_date, exchange_ts, raw) VALUES (?, ?, 'buy', ?, 'open', ?, ?, 0.0, ?, ?, ?, ?)",
            (order_id, trade_id, f"ord-{order_id}", rate, amount, f"{rate * amount:.10f}", _iso(self.clock),
             self.rng.randint(-(2**63), 2**63 - 1), self.rng.randbytes(self.rng.randint(0, 48))),
        )

    def _fill(self) -> None:
        order = self._random_id("orders", "status = 'open'")
        if order is None:
            return self._open()
        self.conn.execute(
            "UPDATE orders SET status = 'closed', filled = amount, order_filled_date = ? WHERE id = ?",
            (_iso(self.clock), order),
        )

    def _tick(self) -> None:
        trade = self._random_id("trades", "is_open = 1")
        if trade is None:
            return self._open()
        self.conn.execute("UPDATE trades SET realized_profit = ? WHERE id = ?",
                          (self.rng.uniform(-100, 100), trade))
        self.conn.execute("UPDATE trades SET realized_profit = realized_profit * 1.0000001 WHERE id = ?", (trade,))

    def _close(self) -> None:
        trade = self._random_id("trades", "is_open = 1")
        if trade is None:
            return self._open()
        order_id = self.next_order
        self.next_order += 1
        rate = self._float()
        self.conn.execute(
            "INSERT INTO orders (id, ft_trade_id, ft_order_side, order_id, status, price, amount, filled,"
            " order_date, raw) VALUES (?, ?, 'sell', ?, 'closed', ?, 1.0, 1.0, ?, NULL)",
            (order_id, trade, f"ord-{order_id}", rate, _iso(self.clock)),
        )
        self.conn.execute(
            "UPDATE trades SET is_open = 0, close_rate = ?, close_date = ?, exit_reason = ? WHERE id = ?",
            (rate, _iso(self.clock), self.rng.choice(["roi", "stop_loss", "exit_signal", "🚀"]), trade),
        )

    def _cleanup(self) -> None:
        trade = self._random_id("trades", "is_open = 0")
        if trade is None:
            return
        self.conn.execute("DELETE FROM orders WHERE ft_trade_id = ?", (trade,))
        self.conn.execute("DELETE FROM trades WHERE id = ?", (trade,))

    def _lock(self) -> None:
        lock_id = self.next_lock
        self.next_lock += 1
        self.conn.execute(
            "INSERT INTO pairlocks (id, pair, reason, lock_time, lock_end_time, active) VALUES (?, ?, ?, ?, ?, 1)",
            (lock_id, self.rng.choice(PAIRS), "cooldown", _iso(self.clock), _iso(self.clock + timedelta(hours=1))),
        )
        self.conn.execute("UPDATE pairlocks SET active = 0 WHERE id < ? AND active = 1", (lock_id - 3,))

    def _kv(self) -> None:
        self.conn.execute(
            'INSERT INTO "KeyValueStore" (key, value_type, string_value, float_value, int_value)'
            " VALUES ('startup_candle', 'int', NULL, NULL, ?) ON CONFLICT (key, value_type)"
            " DO UPDATE SET int_value = excluded.int_value",
            (self.rng.randint(0, 2**62),),
        )

    def run(self, transactions: int, rate: float | None = None) -> None:
        """``transactions`` steps, at most ``rate`` per second when given."""
        interval = 1.0 / rate if rate else 0.0
        for _ in range(transactions):
            began = time.monotonic()
            self.step()
            if interval:
                time.sleep(max(0.0, interval - (time.monotonic() - began)))


def bulk_fill(path: Path, rows: int, seed: int = 0, batch: int = 50_000) -> None:
    """Fast initial data: ``rows`` rows split between trades and orders (benchmark)."""
    rng = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None)
    trades = rows // 3
    orders = rows - trades
    start = datetime(2025, 1, 1)
    try:
        conn.execute("BEGIN")
        for first in range(1, trades + 1, batch):
            conn.executemany(
                "INSERT INTO trades (id, exchange, pair, is_open, fee_open, open_rate, amount, stake_amount,"
                " open_date, strategy) VALUES (?, 'binance', ?, ?, 0.001, ?, ?, ?, ?, 'Bench')",
                [(i, PAIRS[i % len(PAIRS)], i % 7 == 0, rng.uniform(1, 60000), rng.uniform(0.01, 5),
                  f"{rng.uniform(10, 1000):.8f}", _iso(start + timedelta(seconds=i)))
                 for i in range(first, min(first + batch, trades + 1))],
            )
        for first in range(1, orders + 1, batch):
            conn.executemany(
                "INSERT INTO orders (id, ft_trade_id, ft_order_side, order_id, status, price, amount, filled,"
                " cost, order_date, exchange_ts) VALUES (?, ?, 'buy', ?, 'closed', ?, ?, ?, ?, ?, ?)",
                [(i, (i % max(trades, 1)) + 1, f"ord-{i}", rng.uniform(1, 60000), 1.0, 1.0,
                  f"{rng.uniform(1, 100):.6f}", _iso(start + timedelta(seconds=i)), rng.getrandbits(63))
                 for i in range(first, min(first + batch, orders + 1))],
            )
        conn.execute("COMMIT")
    finally:
        conn.close()
