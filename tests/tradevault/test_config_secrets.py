"""Secure by default, end to end (issue 26): the real ``tradevault`` CLI in subprocesses, a
real bare git remote read by the real ``git``, a freqtrade-style bot directory.

* ``init`` makes an age identity: after two commits the remote's ``git log --all -p``
  holds none of the credentials; checkout, and ``restore --config-to`` and ``recover``
  on a second machine given only the identity, give back the exact files; without it
  exit 2 and no ciphertext written as config.
* A config written before (remotes, no recipients): nothing holding a credential reaches
  the remote and ``status`` names the file and the remote, until recipients are set;
  ``allow_plaintext_secrets = true`` pushes in clear and ``status`` warns.
* Modes under umask 022: ``init``'s file and the identity are 0600; ``status`` warns
  once they are 0644.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tradevault.workload import TradingWorkload, create_database

KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN"
TELEGRAM = "5938271046:AAHfK3x9Qm2LwVtR7nYbE4cJ8uPzS1dGk0o"
ENV_PASSWORD = "env-api-server-password-7781"
NEW_SECRET = "Zq81LkPw0Xn3Vb7Rt5Ym2Hc9Gd4Fs6Ja1Ke8Uo3Ii5Nw"
ALL_SECRETS = (KEY, SECRET, TELEGRAM, ENV_PASSWORD, NEW_SECRET)

# quick commits and retries: the watcher runs for seconds, not minutes
FAST = {
    "TRADEVAULT_CONFIG_VCS__QUIET_PERIOD": "100ms",
    "TRADEVAULT_CONFIG_VCS__MAX_DELAY": "300ms",
    "TRADEVAULT_CONFIG_VCS__PUSH_RETRY_MAX": "1s",
}


def config_json(secret: str = SECRET, stake: int = 100) -> str:
    """A freqtrade config.json as `freqtrade new-config` writes it, with a comment."""
    return (
        f'{{\n    // freqtrade\n    "max_open_trades": 3,\n    "stake_amount": {stake},\n'
        f'    "exchange": {{"name": "binance", "key": "{KEY}", "secret": "{secret}", "password": ""}},\n'
        f'    "telegram": {{"enabled": true, "token": "{TELEGRAM}", "chat_id": "1234567890"}}\n}}\n'
    )


ENV_FILE = f"FREQTRADE__API_SERVER__PASSWORD={ENV_PASSWORD}\nFREQTRADE__BOT_NAME=grid\n"


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    return done.stdout


def remote_text(bare: Path) -> str:
    """Everything on the remote: every object, reachable or not, and every patch."""
    objects = subprocess.run(["git", "--git-dir", str(bare), "cat-file", "--batch-all-objects", "--batch"],
                             capture_output=True, timeout=60, check=True).stdout.decode("utf-8", "replace")
    return objects + git("--git-dir", str(bare), "log", "--all", "-p")


def leaked(text: str) -> list[str]:
    return [s for s in ALL_SECRETS if s in text]


def bot_dir(root: Path) -> Path:
    """A bot's working directory: database with trades, user_data/ with credentials."""
    root.mkdir(parents=True, exist_ok=True)
    db = root / "tradesv3.sqlite"
    create_database(db)
    w = TradingWorkload(db, seed=5)
    w.run(40)
    w.close()
    (root / "user_data").mkdir()
    (root / "user_data" / "config.json").write_text(config_json())
    (root / "user_data" / ".env").write_text(ENV_FILE)
    return root


def commits(root: Path) -> int:
    count = git("rev-list", "--count", "HEAD", cwd=root / "user_data").strip()
    return int(count) if count.isdigit() else 0


def remote_head(remote: Path) -> str:
    return git("--git-dir", str(remote), "rev-parse", "-q", "--verify", "master").strip()


def watch_until(cli, root: Path, done: Callable[[], bool]) -> None:
    """``tradevault config watch`` until ``done()`` (something this run did: it handles
    SIGTERM by then), then SIGTERM: it commits what is pending and pushes once more."""
    proc = cli.tv_start("config", "watch", cwd=root, env=FAST)
    try:
        deadline = time.monotonic() + 60
        while not done():
            assert proc.poll() is None, str(cli.tv_finish(proc, ["config", "watch"]))
            assert time.monotonic() < deadline, "config watch did not get there within 60 s"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
    result = cli.tv_finish(proc, ["config", "watch"])
    assert result.rc == 0, str(result)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def init(cli, root: Path, remote: Path, backups: Path):
    old = os.umask(0o022)  # a permissive umask, inherited by the command
    try:
        result = cli.tv("init", "--db", "sqlite:///tradesv3.sqlite", "--watch", "user_data",
                        "--location", f"file://{backups}", cwd=root)
    finally:
        os.umask(old)
    assert result.rc == 0, str(result)
    with open(root / "tradevault.toml", "a", encoding="utf-8") as f:
        f.write(f'origin = "{remote}"\n')  # under [config_vcs.remotes], the last table
    return result


def test_init_seals_credentials_and_a_second_machine_restores_them_with_the_identity(cli, workdir):
    root = bot_dir(workdir / "machine1")
    remote = workdir / "remote.git"
    git("init", "-q", "--bare", str(remote))
    backups = workdir / "backups"
    result = init(cli, root, remote, backups)
    identity = root / ".tradevault" / "config-identity.txt"
    # one line: where the identity is, and what losing it means
    line = next(ln for ln in result.out.splitlines() if "identity" in ln)
    assert ".tradevault/config-identity.txt" in line and "cannot be read" in line and "0600" in line
    assert "0600" in result.out.splitlines()[0]
    assert mode(root / "tradevault.toml") == 0o600 and mode(identity) == 0o600
    assert mode(identity.parent) == 0o700

    watch_until(cli, root, lambda: commits(root) == 1)
    (root / "user_data" / "config.json").write_text(config_json(NEW_SECRET, stake=250))
    watch_until(cli, root, lambda: commits(root) == 2)
    head = git("rev-parse", "HEAD", cwd=root / "user_data").strip()
    assert remote_head(remote) == head
    text = remote_text(remote)
    assert not leaked(text), leaked(text)
    assert "ENC[age," in text and '"stake_amount": 250' in text  # the rest stays readable

    # checkout on the same machine gives back the exact files
    out = workdir / "checkout"
    assert cli.tv("config", "checkout", "--rev", "HEAD~1", "--to", str(out), cwd=root).rc == 0
    assert (out / "config.json").read_text() == config_json()
    assert (out / ".env").read_text() == ENV_FILE

    assert cli.tv("backup", "full", cwd=root).rc == 0

    # a second machine: a fresh directory with the config file, and nothing else yet
    machine2 = workdir / "machine2"
    machine2.mkdir()
    shutil.copy2(root / "tradevault.toml", machine2 / "tradevault.toml")
    restored_db, config_out = machine2 / "restored.sqlite", machine2 / "restored-config"
    refused = cli.tv("restore", "--to", f"sqlite:///{restored_db}", "--config-to", str(config_out), cwd=machine2)
    assert refused.rc == 2, str(refused)
    assert refused.err.count("\n") == 1
    assert ".env, config.json" in refused.err and ".tradevault/config-identity.txt" in refused.err
    assert sorted(p.name for p in machine2.iterdir()) == ["tradevault.toml"]  # no database, no ciphertext
    recover = cli.tv("recover", cwd=machine2)  # the database comes back; the config is refused
    assert recover.rc == 2, str(recover)
    assert "cannot decrypt the sealed secrets of .env, config.json" in recover.err
    assert sorted(p.name for p in machine2.iterdir()) == ["tradesv3.sqlite", "tradevault.toml"]

    (machine2 / ".tradevault").mkdir(mode=0o700)
    shutil.copy2(identity, machine2 / ".tradevault" / "config-identity.txt")  # the only thing copied
    restored = cli.tv("restore", "--to", f"sqlite:///{restored_db}", "--config-to", str(config_out), "--json",
                      cwd=machine2)
    assert restored.rc == 0, str(restored)
    assert restored.json()["config"][0]["commit"] == head
    assert (config_out / "config.json").read_text() == config_json(NEW_SECRET, stake=250)
    assert (config_out / ".env").read_text() == ENV_FILE
    assert cli.digest_of(restored_db) == cli.digest_of(root / "tradesv3.sqlite")
    recover = cli.tv("recover", cwd=machine2)  # the watched directory itself, cloned and decrypted
    assert recover.rc == 0, str(recover)
    assert (machine2 / "user_data" / "config.json").read_text() == config_json(NEW_SECRET, stake=250)
    assert (machine2 / "user_data" / ".env").read_text() == ENV_FILE


def test_an_old_config_without_recipients_holds_credentials_back_until_allowed(cli, workdir):
    root = bot_dir(workdir / "bot")
    (root / "user_data" / "config.json").write_text('{"stake_amount": 10}\n')  # harmless at first
    (root / "user_data" / ".env").unlink()
    remote = workdir / "remote.git"
    git("init", "-q", "--bare", str(remote))
    config = root / "tradevault.toml"
    config.write_text(  # as written before issue 26: remotes, nothing about secrets
        f'[database]\nurl = "sqlite:///{root / "tradesv3.sqlite"}"\n\n[[locations]]\nname = "local"\n'
        f'url = "file://{workdir / "backups"}"\n\n[agent]\nstate_dir = "{root / "state"}"\n\n'
        f'[config_vcs]\npaths = ["{root / "user_data"}"]\n[config_vcs.remotes]\norigin = "{remote}"\n'
    )
    watch_until(cli, root, lambda: commits(root) == 1)
    first = remote_head(remote)
    assert first == git("rev-parse", "HEAD", cwd=root / "user_data").strip()

    (root / "user_data" / "config.json").write_text(config_json())
    (root / "user_data" / ".env").write_text(ENV_FILE)
    watch_until(cli, root, lambda: commits(root) == 2)
    assert remote_head(remote) == first  # the commit stayed local
    assert not leaked(remote_text(remote))

    status = cli.tv("status", "--json", cwd=root)
    assert status.rc == 0, str(status)
    origin = status.json()["config"][0]["remotes"]["origin"]
    assert origin["held"] == [".env", "config.json"] and origin["unpushed"] == 1
    text = cli.tv("status", cwd=root, env={"COLUMNS": "250"}).out
    row = next(ln for ln in text.splitlines() if "remote origin" in ln)
    assert "PROBLEM" in row and "HELD" in row and ".env, config.json" in row
    assert not leaked(status.out + text)

    # the owner decides this remote may hold them in clear
    config.write_text(config.read_text().replace(
        f'[config_vcs.remotes]\norigin = "{remote}"\n',
        f'[config_vcs.remotes.origin]\nurl = "{remote}"\nallow_plaintext_secrets = true\n'))
    watch_until(cli, root, lambda: remote_head(remote) != first)
    assert remote_head(remote) == git("rev-parse", "HEAD", cwd=root / "user_data").strip()
    assert SECRET in remote_text(remote) and ENV_PASSWORD in remote_text(remote)
    origin = cli.tv("status", "--json", cwd=root).json()["config"][0]["remotes"]["origin"]
    assert origin["allow_plaintext_secrets"] is True and origin["held"] == [] and origin["unpushed"] == 0
    row = next(ln for ln in cli.tv("status", cwd=root, env={"COLUMNS": "250"}).out.splitlines()
               if "remote origin" in ln)
    assert "warn" in row and "allow_plaintext_secrets" in row


def test_status_warns_when_the_config_or_an_identity_file_is_readable_by_others(cli, workdir):
    root = bot_dir(workdir / "bot")
    init(cli, root, workdir / "remote.git", workdir / "backups")
    quiet = cli.tv("status", "--json", cwd=root)
    assert quiet.rc == 0, str(quiet)
    assert quiet.json()["private_files"] == []

    identity = root / ".tradevault" / "config-identity.txt"
    for path in (root / "tradevault.toml", identity):
        path.chmod(0o644)
    loud = cli.tv("status", "--json", cwd=root)
    problems = {p["what"]: p for p in loud.json()["private_files"]}
    assert set(problems) == {"config file", "config_vcs.secret_identity_file"}
    assert all("0644" in p["problem"] and "others" in p["problem"] for p in problems.values())
    table = cli.tv("status", cwd=root, env={"COLUMNS": "250"}).out
    assert sum("warn" in ln and "0644" in ln for ln in table.splitlines()) == 2

    identity.unlink()  # named in the config but gone: what it decrypts cannot be read here
    gone = {p["what"]: p for p in cli.tv("status", "--json", cwd=root).json()["private_files"]}
    assert gone["config_vcs.secret_identity_file"]["problem"].startswith("missing")
    assert json.dumps(gone).count("AGE-SECRET-KEY") == 0
