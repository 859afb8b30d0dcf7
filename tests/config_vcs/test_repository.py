"""Committing a directory: plain git on disk, checked with the real git binary."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cvs_helpers import commit_count, git, local_head, permissions_private, tree_files, write

from config_vcs.errors import RepositoryBusy
from config_vcs.options import Options
from config_vcs.repository import ConfigRepo


def open_repo(work: Path, **overrides) -> ConfigRepo:
    options = Options(host="test-host", **overrides)
    return options.repo(work, create=True)


def test_new_directory_gets_a_private_git_repository(tmp_path):
    work = tmp_path / "config"
    repo = open_repo(work)
    assert (work / ".git" / "HEAD").is_file()
    assert stat.S_IMODE(os.stat(work / ".git").st_mode) == 0o700
    assert repo.commit_worktree() is None  # empty directory: nothing to commit


def test_files_present_at_start_are_committed_in_one_initial_commit(tmp_path):
    work = tmp_path / "config"
    write(work / "config.json", '{"a": 1}')
    write(work / "strategies" / "s.py", "print(1)\n")
    result = open_repo(work).commit_worktree()
    assert result is not None and result.parent is None
    assert commit_count(work) == 1
    assert set(tree_files(work)) == {"config.json", "strategies/s.py"}
    assert git("status", "--porcelain", cwd=work) == ""  # index matches: plain git agrees
    git("fsck", "--strict", cwd=work)


def test_every_kind_of_file_round_trips_through_plain_git(tmp_path):
    work = tmp_path / "config"
    write(work / "cert.der", bytes(range(256)))
    write(work / "empty.txt", "")
    write(work / "ünï cödé.json", "{}")
    write(work / "run.sh", "#!/bin/sh\necho hi\n").chmod(0o755)
    (work / "link.json").symlink_to("config.json")
    (work / "outside").symlink_to("/etc/passwd")  # stored as a link, never followed
    write(work / "config.json", "{}")
    open_repo(work).commit_worktree()
    files = tree_files(work)
    assert files["run.sh"] == "100755" and files["config.json"] == "100644"
    assert files["link.json"] == "120000" and files["outside"] == "120000"
    assert git("cat-file", "blob", "HEAD:outside", cwd=work) == "/etc/passwd"
    raw = subprocess.run(["git", "cat-file", "blob", "HEAD:cert.der"], cwd=work, capture_output=True).stdout
    assert raw == bytes(range(256))
    assert git("cat-file", "-s", "HEAD:empty.txt", cwd=work).strip() == "0"
    assert "ünï cödé.json" in files
    assert git("status", "--porcelain", cwd=work) == ""
    git("fsck", "--strict", cwd=work)
    write(work / "config.json", '{"changed": true}')
    repo = open_repo(work)
    repo.commit_worktree()
    assert "config.json" in git("diff", "--stat", "HEAD~1", "HEAD", cwd=work)
    git("checkout", "HEAD~1", "--", "config.json", cwd=work)  # plain git restores files too
    assert (work / "config.json").read_text() == "{}"


def test_unchanged_content_produces_no_commit(tmp_path):
    work = tmp_path / "config"
    write(work / "a.json", "1")
    repo = open_repo(work)
    repo.commit_worktree()
    write(work / "a.json", "1")  # rewritten, same bytes: same blob id
    os.utime(work / "a.json", (1, 1))
    assert repo.commit_worktree() is None
    assert commit_count(work) == 1


def test_executable_bit_change_is_committed(tmp_path):
    work = tmp_path / "config"
    script = write(work / "run.sh", "#!/bin/sh\n")
    repo = open_repo(work)
    repo.commit_worktree()
    script.chmod(0o755)
    result = repo.commit_worktree()
    assert result is not None and result.changes[0].kind == "modified"
    assert tree_files(work)["run.sh"] == "100755"


def test_commit_message_lists_paths_with_host_trailer_author_and_utc(tmp_path):
    work = tmp_path / "config"
    write(work / "keep.json", "1")
    write(work / "edit.json", "1")
    write(work / "gone.json", "1x")
    repo = open_repo(work, author="Config Bot <bot@example.org>", committer="Ops <ops@example.org>")
    repo.commit_worktree()
    write(work / "edit.json", "2")
    (work / "gone.json").unlink()
    write(work / "new.json", "3")
    repo.commit_worktree()
    message = git("log", "-1", "--format=%B", cwd=work)
    assert message.splitlines()[0] == "config: 3 files changed (+1 ~1 -1)"
    assert "added: new.json" in message and "modified: edit.json" in message
    assert "deleted: gone.json" in message
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"], input=message, capture_output=True, text=True
    ).stdout
    assert parsed.strip() == "Host: test-host"
    assert git("log", "-1", "--format=%an <%ae>|%cn <%ce>", cwd=work).strip().split("|") == [
        "Config Bot <bot@example.org>", "Ops <ops@example.org>"
    ]
    assert git("log", "-1", "--format=%ai", cwd=work).strip().endswith("+0000")


def test_existing_git_repository_is_adopted_not_reinitialised(tmp_path):
    work = tmp_path / "config"
    write(work / "config.json", "1")
    git("init", "-q", str(work))
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "made by hand", cwd=work)
    original = local_head(work)
    write(work / "config.json", "2")
    repo = open_repo(work)
    result = repo.commit_worktree()
    assert result is not None and result.parent.decode() == original
    assert git("log", "--format=%s", cwd=work).splitlines() == [
        "config: 1 file changed (+0 ~1 -0)", "made by hand"
    ]


def test_changes_made_while_down_are_committed_on_next_start(tmp_path):
    work = tmp_path / "config"
    write(work / "a.json", "1")
    open_repo(work).commit_worktree()
    write(work / "a.json", "2")  # "agent down"
    write(work / "b.json", "new")
    result = open_repo(work).commit_worktree()  # start-up reconcile
    assert result is not None
    assert sorted(c.path for c in result.changes) == [b"a.json", b"b.json"]


def test_gitignore_excludes_and_droppings_are_not_committed(tmp_path):
    work = tmp_path / "config"
    write(work / ".gitignore", "*.log\nprivate/\n")
    write(work / "bot.log", "x")
    write(work / "private" / "p.json", "x")
    write(work / ".config.json.swp", "x")
    write(work / "config.json~", "x")
    write(work / "__pycache__" / "m.pyc", "x")
    write(work / "local" / "cache.db", "x")
    write(work / "config.json", "{}")
    repo = open_repo(work, exclude=("local/",))
    repo.commit_worktree()
    assert set(tree_files(work)) == {".gitignore", "config.json"}
    assert git("status", "--porcelain", cwd=work) == ""  # defaults are in .git/info/exclude


def test_file_above_max_file_size_is_skipped_with_a_warning(tmp_path):
    work = tmp_path / "config"
    write(work / "big.bin", b"x" * 2048)
    write(work / "small.json", "{}")
    warnings: list[str] = []
    repo = Options(max_file_size=1024).repo(work, create=True, warn=warnings.append)
    repo.commit_worktree()
    repo.commit_worktree()
    assert set(tree_files(work)) == {"small.json"}
    assert len(warnings) == 1 and "big.bin" in warnings[0] and "max_file_size" in warnings[0]


def test_held_index_lock_delays_the_commit_until_released(tmp_path):
    work = tmp_path / "config"
    write(work / "a.json", "1")
    repo = open_repo(work, busy_timeout=0.5)
    repo.commit_worktree()
    lock = work / ".git" / "index.lock"
    lock.write_text("")  # what a running `git commit` holds
    write(work / "a.json", "2")
    with pytest.raises(RepositoryBusy):
        repo.commit_worktree()
    assert commit_count(work) == 1
    lock.unlink()
    assert repo.commit_worktree() is not None
    assert git("show", "HEAD:a.json", cwd=work) == "2"


def test_manual_commit_is_kept_and_we_commit_on_top_of_it(tmp_path):
    work = tmp_path / "config"
    write(work / "a.json", "1")
    repo = open_repo(work)
    repo.commit_worktree()
    write(work / "a.json", "manual")
    git("commit", "-q", "-am", "tuned by hand", cwd=work)
    manual = local_head(work)
    assert repo.commit_worktree() is None  # already committed by the user
    write(work / "b.json", "later")
    result = repo.commit_worktree()
    assert result.parent.decode() == manual
    assert git("log", "--format=%s", "-3", cwd=work).splitlines()[1] == "tuned by hand"


def test_git_directory_stays_private_after_commits_and_repack(tmp_path):
    work = tmp_path / "config"
    repo = open_repo(work)
    for i in range(3):
        write(work / f"f{i}.json", str(i))
        repo.commit_worktree()
    assert permissions_private(work / ".git") == []
    assert repo.repack()
    assert repo.loose_object_count() == 0
    assert list((work / ".git" / "objects" / "pack").glob("*.pack"))
    assert permissions_private(work / ".git") == []
    git("fsck", "--strict", cwd=work)
    assert git("show", "HEAD:f2.json", cwd=work) == "2"


def test_unreadable_file_keeps_its_last_committed_version(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    work = tmp_path / "config"
    secret = write(work / "a.json", "1")
    repo = open_repo(work)
    repo.commit_worktree()
    secret.chmod(0)
    write(work / "b.json", "2")
    result = repo.commit_worktree()
    assert [c.path for c in result.changes] == [b"b.json"]
    secret.chmod(0o644)


def test_a_kill_while_the_index_is_rewritten_leaves_no_lock_that_blocks_the_next_commit(tmp_path):
    """Found by the crash campaign: rewriting a missing index (no commit) took git's
    index.lock without the "committing" marker, so a watcher killed there left a lock
    the next one took for a user's git command, and it never committed again."""
    work = tmp_path / "config"
    write(work / "a.json", "1")
    open_repo(work).commit_worktree()
    (work / ".git" / "index").unlink()  # the next commit_worktree rewrites it, committing nothing
    killed = subprocess.run(
        [sys.executable, "-c", (
            "import os, sys\n"
            "from config_vcs.options import Options\n"
            "from config_vcs.repository import ConfigRepo\n"
            "ConfigRepo._write_index = lambda *args: os._exit(9)  # killed while index.lock is held\n"
            "Options(host='test-host').repo(sys.argv[1], create=True).commit_worktree()\n"
        ), str(work)], cwd=Path(__file__).resolve().parents[2], env={**os.environ, "PYTHONPATH": "."})
    assert killed.returncode == 9 and (work / ".git" / "index.lock").exists()
    write(work / "a.json", "2")
    assert open_repo(work, busy_timeout=1.0).commit_worktree() is not None
    assert git("show", "HEAD:a.json", cwd=work) == "2" and not (work / ".git" / "index.lock").exists()


def test_an_object_lock_left_by_a_killed_writer_does_not_block_commits_forever(tmp_path):
    """Found by the crash campaign: a watcher killed while writing a loose object leaves
    objects/xx/<sha>.lock; the next commit of the same content writes the same object, and
    dulwich refused it for good. Only dulwich makes such locks, so ours are cleared."""
    from dulwich.objects import Blob

    work = tmp_path / "config"
    write(work / "a.json", "1")
    repo = open_repo(work, busy_timeout=2.0)
    repo.commit_worktree()
    sha = Blob.from_string(b"2").id.decode()
    stale = work / ".git" / "objects" / sha[:2] / f"{sha[2:]}.lock"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"")  # what the killed writer left
    write(work / "a.json", "2")
    assert repo.commit_worktree() is not None
    assert git("show", "HEAD:a.json", cwd=work) == "2" and not stale.exists()
    git("fsck", "--strict", cwd=work)
