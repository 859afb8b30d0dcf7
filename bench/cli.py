"""Command line of the benchmark: ``python -m bench --rows N --out DIR``."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import core, machine, report
from bench.baseline import MissingTools, require_tools
from bench.children import ChildFailed


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="tradevault benchmark: full/incremental backup, restore, memory and commit latency "
                    "on a synthetic trading database; writes DIR/results.json and DIR/RESULTS.md.")
    p.add_argument("--rows", type=int, default=1_000_000, help="rows of the synthetic database (default 1000000)")
    p.add_argument("--out", required=True, type=Path, help="output directory (created if missing)")
    p.add_argument("--repeat", type=int, default=None, help="rounds of full backup and restore, best kept (default 5; 3 below 100000 rows)")
    p.add_argument("--changes", type=int, default=None,
                   help="rows updated before the incremental backup (default 100000; 10 x rows when smaller)")
    p.add_argument("--latency-tx", type=int, default=None,
                   help="timed trading transactions per side for commit latency (default 5000; rows/10, "
                        "at least 200, when smaller)")
    p.add_argument("--quick", action="store_true",
                   help="a fast, rough run: 1 round, 10000 changes, 400 latency transactions")
    p.add_argument("--keep", action="store_true", help="keep the scratch databases and store in DIR/bench-work")
    p.add_argument("--profile", action="store_true",
                   help="run backup/restore steps under cProfile (DIR/profiles/*.prof; slows them down)")
    args = p.parse_args(argv)
    if args.quick:
        defaults = {"repeat": 1, "changes": 10_000, "latency_tx": 400}
    else:
        # Small databases (smoke tests) get proportionally fewer changes and transactions.
        defaults = {"repeat": 5 if args.rows >= 100_000 else 3, "changes": min(100_000, 10 * args.rows),
                    "latency_tx": min(5000, max(200, args.rows // 10))}
    for name, default in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.rows < 100:
        p.error("--rows must be at least 100")
    if args.repeat < 1 or args.changes < 1 or args.latency_tx < 10:
        p.error("--repeat and --changes must be positive, --latency-tx at least 10")
    return args


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    raw = sys.argv[1:] if argv is None else argv
    command = "python -m bench " + shlex.join(raw)
    try:
        tools = require_tools()
    except MissingTools as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    opts = core.Options(rows=args.rows, out=out, repeat=args.repeat, changes=args.changes,
                        latency_tx=args.latency_tx, keep=args.keep, profile=args.profile, command=command)
    started = time.perf_counter()
    load_start = _load()
    try:
        measurements = core.run(opts, tools)
    except ChildFailed as exc:
        print(f"error: a benchmark step failed: {exc}", file=sys.stderr)
        return 1
    results = {
        "rows": args.rows,
        "measurements": measurements,
        "goals": core.goals(measurements, opts),
        "machine": {**machine.describe(out, tools), "load_average_start": load_start,
                    "load_average_end": _load()},
        "command": command,
        "options": {"repeat": args.repeat, "changes": args.changes, "latency_tx": args.latency_tx,
                    "quick": args.quick, "profile": args.profile},
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "total_seconds": time.perf_counter() - started,
    }
    report.write(out, results)
    print(report.text(results))
    print(f"\nwrote {out / 'results.json'} and {out / 'RESULTS.md'}")
    return 0
