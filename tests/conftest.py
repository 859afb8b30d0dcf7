"""Shared fixtures: a demo trading database and a store on a local directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from trade_stream.backup import BackupEngine
from trade_stream.database import DatabaseService
from trade_stream.locations import open_location
from trade_stream.store import BackupStore
from tradevault.workload import TradingWorkload, create_database

DEMO_KEYS = {"trades": ["id"], "orders": ["id"], "pairlocks": ["id"], "KeyValueStore": ["key", "value_type"]}


class Harness:
    """A source database with a store in two local locations, driven through the library."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db_path = root / "tradesv3.sqlite"
        create_database(self.db_path)
        self.workload = TradingWorkload(self.db_path, seed=7)
        self.db = DatabaseService(f"sqlite:///{self.db_path}")
        self.store = BackupStore(
            "tradesv3",
            [open_location("one", f"file://{root / 'loc1'}"), open_location("two", f"file://{root / 'loc2'}")],
        )
        self.engine = BackupEngine(self.db, self.store)

    def trade(self, transactions: int) -> None:
        self.workload.run(transactions)

    def close(self) -> None:
        self.workload.close()


@pytest.fixture
def harness(tmp_path: Path):
    h = Harness(tmp_path)
    yield h
    h.close()
