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
from trade_stream import manifest as mf
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


OPS = {"idle": op_idle, "full_loop": op_full_loop, "config": op_config}


def main(argv: list[str]) -> int:
    op, args, out = argv
    result = OPS[op](**json.loads(args))
    result["vm_hwm_kb"] = vm_hwm_kb()
    result["cpu_seconds"] = CPU.get(op)
    Path(out).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
