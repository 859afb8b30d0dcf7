"""Reading history back: log, diff, show, checkout by revision or by time, and the
"configuration as of instant T" export used by restore."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cvs_helpers import commit_count, git, tree_files, write

from config_vcs import history
from config_vcs.errors import BadInput, BadTime, PathEscapes, UnknownRevision
from config_vcs.options import Options
from config_vcs.repository import ConfigRepo

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def at(offset_minutes: int) -> int:
    return int((T0 + timedelta(minutes=offset_minutes)).timestamp())


@pytest.fixture
def timeline(tmp_path):
    """Three commits at T0, T0+10 min, T0+20 min."""
    work = tmp_path / "config"
    repo = Options(host="test-host").repo(work, create=True)
    write(work / "config.json", '{"v": 1}')
    write(work / "strategies" / "s.py", "v = 1\n")
    write(work / "run.sh", "#!/bin/sh\n").chmod(0o755)
    (work / "current.json").symlink_to("config.json")
    repo.commit_worktree(when=at(0))
    write(work / "config.json", '{"v": 2}')
    write(work / "strategies" / "new.py", "n = 1\n")
    repo.commit_worktree(when=at(10))
    write(work / "config.json", '{"v": 3}')
    (work / "strategies" / "s.py").unlink()
    repo.commit_worktree(when=at(20))
    return work, repo


def test_commit_at_picks_last_commit_at_or_before_the_time(timeline):
    work, repo = timeline
    with repo.open() as r:
        assert history.commit_at(r, T0 + timedelta(minutes=15)).commit_time == at(10)
        assert history.commit_at(r, T0 + timedelta(minutes=10)).commit_time == at(10)  # "at" counts
        assert history.commit_at(r, T0 + timedelta(days=9)).commit_time == at(20)
        with pytest.raises(BadTime) as err:
            history.commit_at(r, T0 - timedelta(seconds=1))
    assert err.value.exit_code == 2


def test_times_are_iso_8601_and_naive_means_utc():
    assert history.parse_time("2024-05-01T12:00:00") == T0
    assert history.parse_time("2024-05-01T12:00:00Z") == T0
    assert history.parse_time("2024-05-01T14:00:00+02:00") == T0
    assert history.parse_time("2024-05-01T14:00:00+02:00").tzinfo == UTC
    assert history.parse_time("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    with pytest.raises(BadTime):
        history.parse_time("last tuesday")


def test_checkout_at_time_into_a_directory(timeline, tmp_path):
    _work, repo = timeline
    out = tmp_path / "out"
    write(out / "unrelated.txt", "left alone")
    result = history.checkout(repo, at="2024-05-01T12:15:00", to=out)
    assert (out / "config.json").read_text() == '{"v": 2}'
    assert (out / "strategies" / "s.py").read_text() == "v = 1\n"
    assert (out / "strategies" / "new.py").exists()
    assert os.readlink(out / "current.json") == "config.json"
    assert os.access(out / "run.sh", os.X_OK)
    assert (out / "unrelated.txt").read_text() == "left alone"
    assert result.commit is None  # --to never commits


def test_checkout_of_selected_paths_only(timeline, tmp_path):
    _work, repo = timeline
    out = tmp_path / "out"
    history.checkout(repo, rev="HEAD~2", to=out, paths=["strategies"])
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["s.py"]


def test_checkout_in_place_restores_and_commits_the_restore(timeline):
    work, repo = timeline
    write(work / "config.json", '{"v": "uncommitted edit"}')  # kept in history first
    result = history.checkout(repo, rev="HEAD~2")
    assert (work / "config.json").read_text() == '{"v": 1}'
    assert (work / "strategies" / "s.py").exists() and not (work / "strategies" / "new.py").exists()
    subject = git("log", "-1", "--format=%s", cwd=work).strip()
    assert subject.startswith("config: restore all files to ")
    assert git("show", "HEAD~1:config.json", cwd=work) == '{"v": "uncommitted edit"}'
    assert result.commit == git("rev-parse", "HEAD", cwd=work).strip()
    assert git("status", "--porcelain", cwd=work) == ""
    assert set(tree_files(work)) == set(tree_files(work, "HEAD~4"))


def test_checkout_in_place_of_one_file_names_it_in_the_message(timeline):
    work, repo = timeline
    history.checkout(repo, at=T0, paths=["config.json"])
    assert (work / "config.json").read_text() == '{"v": 1}'
    assert (work / "strategies" / "new.py").exists()  # outside the named path: untouched
    assert "restore config.json to" in git("log", "-1", "--format=%s", cwd=work)


@pytest.mark.parametrize("path", ["../escape.json", "/etc/passwd", ".git/config", "a/../../x"])
def test_checkout_refuses_paths_escaping_the_target(timeline, tmp_path, path):
    work, repo = timeline
    before = commit_count(work)
    with pytest.raises(PathEscapes) as err:
        history.checkout(repo, rev="HEAD", to=tmp_path / "out", paths=[path])
    assert err.value.exit_code == 2
    assert not (tmp_path / "out").exists() and commit_count(work) == before


def test_checkout_never_writes_through_a_symlinked_directory(timeline, tmp_path):
    _work, repo = timeline
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    out.mkdir()
    (out / "strategies").symlink_to(elsewhere)  # a trap where the tree has a directory
    history.checkout(repo, rev="HEAD~1", to=out)
    assert list(elsewhere.iterdir()) == []
    assert (out / "strategies").is_dir() and not (out / "strategies").is_symlink()


def test_unknown_revision_and_missing_path_are_bad_input(timeline, tmp_path):
    _work, repo = timeline
    with pytest.raises(UnknownRevision):
        history.checkout(repo, rev="no-such-rev", to=tmp_path / "o")
    with pytest.raises(BadInput):
        history.checkout(repo, rev="HEAD~2", to=tmp_path / "o", paths=["never.json"])
    with pytest.raises(BadInput):
        history.checkout(repo, rev="HEAD", at=T0, to=tmp_path / "o")


def test_log_lists_commits_newest_first_with_their_files(timeline):
    _work, repo = timeline
    entries = history.log(repo)
    assert [e.time for e in entries] == [
        datetime.fromtimestamp(at(m), UTC) for m in (20, 10, 0)
    ]
    assert entries[0].summary == "config: 2 files changed (+0 ~1 -1)"
    assert {(c["path"], c["change"]) for c in entries[0].as_dict()["files"]} == {
        ("config.json", "modified"), ("strategies/s.py", "deleted")
    }
    assert entries[0].as_dict()["time"] == "2024-05-01T12:20:00Z"


def test_log_of_a_path_shows_only_commits_touching_it(timeline):
    work, repo = timeline
    entries = history.log(repo, "strategies/new.py")
    assert len(entries) == 1 and entries[0].changes[0].path == b"strategies/new.py"
    assert len(history.log(repo, str(work / "run.sh"))) == 1


def test_diff_between_revisions_and_against_the_directory(timeline):
    work, repo = timeline
    patch, changes = history.diff(repo, "HEAD~1", "HEAD")
    assert b'-{"v": 2}' in patch and b'+{"v": 3}' in patch
    assert {c.path for c in changes} == {b"config.json", b"strategies/s.py"}
    write(work / "config.json", '{"v": "now"}')
    patch, changes = history.diff(repo, "HEAD")
    assert b'+{"v": "now"}' in patch and [c.path for c in changes] == [b"config.json"]
    assert commit_count(work) == 3  # diff wrote nothing into the history


def test_show_returns_exact_bytes_of_a_file_at_a_revision(tmp_path):
    work = tmp_path / "config"
    repo = Options().repo(work, create=True)
    payload = bytes(range(256))
    write(work / "cert.der", payload)
    repo.commit_worktree()
    write(work / "cert.der", b"changed")
    repo.commit_worktree()
    assert history.show(repo, "HEAD~1:cert.der") == payload
    assert history.show(repo, "HEAD:") == b"cert.der\n"
    with pytest.raises(UnknownRevision):
        history.show(repo, "HEAD:nope")
    assert b"config: 1 file changed" in history.show(repo, "HEAD")


def test_write_config_at_puts_each_directory_under_its_label(tmp_path):
    one, two = tmp_path / "a" / "config", tmp_path / "b" / "config"
    repos = []
    for n, work in enumerate((one, two)):
        write(work / "x.json", f"{n}-old")
        repo = Options().repo(work, create=True)
        repo.commit_worktree(when=at(0))
        write(work / "x.json", f"{n}-new")
        repo.commit_worktree(when=at(10))
        repos.append(repo)
    dest = tmp_path / "restored"
    results = history.write_config_at(repos, T0 + timedelta(minutes=5), dest)
    assert (dest / "config" / "x.json").read_text() == "0-old"
    assert (dest / "config-2" / "x.json").read_text() == "1-old"
    assert all(r.commit for r in results)
    single = history.write_config_at(repos[:1], "2024-05-01T12:30:00Z", tmp_path / "one")
    assert (tmp_path / "one" / "x.json").read_text() == "0-new" and single[0].files == 1
    before = history.write_config_at(repos[:1], T0 - timedelta(hours=1), tmp_path / "early")
    assert before[0].commit is None


def test_history_commands_on_a_directory_without_history_are_bad_input(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(BadInput):
        Options().repo(tmp_path / "plain", create=False)


def test_other_time_zone_offsets_resolve_the_same_instant(timeline, tmp_path):
    _work, repo = timeline
    with repo.open() as r:
        plus2 = datetime(2024, 5, 1, 14, 15, tzinfo=timezone(timedelta(hours=2)))
        assert history.commit_at(r, plus2).commit_time == at(10)
    assert isinstance(repo, ConfigRepo)


def test_export_config_at_by_paths_keeps_labels_for_directories_without_history(tmp_path):
    one, empty = tmp_path / "config", tmp_path / "strategies"
    write(one / "x.json", "old")
    Options().repo(one, create=True).commit_worktree(when=at(0))
    empty.mkdir()
    dest = tmp_path / "restored"
    results = history.export_config_at([one, empty], "2024-05-01T13:00:00", dest)
    assert (dest / "config" / "x.json").read_text() == "old"
    assert [r.commit is not None for r in results] == [True, False]
    assert results[1].target == dest / "strategies"
