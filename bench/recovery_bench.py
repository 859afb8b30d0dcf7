"""Recovery benchmark (issue 10), on the same database in one run:

* time from "database file deleted" to "bot running again on recovered data" with
  `tradevault run` (goal: <= 5 s plus the restore time at N rows), against the restore
  time alone (`tradevault restore` of the same backups);
* standby lag under a trading workload (goal: p99 <= incremental interval + 1 s).

    python -m bench.recovery_bench --rows 1000000 --out DIR
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.report import print_goals
from tradevault.workload import TradingWorkload, bulk_fill, create_database

BOT = "import pathlib, sys, time; pathlib.Path(sys.argv[1]).write_text(str(time.time()))"


def _cli(root: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tradevault.cli", *args, "-c", str(root / "tradevault.toml")],
                          cwd=root, capture_output=True, text=True, **kwargs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="trades/s during the standby run")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="tradevault-recovery-bench-"))
    db = root / "tradesv3.sqlite"
    incremental = 1.0
    (root / "tradevault.toml").write_text(f"""
[database]
url = "sqlite:///{db}"
[[locations]]
name = "local"
url = "file://{root / 'backups'}"
[schedule]
incremental = "{incremental}s"
verify = ""
drill = false
[agent]
state_dir = "{root / 'state'}"
[standby]
url = "sqlite:///{root / 'standby.sqlite'}"
interval = "200ms"
[config_vcs]
paths = []
""")
    try:
        create_database(db)
        bulk_fill(db, args.rows)
        assert _cli(root, "backup", "full").returncode == 0
        TradingWorkload(db, seed=1).run(2000)
        assert _cli(root, "backup", "incremental").returncode == 0

        began = time.perf_counter()
        assert _cli(root, "restore", "--to", f"sqlite:///{root / 'restore-only.sqlite'}").returncode == 0
        restore_seconds = time.perf_counter() - began

        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        marker = root / "bot-started"
        deleted_at = time.time()
        run = _cli(root, "run", "--", sys.executable, "-c", BOT, str(marker), timeout=600)
        assert run.returncode == 0, run.stdout + run.stderr
        to_bot = float(marker.read_text()) - deleted_at

        # standby lag: agent + follower + a bot at --rate trades/s
        agent = subprocess.Popen([sys.executable, "-m", "tradevault.cli", "agent", "-c", str(root / "tradevault.toml")],
                                 cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        follower = subprocess.Popen([sys.executable, "-m", "tradevault.cli", "follow", "-c",
                                     str(root / "tradevault.toml")],
                                    cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stop = threading.Event()
        committed = []

        def bot() -> None:
            workload = TradingWorkload(db, seed=2, synchronous="NORMAL")
            interval = 1.0 / args.rate
            while not stop.is_set():
                began = time.perf_counter()
                workload.step()
                committed.append(time.time())
                time.sleep(max(0.0, interval - (time.perf_counter() - began)))
            workload.close()

        thread = threading.Thread(target=bot)
        time.sleep(5)
        thread.start()
        state_file = root / ".standby.sqlite.tradevault-follow.json"
        lags = []
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            time.sleep(0.25)
            try:
                state = json.loads(state_file.read_text())
            except (OSError, ValueError):
                continue
            if state.get("last_ts"):
                lags.append(time.time() - state["last_ts"] / 1e6)
        stop.set()
        thread.join()
        for process in (follower, agent):
            process.send_signal(signal.SIGTERM)
            process.wait(120)
        rate = len(committed) / max(1e-9, committed[-1] - committed[0]) if len(committed) > 1 else 0.0
        lags.sort()
        p99 = lags[int(len(lags) * 0.99) - 1] if lags else float("nan")
        goals = [
            {"name": "deleted database -> bot running (s) minus restore time",
             "value": round(to_bot - restore_seconds, 3),
             "goal": "<= 5 s", "ok": to_bot - restore_seconds <= 5.0},
            {"name": "standby lag p99 (s)", "value": round(p99, 3), "goal": f"<= {incremental + 1:.0f} s",
             "ok": p99 <= incremental + 1},
        ]
        results = {"rows": args.rows, "restore_seconds": round(restore_seconds, 3),
                   "deleted_to_bot_running_seconds": round(to_bot, 3),
                   "standby_lag_samples": [round(x, 3) for x in lags],
                   "standby_lag_median": round(statistics.median(lags), 3) if lags else None,
                   "trades_per_second_achieved": round(rate, 1), "goals": goals}
        (args.out / "recovery-results.json").write_text(json.dumps(results, indent=2))
        print(f"restore alone {restore_seconds:.3f} s; deleted -> bot running {to_bot:.3f} s; "
              f"bot at {rate:.0f} trades/s; standby lag median {results['standby_lag_median']} s, p99 {p99:.3f} s")
        print_goals(goals)
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
