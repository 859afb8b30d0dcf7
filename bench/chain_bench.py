"""Chain-scale benchmark (issue 25): does an incremental cost the same on day 30 as on day 1?

    python -m bench.chain_bench --entries 10000 --out DIR

One SQLite trading database; a chain of real incrementals (one bot transaction each) is
built in-process on a file location, as fast as it goes, and compacted after each one as
the agent does (default levels; ``--no-compaction``: never). At 50 incrementals and at
``--entries``, the database and the store are copied, the store also into a local SeaweedFS
bucket; then, in rounds alternating between the copies, the ``tradevault`` command runs on
each as a user runs it (whole process): ``backup
incremental`` after the same 20 rows changed, ``backups list``, ``status`` and the planning
step of a restore (``restore --dry-run``, of the latest point and of the middle one). Each
incremental's own ``--json`` report gives the requests it sent, by kind. Writes
DIR/chain-results.json with the goals-list shape of ``python -m bench``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.children import run_cli
from bench.report import print_goals
from bench.tv_commands import compile_bytecode
from tests.services import SeaweedS3
from trade_stream.compaction import FAN_IN, compact, plan_compaction
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.locations import open_location
from trade_stream.storage.requests import difference
from trade_stream.storage.store import BackupStore
from tradevault.workload import TradingWorkload, bulk_fill, create_database

SOURCE = "tradesv3"
SMALL = 50
ROUNDS = 3
S3_KEYS = {"region": "us-east-1", "access_key_id": "tradevault", "secret_access_key": "tradevault-secret"}


def _log(message: str) -> None:
    print(f"[chain-bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _count(requests: dict[str, int], what: str, before: dict, after: dict) -> None:
    for kinds in difference(after, before).values():
        requests[what] = requests.get(what, 0) + sum(kinds.values())


def _grow(engine: BackupEngine, workload: TradingWorkload, taken: int, upto: int, fan_in: tuple[int, ...],
          seqs: list[int], requests: dict[str, int]) -> None:
    """Real incrementals, one bot transaction each, from ``taken`` to ``upto``, compacted
    as the agent does after each one (``fan_in`` empty: never); each one's last seq is
    added to ``seqs``, the requests the incrementals and the compactions sent (in this
    one process, as in the agent) to ``requests``."""
    store = engine.store
    started = time.perf_counter()
    for i in range(taken, upto):
        workload.run(1)
        before = store.request_counts()
        result = engine.incremental()
        seqs.append(int(result.last_seq or 0))
        _count(requests, "incremental", before, store.request_counts())
        if fan_in and plan_compaction(store.merged(store.last_seen()), fan_in) is not None:
            before = store.request_counts()
            compact(store, engine.publisher, fan_in)
            _count(requests, "compaction", before, store.request_counts())
        if (i + 1) % 1000 == 0:
            _log(f"{i + 1} incrementals ({(time.perf_counter() - started) / (i + 1 - taken) * 1000:.1f} ms each)")


def _copy_db(source: Path, target: Path) -> None:
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def _upload(tree: Path, server: SeaweedS3, bucket: str, prefix: str) -> int:
    import boto3

    client = boto3.client("s3", endpoint_url=server.endpoint, region_name=S3_KEYS["region"],
                          aws_access_key_id=S3_KEYS["access_key_id"],
                          aws_secret_access_key=S3_KEYS["secret_access_key"])
    files = [p for p in tree.rglob("*") if p.is_file() and not p.name.startswith(".tmp-")]

    def put(path: Path) -> None:
        client.put_object(Bucket=bucket, Key=f"{prefix}/{path.relative_to(tree).as_posix()}", Body=path.read_bytes())

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, files))
    return len(files)


def _config(path: Path, db: Path, location: str, options: dict[str, str]) -> Path:
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in options.items())
    path.write_text(f'[database]\nurl = "sqlite:///{db}"\nname = "{SOURCE}"\n\n'
                    f'[[locations]]\nname = "bench"\nurl = {json.dumps(location)}\n{extra}\n'
                    '[config_vcs]\npaths = []\n')
    return path


def _change_20_rows(db: Path, round_no: int) -> None:
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.execute("UPDATE trades SET close_rate = coalesce(close_rate, 0) + ? WHERE id IN "
                         "(SELECT id FROM trades ORDER BY id LIMIT 20)", (round_no + 1,))
    finally:
        conn.close()


def _timed(args: list[str], config: Path, cwd: Path, json_flag: bool = True) -> tuple[Any, float]:
    report, run = run_cli([*args, "-c", str(config)], cwd=cwd, json_flag=json_flag)
    if run.returncode != 0:
        raise RuntimeError(f"tradevault {' '.join(args)} exit {run.returncode}: {run.stderr[-2000:]}")
    return report, run.seconds


@dataclass
class Copy:
    """One backend's private copy of the database and the store at one point."""

    point: int
    backend: str
    db: Path
    config: Path
    cwd: Path
    figures: dict[str, Any]


def _copies(point: int, db: Path, store: Path, root: Path, server: SeaweedS3) -> list[Copy]:
    here = root / f"at-{point}"
    here.mkdir()
    copies = []
    for backend in ("file", "s3"):
        copy_db = here / f"{backend}.sqlite"
        _copy_db(db, copy_db)
        if backend == "file":
            shutil.copytree(store, here / "store")
            config = _config(here / "file.toml", copy_db, f"file://{here / 'store'}", {})
        else:
            uploaded = _upload(store, server, "tv-chain", f"at-{point}")
            _log(f"uploaded {uploaded} objects to S3 for {point} incrementals")
            config = _config(here / "s3.toml", copy_db, f"s3://tv-chain/at-{point}",
                             {"endpoint_url": server.endpoint, **S3_KEYS})
        copies.append(Copy(point, backend, copy_db, config, here, {}))
    return copies


def _measure(copies: list[Copy], middle_seq: dict[int, int]) -> None:
    """Every figure of every copy, in rounds that alternate between the copies, so a warm
    cache or a busy moment of the machine falls on every point alike."""
    for copy in copies:  # untimed: the first command after a copy reads it all from disk
        _timed(["status"], copy.config, copy.cwd, False)
    for round_no in range(ROUNDS):
        for copy in copies:
            f = copy.figures
            _change_20_rows(copy.db, round_no)
            report, seconds = _timed(["backup", "incremental"], copy.config, copy.cwd)
            f.setdefault("incremental_seconds", []).append(seconds)
            f.setdefault("in_process_seconds", []).append(report["seconds"])
            f.setdefault("requests", []).append(sum(sum(k.values()) for k in report["requests"].values()))
            f.setdefault("requests_by_kind", []).append(report["requests"])
        for copy in copies:
            f = copy.figures
            for name, args in (("backups_list", ["backups", "list"]), ("status", ["status"])):
                f.setdefault(f"{name}_runs", []).append(_timed(args, copy.config, copy.cwd, False)[1])
            plan, seconds = _timed(["restore", "--to", f"sqlite:///{copy.cwd / 'never.sqlite'}", "--dry-run"],
                                   copy.config, copy.cwd)
            f.setdefault("restore_plan_runs", []).append(seconds)
            f["restore_objects"] = 1 + len(plan["incrementals"])
    for copy in copies:
        f = copy.figures
        for name in ("backups_list", "status", "restore_plan"):
            f[f"{name}_seconds"] = statistics.median(f[f"{name}_runs"])
        middle, _ = _timed(["restore", "--to", f"sqlite:///{copy.cwd / 'never.sqlite'}", "--dry-run",
                            "--seq", str(middle_seq[copy.point])], copy.config, copy.cwd)
        f["restore_objects_middle"] = 1 + len(middle["incrementals"])
        listed = _timed(["backups", "list"], copy.config, copy.cwd)[0]
        f["entries"], f["positions"] = len(listed), max(e["n"] for e in listed)
        _log(f"{copy.point} incrementals, {copy.backend}: incremental {statistics.median(f['incremental_seconds']):.3f}"
             f" s, {max(f['requests'])} requests; list {f['backups_list_seconds']:.3f} s, status "
             f"{f['status_seconds']:.3f} s, restore plan {f['restore_plan_seconds']:.3f} s")


def _goals(small: dict, large: dict, entries: int) -> list[dict]:
    goals = []
    for backend in ("file", "s3"):
        ratio = statistics.median(large[backend]["incremental_seconds"]) / statistics.median(
            small[backend]["incremental_seconds"])
        goals.append({"name": f"{backend}: incremental at {entries} / at {SMALL} entries (whole process)",
                      "value": round(ratio, 3), "goal": "<= 1.5", "ok": ratio <= 1.5})
    requests = max(max(m["s3"]["requests"]) for m in (small, large))
    goals.append({"name": "s3: requests per incremental (max)", "value": requests, "goal": "<= 10",
                  "ok": requests <= 10})
    for what in ("backups_list", "status", "restore_plan"):
        worst = max(large[b][f"{what}_seconds"] for b in ("file", "s3"))
        goals.append({"name": f"{what.replace('_', ' ')} at {entries} entries (s, whole process, worst backend)",
                      "value": round(worst, 3), "goal": "<= 2", "ok": worst <= 2})
    for where, key in (("the latest point", "restore_objects"), ("a point in the middle", "restore_objects_middle")):
        opened = large["file"][key]
        goals.append({"name": f"objects a restore of {where} opens at {entries} incrementals", "value": opened,
                      "goal": "<= 30", "ok": opened <= 30})
    return goals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=10_000, help="trades in the database")
    parser.add_argument("--no-compaction", action="store_true", help="build the chain without compacting it")
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    compile_bytecode()
    root = Path(tempfile.mkdtemp(prefix="tradevault-chain-bench-"))
    server = SeaweedS3(root / "weed")
    try:
        server.start()
        server.create_bucket("tv-chain")
        db = root / "tradesv3.sqlite"
        create_database(db)
        bulk_fill(db, args.rows)
        store_dir = root / "store"
        engine = BackupEngine(DatabaseService(f"sqlite:///{db}"),
                              BackupStore(SOURCE, [open_location("bench", f"file://{store_dir}")]))
        workload = TradingWorkload(db, seed=25)
        engine.full()
        fan_in = () if args.no_compaction else FAN_IN
        seqs: list[int] = []  # each incremental's last seq
        built: dict[str, int] = {}  # requests while building, in-process like the agent
        copies, taken = [], 0
        for point in (SMALL, args.entries):
            _grow(engine, workload, taken, point, fan_in, seqs, built)
            taken = point
            copies += _copies(point, db, store_dir, root, server)
        _measure(copies, {point: seqs[point // 2 - 1] for point in (SMALL, args.entries)})
        measured: dict[int, dict[str, dict]] = {}
        for copy in copies:
            measured.setdefault(copy.point, {})[copy.backend] = copy.figures
        workload.close()
        goals = _goals(measured[SMALL], measured[args.entries], args.entries)
        results = {"entries": args.entries, "rows": args.rows, "fan_in": list(fan_in),
                   "build_requests_per_incremental": {k: round(v / args.entries, 2) for k, v in built.items()},
                   "command": "python -m bench.chain_bench " + " ".join(argv if argv is not None else sys.argv[1:]),
                   "measured": {str(k): v for k, v in measured.items()}, "goals": goals}
        (args.out / "chain-results.json").write_text(json.dumps(results, indent=2))
        print_goals(goals)
        return 0
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
