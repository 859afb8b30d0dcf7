"""No secret leaks: the database password (in a PostgreSQL URL), S3 keys of
``[[locations]]`` and the age identity's content never appear in the agent's log,
``status --json``, any command's output or error message, commit messages of the config
history, manifests, pruned records or state files. One test gathers all of that and
greps it."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.campaigns.common import Env, git, private_root, tv
from tests.services import free_port

DB_PASSWORD = "SECRETPW-db-9f3k"
S3_KEY_ID = "AKIDSECRETKEYID7Q2"
S3_SECRET = "S3SECRETVALUE-x8d2Lk"


@pytest.fixture
def sandbox():
    root = private_root("secrets")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _texts(root: Path) -> dict[str, str]:
    """Every stored text file tradevault may have written under root (not the config
    file itself, not the SQLite database)."""
    texts = {}
    for path in root.rglob("*"):
        if not path.is_file() or path.suffix in (".toml", ".sqlite", ".tvo") \
                or path.name.endswith(("-wal", "-shm")) or path.name.startswith("identity"):
            continue
        if "/config/" in f"/{path.relative_to(root)}" and ".git" not in path.parts:
            continue  # the watched files themselves hold the secrets on purpose
        texts[str(path.relative_to(root))] = path.read_bytes().decode("utf-8", "replace")
    return texts


def _leaks(texts: dict[str, str], secrets: list[str]) -> list[str]:
    return [f"{secret!r} in {where}" for where, text in texts.items() for secret in secrets if secret in text]


def test_no_secret_in_logs_status_errors_commits_or_manifests(sandbox):
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    age_secret = str(identity)
    (sandbox / "identity.txt").write_text(age_secret + "\n")
    (sandbox / "identity.txt").chmod(0o600)
    config_dir = sandbox / "config"
    config_dir.mkdir()
    # the watched config holds secrets itself (as bot configs do): committed, but never in messages
    (config_dir / "config.json").write_text(f'{{"db_url": "postgresql://u:{DB_PASSWORD}@db/x", '
                                            f'"key": "{S3_SECRET}"}}\n')
    remote = sandbox / "remote.git"
    git("init", "-q", "--bare", str(remote))
    dead = free_port()
    env = Env.create(sandbox, ("disk",), transactions=60, extra=f"""
[[locations]]
name = "s3"
url = "s3://tv-secret/b"
endpoint_url = "http://127.0.0.1:{dead}"
region = "us-east-1"
access_key_id = "{S3_KEY_ID}"
secret_access_key = "{S3_SECRET}"

[backup]
min_locations = 1

[encryption]
recipients = ["{identity.to_public()}"]
identity_file = "{sandbox / 'identity.txt'}"

[schedule]
incremental = "0.5s"
full = "0 3 * * *"
verify = ""

[agent]
state_dir = "{sandbox / 'state'}"

[config_vcs]
paths = ["{config_dir}"]
quiet_period = "100ms"
max_delay = "500ms"
[config_vcs.remotes]
usb = "{remote}"
""")
    outputs: list[str] = []

    def run(*args: str, config: Path | None = None, cwd: Path = sandbox) -> None:
        result = tv(*args, "-c", str(config or env.config), cwd=cwd, timeout=300)
        outputs.append(f"$ {' '.join(args)} -> {result.rc}\n{result.out}\n{result.err}")

    run("backup", "full", "--json")  # S3 down: reported behind (its error message is checked)
    agent = env.start("agent", log=sandbox / "agent.log")
    try:
        deadline = time.monotonic() + 60
        while not (sandbox / "state" / "agent.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        (config_dir / "strategy.py").write_text(f"PASSWORD = '{DB_PASSWORD}'\n")
        from tradevault.workload import TradingWorkload

        w = TradingWorkload(env.db, seed=3)
        w.run(40)
        w.close()
        time.sleep(3)
        run("status", "--json")
        run("status")
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(90)
        except subprocess.TimeoutExpired:
            agent.kill()
    for args in (("backups", "list", "--json"), ("verify", "--json"), ("verify", "--deep"), ("locations", "sync"),
                 ("restore", "--to", f"sqlite:///{sandbox / 'restored.sqlite'}", "--json"), ("config", "log"),
                 ("config", "status", "--json")):
        run(*args)
    # a broken identity file: the error must not echo its content
    (sandbox / "identity-bad.txt").write_text(age_secret[:-6] + "XXXXXX\n")
    bad = sandbox / "bad.toml"
    bad.write_text(env.config.read_text().replace(str(sandbox / "identity.txt"), str(sandbox / "identity-bad.txt")))
    run("restore", "--to", f"sqlite:///{sandbox / 'restored-2.sqlite'}", config=bad)
    run("verify", "--deep", config=bad)
    # a PostgreSQL URL with a password, server unreachable: errors and status must not show it
    pg = sandbox / "pg.toml"
    pg.write_text(f'[database]\nurl = "postgresql+psycopg://trader:{DB_PASSWORD}@127.0.0.1:{dead}/bot"\n'
                  f'[[locations]]\nname = "disk"\nurl = "file://{sandbox / "pg-backups"}"\n'
                  f'[agent]\nstate_dir = "{sandbox / "pg-state"}"\n')
    for args in (("backup", "full", "--json"), ("backup", "incremental"), ("status", "--json"), ("status",),
                 ("verify",), ("restore", "--to", f"sqlite:///{sandbox / 'r3.sqlite'}")):
        run(*args, config=pg)

    messages = git("log", "--all", "--format=%H %an %s%n%b", cwd=config_dir).stdout
    assert "config" in messages or messages.strip(), "the agent committed nothing"
    texts = _texts(sandbox)
    texts["command output"] = "\n".join(outputs)
    texts["commit messages"] = messages
    texts["remote commit messages"] = git("--git-dir", str(remote), "log", "--all", "--format=%s%n%b").stdout
    assert (sandbox / "agent.log").exists() and any(k.startswith("state") for k in texts), sorted(texts)
    assert any(k.startswith("backups-disk") and "manifest" in k for k in texts), sorted(texts)
    leaks = _leaks(texts, [DB_PASSWORD, S3_KEY_ID, S3_SECRET, age_secret, age_secret[len("AGE-SECRET-KEY-1"):][:20]])
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks) + "\n\n" + texts["command output"][-3000:]
