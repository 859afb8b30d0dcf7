"""Command line of the benchmark: ``python -m bench --rows N --out DIR``."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import core, machine, plots, report
from bench.baseline import MissingTools, require_tools
from bench.children import ChildFailed


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="tradevault benchmark: every scenario against tradevault and its peers (sqlite3 .backup/.dump "
                    "+ zstd, restic, pg_dump) on the same synthetic trading database, A/B interleaved, medians; "
                    "writes DIR/results.json, DIR/RESULTS.md and PNG plots (when matplotlib is installed).")
    p.add_argument("--rows", type=int, default=1_000_000, help="rows of the synthetic database (default 1000000)")
    p.add_argument("--out", required=True, type=Path, help="output directory (created if missing)")
    p.add_argument("--scenarios", default=",".join(core.SCENARIOS),
                   help="comma-separated scenarios to run (default all: %(default)s); what a scenario needs "
                        "is added (incremental and restore need full, pitr needs incremental)")
    p.add_argument("--repeat", type=int, default=None,
                   help="A/B rounds of every comparison, median kept (default 3, at least 3 unless --quick)")
    p.add_argument("--changes", type=int, default=None,
                   help="rows updated in each '10%%' incremental round (default 10%% of --rows); "
                        "the '1%%' rounds update 1%% of --rows")
    p.add_argument("--latency-tx", type=int, default=None,
                   help="timed trading transactions per side for commit latency (default 5000; rows/10, "
                        "at least 200, when smaller)")
    p.add_argument("--quick", action="store_true",
                   help="a fast, rough run: 1 round, 10000 changes, 400 latency transactions")
    p.add_argument("--skip-restic", action="store_true",
                   help="leave out the restic comparisons (restic's key derivation makes every call slow)")
    p.add_argument("--keep", action="store_true", help="keep the scratch databases and store in DIR/bench-work")
    p.add_argument("--profile", action="store_true",
                   help="run the tradevault backup/restore commands under cProfile (DIR/profiles/*.prof; "
                        "slows them down)")
    args = p.parse_args(argv)
    if args.quick:
        defaults = {"repeat": 1, "changes": max(1, args.rows // 10), "latency_tx": 400}
    else:
        # Small databases (smoke tests) get proportionally fewer transactions.
        defaults = {"repeat": 3, "changes": max(1, args.rows // 10),
                    "latency_tx": min(5000, max(200, args.rows // 10))}
    for name, default in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.rows < 100:
        p.error("--rows must be at least 100")
    if args.repeat < 1 or args.changes < 1 or args.latency_tx < 10:
        p.error("--repeat and --changes must be positive, --latency-tx at least 10")
    if args.repeat < 3 and not args.quick:
        p.error("--repeat must be at least 3 (medians of at least 3 rounds); --quick for a rough single round")
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in names if n not in core.SCENARIOS]
    if unknown or not names:
        p.error(f"unknown scenario(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(core.SCENARIOS)}")
    args.scenario_list = core.resolve_scenarios(names)
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
                        latency_tx=args.latency_tx, keep=args.keep, profile=args.profile, command=command,
                        scenarios=args.scenario_list, agent_seconds=4.0 if args.quick else 10.0,
                        config_samples=5 if args.quick else 30, skip_restic=args.skip_restic)
    started = time.perf_counter()
    load_start = _load()
    try:
        measurements = core.run(opts, tools)
    except ChildFailed as exc:
        print(f"error: a benchmark step failed: {exc}", file=sys.stderr)
        return 1
    goals = core.goals(measurements, opts)
    measurements = core.clean(measurements)
    results = {
        "rows": args.rows,
        "scenarios": list(opts.scenarios),
        "measurements": measurements,
        "goals": goals,
        "machine": {**machine.describe(out, tools), "load_average_start": load_start,
                    "load_average_end": _load()},
        "command": command,
        "options": {"repeat": args.repeat, "changes": args.changes, "latency_tx": args.latency_tx,
                    "scenarios": list(opts.scenarios),
                    "quick": args.quick, "profile": args.profile},
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "total_seconds": time.perf_counter() - started,
    }
    results["plots"] = plots.write(out, results)
    report.write(out, results)
    print(report.text(results))
    missed = [g for g in goals if not g["ok"]]
    if missed:
        print(f"\n{len(missed)} goal(s) missed:")
        for g in missed:
            print(f"  MISSED  {g['name']}: {report.value_text(g)} (goal {g['goal']})")
    for name, error in measurements["scenarios"]["errors"].items():
        print(f"scenario {name} FAILED: {error.splitlines()[0]}")
    for name, why in measurements["scenarios"]["skipped"].items():
        print(f"skipped {name}: {why}")
    print(f"\nwrote {out / 'results.json'} and {out / 'RESULTS.md'}"
          + (f" and {len(results['plots'])} plot(s)" if results["plots"]
             else " (no plots: matplotlib is not installed)"))
    return 0
