"""First run: `tradevault init`, then `tradevault run -- BOT`, starts the bot, whatever the
user has done before (a full backup or none, a database or none yet, a config directory
with or without history). It refuses only on evidence that something protected is lost.
The README's "Using it on your bot" section is executed as written."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from dulwich.repo import Repo

from tests.cli_harness import Result, tv
from tradevault.workload import TradingWorkload, create_database

BOT = Path(__file__).with_name("bot_script.py")
README = Path(__file__).resolve().parents[2] / "README.md"
BOT_ARGS = [sys.executable, str(BOT), "tradesv3.sqlite", "bot-started.json", "30"]


def _bot_dir(tmp: Path, *, database: bool, user_data: bool) -> None:
    if database:
        create_database(tmp / "tradesv3.sqlite")
        TradingWorkload(tmp / "tradesv3.sqlite", seed=1).run(50)
    if user_data:
        (tmp / "user_data" / "strategies").mkdir(parents=True)
        (tmp / "user_data" / "config.json").write_text('{"max_open_trades": 3, "stake_currency": "USDT"}\n')
        (tmp / "user_data" / "strategies" / "sample.py").write_text("class Sample:\n    timeframe = '5m'\n")


def _init(tmp: Path, *extra: str) -> Result:
    result = tv("init", "--db", "sqlite:///tradesv3.sqlite", "--location", f"file://{tmp / 'backups'}", *extra, cwd=tmp)
    assert result.rc == 0, str(result)
    return result


def _run(tmp: Path) -> Result:
    return tv("run", "--", *BOT_ARGS, cwd=tmp, timeout=240)


def _kinds(tmp: Path) -> list[str]:
    result = tv("backups", "list", "--json", cwd=tmp)
    assert result.rc == 0, str(result)
    return [entry["kind"] for entry in result.json()]


def _count(db: Path, table: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def _restores_the_bot_state(tmp: Path) -> None:
    restored = tmp / "restored.sqlite"
    result = tv("restore", "--to", f"sqlite:///{restored}", cwd=tmp)
    assert result.rc == 0, str(result)
    for table in ("trades", "orders"):
        assert _count(restored, table) == _count(tmp / "tradesv3.sqlite", table)


def test_init_then_backup_full_then_run_starts_the_bot(tmp_path):
    _bot_dir(tmp_path, database=True, user_data=False)
    _init(tmp_path)
    assert tv("backup", "full", cwd=tmp_path).rc == 0
    result = _run(tmp_path)
    assert result.rc == 7, str(result)  # the bot's own exit status, passed through
    assert (tmp_path / "bot-started.json").exists()
    assert _kinds(tmp_path)[0] == "full" and "incremental" in _kinds(tmp_path)  # the bot's trades stored
    _restores_the_bot_state(tmp_path)


def test_init_then_run_without_any_backup_starts_the_bot_and_takes_the_first_full(tmp_path):
    _bot_dir(tmp_path, database=True, user_data=False)
    _init(tmp_path)
    result = _run(tmp_path)
    assert result.rc == 7, str(result)
    assert (tmp_path / "bot-started.json").exists()
    assert _kinds(tmp_path)[0] == "full"
    _restores_the_bot_state(tmp_path)


def test_run_before_the_bot_created_its_database_waits_for_it_and_protects_it(tmp_path):
    _init(tmp_path)
    result = _run(tmp_path)
    assert result.rc == 7, str(result)
    assert "first run" in result.out
    assert (tmp_path / "tradesv3.sqlite").exists()  # created by the bot, under the agent's watch
    assert _kinds(tmp_path)[0] == "full"
    _restores_the_bot_state(tmp_path)


def test_init_watch_then_run_creates_the_config_history(tmp_path):
    _bot_dir(tmp_path, database=True, user_data=True)
    result = _init(tmp_path, "--watch", "user_data")
    assert "watching user_data" in result.out and "run --" in result.out  # says what next
    result = _run(tmp_path)
    assert result.rc == 7, str(result)
    assert "no history yet: created it" in result.out
    log = subprocess.run(["git", "-C", str(tmp_path / "user_data"), "log", "--name-only", "--format=%s"],
                         capture_output=True, text=True, check=True).stdout
    assert "config.json" in log and "strategies/sample.py" in log


def test_init_detects_user_data_and_says_so(tmp_path):
    _bot_dir(tmp_path, database=True, user_data=True)
    result = _init(tmp_path)
    assert "watching ./user_data (found ./user_data/config.json)" in result.out
    assert 'paths = ["./user_data"]' in (tmp_path / "tradevault.toml").read_text()


def test_init_without_a_config_directory_watches_nothing_and_says_so(tmp_path):
    _bot_dir(tmp_path, database=True, user_data=False)
    result = _init(tmp_path)
    assert "config history: off (no config directory found" in result.out
    assert "paths = []" in (tmp_path / "tradevault.toml").read_text()
    result = _run(tmp_path)
    assert result.rc == 7, str(result)
    assert not (tmp_path / "config").exists()  # nothing invented


def test_lost_config_history_with_an_unreachable_remote_stops_the_bot(tmp_path):
    _bot_dir(tmp_path, database=True, user_data=True)
    _init(tmp_path, "--watch", "user_data")
    remote = tmp_path / "remote.git"
    Repo.init_bare(str(remote), mkdir=True).close()
    with (tmp_path / "tradevault.toml").open("a") as handle:
        handle.write(f'usb = "{remote}"\n')  # under [config_vcs.remotes], the file's last table
    assert _run(tmp_path).rc == 7
    refs = subprocess.run(["git", "ls-remote", str(remote)], capture_output=True, text=True, check=True).stdout
    assert "refs/heads/" in refs  # the history reached the remote
    (tmp_path / "bot-started.json").unlink()
    shutil.rmtree(tmp_path / "user_data")
    shutil.move(remote, tmp_path / "remote-unplugged.git")
    result = _run(tmp_path)
    assert result.rc == 3, str(result)
    assert "history lost (its history was recorded as created)" in result.out
    assert "usb:" in result.out  # names the remote that failed
    assert not (tmp_path / "bot-started.json").exists()


def test_recover_json_reports_a_first_run_as_healthy(tmp_path):
    _bot_dir(tmp_path, database=False, user_data=True)
    _init(tmp_path)
    result = tv("recover", "--json", cwd=tmp_path)
    assert result.rc == 0, str(result)
    report = result.json()
    assert report["ok"] and report["database"]["action"].startswith("first run")
    assert report["config"][0]["action"].startswith("no history yet: created it with a first commit of 2 file(s)")


def _readme_commands() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Using it on your bot", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(words)
    return commands


def test_the_readme_section_using_it_on_your_bot_runs_as_written(tmp_path):
    """Every command of the section, in a bot directory, with only the backup disk's
    path and the bot's command replaced by this test's."""
    commands = _readme_commands()
    assert [c[1] for c in commands][:2] == ["init", "run"] and len(commands) >= 6
    _bot_dir(tmp_path, database=False, user_data=True)  # the bot creates its database itself
    for words in commands:
        assert words[0] == "tradevault", words
        line = " ".join(words[1:]).replace("file:///var/backups/tradevault", f"file://{tmp_path / 'backups'}")
        args = shlex.split(line)
        if args[0] == "run":
            args = args[: args.index("--") + 1] + BOT_ARGS
        result = tv(*args, cwd=tmp_path, timeout=240)
        assert result.rc == (7 if args[0] == "run" else 0), str(result)
    assert json.loads((tmp_path / "bot-started.json").read_text())  # the bot ran
