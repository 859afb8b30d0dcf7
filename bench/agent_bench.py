"""Agent overhead (issue 4), in one run on the same database: the trading-commit latency
p50/p99 of a bot with the agent running (continuous capture, incremental seals, a full
backup in progress part of the time, config pushes) vs without it, and the agent's CPU
share while the bot trades as fast as it can (goals: p99 <= 1.3x; CPU <= 25% of a core).

    python -m bench.agent_bench --rows 1000000 --seconds 20 --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dulwich.repo import Repo

from bench.report import print_goals
from tradevault.workload import TradingWorkload, bulk_fill, create_database


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _latencies(db: Path, seconds: float) -> tuple[list[float], int]:
    workload = TradingWorkload(db, seed=3, synchronous="NORMAL")
    samples, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        began = time.perf_counter()
        workload.step()
        samples.append(time.perf_counter() - began)
    workload.close()
    return samples, len(samples)


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="tradevault-agent-bench-"))
    try:
        db = root / "tradesv3.sqlite"
        create_database(db)
        bulk_fill(db, args.rows)
        config_dir = root / "config"
        config_dir.mkdir()
        (config_dir / "config.json").write_text("{}")
        remotes = []
        for i in range(3):
            remotes.append(root / f"r{i}.git")
            Repo.init_bare(str(remotes[-1]), mkdir=True).close()
        remote_lines = "\n".join(f'r{i} = "{r}"' for i, r in enumerate(remotes))
        (root / "tradevault.toml").write_text(f"""
[database]
url = "sqlite:///{db}"
[[locations]]
name = "local"
url = "file://{root / 'backups'}"
[schedule]
full = "* * * * * */10"
incremental = "2s"
verify = ""
drill = false
[agent]
state_dir = "{root / 'state'}"
[config_vcs]
paths = ["{config_dir}"]
[config_vcs.remotes]
{remote_lines}
""")
        subprocess.run([sys.executable, "-c",
                        f"import sqlite3; sqlite3.connect('{db}').execute('PRAGMA journal_mode=WAL')"],
                       check=True)
        without, _ = _latencies(db, args.seconds)
        agent = subprocess.Popen([sys.executable, "-m", "tradevault.cli", "agent", "-c", str(root / "tradevault.toml")],
                                 cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not (root / "state" / "agent.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        cpu_before, wall_before = _cpu_seconds(agent.pid), time.monotonic()
        for i in range(5):  # config pushes while the bot trades
            (config_dir / "config.json").write_text(json.dumps({"edit": i}))
        with_agent, transactions = _latencies(db, args.seconds)
        cpu = (_cpu_seconds(agent.pid) - cpu_before) / (time.monotonic() - wall_before)
        agent.send_signal(signal.SIGTERM)
        agent.wait(120)
        rate = transactions / args.seconds
        ratio = _pct(with_agent, 0.99) / _pct(without, 0.99)
        goals = [
            {"name": "trading-commit latency p99, agent running / not", "value": round(ratio, 3), "goal": "<= 1.3",
             "ok": ratio <= 1.3},
            {"name": f"agent CPU share of one core at {rate:.0f} trades/s", "value": round(cpu, 3), "goal": "<= 0.25",
             "ok": cpu <= 0.25},
        ]
        results = {"rows": args.rows, "trades_per_second": round(rate, 1),
                   "latency_ms": {"without": {"p50": _pct(without, 0.5), "p99": _pct(without, 0.99)},
                                  "with_agent": {"p50": _pct(with_agent, 0.5), "p99": _pct(with_agent, 0.99)}},
                   "agent_cpu_share": round(cpu, 3), "goals": goals}
        (args.out / "agent-results.json").write_text(json.dumps(results, indent=2))
        print(json.dumps(results["latency_ms"]), f"trades/s {rate:.0f}")
        print_goals(goals)
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
