"""Change classification and commit message format (pure)."""

from config_vcs.commit_message import (
    ADDED,
    DELETED,
    MODIFIED,
    RENAMED,
    Change,
    diff_entries,
    display_path,
    format_message,
    summary_line,
)

A, B, C = b"a" * 40, b"b" * 40, b"c" * 40
EMPTY = b"e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"


def test_added_modified_deleted_are_classified():
    old = {b"keep": (0o100644, A), b"edit": (0o100644, A), b"gone": (0o100644, B)}
    new = {b"keep": (0o100644, A), b"edit": (0o100644, C), b"new": (0o100644, EMPTY)}
    assert diff_entries(old, new) == [
        Change(b"edit", MODIFIED), Change(b"gone", DELETED), Change(b"new", ADDED)
    ]


def test_mode_only_change_is_a_modification():
    assert diff_entries({b"run.sh": (0o100644, A)}, {b"run.sh": (0o100755, A)}) == [
        Change(b"run.sh", MODIFIED)
    ]


def test_move_with_identical_content_is_a_rename():
    changes = diff_entries({b"old.json": (0o100644, A)}, {b"sub/new.json": (0o100644, A)})
    assert changes == [Change(b"sub/new.json", RENAMED, b"old.json")]


def test_empty_files_are_not_paired_as_renames():
    changes = diff_entries({b"x": (0o100644, EMPTY)}, {b"y": (0o100644, EMPTY)})
    assert {c.kind for c in changes} == {ADDED, DELETED}


def test_summary_line_counts_each_kind():
    changes = [Change(b"a", ADDED), Change(b"b", MODIFIED), Change(b"c", DELETED)]
    assert summary_line(changes) == "config: 3 files changed (+1 ~1 -1)"
    assert summary_line([Change(b"a", RENAMED, b"z")]) == "config: 1 file changed (+0 ~1 -0)"


def test_message_lists_paths_then_host_trailer_and_never_contents():
    changes = [Change(b"a.json", ADDED), Change(b"b.json", RENAMED, b"old.json")]
    message = format_message(changes, "bot-1")
    assert message.splitlines() == [
        "config: 2 files changed (+1 ~1 -0)",
        "",
        "added: a.json",
        "renamed: old.json -> b.json",
        "",
        "Host: bot-1",
    ]


def test_long_change_lists_are_cut():
    changes = [Change(f"f{i:04}".encode(), ADDED) for i in range(30)]
    message = format_message(changes, "h", max_listed=10)
    assert "... and 20 more" in message
    assert message.startswith("config: 30 files changed (+30 ~0 -0)")


def test_paths_display_like_git_with_quotepath_off():
    assert display_path("ünï cödé.json".encode()) == "ünï cödé.json"
    assert display_path(b"new\nline") == '"new\\nline"'
    assert display_path(b"\xff\xfe") == '"\\377\\376"'


def test_a_path_kept_on_disk_is_untracked_with_its_reason_and_never_a_rename_source():
    from config_vcs.commit_message import UNTRACKED

    old = {b"tradesv3.sqlite": (0o100644, A), b"logs/bot.log": (0o100644, B), b"gone.json": (0o100644, C)}
    new = {b"copy.sqlite.json": (0o100644, A)}  # same blob as the untracked database
    kept = {b"tradesv3.sqlite": "database", b"logs/bot.log": "log"}
    changes = diff_entries(old, new, kept=kept)
    assert changes == [
        Change(b"copy.sqlite.json", ADDED), Change(b"gone.json", DELETED),
        Change(b"logs/bot.log", UNTRACKED, reason="log"),
        Change(b"tradesv3.sqlite", UNTRACKED, reason="database"),
    ]
    message = format_message(changes, "h")
    lines = message.splitlines()
    assert lines[0] == "config: 4 files changed (+1 ~0 -3, 2 untracked)"
    assert "untracked: tradesv3.sqlite (database; kept on disk)" in lines
    assert "untracked: logs/bot.log (log; kept on disk)" in lines
    assert any(line.startswith("Untracked 2 file(s) that are not configuration") for line in lines)
    assert lines[-1] == "Host: h"
    assert Change(b"x", UNTRACKED, reason="log").as_dict() == {"path": "x", "change": "untracked", "reason": "log"}
    assert "untracked" not in format_message(diff_entries(old, new), "h")  # without kept: deleted
