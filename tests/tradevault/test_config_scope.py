"""Config history versions configuration only, through the real ``tradevault`` command
(issue 29, as a new user meets it): ``init --watch user_data`` shows the scope before
anything is pushed; ``tradevault agent`` watching freqtrade's user_data, with the
protected database inside it written all along, pushes config.json and the strategies
and nothing else; ``status --json`` lists what was skipped, with the agent running and
without it."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

from tests.cli_harness import tv, tv_start
from tests.config_vcs.cvs_helpers import (
    LiveDatabase,
    MiB,
    bare_remote,
    blob_heads,
    bot_layout,
    git,
    object_sizes,
    remote_head,
    remote_paths,
    wait_for,
    write,
)
from tradevault.settings import load_settings

CONFIG = {"config.json", "strategies/SampleStrategy.py", "strategies/Breakout.py"}


def _skipped(status: dict) -> dict[str, str]:
    [repo] = status["config"]
    assert len(repo["skipped"]) == repo["skipped_total"]
    return {s["path"]: s["reason"] for s in repo["skipped"]}


def test_init_watch_prints_what_will_be_versioned_and_what_is_left_out(workdir: Path) -> None:
    user_data = workdir / "user_data"
    bot_layout(user_data, data_bytes=4096)
    for i in range(8):
        write(user_data / "plot" / f"chart-{i}.html", "<html/>")
        write(user_data / f"shot-{i}.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    conn = sqlite3.connect(user_data / "tradesv3.sqlite")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    try:
        result = tv("init", "--db", "sqlite:///user_data/tradesv3.sqlite", "--watch", "user_data", cwd=workdir)
    finally:
        conn.close()
    assert result.rc == 0, str(result)
    out = result.out
    assert f"{user_data}: 3 file(s) will be versioned, 14 path(s) left out" in out, out
    assert "versioned: config.json, strategies/Breakout.py, strategies/SampleStrategy.py" in out
    assert ("the protected database and its -wal/-shm/-journal (always excluded) (3): "
            "tradesv3.sqlite, tradesv3.sqlite-shm, tradesv3.sqlite-wal") in out
    assert ("binary files (8): shot-0.png, shot-1.png, shot-2.png, shot-3.png, shot-4.png, "
            "... and 3 more") in out  # truncated
    assert "(3): data/, plot/, logs/" not in out and "data/, plot/" in out  # directories, not files
    assert "logs (1): logs/" in out
    assert out.index("protected database") < out.index("binary files") < out.index("logs (1)")
    assert not (user_data / ".git").exists()  # showing the scope writes nothing
    written = (workdir / "tradevault.toml").read_text()
    for line in ("include = []", "exclude = []", 'max_file_size = "1MiB"'):
        assert line in written
    assert load_settings(workdir / "tradevault.toml").config_vcs.max_file_size == MiB


def test_agent_pushes_configuration_only_and_status_lists_what_it_skipped(workdir: Path) -> None:
    root = workdir
    user_data = root / "user_data"
    files = bot_layout(user_data)  # 2 MiB of candles under data/
    write(user_data / "pairs-full.json", "[" + '"BTC/USDT",' * 100_000 + "]")  # 1.1 MB of text
    remote = bare_remote(root / "remote.git")
    (root / "tradevault.toml").write_text(f"""
[database]
url = "sqlite:///user_data/tradesv3.sqlite"
[[locations]]
name = "local"
url = "file://{root / 'backups'}"
[schedule]
incremental = "1s"
verify = ""
drill = false
[agent]
state_dir = "{root / 'state'}"
[config_vcs]
paths = ["user_data"]
quiet_period = "200ms"
max_delay = "1s"
[config_vcs.remotes]
usb = "{remote}"
""")
    bot = LiveDatabase(user_data / "tradesv3.sqlite", log=files["log"]).start()
    agent = tv_start("agent", cwd=root, log=root / "agent.log")
    try:
        wait_for(lambda: remote_head(remote) is not None, timeout=60, what="the first push")
        write(files["config"], '{"stake_currency": "USDT", "max_open_trades": 5}\n')
        wait_for(lambda: "max_open_trades" in git("--git-dir", str(remote), "show", "master:config.json",
                                                  check=False), timeout=60, what="the edit pushed")
        written = bot.writes
        wait_for(lambda: bot.writes > written + 50, what="the bot trading")
        time.sleep(1.5)  # a few commit cycles with only the database changing
        running = tv("status", "--json", cwd=root)
    finally:
        agent.send_signal(signal.SIGTERM)
        stopped = agent.wait(120)
        bot.stop()
    assert stopped == 0, (root / "agent.log").read_text()[-3000:]
    assert running.rc == 0, str(running)
    live = running.json()
    assert live["agent"] is not None  # read from the running agent's state
    skipped = _skipped(live)
    assert skipped["tradesv3.sqlite"] == "database" and skipped["tradesv3.sqlite-wal"] == "database"
    assert skipped["pairs-full.json"] == "too_large"
    assert skipped["data/"] == "data_dir" and skipped["logs/"] == "log"

    assert remote_paths(remote) == CONFIG
    assert max(size for _kind, size in object_sizes(remote).values()) <= MiB
    assert not any(head.startswith(b"SQLite format 3") for head in blob_heads(remote).values())
    assert git("--git-dir", str(remote), "rev-list", "--count", "master").strip() == "2"  # trades made no commits

    offline = tv("status", "--json", cwd=root)
    assert offline.rc == 0, str(offline)
    assert offline.json()["agent"] is None
    skipped = _skipped(offline.json())
    assert skipped["tradesv3.sqlite"] == "database" and skipped["pairs-full.json"] == "too_large"
    text = tv("config", "status", cwd=root)
    assert text.rc == 0 and "pairs-full.json  (too_large)" in text.out, str(text)

    log = (root / "agent.log").read_text()
    assert log.count("tradesv3.sqlite: the protected database") == 1, log[-3000:]
    assert log.count("pairs-full.json") == 1 and "above max_file_size" in log  # one warning per file
