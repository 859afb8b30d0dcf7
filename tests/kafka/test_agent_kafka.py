"""The agent drives the Kafka sink: run it next to a live workload, stop it with SIGTERM,
and `restore --from kafka` (the CLI) equals the source."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
import uuid

from tests.conftest import DEMO_KEYS
from trade_stream.sqlite.digest import database_digest
from tradevault.workload import TradingWorkload, create_database


def _digest(path):
    conn = sqlite3.connect(path)
    try:
        return database_digest(conn, DEMO_KEYS)
    finally:
        conn.close()


def test_agent_publishes_to_kafka_and_restore_from_kafka_equals_the_source(tmp_path, broker):
    db = tmp_path / "tradesv3.sqlite"
    create_database(db)
    workload = TradingWorkload(db, seed=5)
    workload.run(150)
    config = tmp_path / "tradevault.toml"
    config.write_text(f"""
[database]
url = "sqlite:///{db}"
[[locations]]
name = "local"
url = "file://{tmp_path / 'backups'}"
[schedule]
incremental = "1s"
verify = ""
[kafka]
bootstrap_servers = "{broker.bootstrap}"
topic_prefix = "a{uuid.uuid4().hex[:8]}"
sync_interval = "200ms"
[agent]
state_dir = "{tmp_path / 'state'}"
[config_vcs]
paths = []
""")
    log = open(tmp_path / "agent.log", "wb")
    agent = subprocess.Popen([sys.executable, "-m", "tradevault.cli", "agent", "-c", str(config)],
                             cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        time.sleep(3)
        workload.run(300, rate=150)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # status shows the Kafka lag going to zero
            state_file = tmp_path / "state" / "agent.json"
            state = json.loads(state_file.read_text()) if state_file.exists() else {}
            if state.get("kafka", {}).get("behind_events") == 0 and state.get("lag_events") == 0:
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"kafka never caught up: {state.get('kafka')}")
    finally:
        workload.close()
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(90) == 0, (tmp_path / "agent.log").read_text()[-3000:]
    target = tmp_path / "from-kafka.sqlite"
    result = subprocess.run([sys.executable, "-m", "tradevault.cli", "restore", "--to", f"sqlite:///{target}",
                             "--from", "kafka", "--json", "-c", str(config)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert {"first_seq", "last_seq", "rows", "bytes", "seconds"} <= summary.keys()
    assert _digest(target) == _digest(db)
