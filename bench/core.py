"""The benchmark run: build the database, then measure everything in the same run.

Steps (each library step in a fresh child process, see bench/children.py):

1. build: create_database + bulk_fill (N rows: a third trades, the rest orders), WAL mode.
2. a copy without capture for the latency test; a first full backup (installs capture,
   reported separately); a copy with capture for the latency test.
3. ``repeat`` rounds, interleaved: baseline (sqlite3 .backup + zstd -3) and
   BackupEngine.full(); best of each is compared.
4. ``changes`` rows UPDATEd (a change event each), then BackupEngine.incremental().
5. ``repeat`` rounds, interleaved: zstd -d of the baseline and restore_sqlite of the latest
   full + the incremental into a fresh file; the restored database is compared with the
   source by digest.
6. peak RSS of the backup and restore children.
7. commit latency with capture off and on (bench/latency.py).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import baseline, data, latency
from bench.children import run_worker

SOURCE = "tradesv3"
MARKER = ".bench-work"


@dataclass
class Options:
    rows: int
    out: Path
    repeat: int = 3
    changes: int = 100_000
    latency_tx: int = 2000
    keep: bool = False
    profile: bool = False
    command: str = ""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _work_dir(out: Path) -> Path:
    work = out / "bench-work"
    if work.exists():
        if not (work / MARKER).exists():
            raise SystemExit(f"error: {work} exists and was not made by the benchmark; remove it or pick another --out")
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / MARKER).write_text("scratch space of `python -m bench`; removed at the end unless --keep\n")
    return work


def settle() -> None:
    """Write back every dirty page before a timed step, so a step that fsyncs does not pay
    for what earlier steps left in the page cache (ext4 data=ordered flushes it at commit)."""
    os.sync()


def _mb(kb: int) -> float:
    return kb / 1024


def run(opts: Options, tools: dict[str, str]) -> dict:
    out = opts.out
    work = _work_dir(out)
    src = work / f"{SOURCE}.sqlite"
    store_root = work / "store"
    tmp = work / "tmp"
    tmp.mkdir()
    profile_dir = out / "profiles" if opts.profile else None
    db_url = f"sqlite:///{src}"
    backup_args = {"db_url": db_url, "store_root": str(store_root), "source": SOURCE, "work_dir": str(tmp)}
    lat_off, lat_on = work / "latency-capture-off.sqlite", work / "latency-capture-on.sqlite"
    m: dict = {}
    memory: dict[str, int] = {}

    def worker(op: str, args: dict) -> dict:
        settle()
        result, run = run_worker(op, args, profile_dir=profile_dir)
        result["ru_maxrss_kb"] = run.maxrss_kb
        memory[op] = max(memory.get(op, 0), result["vm_hwm_kb"] or run.maxrss_kb)
        return result

    try:
        # 1. build
        log(f"building a trading database of {opts.rows:,} rows in {src}")
        m["build"] = data.build(src, opts.rows)
        log(f"  {m['build']['seconds']:.1f} s, {m['build']['db_bytes'] / 1e6:.1f} MB")
        data.copy_database(src, lat_off)
        idle = worker("idle", {})
        memory.pop("idle")

        # 2. first full backup: installs capture
        log("first full backup (installs change capture)")
        first = worker("full", backup_args)
        data.copy_database(src, lat_on)

        # 3. full backup vs baseline, interleaved rounds
        tv_runs, base_runs = [], []
        for i in range(opts.repeat):
            log(f"full backup round {i + 1}/{opts.repeat}: baseline, then tradevault")
            settle()
            base_runs.append(baseline.backup(tools, src, work / "baseline-copy.sqlite"))
            tv_runs.append(worker("full", backup_args))
        tv_best = min(tv_runs, key=lambda r: r["seconds"])
        base_best = min(base_runs, key=lambda r: r.seconds)
        m["full_backup"] = {
            "source_db_bytes": src.stat().st_size,
            "rows": tv_best["rows"],
            "tradevault_seconds": tv_best["seconds"],
            "tradevault_runs_seconds": [r["seconds"] for r in tv_runs],
            "tradevault_bytes": tv_runs[-1]["bytes"],
            "tradevault_container_bytes": tv_runs[-1].get("container_bytes"),  # header + trailer
            "first_full_seconds_with_capture_install": first["seconds"],
            "baseline_seconds": base_best.seconds,
            "baseline_backup_seconds": base_best.backup_seconds,
            "baseline_compress_seconds": base_best.compress_seconds,
            "baseline_runs_seconds": [r.seconds for r in base_runs],
            "tradevault_cpu_seconds": min(r["cpu_seconds"] or 0 for r in tv_runs),
            "baseline_cpu_seconds": min(r.cpu_seconds for r in base_runs),
            "baseline_bytes": base_runs[-1].bytes,
            "baseline_copy_bytes": base_runs[-1].copy_bytes,
            "time_ratio": tv_best["seconds"] / base_best.seconds,
            "size_ratio": tv_runs[-1]["bytes"] / base_runs[-1].bytes,
            "baseline_command": 'sqlite3 SRC ".backup COPY" && zstd -3 -q COPY',
        }
        zst = base_runs[-1].zst

        # 4. incremental of `changes` changed rows
        log(f"updating {opts.changes:,} rows")
        m["changes"] = data.change_rows(src, opts.changes)
        log("incremental backup")
        inc = worker("incremental", backup_args)
        m["incremental"] = {
            "changed_rows": m["changes"]["rows_updated"],
            "events": inc["events"],
            "seconds": inc["seconds"],
            "cpu_seconds": inc["cpu_seconds"],
            "bytes": inc["bytes"],
            "events_per_second": inc["events"] / inc["seconds"] if inc["seconds"] else None,
            "update_seconds": m["changes"]["seconds"],
        }

        # 5. restore vs decompressing the baseline, interleaved rounds
        restore_runs, decompress_runs = [], []
        restored = work / "restored.sqlite"
        for i in range(opts.repeat):
            log(f"restore round {i + 1}/{opts.repeat}: zstd -d, then tradevault restore")
            settle()
            decompress_runs.append(baseline.decompress(tools, zst, work / "baseline-restored.sqlite"))
            for suffix in ("", "-wal", "-shm"):
                Path(f"{restored}{suffix}").unlink(missing_ok=True)
            restore_runs.append(worker("restore", {"store_root": str(store_root), "source": SOURCE,
                                                   "target": str(restored)}))
        r_best = min(restore_runs, key=lambda r: r["seconds"])
        d_best = min(s for s, _, _ in decompress_runs)
        log("comparing the restored database with the source by digest")
        started = time.perf_counter()
        src_digest, tables = data.digest(src)
        restored_digest, restored_tables = data.digest(restored)
        same = src_digest == restored_digest and tables == restored_tables
        m["restore"] = {
            "tradevault_seconds": r_best["seconds"],
            "tradevault_runs_seconds": [r["seconds"] for r in restore_runs],
            "rows": r_best["rows"],
            "events_replayed": r_best["events"],
            "incrementals": r_best["incrementals"],
            "rows_per_second": r_best["rows"] / r_best["seconds"],
            "baseline_seconds": d_best,
            "baseline_runs_seconds": [s for s, _, _ in decompress_runs],
            "tradevault_cpu_seconds": min(r["cpu_seconds"] or 0 for r in restore_runs),
            "baseline_cpu_seconds": min(c for _, _, c in decompress_runs),
            "baseline_rows_per_second": opts.rows / d_best if d_best else None,
            "time_ratio": r_best["seconds"] / d_best,
            "baseline_command": "zstd -d -q COPY.zst -o OUT",
            "equals_source": same,
            "tables_compared": sorted(tables),
            "differing_tables": sorted(t for t in set(src_digest) | set(restored_digest)
                                       if src_digest.get(t) != restored_digest.get(t)),
            "digest_seconds": time.perf_counter() - started,
        }

        # 6. memory
        m["memory"] = {
            "peak_mb": _mb(max(memory.values())),
            "full_backup_mb": _mb(memory["full"]),
            "incremental_mb": _mb(memory["incremental"]),
            "restore_mb": _mb(memory["restore"]),
            "interpreter_with_imports_mb": _mb(idle["vm_hwm_kb"]),
            "baseline_sqlite3_backup_mb": _mb(max(r.backup_rss_kb for r in base_runs)),
            "baseline_zstd_compress_mb": _mb(max(r.compress_rss_kb for r in base_runs)),
            "baseline_zstd_decompress_mb": _mb(max(r for _, r, _ in decompress_runs)),
            "rows": opts.rows,
            "method": "peak RSS (VmHWM) of each step's own child process, max over steps; see bench/children.py",
        }

        # 7. commit latency
        log(f"commit latency: {opts.latency_tx:,} transactions each with capture off and on")
        m["commit_latency"] = latency.measure(lat_off, lat_on, opts.latency_tx)
    finally:
        if not opts.keep:
            shutil.rmtree(work, ignore_errors=True)
    return m


def goals(m: dict, opts: Options) -> list[dict]:
    def goal(name: str, value, limit, unit: str = "", **extra) -> dict:
        return {"name": name, "value": round(value, 4), "goal": f"<= {limit}{unit}",
                "ok": bool(value <= limit), **extra}

    changes = m["incremental"]["changed_rows"]
    changes_text = "100k" if changes == 100_000 else f"{changes:,}"
    return [
        goal("full backup time / (sqlite3 .backup + zstd -3) time", m["full_backup"]["time_ratio"], 1.0),
        goal("full backup size / (sqlite3 .backup + zstd -3) size", m["full_backup"]["size_ratio"], 1.0),
        goal(f"incremental backup of {changes_text} changed rows (seconds)", m["incremental"]["seconds"], 1.0,
             " s", changed_rows=changes),
        goal("restore (full + incrementals) time / zstd -d time", m["restore"]["time_ratio"], 2.0),
        {"name": "restore equals source (digest)", "value": m["restore"]["equals_source"], "goal": "true",
         "ok": m["restore"]["equals_source"] is True},
        goal("peak memory of backup + restore (MB)", m["memory"]["peak_mb"], 200, " MB",
             rows=opts.rows, note="goal stated for 10M rows"),
        goal("commit latency p99 with capture / without", m["commit_latency"]["p99_ratio"], 1.3),
    ]
