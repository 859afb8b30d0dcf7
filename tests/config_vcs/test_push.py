"""Pushing every commit to every remote: local bare repos, file://, http (dulwich.web),
ssh (through a stand-in ssh program running the real git-receive-pack), a remote that
is down and comes back, a slow one, a diverged one."""

from __future__ import annotations

import os
import shutil
import threading

import pytest
from cvs_helpers import (
    bare_remote,
    commit_count,
    fast_options,
    git,
    local_head,
    remote_head,
    wait_for,
    write,
)

# watchdog's noisy (harmless) warning when a directory appears while it sets up watches
pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")


FAKE_SSH = """#!/bin/sh
printf '%s\\n' "$*" >> "$(dirname "$0")/ssh-calls.log"
case " $* " in *" BatchMode=yes "*) ;; *) echo "BatchMode missing" >&2; exit 255;; esac
eval "last=\\${$#}"
exec sh -c "$last"
"""


def remotes_in_sync(history) -> bool:
    return all(
        r["unpushed"] == 0 and r["last_error"] is None
        for repo in history.status()
        for r in repo["remotes"].values()
    )


def test_every_commit_reaches_every_local_remote(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "config.json", "0")
    usb = bare_remote(tmp_path / "usb.git")
    nas = bare_remote(tmp_path / "nas.git")
    history = start_history([work], {"usb": str(usb), "nas": f"file://{nas}"})
    for i in range(1, 4):
        write(work / "config.json", str(i))
        wait_for(lambda i=i: commit_count(work) == i + 1, what=f"commit {i}")
    wait_for(lambda: remotes_in_sync(history), what="remotes in sync")
    head = local_head(work)
    assert remote_head(usb) == head and remote_head(nas) == head
    git("--git-dir", str(usb), "fsck", "--strict")
    assert git("--git-dir", str(nas), "rev-list", "--count", "master").strip() == "4"
    # plain git sees the remotes and what they have
    assert git("config", "remote.usb.url", cwd=work).strip() == str(usb)
    assert git("rev-parse", "usb/master", cwd=work).strip() == head


def test_http_remote_served_by_dulwich_receives_commits(tmp_path, start_history, http_remote):
    work = tmp_path / "config"
    write(work / "config.json", "0")
    bare = bare_remote(tmp_path / "web.git")
    server = http_remote(bare)
    history = start_history([work], {"web": server.url})
    write(work / "strategy.py", "x = 1\n")
    wait_for(lambda: commit_count(work) == 2, what="second commit")
    wait_for(lambda: remote_head(bare) == local_head(work), what="http remote up to date")
    wait_for(lambda: remotes_in_sync(history), what="status in sync")
    git("--git-dir", str(bare), "fsck", "--strict")


def test_remote_that_is_down_catches_up_when_it_returns(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "config.json", "0")
    good = bare_remote(tmp_path / "good.git")
    later = tmp_path / "usb" / "later.git"  # the USB disk is not mounted yet
    history = start_history([work], {"good": str(good), "later": str(later)})
    for i in range(1, 3):
        write(work / "config.json", str(i))
        wait_for(lambda i=i: commit_count(work) == i + 1, what=f"commit {i} despite the down remote")
    wait_for(lambda: remote_head(good) == local_head(work), what="the good remote is not held up")
    state = wait_for(
        lambda: (s := history.status()[0]["remotes"]["later"])["last_error"] and s, what="error reported"
    )
    assert state["unpushed"] == 3 and not state["diverged"]
    bare_remote(later)  # the disk comes back
    wait_for(lambda: remote_head(later) == local_head(work), what="catch-up push")
    wait_for(lambda: remotes_in_sync(history), what="status back to healthy")


def test_slow_remote_delays_neither_commits_nor_other_remotes(tmp_path, start_history, http_remote):
    work = tmp_path / "config"
    write(work / "config.json", "0")
    fast = bare_remote(tmp_path / "fast.git")
    gate = threading.Event()
    slow = http_remote(bare_remote(tmp_path / "slow.git"), gate=gate)  # receive-pack hangs
    history = start_history([work], {"fast": str(fast), "slow": slow.url})
    for i in range(1, 4):
        write(work / "config.json", str(i))
        wait_for(lambda i=i: commit_count(work) == i + 1, what=f"commit {i} while a push hangs")
        wait_for(lambda: remote_head(fast) == local_head(work), what="fast remote keeps up")
    assert remote_head(slow.bare) is None
    gate.set()
    wait_for(lambda: remote_head(slow.bare) == local_head(work), what="slow remote catches up")
    wait_for(lambda: remotes_in_sync(history), what="all in sync")


def test_diverged_remote_is_reported_never_overwritten(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "config.json", "0")
    ok = bare_remote(tmp_path / "ok.git")
    other = bare_remote(tmp_path / "other.git")
    stranger = tmp_path / "stranger"  # someone else pushed an unrelated history there
    write(stranger / "x.txt", "not ours")
    git("init", "-q", str(stranger))
    git("add", "-A", cwd=stranger)
    git("commit", "-q", "-m", "foreign", cwd=stranger)
    git("push", "-q", str(other), "HEAD:refs/heads/master", cwd=stranger)
    foreign = remote_head(other)
    warnings: list[str] = []
    history = start_history([work], {"ok": str(ok), "other": str(other)}, warn=warnings.append)
    write(work / "config.json", "1")
    wait_for(lambda: commit_count(work) == 2, what="commit")
    state = wait_for(
        lambda: (s := history.status()[0]["remotes"]["other"])["diverged"] and s, what="diverged flag"
    )
    assert state["unpushed"] == 2 and "not in our history" in state["last_error"]
    assert remote_head(other) == foreign  # never forced
    wait_for(lambda: remote_head(ok) == local_head(work), what="other remotes keep going")
    assert sum("diverged" in w for w in warnings) == 1  # reported once, not per retry


def test_remote_reset_behind_us_is_fast_forwarded(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "config.json", "0")
    usb = bare_remote(tmp_path / "usb.git")
    history = start_history([work], {"usb": str(usb)})
    wait_for(lambda: remote_head(usb) == local_head(work), what="first push")
    history.stop(flush=True)
    write(work / "config.json", "1")
    history2 = start_history([work], {"usb": str(usb)})
    wait_for(lambda: remote_head(usb) == local_head(work), what="offline commit pushed at start")
    wait_for(lambda: remotes_in_sync(history2), what="status in sync")


def test_ssh_remote_runs_in_batch_mode_and_server_rejection_is_an_error(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "config.json", "0")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ssh = bin_dir / "fake-ssh"
    ssh.write_text(FAKE_SSH)
    ssh.chmod(0o755)
    good = bare_remote(tmp_path / "ssh-good.git")
    strict = bare_remote(tmp_path / "ssh-strict.git")
    hook = strict / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'frozen by policy' >&2\nexit 1\n")
    hook.chmod(0o755)
    history = start_history(
        [work],
        {"ssh": f"ssh://backup-host{good}", "strict": f"ssh://backup-host{strict}"},
        options=fast_options(ssh_command=str(ssh)),
    )
    wait_for(lambda: remote_head(good) == local_head(work), what="push over ssh")
    calls = (bin_dir / "ssh-calls.log").read_text()
    assert "BatchMode=yes" in calls and "backup-host" in calls and "git-receive-pack" in calls
    state = wait_for(
        lambda: (s := history.status()[0]["remotes"]["strict"])["last_error"] and s, what="rejection"
    )
    assert "refused" in state["last_error"] and state["unpushed"] == 1
    assert remote_head(strict) is None


def test_several_directories_share_remotes_on_separate_branches(tmp_path, start_history):
    one, two = tmp_path / "config", tmp_path / "strategies"
    write(one / "config.json", "1")
    write(two / "s.py", "2")
    usb = bare_remote(tmp_path / "usb.git")
    history = start_history([one, two], {"usb": str(usb)})
    wait_for(lambda: remotes_in_sync(history), what="both pushed")
    assert remote_head(usb, "refs/heads/config") == local_head(one)
    assert remote_head(usb, "refs/heads/strategies") == local_head(two)


def test_stop_with_flush_pushes_the_last_commit(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "config.json", "0")
    usb = bare_remote(tmp_path / "usb.git")
    history = start_history([work], {"usb": str(usb)}, options=fast_options(quiet_period=30, max_delay=60))
    wait_for(lambda: remote_head(usb) == local_head(work), what="first push")
    write(work / "config.json", "last words")
    history.stop(flush=True)
    assert commit_count(work) == 2
    assert remote_head(usb) == local_head(work)


def test_repack_keeps_history_and_remotes_intact(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "config.json", "0")
    usb = bare_remote(tmp_path / "usb.git")
    history = start_history([work], {"usb": str(usb)}, options=fast_options(repack_every=2))
    for i in range(1, 5):
        write(work / "config.json", str(i))
        wait_for(lambda i=i: commit_count(work) == i + 1, what=f"commit {i}")
    wait_for(lambda: remotes_in_sync(history), what="pushed")
    wait_for(lambda: list((work / ".git" / "objects" / "pack").glob("*.pack")), what="a pack")
    git("fsck", "--strict", cwd=work)
    assert remote_head(usb) == local_head(work)


def test_unpushed_count_survives_restart(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "config.json", "0")
    gone = tmp_path / "gone.git"
    history = start_history([work], {"gone": str(gone)})
    wait_for(lambda: history.status()[0]["remotes"]["gone"]["last_error"], what="push error")
    history.stop(flush=False)
    from config_vcs.service import offline_status

    report = offline_status([work], {"gone": str(gone)})
    assert report[0]["remotes"]["gone"]["unpushed"] == 1
    assert report[0]["remotes"]["gone"]["last_error"]
    shutil.rmtree(work / ".git" / "tradevault")
    assert offline_status([work], {"gone": str(gone)})[0]["remotes"]["gone"]["unpushed"] == 1
    assert os.path.isdir(work / ".git")


def test_a_ref_lock_left_on_a_local_remote_by_a_killed_push_is_cleared_once_stale(tmp_path, start_history):
    """A push killed while it wrote the remote's ref leaves ``refs/heads/master.lock``:
    fresh, the lock is respected (someone may be writing); once older than any push holds
    it, it is removed and the push goes through."""
    from config_vcs import push_queue

    work = tmp_path / "config"
    write(work / "config.json", "0")
    usb = bare_remote(tmp_path / "usb.git")
    lock = usb / "refs" / "heads" / "master.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("")
    history = start_history([work], {"usb": str(usb)})
    state = wait_for(lambda: (s := history.status()[0]["remotes"]["usb"])["last_error"] and s,
                     what="the fresh lock reported")
    assert "master.lock" in state["last_error"] and lock.exists() and remote_head(usb) is None
    old = lock.stat().st_mtime - push_queue.STALE_LOCK_SECONDS - 1
    os.utime(lock, (old, old))
    write(work / "config.json", "1")
    wait_for(lambda: remote_head(usb) == local_head(work), what="push after the stale lock")
    assert not lock.exists()
    git("--git-dir", str(usb), "fsck", "--strict")
