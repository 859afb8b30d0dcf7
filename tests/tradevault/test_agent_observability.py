"""The agent's observability: Prometheus metrics on the configured address and one JSON
object per log line with --log-format json."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request

from tests.services import free_port
from tradevault.workload import TradingWorkload, create_database


def test_agent_serves_metrics_and_writes_json_logs(tmp_path):
    db = tmp_path / "tradesv3.sqlite"
    create_database(db)
    TradingWorkload(db, seed=1).run(50)
    port = free_port()
    config = tmp_path / "tradevault.toml"
    config.write_text(f"""
[database]
url = "sqlite:///{db}"
[[locations]]
name = "local"
url = "file://{tmp_path / 'backups'}"
[schedule]
incremental = "500ms"
verify = ""
[agent]
state_dir = "{tmp_path / 'state'}"
[metrics]
listen = "127.0.0.1:{port}"
[config_vcs]
paths = []
""")
    log = tmp_path / "agent.log"
    with open(log, "wb") as out:
        agent = subprocess.Popen([sys.executable, "-m", "tradevault.cli", "agent", "-c", str(config),
                                  "--log-format", "json"], cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        body, deadline = "", time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
                if 'tradevault_last_success_timestamp_seconds{job="full"}' in body:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        TradingWorkload(db, seed=2).run(20)
        time.sleep(1.5)
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    finally:
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(60) == 0
    for metric in ("tradevault_capture_lag_seconds", "tradevault_capture_lag_events",
                   'tradevault_last_success_timestamp_seconds{job="incremental"}',
                   'tradevault_location_behind_entries{location="local"} 0.0',
                   'tradevault_bytes_written_total{kind="full"}'):
        assert metric in body, metric
    puts = re.search(r'tradevault_storage_requests_total\{location="local",request="put"\} (\d+)', body)
    assert puts and int(puts.group(1)) >= 2, "the full backup's object and manifest entry were requests"
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert records and all({"ts", "level", "logger", "msg"} <= r.keys() for r in records)
    assert any("full done" in r["msg"] for r in records)
    assert any(r["msg"] == "agent stopped" for r in records)
