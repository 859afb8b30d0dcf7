"""The real ``tradevault`` CLI in a subprocess, for every end-to-end test: hermetic
environment, results with readable failure messages, private directories, digests.

Shared by the restore and tradevault conftests and the campaigns (one copy: it was three).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from trade_stream.sqlite.digest import database_digest

TABLES = {"trades": ["id"], "orders": ["id"], "pairlocks": ["id"], "KeyValueStore": ["key", "value_type"]}
SOURCE = "tradesv3"  # the source name: the sqlite file's stem

_SCRIPT = Path(sys.executable).parent / "tradevault"
TV_CMD = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "tradevault.cli"]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without any TRADEVAULT_* setting (hermetic runs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEVAULT_")}
    env.update(extra or {})
    return env


@dataclass
class Result:
    args: list[str]
    rc: int
    out: str
    err: str

    def json(self):
        try:
            return json.loads(self.out)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"stdout is not JSON ({exc})\n{self}") from None

    def __str__(self) -> str:
        return (f"$ tradevault {' '.join(self.args)}\nexit status {self.rc}\n"
                f"--- stdout ---\n{self.out[-4000:]}\n--- stderr ---\n{self.err[-4000:]}")


def tv(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
    proc = subprocess.run([*TV_CMD, *args], cwd=cwd, env=clean_env(env), capture_output=True,
                          text=True, timeout=timeout)
    return Result(list(args), proc.returncode, proc.stdout, proc.stderr)


@dataclass
class ConfiguredCli:
    """The command run with one config file from one directory (``-c CONFIG`` added)."""

    root: Path
    config: Path

    def tv(self, *args: str) -> Result:
        return tv(*args, "-c", str(self.config), cwd=self.root)

    def ok(self, *args: str) -> Result:
        result = self.tv(*args)
        assert result.rc == 0, str(result)
        return result

    def restored_rows(self, seq: int, sql: str) -> list[tuple]:
        """``sql`` on a SQLite restore of ``seq`` (restored once, beside the config)."""
        target = self.root / f"restored-{seq}.sqlite"
        if not target.exists():
            self.ok("restore", "--to", f"sqlite:///{target}", "--seq", str(seq))
        conn = sqlite3.connect(target)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()


def tv_start(*args: str, cwd: Path, log: Path | None = None, env: dict[str, str] | None = None) -> subprocess.Popen:
    """A command left running: output to ``log`` when given (appended), else to pipes."""
    if log is not None:
        with open(log, "ab") as out:
            return subprocess.Popen([*TV_CMD, *args], cwd=cwd, env=clean_env(env), stdout=out,
                                    stderr=subprocess.STDOUT)
    return subprocess.Popen([*TV_CMD, *args], cwd=cwd, env=clean_env(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def tv_finish(proc: subprocess.Popen, args: list[str], timeout: float = 120) -> Result:
    out, err = proc.communicate(timeout=timeout)
    return Result(list(args), proc.returncode, out, err)


def tv_parallel(*commands: list[str], cwd: Path) -> list[Result]:
    """Independent read-only commands at once (saves wall time on two cores)."""
    procs = [(tv_start(*c, cwd=cwd), c) for c in commands]
    return [tv_finish(p, c) for p, c in procs]


def digest_of(path: Path, timeout: float = 5.0) -> dict[str, str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout)
    try:
        return database_digest(conn, TABLES)
    finally:
        conn.close()


def tree_state(root: Path) -> dict[str, str]:
    """Every path under root -> 'dir' or the SHA-256 of its bytes."""
    state = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        state[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return state


def tree_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    changes = [f"created {p}" for p in after.keys() - before.keys()]
    changes += [f"removed {p}" for p in before.keys() - after.keys()]
    changes += [f"changed {p}" for p in before.keys() & after.keys() if before[p] != after[p]]
    return sorted(changes)


# -- private temporary directories ------------------------------------------------------------
# Not pytest's tmp_path: several pytest sessions run on this machine at once, and each one
# prunes /tmp/pytest-of-<user> down to the newest few sessions, deleting the directories of
# a session still running. These live in their own mkdtemp root instead; a passing test's
# directory is removed, a failing one's is kept for inspection (its path is in the message).
_PRIVATE: dict[str, Path] = {}


def private_dir(name: str) -> Path:
    root = _PRIVATE.get("root")
    if root is None:
        root = _PRIVATE["root"] = Path(tempfile.mkdtemp(prefix="tradevault-cli-tests-"))
    return Path(tempfile.mkdtemp(prefix=re.sub(r"[^\w.-]", "_", name)[:60] + "-", dir=root))


def remove_private_root() -> None:
    """At the end of the session: only when empty (failed tests keep their directories)."""
    root = _PRIVATE.get("root")
    if root is not None:
        try:
            root.rmdir()
        except OSError:
            pass
