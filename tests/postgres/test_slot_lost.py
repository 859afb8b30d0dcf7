"""A replication slot that lost its WAL (``max_slot_wal_keep_size``, while other databases
of the cluster write): ``backup incremental`` says so (exit 3), and the agent does what the
operator would at 3 a.m.: it drops the broken capture, takes a full backup (a new chain),
counts it in ``tradevault_capture_restarts_total`` and shows it in ``status``; backups
then go on and a restore equals the source."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.cli_harness import TV_CMD, clean_env
from tests.postgres.pg_helpers import connect, digest, execute

pytestmark = pytest.mark.xdist_group("postgres")

BURST_ROWS = 100_000  # about 20 MB of WAL each


def tv(work_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*TV_CMD, *args, "-c", str(work_dir / "tradevault.toml")], capture_output=True,
                          text=True, cwd=work_dir, env=clean_env(), timeout=120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slot_status(url: str) -> str:
    conn = connect(url)
    try:
        row = conn.execute("SELECT wal_status FROM pg_replication_slots"
                           " WHERE slot_name = 'tradevault_pgsrc'").fetchone()
        return row[0] if row else "missing"
    finally:
        conn.close()


def lose_the_slot(pg_cluster, other: str) -> None:
    for burst in range(4):
        execute(other, f"CREATE TABLE big{burst} AS SELECT g AS id, repeat('x', 150) AS pad"
                       f" FROM generate_series(1, {BURST_ROWS}) g")
        with pg_cluster.admin() as admin:
            admin.execute("CHECKPOINT")


def test_the_agent_starts_a_new_chain_when_the_slot_lost_its_wal(pg, pg_cluster, work_dir: Path) -> None:
    src, other, dst = pg.new("src"), pg.new("other"), pg.new("dst")
    execute(src, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, 'a')")
    port = free_port()
    (work_dir / "tradevault.toml").write_text(
        f'[database]\nurl = "{src}"\nname = "pgsrc"\n\n[[locations]]\nname = "local"\n'
        f'url = "file://{work_dir / "backups"}"\n\n[agent]\nstate_dir = "{work_dir / "state"}"\n\n'
        f'[schedule]\nincremental = "0.5s"\nfull = "0 3 1 1 *"\nverify = ""\ndrill = false\n\n'
        f'[metrics]\nlisten = "127.0.0.1:{port}"\n\n[config_vcs]\npaths = []\n')
    assert tv(work_dir, "backup", "full", "--json").returncode == 0
    with pg_cluster.admin() as admin:
        admin.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
        admin.execute("SELECT pg_reload_conf()")
    try:
        capture = json.loads(tv(work_dir, "status", "--json").stdout)["capture"]
        assert capture["max_slot_wal_keep_size_bytes"] == 1024 * 1024
        execute(src, "INSERT INTO t VALUES (2, 'b')")
        lose_the_slot(pg_cluster, other)
        assert slot_status(src) == "lost"

        by_hand = tv(work_dir, "backup", "incremental")
        assert by_hand.returncode == 3 and "lost WAL" in by_hand.stderr, by_hand.stderr

        agent = subprocess.Popen([*TV_CMD, "agent", "-c", str(work_dir / "tradevault.toml")], cwd=work_dir,
                                 env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            state_file = work_dir / "state" / "agent.json"
            deadline = time.monotonic() + 90
            state: dict = {}
            while time.monotonic() < deadline and not state.get("capture_restarts"):
                time.sleep(0.5)
                if state_file.exists():
                    state = json.loads(state_file.read_text())
            assert state.get("capture_restarts"), f"no capture restart in {state}"
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
            assert "tradevault_capture_restarts_total 1.0" in metrics
            status = tv(work_dir, "status")
            assert status.returncode == 0 and "capture restarted" in status.stdout, status.stdout
        finally:
            agent.send_signal(signal.SIGTERM)
            _, err = agent.communicate(timeout=120)
        assert agent.returncode == 0, err[-2000:]
    finally:
        with pg_cluster.admin() as admin:
            admin.execute("ALTER SYSTEM RESET max_slot_wal_keep_size")
            admin.execute("SELECT pg_reload_conf()")

    assert slot_status(src) == "reserved"
    entries = json.loads(tv(work_dir, "backups", "list", "--json").stdout)
    fulls = [e for e in entries if e["kind"] == "full"]
    assert len(fulls) == 2 and fulls[0]["capture_id"] != fulls[1]["capture_id"], entries
    execute(src, "INSERT INTO t VALUES (3, 'c')")
    after = tv(work_dir, "backup", "incremental", "--json")
    assert after.returncode == 0 and json.loads(after.stdout)["events"] == 1, after.stderr
    assert tv(work_dir, "restore", "--to", dst, "--json").returncode == 0
    assert digest(dst, {"t": ["id"]}) == digest(src, {"t": ["id"]})
