"""End-to-end lag and sustained capture throughput through the real ``tradevault agent``.

The agent runs as a subprocess on a copy of the benchmark database with
``[schedule] incremental = "1s"`` (no config watching, no drills, no verify). The bench
process is the trading bot:

* lag: one trading transaction every ``interval`` s for ``seconds`` s; for each, the time
  from the end of its COMMIT to the moment the manifest entry of the incremental that holds
  its seq is visible in the store (the store's manifest directory is polled every 5 ms);
* throughput: transactions of ``batch`` row changes as fast as possible for ``seconds`` s,
  then until the agent has stored the last one; events sealed per second of that span
  (the agent seals every 1 s, or earlier at ``incremental_max_events``).

The agent's own peak RSS (VmHWM) is read from /proc while it runs and just before it exits.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench import data
from bench.children import PROJECT_ROOT, vm_hwm_kb
from bench.latency import Trader, percentile

SOURCE = "agentbench"


class ManifestWatcher(threading.Thread):
    """Records (monotonic time first seen, last_seq) of every manifest entry."""

    def __init__(self, manifest_dir: Path) -> None:
        super().__init__(daemon=True)
        self.dir = manifest_dir
        self.seen: dict[str, tuple[float, int, str]] = {}
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self.stop.is_set():
            self.poll()
            self.stop.wait(0.005)

    def poll(self) -> None:
        try:
            names = [n for n in os.listdir(self.dir) if n.endswith(".json") and not n.startswith(".")]
        except FileNotFoundError:
            return
        now = time.monotonic()
        for name in names:
            if name in self.seen:
                continue
            try:
                entry = json.loads((self.dir / name).read_text())
            except (OSError, ValueError):
                continue
            with self.lock:
                self.seen[name] = (now, int(entry.get("last_seq") or 0), entry.get("kind", "?"))

    def stored_seq(self) -> int:
        with self.lock:
            return max((seq for _t, seq, _k in self.seen.values()), default=0)

    def published_at(self, seq: int) -> float | None:
        with self.lock:
            times = [t for t, last, _k in self.seen.values() if last >= seq]
        return min(times) if times else None


def _toml(db: Path, store: Path, state: Path) -> str:
    return f"""[database]
url = "sqlite:///{db}"
name = "{SOURCE}"

[[locations]]
name = "local"
url = "file://{store}"

[schedule]
full = "0 3 1 1 *"
incremental = "1s"
verify = ""
drill = false

[agent]
state_dir = "{state}"
stop_timeout = "10s"

[config_vcs]
paths = []
"""


def _tradevault() -> list[str]:
    script = Path(sys.executable).parent / "tradevault"
    return [str(script)] if script.exists() else [sys.executable, "-m", "tradevault.cli"]


def measure(source_db: Path, work: Path, seconds: float, interval: float, batch: int, log) -> dict:
    work.mkdir(parents=True)
    db, store, state = work / "agent.sqlite", work / "store", work / "state"
    data.copy_database(source_db, db)
    config = work / "tradevault.toml"
    config.write_text(_toml(db, store, state))
    watcher = ManifestWatcher(store / SOURCE / "manifest")
    watcher.start()
    agent_log = open(work / "agent.log", "wb")
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    proc = subprocess.Popen([*_tradevault(), "agent", "-c", str(config)], cwd=work, env=env,
                            stdout=agent_log, stderr=subprocess.STDOUT, start_new_session=True)
    hwm = 0
    launched = time.monotonic()
    try:
        deadline = time.monotonic() + 600
        while not watcher.seen:
            if proc.poll() is not None:
                raise RuntimeError(f"tradevault agent exited with {proc.returncode}: "
                                   f"{(work / 'agent.log').read_text(errors='replace')[-800:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("tradevault agent stored no full backup within 600 s")
            time.sleep(0.05)
        startup = time.monotonic() - launched
        log("  agent up (initial full backup stored); lag phase")
        hwm = max(hwm, vm_hwm_kb(proc.pid))

        # lag: single trading transactions at a steady rate
        trader = Trader(db, seed=21)
        commits: list[tuple[int, float]] = []
        phase_end = time.monotonic() + seconds
        next_at = time.monotonic()
        try:
            while time.monotonic() < phase_end:
                trader.transaction()
                committed = time.monotonic()
                seq = trader.conn.execute("SELECT max(seq) FROM _tradevault_changes").fetchone()[0]
                commits.append((seq, committed))
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))
        finally:
            trader.close()
        last = commits[-1][0]
        waited = _wait_stored(watcher, proc, last, 60)
        lags = sorted(watcher.published_at(seq) - t for seq, t in commits if watcher.published_at(seq))
        hwm = max(hwm, vm_hwm_kb(proc.pid))

        # sustained throughput: big transactions as fast as possible
        log("  throughput phase")
        conn = sqlite3.connect(db, isolation_level=None, timeout=30)
        top = conn.execute("SELECT max(id) FROM orders").fetchone()[0]
        events, txs, low = 0, 0, 1
        started = time.monotonic()
        first_seq = conn.execute("SELECT max(seq) FROM _tradevault_changes").fetchone()[0]
        backlog_max = 0
        while time.monotonic() - started < seconds:
            high = min(low + batch - 1, top)
            conn.execute("BEGIN IMMEDIATE")
            cur = conn.execute("UPDATE orders SET filled = filled + 0.25 WHERE id BETWEEN ? AND ?", (low, high))
            conn.execute("COMMIT")
            events += cur.rowcount
            txs += 1
            low = high + 1 if high < top else 1
            if txs % 20 == 0:
                hwm = max(hwm, vm_hwm_kb(proc.pid))
                backlog_max = max(backlog_max, first_seq + events - watcher.stored_seq())
        writing = time.monotonic() - started
        end_seq = conn.execute("SELECT max(seq) FROM _tradevault_changes").fetchone()[0]
        conn.close()
        drained = _wait_stored(watcher, proc, end_seq, 300)
        total = (drained or time.monotonic()) - started
        hwm = max(hwm, vm_hwm_kb(proc.pid))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            stop_deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < stop_deadline:
                hwm = max(hwm, vm_hwm_kb(proc.pid))
                time.sleep(0.01)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        watcher.stop.set()
        watcher.join()
        agent_log.close()
    entries = sorted(watcher.seen.values())
    return {
        "schedule_incremental_s": 1.0,
        "startup_to_first_full_s": startup,
        "lag_transactions": len(commits),
        "lag_interval_s": interval,
        "lag_unstored": len(commits) - len(lags),
        "lag_drain_ok": waited is not None,
        "commit_to_stored_s": lags,
        "commit_to_stored_p50_s": percentile(lags, 50),
        "commit_to_stored_p99_s": percentile(lags, 99),
        "commit_to_stored_max_s": lags[-1] if lags else float("nan"),
        "throughput_events": events,
        "throughput_transactions": txs,
        "throughput_batch": batch,
        "throughput_write_seconds": writing,
        "throughput_written_per_second": events / writing if writing else None,
        "throughput_stored_seconds": total,
        "throughput_drained": drained is not None,
        "throughput_sealed_per_second": events / total if total else None,
        "throughput_backlog_max_events": backlog_max,
        "incrementals_stored": sum(1 for _t, _s, k in entries if k == "incremental"),
        "agent_exit_code": proc.returncode,
        "agent_vm_hwm_kb": hwm,
    }


def _wait_stored(watcher: ManifestWatcher, proc: subprocess.Popen, seq: int, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at = watcher.published_at(seq)
        if at is not None:
            return at
        if proc.poll() is not None:
            return None
        time.sleep(0.005)
    return None
