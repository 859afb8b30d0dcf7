"""Files tradevault creates are private: backup objects, manifest entries, pruned records,
the agent's state files and the config history's ``.git`` are neither readable nor
writable by group or others, even under a permissive umask (022)."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.campaigns.common import Env, git, private_root


def _open_to_others(root: Path) -> list[str]:
    """Every file or directory under root (root included) with any group/other bit."""
    bad = []
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode) and mode & 0o077:
            bad.append(f"{path} {stat.filemode(mode)}")
    return bad


def _reachable_by_others(root: Path) -> list[str]:
    """Files under root that another user could actually read: the file is o+r and every
    directory from root down to it is o+x."""
    bad = []
    for path in root.rglob("*"):
        if path.is_symlink() or not path.is_file() or not path.lstat().st_mode & 0o004:
            continue
        chain = [root, *[p for p in path.parents if root in p.parents]]
        if all(d.stat().st_mode & 0o001 for d in chain):
            bad.append(f"{path} {stat.filemode(path.lstat().st_mode)}")
    return bad


@pytest.fixture(scope="module")
def deployed():
    """Backups on two locations, a prune, the agent run with config pushes — under umask
    022, with a state directory that already existed with mode 0755 (as a packaged
    /var/lib/tradevault would)."""
    sandbox = private_root("modes")
    config_dir = sandbox / "config"
    config_dir.mkdir()
    (config_dir / "config.json").write_text('{"stake": 1}\n')
    remote = sandbox / "remote.git"
    git("init", "-q", "--bare", str(remote))
    old = os.umask(0o022)
    (sandbox / "state").mkdir(mode=0o755)
    try:
        env = Env.create(sandbox, ("one", "two"), transactions=80, extra=f"""
[schedule]
incremental = "0.5s"
full = "0 3 * * *"
verify = ""
[retention]
keep_full = 1
pitr = "1s"
[agent]
state_dir = "{sandbox / 'state'}"
[config_vcs]
paths = ["{config_dir}"]
quiet_period = "100ms"
max_delay = "300ms"
[config_vcs.remotes]
usb = "{remote}"
""")
        env.ok("backup", "full")
        from tradevault.workload import TradingWorkload

        w = TradingWorkload(env.db, seed=2)
        w.run(40)
        env.ok("backup", "incremental")
        w.run(40)
        env.ok("backup", "full")
        agent = env.start("agent", log=sandbox / "agent.log")
        try:
            deadline = time.monotonic() + 60
            while not (sandbox / "state" / "agent.json").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            (config_dir / "strategy.py").write_text("class S: pass\n")
            w.run(40)
            time.sleep(2.5)
        finally:
            w.close()
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(60)
            except subprocess.TimeoutExpired:
                agent.kill()
        env.ok("locations", "sync")
    finally:
        os.umask(old)
    yield sandbox, config_dir
    shutil.rmtree(sandbox, ignore_errors=True)


def test_backup_objects_manifests_and_pruned_records_are_private(deployed):
    sandbox, _ = deployed
    for name in ("one", "two"):
        root = sandbox / f"backups-{name}"
        assert list(root.rglob("*.tvo")) and list(root.rglob("manifest/*.json")), f"nothing stored in {root}"
        bad = _open_to_others(root)
        assert not bad, f"location {name}: open to others: {bad[:8]}"


def test_config_history_git_directory_is_private(deployed):
    _, config_dir = deployed
    git_dir = config_dir / ".git"
    assert stat.S_IMODE(git_dir.stat().st_mode) == 0o700, stat.filemode(git_dir.stat().st_mode)
    bad = _reachable_by_others(git_dir)
    assert not bad, f"config history readable by others: {bad[:8]}"


def test_agent_state_files_are_private(deployed):
    sandbox, _ = deployed
    state = sandbox / "state"
    assert (state / "agent.json").exists()
    bad = _reachable_by_others(state) + [f"{p} {stat.filemode(p.stat().st_mode)}" for p in state.rglob("*")
                                         if p.is_file() and p.stat().st_mode & 0o077]
    assert not bad, f"agent state open to others: {bad[:8]}"
