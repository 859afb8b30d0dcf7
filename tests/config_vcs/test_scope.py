"""What one commit of a watched directory holds: the protected database never, other SQLite
files, logs, data, large and binary files not by default, include re-admitting them; files
tracked before are untracked and stay on disk; the scope report agrees with the commit.
Real files, real dulwich, checked with the real git binary."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from cvs_helpers import MiB, bot_layout, git, object_sizes, tree_files, write

from config_vcs import history
from config_vcs.options import Options
from config_vcs.reasons import BINARY, DATA_DIR, DATABASE, LOG, SQLITE, TOO_LARGE
from config_vcs.scope import scope_report
from config_vcs.service import offline_status

CONFIG = {"config.json", "strategies/SampleStrategy.py", "strategies/Breakout.py"}


def _database(path, wal: bool = True) -> sqlite3.Connection:
    """A SQLite database left open (its -wal/-shm stay) with one row."""
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    return conn


@pytest.fixture
def bot(tmp_path):
    """user_data with config, strategies, data/, logs/, the live database (WAL) and a second
    SQLite database whose name says nothing; yields (root, options, connections)."""
    root = tmp_path / "user_data"
    bot_layout(root, data_bytes=64 * 1024)
    conns = [_database(root / "tradesv3.sqlite"), _database(root / "cache.store")]
    options = Options(host="test-host", protected_files=(str(root / "tradesv3.sqlite"),))
    yield root, options
    for conn in conns:
        conn.close()


def test_commit_holds_configuration_only_and_plain_git_agrees(bot):
    root, options = bot
    assert (root / "cache.store-wal").exists() and (root / "tradesv3.sqlite-wal").exists()
    repo = options.repo(root, create=True)
    repo.commit_worktree()
    assert set(tree_files(root)) == CONFIG
    assert git("status", "--porcelain", cwd=root) == ""  # nothing shows up as untracked
    ignored = git("status", "--porcelain", "--ignored", cwd=root)
    for path in ("tradesv3.sqlite", "tradesv3.sqlite-wal", "cache.store", "cache.store-wal", "data/", "logs/"):
        assert f"!! {path}\n" in ignored
    assert repo.last_excluded[b"tradesv3.sqlite"] == DATABASE
    assert repo.last_excluded[b"tradesv3.sqlite-shm"] == DATABASE
    assert repo.last_excluded[b"cache.store"] == SQLITE  # by its header
    assert repo.last_excluded[b"cache.store-wal"] == SQLITE  # as the companion of one
    assert repo.last_excluded[b"data/"] == DATA_DIR and repo.last_excluded[b"logs/"] == LOG
    # nothing left out was even stored: one blob per configuration file
    blobs = [sha for sha, (kind, _size) in object_sizes(root / ".git").items() if kind == "blob"]
    assert len(blobs) == len(CONFIG)


def test_include_re_admits_defaults_but_never_the_protected_database(bot):
    root, options = bot
    write(root / "data" / "pairs.json", '["BTC/USDT"]')
    write(root / "icon.png", b"\x89PNG\r\n\x1a\n\x00\x00")
    include = ("data/pairs.json", "*.png", "*.sqlite", "tradesv3.sqlite*", "cache.store*")
    repo = Options(host="h", include=include, protected_files=options.protected_files).repo(root, create=True)
    repo.commit_worktree()
    files = set(tree_files(root))
    assert {"data/pairs.json", "icon.png", "cache.store"} <= files  # re-admitted
    assert "data/binance/BTC_USDT-5m.feather" not in files  # still a data file
    assert not any(f.startswith("tradesv3.sqlite") for f in files)
    assert repo.last_excluded[b"tradesv3.sqlite"] == DATABASE


def test_a_large_file_is_skipped_with_one_warning_and_listed_by_status(bot):
    root, options = bot
    write(root / "big.json", "x" * (MiB + 1))
    write(root / "exact.json", "x" * MiB)
    warnings: list[str] = []
    repo = options.repo(root, create=True, warn=warnings.append)
    repo.commit_worktree()
    write(root / "big.json", "y" * (MiB + 2))  # changed, still too large: no second warning
    write(root / "config.json", '{"v": 2}')
    repo.commit_worktree()
    assert "exact.json" in tree_files(root) and "big.json" not in tree_files(root)
    assert [w for w in warnings if "big.json" in w and "max_file_size" in w] == [warnings[0]]
    assert len(warnings) == 1
    assert max(size for _kind, size in object_sizes(root / ".git").values()) <= MiB
    skipped = offline_status([root], {}, options)[0]["skipped"]
    assert {"path": "big.json", "reason": TOO_LARGE} in skipped
    assert {"path": "tradesv3.sqlite", "reason": DATABASE} in skipped
    assert {"path": "data/", "reason": DATA_DIR} in skipped


def test_binary_files_are_left_out_until_they_become_text(tmp_path):
    root = tmp_path / "config"
    write(root / "blob.dat", b"\x00\x01\x02")
    write(root / "cert.der", b"\x30\x82\x00\x00")  # binary config type
    repo = Options(host="h").repo(root, create=True)
    repo.commit_worktree()
    assert set(tree_files(root)) == {"cert.der"} and repo.last_excluded[b"blob.dat"] == BINARY
    write(root / "blob.dat", "now text\n")
    repo.commit_worktree()
    assert set(tree_files(root)) == {"cert.der", "blob.dat"}


def test_a_database_is_said_once_in_the_log(bot, caplog):
    root, options = bot
    repo = options.repo(root, create=True)
    with caplog.at_level(logging.INFO, logger="config_vcs.scanner"):
        for i in range(3):
            write(root / "config.json", f'{{"v": {i}}}')
            repo.commit_worktree()
    notes = [r.getMessage() for r in caplog.records if "SQLite" in r.getMessage() or "protected" in r.getMessage()]
    assert len(notes) == 2, notes  # tradesv3.sqlite and cache.store, not their -wal/-shm, once each
    assert any("tradesv3.sqlite: the protected database" in n for n in notes)
    assert any("cache.store: a SQLite database" in n for n in notes)


def test_files_tracked_by_an_older_version_are_untracked_and_kept(bot):
    root, options = bot
    write(root / "config.json", '{"stake_currency": "USDT"}')
    git("init", "-q", cwd=root)
    git("add", "-A", cwd=root)  # what plain git (and tradevault before) recorded
    git("commit", "-q", "-m", "old", cwd=root)
    old = set(tree_files(root))
    assert {"tradesv3.sqlite", "logs/freqtrade.log", "data/binance/BTC_USDT-5m.feather"} <= old
    warnings: list[str] = []
    repo = options.repo(root, create=True, warn=warnings.append)
    result = repo.commit_worktree()
    assert set(tree_files(root)) == CONFIG
    message = git("log", "-1", "--format=%B", cwd=root)
    assert "untracked: tradesv3.sqlite (database; kept on disk)" in message
    assert "untracked: logs/freqtrade.log (log; kept on disk)" in message
    assert "untracked: data/binance/BTC_USDT-5m.feather (data_dir; kept on disk)" in message
    assert "untracked" in message.splitlines()[0]
    assert {c.kind for c in result.changes} == {"untracked"}
    assert any("untracked in this commit" in w and "tradesv3.sqlite" in w for w in warnings)
    for rel in old:
        assert (root / rel).exists(), rel  # nothing deleted from disk
    assert git("rev-list", "--count", "HEAD", cwd=root).strip() == "2"  # history not rewritten
    assert git("status", "--porcelain", cwd=root) == ""
    write(root / "config.json", '{"v": 3}')
    assert "untracked" not in repo.commit_worktree().message  # said once


def test_a_tracked_file_that_grows_too_large_is_untracked_not_deleted(tmp_path):
    root = tmp_path / "config"
    write(root / "pairs.json", "[]")
    repo = Options(host="h", max_file_size=1024).repo(root, create=True, warn=lambda m: None)
    repo.commit_worktree()
    write(root / "pairs.json", "[" + "1," * 1000 + "1]")
    result = repo.commit_worktree()
    assert [(c.path, c.kind, c.reason) for c in result.changes] == [(b"pairs.json", "untracked", TOO_LARGE)]
    assert (root / "pairs.json").stat().st_size > 1024


def test_in_place_checkout_never_writes_the_database_from_an_old_commit(bot):
    root, options = bot
    git("init", "-q", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "old, with the database", cwd=root)
    repo = options.repo(root, create=True, warn=lambda m: None)
    repo.commit_worktree()
    conn = sqlite3.connect(root / "tradesv3.sqlite")
    conn.execute("INSERT INTO t VALUES (2)")  # the live database moves on
    conn.commit()
    conn.close()
    result = history.checkout(repo, rev="HEAD~1")
    conn = sqlite3.connect(root / "tradesv3.sqlite")
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 2
    conn.close()
    assert result.skipped["tradesv3.sqlite"] == DATABASE
    assert result.skipped["logs/freqtrade.log"] == LOG
    assert "tradesv3.sqlite" not in result.written and set(tree_files(root)) == CONFIG


def test_checkout_to_a_directory_never_overwrites_the_protected_database(bot, tmp_path):
    """``--to`` (or restore's --config-to) naming the bot's own directory."""
    root, options = bot
    git("init", "-q", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "old, with the database", cwd=root)
    repo = options.repo(root, create=True, warn=lambda m: None)
    live = (root / "tradesv3.sqlite").read_bytes()
    result = history.checkout(repo, rev="HEAD", to=root)
    assert (root / "tradesv3.sqlite").read_bytes() == live
    assert result.skipped == {"tradesv3.sqlite": DATABASE, "tradesv3.sqlite-shm": DATABASE,
                              "tradesv3.sqlite-wal": DATABASE}
    elsewhere = history.checkout(repo, rev="HEAD", to=tmp_path / "copy")
    assert (tmp_path / "copy" / "tradesv3.sqlite").exists() and not elsewhere.skipped


def test_scope_report_matches_the_commit_and_writes_nothing(bot):
    root, options = bot
    write(root / "big.json", "x" * (2 * MiB))
    report = scope_report(root, options)
    assert not (root / ".git").exists()
    assert set(report.versioned) == CONFIG
    grouped = report.by_reason()
    assert list(grouped)[:2] == [DATABASE, SQLITE]  # the most important first
    assert grouped[DATABASE] == ["tradesv3.sqlite", "tradesv3.sqlite-shm", "tradesv3.sqlite-wal"]
    assert grouped[SQLITE] == ["cache.store", "cache.store-shm", "cache.store-wal"]
    assert grouped[TOO_LARGE] == ["big.json"]
    assert grouped[DATA_DIR] == ["data/"] and grouped[LOG] == ["logs/"]
    options.repo(root, create=True).commit_worktree()
    assert set(tree_files(root)) == set(report.versioned)
    as_dict = scope_report(root, options).as_dict(limit=1)
    assert as_dict["versioned"] == 3 and len(as_dict["versioned_paths"]) == 1
    assert as_dict["excluded_by_reason"][DATABASE] == {"count": 3, "paths": ["tradesv3.sqlite"]}


def test_scope_report_of_a_missing_directory(tmp_path):
    report = scope_report(tmp_path / "nope")
    assert not report.exists and report.versioned == () and report.excluded == ()
