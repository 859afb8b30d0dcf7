"""A private PostgreSQL 15 cluster (wal2json, wal_level=logical) for the session.

initdb in a fresh directory under /tmp (not pytest's tmp_path: other sessions prune it),
owned by the ``postgres`` OS user when running as root (PostgreSQL refuses to run as root),
listening on a free loopback port with its unix socket in the same directory; stopped at
the end of the session. When it cannot start, tests fail with the reason under CI=true and
are skipped elsewhere. Every PostgreSQL test module sets
``pytestmark = pytest.mark.xdist_group("postgres")`` so one worker, and one cluster, serves
them all (the suite runs with ``--dist loadgroup``).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from tests.services import free_port, unavailable

BIN_DIRS = ["/usr/lib/postgresql/15/bin"]


def _binary(name: str) -> str | None:
    for directory in BIN_DIRS:
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    return shutil.which(name)


class PgCluster:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tradevault-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.log = self.root / "server.log"
        self.as_postgres = os.geteuid() == 0
        self._names = itertools.count(1)
        self.started = False

    def _run(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        if self.as_postgres:
            args = ["runuser", "-u", "postgres", "--", *args]
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=self.root)

    def start(self) -> None:
        initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
        if not initdb or not pg_ctl:
            unavailable("PostgreSQL 15 binaries not found (apt-get install postgresql; bash scripts/setup.sh)")
        lib = subprocess.run([_binary("pg_config") or "pg_config", "--pkglibdir"], capture_output=True, text=True)
        libdir = lib.stdout.strip() if lib.returncode == 0 else "/usr/lib/postgresql/15/lib"
        if not (Path(libdir) / "wal2json.so").exists() and not Path("/usr/lib/postgresql/15/lib/wal2json.so").exists():
            unavailable("the wal2json output plugin is not installed (apt-get install postgresql-15-wal2json)")
        if self.as_postgres:
            shutil.chown(self.root, "postgres")
        done = self._run([initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                          "--no-locale", "--no-sync"])
        if done.returncode != 0:
            unavailable(f"initdb failed: {done.stderr.strip()[-500:]}")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# tradevault tests\n"
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\n"
                "wal_level = logical\nmax_replication_slots = 40\nmax_wal_senders = 40\n"
                "fsync = off\nfull_page_writes = off\nsynchronous_commit = off\n"
                "shared_buffers = 128MB\nmax_connections = 100\n"
            )
        done = self._run([pg_ctl, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start"])
        if done.returncode != 0:
            tail = self.log.read_text(errors="replace")[-800:] if self.log.exists() else ""
            unavailable(f"PostgreSQL did not start: {done.stderr.strip()[-300:]} {tail}")
        self.started = True

    def stop(self) -> None:
        if self.started:
            self._run([_binary("pg_ctl") or "pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"])
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def admin(self):
        import psycopg

        return psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True)

    def create_database(self, prefix: str = "db") -> str:
        name = f"{prefix}_{next(self._names)}_{uuid.uuid4().hex[:6]}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            for (slot,) in conn.execute(
                "SELECT slot_name FROM pg_replication_slots WHERE database = %s", (name,)
            ).fetchall():
                try:
                    conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                except Exception:  # noqa: BLE001 - a temporary slot vanishing on its own
                    pass
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


class PgDatabases:
    """Fresh databases for one test, dropped (with their slots) afterwards."""

    def __init__(self, cluster: PgCluster) -> None:
        self.cluster = cluster
        self.names: list[str] = []

    def new(self, prefix: str = "db") -> str:
        name = self.cluster.create_database(prefix)
        self.names.append(name)
        return self.cluster.url(name)

    def cleanup(self) -> None:
        for name in self.names:
            self.cluster.drop_database(name)


@pytest.fixture
def pg(pg_cluster: PgCluster) -> Iterator[PgDatabases]:
    dbs = PgDatabases(pg_cluster)
    yield dbs
    dbs.cleanup()


@pytest.fixture
def work_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="tradevault-pgtest-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
