"""A day of the agent compressed (issue 25): is an incremental as cheap after a day's chain
as at the start, and does the agent's memory stay flat?

    python -m bench.agent_day --speed 120 --hours 24 --out DIR

The agent runs as a user runs it (``tradevault agent``) against a real S3 server (local
SeaweedFS) while a bot trades. Every interval of the schedule is divided by ``--speed``:
incrementals every 30 s / speed, compaction levels 5 min, 1 h, 6 h and 1 day / speed (the
fan-ins stay 10, 12, 6, 4), so ``--hours`` of wall time / speed hold as many incrementals
as that many hours would. The agent's own log gives each incremental's seconds and the
requests it sent; its RSS is read from /proc once a second. Writes DIR/agent-day.json and,
when matplotlib is installed, DIR/agent-day.png (incremental time and RSS against the
number of incrementals).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.report import print_goals
from tests.services import SeaweedS3
from tradevault.workload import TradingWorkload, bulk_fill, create_database

LEVELS = (300, 3600, 21600, 86400)
DONE = re.compile(r"incremental done: (\{.*\})\s*$")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _config(root: Path, db: Path, server: SeaweedS3, speed: float) -> Path:
    levels = ", ".join(f'"{seconds / speed}s"' for seconds in LEVELS)
    path = root / "tradevault.toml"
    path.write_text(f"""
[database]
url = "sqlite:///{db}"
name = "tradesv3"

[[locations]]
name = "s3"
url = "s3://tv-day/bot"
endpoint_url = "{server.endpoint}"
region = "us-east-1"
access_key_id = "tradevault"
secret_access_key = "tradevault-secret"

[schedule]
incremental = "{30 / speed}s"
compact = [{levels}]
verify = ""
drill = false
retention = "100d"

[agent]
state_dir = "{root / 'state'}"

[config_vcs]
paths = []
""")
    return path


def _bot(db: Path, stop: threading.Event, rate: float) -> None:
    workload = TradingWorkload(db, seed=7, synchronous="NORMAL")
    try:
        while not stop.is_set():
            workload.step()
            time.sleep(1 / rate)
    finally:
        workload.close()


def run(speed: float, hours: float, rate: float, root: Path) -> dict[str, Any]:
    server = SeaweedS3(root / "weed")
    server.start()
    try:
        server.create_bucket("tv-day")
        db = root / "tradesv3.sqlite"
        create_database(db)
        bulk_fill(db, 10_000)
        config = _config(root, db, server, speed)
        log_path = root / "agent.log"
        stop = threading.Event()
        bot = threading.Thread(target=_bot, args=(db, stop, rate), daemon=True)
        bot.start()
        with open(log_path, "w") as log:
            agent = subprocess.Popen([sys.executable, "-m", "tradevault.cli", "agent", "-c", str(config)],
                                     stdout=log, stderr=subprocess.STDOUT)
        samples: list[dict[str, float]] = []
        started = time.monotonic()
        try:
            while time.monotonic() - started < hours * 3600 / speed:
                time.sleep(1)
                if agent.poll() is not None:
                    raise RuntimeError(f"the agent exited {agent.returncode}: {log_path.read_text()[-2000:]}")
                samples.append({"t": round(time.monotonic() - started, 1), "rss_mb": round(_rss_mb(agent.pid), 1)})
        finally:
            stop.set()
            agent.send_signal(signal.SIGTERM)
            agent.wait(300)
            bot.join(30)
        incrementals = []
        for line in log_path.read_text().splitlines():
            found = DONE.search(line)
            if found:
                report = ast.literal_eval(found.group(1))
                incrementals.append({"last_seq": report.get("last_seq"), "seconds": report.get("seconds"),
                                     "events": report.get("count")})
        return {"speed": speed, "hours": hours, "bot_transactions_per_second": rate,
                "incrementals": incrementals, "rss": samples}
    finally:
        server.stop()


def goals(m: dict[str, Any]) -> list[dict[str, Any]]:
    seconds = [i["seconds"] for i in m["incrementals"] if i["seconds"] is not None]
    tenth = max(1, len(seconds) // 10)
    first, last = statistics.median(seconds[:tenth]), statistics.median(seconds[-tenth:])
    rss = [s["rss_mb"] for s in m["rss"] if s["rss_mb"]]
    part = max(1, len(rss) // 10)
    rss_first, rss_last = statistics.median(rss[:part]), statistics.median(rss[-part:])
    return [
        {"name": f"agent day: incremental time, last tenth / first tenth of {len(seconds)} (median)",
         "value": round(last / first, 3), "goal": "<= 1.5", "ok": last / first <= 1.5},
        {"name": "agent day: RSS, last tenth / first tenth (median)", "value": round(rss_last / rss_first, 3),
         "goal": "<= 1.2", "ok": rss_last / rss_first <= 1.2},
    ]


def plot(out: Path, m: dict[str, Any]) -> list[str]:
    from bench.plots import _pyplot

    plt = _pyplot()
    if plt is None or not m["incrementals"]:
        return []
    fig, (ax_t, ax_m) = plt.subplots(2, 1, figsize=(9, 7))
    ax_t.plot(range(1, len(m["incrementals"]) + 1), [i["seconds"] for i in m["incrementals"]], ".", markersize=2)
    ax_t.set_xlabel("incrementals stored")
    ax_t.set_ylabel("seconds (agent's report)")
    ax_t.set_title(f"{m['hours']:g} h of the agent at {m['speed']:g}x speed, SeaweedFS S3", fontsize=10)
    ax_m.plot([s["t"] * m["speed"] / 3600 for s in m["rss"]], [s["rss_mb"] for s in m["rss"]])
    ax_m.set_xlabel("hours of schedule")
    ax_m.set_ylabel("agent RSS (MB)")
    for ax in (ax_t, ax_m):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "agent-day.png", dpi=110)
    plt.close(fig)
    return ["agent-day.png"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=120.0)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--rate", type=float, default=20.0, help="bot transactions per second")
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="tradevault-agent-day-"))
    try:
        m = run(args.speed, args.hours, args.rate, root)
        results = {"command": "python -m bench.agent_day " + " ".join(argv if argv is not None else sys.argv[1:]),
                   "measurements": m, "goals": goals(m), "plots": plot(args.out, m)}
        (args.out / "agent-day.json").write_text(json.dumps(results, indent=2))
        print_goals(results["goals"])
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
