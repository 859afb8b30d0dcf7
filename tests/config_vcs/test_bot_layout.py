"""A trading bot's directory watched end to end (issue 29): freqtrade's user_data with the
live database inside it being written in WAL mode the whole time, 2 MB of market data
under data/, logs/freqtrade.log, config.json and strategies/*.py, pushed to a real bare
remote. The remote's history, read with the real git CLI, must hold the configuration
and nothing else: no database, -wal or -shm, no data, no log, no object over the limit.
Also the directory an older version (or plain git) already recorded all of that in:
the next commit untracks it, leaves it on disk and never rewrites what was pushed."""

from __future__ import annotations

import pytest
from cvs_helpers import (
    LiveDatabase,
    MiB,
    bare_remote,
    blob_heads,
    bot_layout,
    commit_count,
    fast_options,
    git,
    local_head,
    object_sizes,
    remote_head,
    remote_paths,
    tree_files,
    wait_for,
    write,
)

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")

CONFIG = {"config.json", "strategies/SampleStrategy.py", "strategies/Breakout.py"}
SQLITE_MAGIC, WAL_MAGICS = b"SQLite format 3\x00", (b"\x37\x7f\x06\x82", b"\x37\x7f\x06\x83")


def _synced(history) -> bool:
    return all(r["unpushed"] == 0 and r["last_error"] is None
               for repo in history.status() for r in repo["remotes"].values())


def _edit_config_while_the_bot_writes(root, history, bot: LiveDatabase, edits: int = 3) -> None:
    """Config edits between trades: each must become its own commit."""
    for i in range(edits):
        start = commit_count(root)
        written = bot.writes
        write(root / "config.json", f'{{"stake_currency": "USDT", "max_open_trades": {i}}}\n')
        write(root / "strategies" / "Breakout.py", f"class Breakout:\n    window = {i}\n")
        wait_for(lambda start=start: commit_count(root) > start, what=f"config edit {i} committed")
        wait_for(lambda written=written: bot.writes > written + 20, what="the bot still trading")
    assert history.flush()


def _assert_remote_holds_configuration_only(remote) -> None:
    assert remote_paths(remote) == CONFIG
    sizes = object_sizes(remote)
    assert sizes and max(size for _kind, size in sizes.values()) <= MiB
    for sha, head in blob_heads(remote).items():
        assert not head.startswith(SQLITE_MAGIC) and head[:4] not in WAL_MAGICS, sha


def test_live_bot_directory_pushes_configuration_only(tmp_path, start_history):
    root = tmp_path / "user_data"
    files = bot_layout(root)
    database = root / "tradesv3.sqlite"
    bot = LiveDatabase(database, log=files["log"]).start()
    other = LiveDatabase(root / "backtest-cache.bin").start()  # SQLite under a name that says nothing
    remote = bare_remote(tmp_path / "remote.git")
    try:
        history = start_history([root], {"usb": str(remote)},
                                fast_options(protected_files=(str(database),)))
        _edit_config_while_the_bot_writes(root, history, bot)
        wait_for(lambda: _synced(history), what="remote in sync")
        assert bot.writes > 60  # the database was written all along
        skipped = {s["path"]: s["reason"] for s in history.status()[0]["skipped"]}
        on_disk = {p.name for p in root.iterdir()}  # the -wal/-shm go when the bot closes
    finally:
        bot.stop()
        other.stop()
    assert remote_head(remote) == local_head(root)
    _assert_remote_holds_configuration_only(remote)
    assert git("--git-dir", str(remote), "show", "master:config.json").endswith('"max_open_trades": 2}\n')
    for name in ("tradesv3.sqlite", "tradesv3.sqlite-wal", "tradesv3.sqlite-shm"):
        assert name in on_disk and skipped[name] == "database"
    assert skipped["backtest-cache.bin"] == "sqlite" and skipped["backtest-cache.bin-wal"] == "sqlite"
    assert skipped["data/"] == "data_dir" and skipped["logs/"] == "log"
    assert files["candles"].stat().st_size == 2 * MiB
    assert git("status", "--porcelain", cwd=root) == ""  # plain git agrees: nothing untracked


def test_history_recorded_by_an_older_version_is_untracked_not_rewritten(tmp_path, start_history):
    root = tmp_path / "user_data"
    files = bot_layout(root)
    database = root / "tradesv3.sqlite"
    remote = bare_remote(tmp_path / "remote.git")
    bot = LiveDatabase(database, log=files["log"]).start()
    try:
        # the old behaviour: everything committed and pushed, the live database included
        git("init", "-q", cwd=root)
        git("add", "-A", cwd=root)
        git("commit", "-q", "-m", "config: everything (old version)", cwd=root)
        git("push", "-q", str(remote), "HEAD:refs/heads/master", cwd=root)
        old_head = local_head(root)
        old_files = set(tree_files(root))
        assert {"tradesv3.sqlite", "tradesv3.sqlite-wal", "logs/freqtrade.log",
                "data/binance/BTC_USDT-5m.feather"} <= old_files
        history = start_history([root], {"usb": str(remote)},
                                fast_options(protected_files=(str(database),)))
        wait_for(lambda: commit_count(root) >= 2, what="the untracking commit")
        untracking = git("log", "--reverse", "--format=%H", cwd=root).split()[1]
        message = git("log", "-1", "--format=%B", untracking, cwd=root)
        _edit_config_while_the_bot_writes(root, history, bot, edits=1)
        wait_for(lambda: _synced(history), what="remote in sync")
        kept = {path: (root / path).exists() for path in (
            "tradesv3.sqlite", "tradesv3.sqlite-wal", "logs/freqtrade.log", "data/binance/BTC_USDT-5m.feather")}
    finally:
        bot.stop()
    assert "untracked" in message.splitlines()[0]
    for path, exists in kept.items():
        assert f"untracked: {path} (" in message and exists, path
    assert set(tree_files(root, untracking)) == CONFIG
    tip = remote_head(remote)
    assert tip == local_head(root)
    assert set(git("--git-dir", str(remote), "ls-tree", "-r", "--name-only", tip).split()) == CONFIG
    # pushed history is never rewritten: the old commit is still an ancestor of the tip
    git("--git-dir", str(remote), "merge-base", "--is-ancestor", old_head, tip)
    sizes = object_sizes(remote)
    new_blobs = set(git("--git-dir", str(remote), "rev-list", "--objects", "--no-object-names",
                        tip, f"^{old_head}").split())
    assert all(sizes[sha][1] <= MiB for sha in new_blobs)
    assert git("status", "--porcelain", cwd=root) == ""
