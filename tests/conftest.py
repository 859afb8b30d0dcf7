"""Shared fixtures: a demo trading database and a store on a local directory."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest

from tests.cli_harness import private_dir, remove_private_root
from tests.services import PgCluster, PgDatabases
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.source import SqliteSource
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore
from tradevault.workload import TradingWorkload, create_database

DEMO_KEYS = {"trades": ["id"], "orders": ["id"], "pairlocks": ["id"], "KeyValueStore": ["key", "value_type"]}


class Harness:
    """A source database with a store in two local locations, driven through the library."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db_path = root / "tradesv3.sqlite"
        create_database(self.db_path)
        self.workload = TradingWorkload(self.db_path, seed=7)
        self.source = SqliteSource(f"sqlite:///{self.db_path}")
        self.db = self.source.db
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


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """One SeaweedFS for the session (tests using it share an xdist group)."""
    from tests.services import SeaweedS3

    server = SeaweedS3(tmp_path_factory.mktemp("seaweed"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_location_options(s3_server, request):
    """Options for a fresh bucket on the shared server: (url, keyword options)."""
    import re
    import uuid

    bucket = "tv-" + re.sub(r"[^a-z0-9]", "", request.node.name.lower())[:30] + "-" + uuid.uuid4().hex[:6]
    s3_server.create_bucket(bucket)
    return f"s3://{bucket}/backups", {
        "endpoint_url": s3_server.endpoint, "region": "us-east-1",
        "access_key_id": "tradevault", "secret_access_key": "tradevault-secret",
    }


# -- a private directory per test (see tests/cli_harness.py for why not tmp_path) ----------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"_tradevault_report_{report.when}", report)


@pytest.fixture
def workdir(request) -> Iterator[Path]:
    """A fresh private directory for one test, removed when it passes."""
    path = private_dir(request.node.name)
    yield path
    report = getattr(request.node, "_tradevault_report_call", None)
    if report is not None and report.passed:
        shutil.rmtree(path, ignore_errors=True)


def pytest_sessionfinish(session, exitstatus):
    remove_private_root()


# -- a private PostgreSQL cluster for the session (tests/services.py) -----------------------
@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg(pg_cluster: PgCluster) -> Iterator[PgDatabases]:
    dbs = PgDatabases(pg_cluster)
    yield dbs
    dbs.cleanup()
