"""tradevault's steps as a user runs them: the ``tradevault`` command, a whole process
(interpreter start-up, imports, reading the config, the work, exit), timed from spawn to
reap exactly like the peers' commands (``sqlite3``, ``zstd``, ``restic``, ``pg_dump``).

Each step gets a generated ``tradevault.toml`` naming its database, its one file location
and its source name (config history off). The command's own ``--json`` report gives the
in-process figure (its ``seconds``: the library call, without start-up), kept beside the
whole-process one as an extra column.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.children import PROJECT_ROOT, ChildRun, run_cli
from trade_stream import manifest as mf
from trade_stream.object_format import MAGIC, TRAILER_SIZE

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _location_url(store_root: str) -> str:
    return store_root if "://" in store_root else f"file://{Path(store_root).absolute()}"


def _target_url(target: str) -> str:
    return target if "://" in target else f"sqlite:///{Path(target).absolute()}"


def iso_time(ts_us: int) -> str:
    """µs since the epoch as the ``--at`` text (exact: no float on the way)."""
    return (_EPOCH + timedelta(microseconds=ts_us)).isoformat()


def container_bytes(store_root: str, source: str, n: int | None, kind: str, size: int) -> int | None:
    """Bytes of a stored object that are not its zstd body (magic, JSON header, trailer)."""
    try:
        path = Path(store_root) / source / mf.object_key(n, kind)
        with open(path, "rb") as handle:
            fixed = handle.read(12)
        if fixed[:8] != MAGIC or path.stat().st_size != size:
            return None
        return 12 + int.from_bytes(fixed[8:12], "big") + TRAILER_SIZE
    except (OSError, TypeError, ValueError, AttributeError):
        return None



@functools.cache
def compile_bytecode() -> None:
    """Write tradevault's .pyc files as an installed package has them (pip compiles at
    install): a command run with PYTHONDONTWRITEBYTECODE set, or after an edit, would
    otherwise compile its modules again at every start and time that too."""
    import compileall

    for package in ("tradevault", "trade_stream", "restore", "config_vcs", "primitives"):
        compileall.compile_dir(str(PROJECT_ROOT / package), quiet=1)


class TradevaultCli:
    """Runs ``tradevault`` steps; configs are written under ``configs``. With ``profiles``,
    each backup and restore runs under cProfile and leaves its stats there."""

    def __init__(self, configs: Path, profiles: Path | None = None) -> None:
        self.configs = configs
        self.profiles = profiles
        configs.mkdir(parents=True, exist_ok=True)
        compile_bytecode()

    def config(self, db_url: str, store_root: str, source: str, work_dir: str = "") -> Path:
        text = (f'work_dir = {json.dumps(work_dir)}\n\n' if work_dir else "")
        text += (f'[database]\nurl = {json.dumps(db_url)}\nname = {json.dumps(source)}\n\n'
                 f'[[locations]]\nname = "bench"\nurl = {json.dumps(_location_url(store_root))}\n\n'
                 '[config_vcs]\npaths = []\n')
        path = self.configs / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.toml"
        if not path.exists():
            path.write_text(text)
        return path

    def _run(self, args: list[str], config: Path) -> tuple[Any, ChildRun]:
        profile = None
        if self.profiles is not None:
            self.profiles.mkdir(parents=True, exist_ok=True)
            profile = self.profiles / f"{'-'.join(args[:2])}-{time.time_ns()}.prof"
        return run_cli([*args, "-c", str(config)], cwd=self.configs, profile=profile)

    def backup(self, kind: str, db_url: str, store_root: str, source: str, work_dir: str = "") -> dict:
        """``tradevault backup full|incremental|consolidate``."""
        extra = ["--min-events", "0"] if kind == "consolidate" else []
        report, run = self._run(["backup", kind, *extra], self.config(db_url, store_root, source, work_dir))
        return {**_common(report, run), "rows": report.get("rows", report.get("count")),
                "events": report.get("events", report.get("count")), "n": report.get("n"),
                "first_seq": report.get("first_seq"), "skipped": report.get("skipped", ""),
                "warnings": report.get("warnings", [])}

    def restore(self, db_url: str, store_root: str, source: str, target: str, at_ts: int | None = None,
                at_seq: int | None = None) -> dict:
        """``tradevault restore --to TARGET [--at TIME | --seq N]``."""
        args = ["restore", "--to", _target_url(target)]
        if at_ts is not None:
            args += ["--at", iso_time(at_ts)]
        if at_seq is not None:
            args += ["--seq", str(at_seq)]
        report, run = self._run(args, self.config(db_url, store_root, source))
        return {**_common(report, run), "rows": report["rows"], "events": report["events"],
                "incrementals": len(report["incrementals"])}

    def backup_list(self, db_url: str, store_root: str, source: str) -> list[dict]:
        report, _run = self._run(["backups", "list"], self.config(db_url, store_root, source))
        return list(report)

    def timed(self, args: list[str], db_url: str, store_root: str, source: str) -> float:
        """Wall seconds of any other command (``--version``, ``backups list``) exactly as a
        user types it: no ``--json``, so a table is drawn as it would be."""
        config = ["-c", str(self.config(db_url, store_root, source))] if args[0] != "--version" else []
        _report, run = run_cli([*args, *config], cwd=self.configs, json_flag=False)
        return run.seconds


def _common(report: dict, run: ChildRun) -> dict:
    return {"seconds": run.seconds, "in_process_seconds": report.get("seconds"), "cpu_seconds": run.cpu_seconds,
            "vm_hwm_kb": run.hwm_kb, "bytes": report.get("bytes"), "last_seq": report.get("last_seq")}
