"""Helpers (no fixtures) for config history tests: real files, real dulwich, the real ``git`` binary.

Nothing is mocked. Timing-dependent checks poll with generous deadlines instead of
sleeping a fixed time, so they hold on a loaded machine and under ``pytest -n``.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import make_server

from dulwich.repo import Repo
from dulwich.server import DictBackend
from dulwich.web import WSGIRequestHandlerLogger, WSGIServerLogger, make_wsgi_chain

from config_vcs.options import Options

DEADLINE = 30.0  # seconds; a healthy run needs a small fraction of this


def git(*args: str, cwd: Path | None = None, check: bool = True) -> str:
    """Run the real git binary and return its stdout."""
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def bare_remote(path: Path) -> Path:
    git("init", "-q", "--bare", str(path))
    return path


def remote_head(path: Path, ref: str = "refs/heads/master") -> str | None:
    out = git("--git-dir", str(path), "rev-parse", "--verify", "-q", ref, check=False).strip()
    return out or None


def local_head(work: Path) -> str:
    return git("rev-parse", "HEAD", cwd=work).strip()


def commit_count(work: Path) -> int:
    out = git("rev-list", "--count", "HEAD", cwd=work, check=False).strip()
    return int(out) if out.isdigit() else 0


def wait_for(predicate: Callable[[], Any], timeout: float = DEADLINE, what: str = "condition") -> Any:
    """Poll until ``predicate()`` is truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def fast_options(**overrides: Any) -> Options:
    base = dict(
        quiet_period=0.2,
        max_delay=2.0,
        rescan_interval=120.0,
        push_backoff_initial=0.1,
        push_backoff_max=0.5,
        push_timeout=10.0,
        busy_timeout=5.0,
        flush_timeout=15.0,
        host="test-host",
    )
    base.update(overrides)
    return Options(**base)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServerLogger):
    daemon_threads = True


class HttpRemote:
    """A bare repository served by dulwich's own smart-HTTP server on a free port."""

    def __init__(self, bare: Path, gate: threading.Event | None = None) -> None:
        self.bare = bare
        self.gate = gate  # when set: receive-pack requests wait until it is set
        self.requests = 0
        repo = Repo(str(bare))
        app = make_wsgi_chain(DictBackend({"/": repo}))

        def gated(environ: dict, start_response: Callable) -> Any:
            self.requests += 1
            if self.gate is not None and "receive-pack" in (
                environ.get("PATH_INFO", "") + environ.get("QUERY_STRING", "")
            ):
                self.gate.wait(DEADLINE)
            return app(environ, start_response)

        self.server = make_server(
            "127.0.0.1", 0, gated,
            handler_class=WSGIRequestHandlerLogger, server_class=_ThreadingWSGIServer,
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        if self.gate is not None:
            self.gate.set()
        self.server.shutdown()
        self.server.server_close()


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def tree_files(work: Path, rev: str = "HEAD") -> dict[str, str]:
    """``{path: mode}`` of a commit, read by the real git binary."""
    out = git("ls-tree", "-r", "-z", rev, cwd=work)
    files = {}
    for record in filter(None, out.split("\0")):
        meta, path = record.split("\t", 1)
        files[path] = meta.split()[0]
    return files


def permissions_private(git_dir: Path) -> list[str]:
    """Paths under .git readable or writable by group/others (should be none)."""
    bad = []
    for dirpath, dirnames, filenames in os.walk(git_dir):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                continue
            if os.stat(full).st_mode & 0o077:
                bad.append(full)
    if os.stat(git_dir).st_mode & 0o077:
        bad.append(str(git_dir))
    return bad


# -- a trading bot's directory (freqtrade's user_data layout) ----------------------------------

MiB = 1024 * 1024


def bot_layout(root: Path, data_bytes: int = 2 * MiB) -> dict[str, Path]:
    """config.json, strategies/*.py, a market-data file under data/, logs/freqtrade.log.

    Returns the paths by role; the configuration files are under "config".
    """
    files = {
        "config": write(root / "config.json", '{"stake_currency": "USDT", "dry_run": true}\n'),
        "strategy": write(root / "strategies" / "SampleStrategy.py", "class SampleStrategy:\n    pass\n"),
        "strategy2": write(root / "strategies" / "Breakout.py", "class Breakout:\n    pass\n"),
        "candles": write(root / "data" / "binance" / "BTC_USDT-5m.feather", os.urandom(data_bytes)),
        "log": write(root / "logs" / "freqtrade.log", "2024-05-01 12:00:00 freqtrade started\n"),
    }
    return files


class LiveDatabase:
    """A SQLite database in WAL mode written by a thread (a trading bot) until ``stop()``.

    The connection stays open, so the -wal and -shm files exist all along; every write
    also appends a line to ``log`` when given (the bot's log file).
    """

    def __init__(self, path: Path, log: Path | None = None, row_bytes: int = 200) -> None:
        import sqlite3

        self.path = path
        self.log = log
        self.row_bytes = row_bytes
        self.writes = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(sqlite3,), daemon=True)

    def start(self, min_writes: int = 5) -> "LiveDatabase":
        self._thread.start()
        wait_for(lambda: self._error is not None or self.writes >= min_writes, what="the bot writing")
        self._raise()
        return self

    def _run(self, sqlite3: Any) -> None:
        try:
            conn = sqlite3.connect(self.path)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS trades (id INTEGER PRIMARY KEY, pair TEXT, note BLOB)")
            conn.commit()
            while not self._stop.is_set():
                conn.execute("INSERT INTO trades (pair, note) VALUES (?, ?)",
                             ("BTC/USDT", os.urandom(self.row_bytes)))
                conn.commit()
                if self.log is not None:
                    with open(self.log, "a", encoding="utf-8") as f:
                        f.write(f"trade {self.writes}\n")
                self.writes += 1
                time.sleep(0.005)
            conn.close()
        except BaseException as exc:  # noqa: BLE001 - reported by start()/stop()
            self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise AssertionError(f"the bot's writer failed: {self._error!r}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(DEADLINE)
        self._raise()


def remote_paths(bare: Path) -> set[str]:
    """Every path any commit of any ref of a bare remote holds (the real git CLI)."""
    out = git("--git-dir", str(bare), "log", "--all", "--name-only", "--format=")
    return {line for line in out.splitlines() if line.strip()}


def object_sizes(git_dir: Path) -> dict[str, tuple[str, int]]:
    """``{object id: (type, size)}`` of every object in a repository (the real git CLI)."""
    out = git("--git-dir", str(git_dir), "cat-file", "--batch-all-objects", "--batch-check")
    sizes = {}
    for line in out.splitlines():
        sha, kind, size = line.split()
        sizes[sha] = (kind, int(size))
    return sizes


def blob_heads(git_dir: Path, length: int = 16) -> dict[str, bytes]:
    """The first ``length`` bytes of every blob of a repository."""
    heads = {}
    for sha, (kind, _size) in object_sizes(git_dir).items():
        if kind == "blob":
            data = subprocess.run(["git", "--git-dir", str(git_dir), "cat-file", "blob", sha],
                                  capture_output=True, check=True, timeout=60).stdout
            heads[sha] = data[:length]
    return heads
