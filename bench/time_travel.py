"""Time-travel benchmark (issue 21): history, diff and query as a user runs them.

    python -m bench.time_travel --rows 1000000 --changes 100000 --incrementals 10 --out DIR

The bench's trading database (``--rows`` trades, as many orders), a full backup, then
``--incrementals`` incrementals of ``--changes`` random row updates each (bench.data's
pattern: a third trades, the rest orders), all by the ``tradevault`` command on a file
location, not compacted (so "5 incrementals apart" is five objects). Then, in ``--rounds``
rounds, each command timed as a whole process (start-up included):

* ``history orders --key id=N`` of a row the third incremental changed (others may change
  it too): cold (empty point cache: the full backup's row needs its materialised copy)
  and warm; the objects it opened, from its report, beyond those that change the row;
* ``diff --from-seq A --to-seq B`` five incrementals apart, against a process that only
  reads and decodes those five objects (``bench.time_travel read``: the same store, the
  same verified reader, nothing else);
* ``query --at T`` of a point inside the chain, cold, against ``restore --at T`` to a
  SQLite file plus the same SQL run on it; then the same query again (cached): its goal
  counts what it costs beyond the SQL's own run time (an aggregate over every order, timed
  on the restored file), which no cache takes away.

Writes DIR/time-travel-results.json with the goals-list shape of ``python -m bench``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import data
from bench.children import run_cli, run_measured
from bench.report import print_goals
from bench.tv_commands import compile_bytecode, iso_time

SOURCE = "tradesv3"
QUERY = "SELECT status, count(*) AS n, round(sum(filled), 2) AS filled FROM orders GROUP BY status"


def _log(message: str) -> None:
    print(f"[time-travel-bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _tv(args: list[str], config: Path, cwd: Path, json_flag: bool = True) -> tuple[Any, Any]:
    report, run = run_cli([*args, "-c", str(config)], cwd=cwd, json_flag=json_flag)
    if run.returncode != 0:
        raise RuntimeError(f"tradevault {' '.join(args)} exit {run.returncode}: {run.stderr[-2000:]}")
    return report, run


def _changed_in(db: Path, seq_low: int, seq_high: int, changes: int) -> int:
    """An orders id changed by exactly one of the bench's incrementals (its events are in
    the change log until the next backup prunes it: read before that)."""
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT k0 FROM _tradevault_changes WHERE tbl = 'orders' AND seq > ? AND seq <= ? "
                           "ORDER BY seq LIMIT 1 OFFSET ?", (seq_low, seq_high, changes // 3)).fetchone()
    finally:
        conn.close()
    return int(row[0])


def read_objects(config: Path, first: int, last: int) -> float:
    """The baseline of diff: read and decode the incrementals with ``first <= n <= last``,
    as diff's reader does (verified, decoded), and nothing else; returns seconds."""
    from trade_stream.storage.stored_objects import events_of
    from tradevault import wiring
    from tradevault.settings import load_settings

    settings = load_settings(config)
    store = wiring.store(settings, wiring.source(settings))
    started = time.perf_counter()
    events = 0
    for entry in store.entries():
        if entry.kind == "incremental" and first <= entry.n <= last:
            for batch in events_of(store, entry):
                events += len(batch)
    print(json.dumps({"events": events, "seconds": time.perf_counter() - started}))
    return time.perf_counter() - started


def _opened(stderr: str) -> tuple[int, int]:
    found = re.search(r"opened (\d+) of (\d+) incremental", stderr)
    return (int(found.group(1)), int(found.group(2))) if found else (-1, -1)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["read"]:
        read_objects(Path(argv[1]), int(argv[2]), int(argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--incrementals", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    args = parser.parse_args(argv)
    if args.incrementals < 7:
        parser.error("--incrementals must be at least 7 (diff spans five of them)")
    args.out.mkdir(parents=True, exist_ok=True)
    compile_bytecode()
    root = Path(tempfile.mkdtemp(prefix="tradevault-time-travel-bench-"))
    try:
        db, work = root / f"{SOURCE}.sqlite", root / "work"
        work.mkdir()
        config = root / "tradevault.toml"
        config.write_text(f'work_dir = "{work}"\n\n[database]\nurl = "sqlite:///{db}"\nname = "{SOURCE}"\n\n'
                          f'[[locations]]\nname = "bench"\nurl = "file://{root / "store"}"\n\n'
                          '[config_vcs]\npaths = []\n')
        _log(f"building {args.rows:,} rows")
        data.build(db, args.rows)
        full, _ = _tv(["backup", "full"], config, root)
        points = [{"n": full["n"], "seq": full["last_seq"], "ts": full["last_ts"]}]
        row_id = None
        for i in range(args.incrementals):
            data.change_random(db, args.changes, seed=2100 + i)
            if i == 2:
                row_id = _changed_in(db, points[-1]["seq"], data.last_seq(db), args.changes)
            report, run = _tv(["backup", "incremental"], config, root)
            points.append({"n": report["n"], "seq": report["last_seq"], "ts": report["last_ts"],
                           "events": report["events"], "seconds": run.seconds})
            _log(f"incremental {i + 1}: {report['events']:,} events, {run.seconds:.2f} s")
        assert row_id is not None
        a, b = points[2], points[7]  # five incrementals apart
        middle = points[args.incrementals // 2]
        at = iso_time((middle["ts"] + points[args.incrementals // 2 + 1]["ts"]) // 2)
        figures: dict[str, list[float]] = {}
        opened = (0, 0)
        versions = holding = 0
        for round_no in range(args.rounds):
            shutil.rmtree(work / "time-travel", ignore_errors=True)
            for label in ("history_cold", "history_warm"):
                report, run = _tv(["history", "orders", "--key", f"id={row_id}"], config, root)
                figures.setdefault(label, []).append(run.seconds)
                opened, versions = _opened(run.stderr), len(report)
                # each incremental updates a row at most once (distinct random rows)
                holding = len({v["commit_seq"] for v in report if v["op"] != "snapshot"})
            _, run = _tv(["diff", "--from-seq", str(a["seq"]), "--to-seq", str(b["seq"])], config, root)
            figures.setdefault("diff", []).append(run.seconds)
            read = run_measured([sys.executable, "-m", "bench.time_travel", "read", str(config),
                                 str(a["n"] + 1), str(b["n"])], cwd=Path.cwd())
            figures.setdefault("read_five", []).append(read.seconds)
            shutil.rmtree(work / "time-travel", ignore_errors=True)
            _, run = _tv(["query", "--at", at, QUERY], config, root)
            figures.setdefault("query_cold", []).append(run.seconds)
            _, run = _tv(["query", "--at", at, QUERY], config, root)
            figures.setdefault("query_cached", []).append(run.seconds)
            target = root / f"restored-{round_no}.sqlite"
            _, run = _tv(["restore", "--at", at, "--to", f"sqlite:///{target}"], config, root)
            started = time.perf_counter()
            conn = sqlite3.connect(target)
            conn.execute(QUERY).fetchall()
            conn.close()
            itself = time.perf_counter() - started
            figures.setdefault("query_itself", []).append(itself)
            figures.setdefault("restore_plus_query", []).append(run.seconds + itself)
            target.unlink()
            _log(f"round {round_no + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in figures.items()))
        m = {k: statistics.median(v) for k, v in figures.items()}
        goals = [
            {"name": "history of one row, cold cache (s, whole process)", "value": round(m["history_cold"], 3),
             "goal": "<= 1", "ok": m["history_cold"] <= 1},
            {"name": "history of one row, warm (s, whole process)", "value": round(m["history_warm"], 3),
             "goal": "<= 1", "ok": m["history_warm"] <= 1},
            {"name": f"history: incrementals opened of {opened[1]}, beyond the {holding} that change the row",
             "value": opened[0] - holding, "goal": "<= 1", "ok": 0 <= opened[0] - holding <= 1},
            {"name": "diff 5 incrementals apart / reading those 5 (whole process)",
             "value": round(m["diff"] / m["read_five"], 3), "goal": "<= 1.2", "ok": m["diff"] <= 1.2 * m["read_five"]},
            {"name": "query --at, cold / (restore --at + the query)",
             "value": round(m["query_cold"] / m["restore_plus_query"], 3), "goal": "<= 1.2",
             "ok": m["query_cold"] <= 1.2 * m["restore_plus_query"]},
            {"name": "query --at again, cached, beyond the SQL's own run time (s, whole process)",
             "value": round(m["query_cached"] - m["query_itself"], 3), "goal": "<= 0.3",
             "ok": m["query_cached"] - m["query_itself"] <= 0.3},
        ]
        results = {"rows": args.rows, "changes": args.changes, "incrementals": args.incrementals,
                   "command": "python -m bench.time_travel " + " ".join(argv), "history_versions": versions,
                   "points": points, "figures": figures, "medians": m, "goals": goals}
        (args.out / "time-travel-results.json").write_text(json.dumps(results, indent=2))
        print_goals(goals)
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
