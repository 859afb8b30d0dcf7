"""The agent consolidates on its own: once a restore of the latest point would replay
``consolidate_after_events`` events, it stores a full backup built from the store, and a
restore of the latest point then starts from it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cli_harness import digest_of
from tradevault.workload import TradingWorkload, create_database


def _fulls(manifest: Path) -> list[dict]:
    entries = [json.loads(p.read_text()) for p in sorted(manifest.glob("*.json"))] if manifest.is_dir() else []
    return [e for e in entries if e["kind"] == "full"]


def test_agent_stores_a_consolidated_full_once_the_replay_would_pass_the_threshold(tmp_path, cli):
    db = tmp_path / "tradesv3.sqlite"
    create_database(db)
    TradingWorkload(db, seed=1).run(30)
    config = tmp_path / "tradevault.toml"
    config.write_text(cli.config_text(f"sqlite:///{db}", {"local": tmp_path / "backups"}, extra=f"""
[schedule]
incremental = "300ms"
verify = ""
consolidate_after_events = 150
[agent]
state_dir = "{tmp_path / 'state'}"
[config_vcs]
paths = []
"""))
    manifest = tmp_path / "backups" / "tradesv3" / "manifest"
    log = tmp_path / "agent.log"
    with open(log, "wb") as out:
        agent = subprocess.Popen([sys.executable, "-m", "tradevault.cli", "agent", "-c", str(config)],
                                 cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not _fulls(manifest) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _fulls(manifest), log.read_text()
        workload = TradingWorkload(db, seed=2)
        deadline = time.monotonic() + 90
        while len(_fulls(manifest)) < 2 and time.monotonic() < deadline:
            workload.run(20)
            time.sleep(0.1)
        workload.close()
        assert len(_fulls(manifest)) >= 2, log.read_text()
    finally:
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(60) == 0
    assert "consolidate done" in log.read_text()
    state = json.loads((tmp_path / "state" / "agent.json").read_text())
    assert state["jobs"]["consolidate"]["ok"] is True
    restored = subprocess.run([sys.executable, "-m", "tradevault.cli", "-c", str(config), "restore", "--to",
                               f"sqlite:///{tmp_path / 'r.sqlite'}", "--json"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert restored.returncode == 0, restored.stderr
    result = json.loads(restored.stdout)
    consolidated = _fulls(manifest)[1]
    assert int(result["full"].split("/")[-1][:10]) >= consolidated["n"]
    assert digest_of(tmp_path / "r.sqlite") == digest_of(db)
