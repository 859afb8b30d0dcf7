"""One measured step, run in a child process: ``python -m bench.worker OP ARGS_JSON OUT``.

The step's own wall time is measured here, around the library call only (interpreter start
and imports are outside it); the parent reads the process's peak RSS when it reaps it.
With ``BENCH_PROFILE_DIR`` set, the call runs under cProfile and the stats are written there.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

from bench.children import vm_hwm_kb
from restore.consolidate import consolidate
from restore.dispatch import full_codec, open_target
from restore.planner import Target, plan_restore
from trade_stream import manifest as mf
from trade_stream.object_format import MAGIC, TRAILER_SIZE
from trade_stream.source import BackupEngine, EngineOptions, open_source
from trade_stream.sqlite.backup import BackupEngine as SqliteBackupEngine
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore


def _store(store_root: str, source: str) -> BackupStore:
    return BackupStore(source, [open_location("bench", store_root)])


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


CPU: dict[str, float] = {}


def _timed(label: str, call):
    """(result, wall seconds) of ``call``; its CPU seconds go to CPU[label]."""
    profile_dir = os.environ.get("BENCH_PROFILE_DIR")
    if not profile_dir:
        cpu = _cpu()
        started = time.perf_counter()
        result = call()
        seconds = time.perf_counter() - started
        CPU[label] = _cpu() - cpu
        return result, seconds
    import cProfile

    profiler = cProfile.Profile()
    started = time.perf_counter()
    result = profiler.runcall(call)
    seconds = time.perf_counter() - started
    Path(profile_dir).mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(str(Path(profile_dir) / f"{label}-{time.time_ns()}.prof"))
    return result, seconds


def op_idle() -> dict:
    """Imports only: the interpreter's own footprint, for reading the memory numbers."""
    return {"seconds": 0.0}


def _container_overhead(store_root: str, source: str, n: int | None, kind: str, size: int) -> int | None:
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


def _import_postgres() -> None:
    """What a PostgreSQL step imports on first use (psycopg, the PostgreSQL engine and
    restore: 0.12 s), imported before the timed call as every SQLite step's imports are."""
    import psycopg  # noqa: F401

    import restore.dispatch
    import restore.postgres.replay  # noqa: F401
    import trade_stream.postgres.backup  # noqa: F401


def _engine(db_url: str, store_root: str, source: str, work_dir: str) -> BackupEngine:
    """The backup engine of the URL's source (PostgreSQL imported only when asked for, so
    the SQLite steps' memory is not charged with it)."""
    src = open_source(db_url)
    if not src.physical_snapshots:
        _import_postgres()
    return src.engine(_store(store_root, source), EngineOptions(work_dir=work_dir))


def op_full(db_url: str, store_root: str, source: str, work_dir: str) -> dict:
    engine = _engine(db_url, store_root, source, work_dir)
    result, seconds = _timed("full", engine.full)
    return {"seconds": seconds, "engine_seconds": result.seconds, "bytes": result.bytes,
            "rows": result.count, "n": result.n, "last_seq": result.last_seq, "warnings": result.warnings,
            "container_bytes": _container_overhead(store_root, source, result.n, mf.FULL, result.bytes)}


def op_incremental(db_url: str, store_root: str, source: str, work_dir: str) -> dict:
    engine = _engine(db_url, store_root, source, work_dir)
    result, seconds = _timed("incremental", engine.incremental)
    return {"seconds": seconds, "engine_seconds": result.seconds, "bytes": result.bytes,
            "events": result.count, "n": result.n, "first_seq": result.first_seq,
            "last_seq": result.last_seq, "skipped": result.skipped, "warnings": result.warnings}


def op_consolidate(db_url: str, store_root: str, source: str, work_dir: str) -> dict:
    """A full backup built from the store (what the agent does past consolidate_after_events)."""
    engine = SqliteBackupEngine(DatabaseService(db_url), _store(store_root, source), work_dir=work_dir)
    result, seconds = _timed("consolidate", lambda: consolidate(engine, work_dir=work_dir or None))
    return {"seconds": seconds, "engine_seconds": result.seconds, "bytes": result.bytes, "rows": result.count,
            "n": result.n, "last_seq": result.last_seq, "skipped": result.skipped}


def op_restore(store_root: str, source: str, target: str, at_ts: int | None = None,
               at_seq: int | None = None) -> dict:
    """Restore the latest point, or the point in time ``at_ts`` (µs UTC) / ``at_seq``, into
    the SQLite file ``target`` or, given a PostgreSQL URL, into that database."""
    store = _store(store_root, source)
    url = target if "://" in target else f"sqlite:///{Path(target).absolute()}"
    restore_target = open_target(url)
    if restore_target.dialect != "sqlite":
        _import_postgres()
    # The codec is read from the newest full's header outside the timer (restore_to reads
    # it inside), as the step's imports are: the timed call is the restore's own work.
    codec = full_codec(store, plan_restore(store.entries(), Target(seq=at_seq, ts=at_ts)).full)

    def call():
        plan = plan_restore(store.entries(), Target(seq=at_seq, ts=at_ts))
        return restore_target.restore(store, plan, codec)

    result, seconds = _timed("restore", call)
    return {"seconds": seconds, "engine_seconds": result.seconds, "rows": result.rows,
            "events": result.events, "bytes": result.bytes, "last_seq": result.last_seq,
            "incrementals": len(result.incrementals)}


def op_full_loop(db_url: str, store_root: str, source: str, work_dir: str, stop_file: str,
                 max_seconds: float = 600.0) -> dict:
    """Full backups one after the other until ``stop_file`` exists (background load for the
    commit-latency measurement: what the agent does at its scheduled full backup)."""
    engine = SqliteBackupEngine(DatabaseService(db_url), _store(store_root, source), work_dir=work_dir)
    runs = []
    started = time.perf_counter()
    Path(stop_file + ".started").write_text("")
    while not Path(stop_file).exists() and time.perf_counter() - started < max_seconds:
        t0 = time.perf_counter()
        result = engine.full()
        runs.append(time.perf_counter() - t0)
        for entry in _store(store_root, source).entries()[:-1]:  # keep the disk use bounded
            (Path(store_root) / source / mf.object_key(entry.n, entry.kind)).unlink(missing_ok=True)
        del result
    return {"seconds": time.perf_counter() - started, "fulls": len(runs), "full_seconds": runs}


def op_config(work_dir: str, samples: int, quiet_period: float, files_at_once: int) -> dict:
    from bench.config_bench import measure

    result, seconds = _timed("config", lambda: measure(Path(work_dir), samples, quiet_period, files_at_once))
    result["seconds"] = seconds
    return result


OPS = {"idle": op_idle, "full": op_full, "incremental": op_incremental, "restore": op_restore,
       "consolidate": op_consolidate,
       "full_loop": op_full_loop, "config": op_config}


def main(argv: list[str]) -> int:
    op, args, out = argv
    result = OPS[op](**json.loads(args))
    result["vm_hwm_kb"] = vm_hwm_kb()
    result["cpu_seconds"] = CPU.get(op)
    Path(out).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
