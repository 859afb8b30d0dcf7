"""The running watcher: real watchdog events coalesced into commits."""

from __future__ import annotations

import logging
import os
import shutil
import time

import pytest
from cvs_helpers import commit_count, fast_options, git, tree_files, wait_for, write

# watchdog's noisy (harmless) warning when a directory appears while it sets up watches
pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")


def test_files_present_at_start_are_committed_before_start_returns(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "config.json", "{}")
    start_history([work])
    assert set(tree_files(work)) == {"config.json"}


def test_a_burst_of_writes_becomes_one_commit(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "seed.json", "0")
    start_history([work], options=fast_options(quiet_period=1.5, max_delay=10.0))
    for i in range(10):
        write(work / f"f{i}.json", str(i))
    wait_for(lambda: commit_count(work) == 2, what="the burst commit")
    time.sleep(2.0)  # longer than the quiet period: a second commit would show now
    assert commit_count(work) == 2
    assert git("log", "-1", "--format=%s", cwd=work).strip() == "config: 10 files changed (+10 ~0 -0)"


def test_continuous_writes_are_committed_after_max_delay(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "state.json", "0")
    start_history([work], options=fast_options(quiet_period=1.0, max_delay=1.5))
    started = time.monotonic()
    i = 0
    while commit_count(work) < 2:  # writes every 20 ms never leave a quiet second
        i += 1
        write(work / "state.json", str(i))
        time.sleep(0.02)
        assert time.monotonic() - started < 20, "no commit while writes continued"


def test_atomic_save_by_rename_is_committed_without_the_temp_file(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "config.json", "old")
    start_history([work])
    tmp = write(work / ".config.json.tmp1234", "new")  # editors: temp file + rename over
    os.replace(tmp, work / "config.json")
    wait_for(lambda: commit_count(work) == 2, what="commit of the atomic save")
    assert tree_files(work).keys() == {"config.json"}
    assert git("show", "HEAD:config.json", cwd=work) == "new"


def test_delete_and_recreate_with_same_content_makes_no_commit(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "config.json", "same")
    history = start_history([work])
    (work / "config.json").unlink()
    write(work / "config.json", "same")
    history.flush()
    time.sleep(0.5)
    history.flush()
    assert commit_count(work) == 1


def test_rename_is_recorded_as_rename(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "old.json", '{"x": 1}')
    start_history([work])
    os.rename(work / "old.json", work / "new.json")
    wait_for(lambda: commit_count(work) == 2, what="rename commit")
    assert "renamed: old.json -> new.json" in git("log", "-1", "--format=%B", cwd=work)


def test_files_created_inside_a_brand_new_directory_are_not_lost(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "seed.json", "0")
    start_history([work])
    deep = work / "strategies" / "v2" / "extra"
    os.makedirs(deep)  # files land before the watcher can add watches for these dirs
    for i in range(5):
        write(deep / f"s{i}.py", f"# {i}\n")
    write(work / "strategies" / "top.py", "#\n")
    expected = {f"strategies/v2/extra/s{i}.py" for i in range(5)} | {"strategies/top.py", "seed.json"}
    wait_for(lambda: set(tree_files(work)) == expected, what="all nested files committed")


def test_deleting_a_directory_commits_the_deletions(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "keep.json", "1")
    write(work / "sub" / "a.json", "1")
    write(work / "sub" / "b.json", "2")
    start_history([work])
    shutil.rmtree(work / "sub")
    wait_for(lambda: set(tree_files(work)) == {"keep.json"}, what="deletion commit")


def test_ignored_droppings_do_not_cause_commits(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "config.json", "1")
    history = start_history([work])
    write(work / ".config.json.swp", "swap")
    write(work / "backup~", "old")
    write(work / "__pycache__" / "x.pyc", "bytecode")
    history.flush()
    assert commit_count(work) == 1


def test_periodic_rescan_commits_changes_without_any_watcher(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "config.json", "1")
    start_history([work], options=fast_options(watch=False, rescan_interval=0.3))
    write(work / "config.json", "2")
    wait_for(lambda: commit_count(work) == 2, what="commit by rescan")


def test_watcher_queue_overflow_triggers_an_immediate_rescan(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "config.json", "1")
    start_history([work], options=fast_options(quiet_period=60.0, max_delay=120.0))
    write(work / "config.json", "2")  # heard, but the quiet period would hold it a minute
    # what watchdog's inotify emitter logs when the kernel dropped events:
    logging.getLogger("watchdog.observers.inotify_c").warning(
        "Inotify queue overflowed; filesystem events were lost"
    )
    wait_for(lambda: commit_count(work) == 2, timeout=20, what="commit by the overflow rescan")


def test_manual_commit_meanwhile_is_respected(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "a.json", "1")
    history = start_history([work], options=fast_options(quiet_period=20.0, max_delay=40.0))
    write(work / "a.json", "by hand")
    git("commit", "-q", "-am", "manual change", cwd=work)  # within our quiet period
    manual = git("rev-parse", "HEAD", cwd=work).strip()
    history.flush()
    assert git("rev-parse", "HEAD", cwd=work).strip() == manual  # nothing left to commit
    write(work / "b.json", "2")
    history.flush()
    assert commit_count(work) == 3
    assert git("rev-parse", "HEAD~1", cwd=work).strip() == manual


def test_held_index_lock_is_retried_and_reported(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "a.json", "1")
    history = start_history([work], options=fast_options(busy_timeout=0.3))
    lock = work / ".git" / "index.lock"
    lock.write_text("")
    write(work / "a.json", "2")
    wait_for(lambda: history.status()[0]["last_error"], what="busy reported")
    assert commit_count(work) == 1
    lock.unlink()
    wait_for(lambda: commit_count(work) == 2, what="commit after the lock was released")
    wait_for(lambda: history.status()[0]["last_error"] is None, what="error cleared")


def test_stop_with_flush_commits_pending_changes(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "a.json", "1")
    history = start_history([work], options=fast_options(quiet_period=30.0, max_delay=60.0))
    write(work / "a.json", "2")
    time.sleep(0.2)
    history.stop(flush=True)
    assert git("show", "HEAD:a.json", cwd=work) == "2"


def test_several_directories_are_separate_repositories(tmp_path, start_history):
    one, two = tmp_path / "config", tmp_path / "strategies"
    write(one / "config.json", "1")
    write(two / "s.py", "2")
    start_history([one, two])
    write(two / "s.py", "3")
    wait_for(lambda: commit_count(two) == 2, what="commit in the second directory")
    assert commit_count(one) == 1
    assert set(tree_files(one)) == {"config.json"} and set(tree_files(two)) == {"s.py"}


def test_secret_looking_files_warn_once_naming_the_remotes(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "config.json", '{"exchange": {"key": "AKIAXXXX", "secret": "abc"}}')
    warnings: list[str] = []
    remote = tmp_path / "usb.git"
    os.makedirs(remote)
    history = start_history([work], {"usb": str(remote)}, warn=warnings.append)
    write(work / ".env", "API_KEY=1\n")
    wait_for(lambda: commit_count(work) == 2, what=".env commit")
    write(work / "config.json", '{"exchange": {"key": "AKIAYYYY", "secret": "abc"}}')
    wait_for(lambda: commit_count(work) == 3, what="second commit")
    secret_warnings = [w for w in warnings if "looks like credentials" in w]
    assert len(secret_warnings) == 2, secret_warnings
    assert all("usb" in w for w in secret_warnings)
    assert not any("AKIA" in w for w in warnings)  # never the value
    assert set(history.status()[0]["secrets"]) == {"config.json", ".env"}


def test_non_ascii_binary_symlink_and_exec_files_are_committed_live(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "seed", "")
    start_history([work])
    write(work / "données.json", "{}")
    write(work / "blob.der", bytes(range(256)) * 4)
    (work / "latest.json").symlink_to("données.json")
    write(work / "hook.sh", "#!/bin/sh\n").chmod(0o755)
    wait_for(lambda: len(tree_files(work)) == 5, what="all files")
    files = tree_files(work)
    assert files["latest.json"] == "120000" and files["hook.sh"] == "100755"
    git("fsck", "--strict", cwd=work)




def test_in_place_checkout_while_watching_makes_exactly_one_restore_commit(tmp_path, start_history):
    from config_vcs import history as config_history
    from config_vcs.options import Options

    work = tmp_path / "config"
    write(work / "config.json", "v1")
    write(work / "strategies" / "s.py", "v1")
    watcher = start_history([work])
    write(work / "config.json", "v2")
    write(work / "strategies" / "s.py", "v2")
    write(work / "strategies" / "extra.py", "new")
    wait_for(lambda: commit_count(work) == 2, what="v2 commit")
    repo = Options(host="test-host").repo(work, create=False)  # as the CLI process would
    config_history.checkout(repo, rev="HEAD~1")
    watcher.flush()
    time.sleep(0.5)
    watcher.flush()
    assert commit_count(work) == 3
    assert git("log", "-1", "--format=%s", cwd=work).startswith("config: restore all files to ")
    assert (work / "config.json").read_text() == "v1" and not (work / "strategies" / "extra.py").exists()


def test_a_watcher_that_cannot_stop_is_left_behind_after_the_bound(tmp_path, monkeypatch, caplog):
    """watchdog's Observer.stop() joins its emitters without a timeout; a stuck one must not
    keep the final commit and pushes from running (the bound is STOP_TIMEOUT)."""
    import threading

    from watchdog.observers import Observer

    from config_vcs import watcher as watcher_module
    from config_vcs.ignore import StaticIgnore

    release = threading.Event()
    real_stop = Observer.stop

    def stuck_stop(self):  # an emitter that never returns from its join
        release.wait(30)
        real_stop(self)

    monkeypatch.setattr(watcher_module, "STOP_TIMEOUT", 0.5)
    work = tmp_path / "config"
    work.mkdir()
    w = watcher_module.DirectoryWatcher()
    w.add(work, StaticIgnore([]), lambda rel: None, lambda: None)
    w.start()
    monkeypatch.setattr(w._observer, "stop", stuck_stop.__get__(w._observer))
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="config_vcs.watcher"):
        w.stop()
    took = time.monotonic() - began
    release.set()
    assert took < 10, took  # bounded (0.5 s here), not the 30 s the stuck stop would take
    assert "did not stop within" in caplog.text
