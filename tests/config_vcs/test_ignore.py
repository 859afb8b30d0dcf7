"""Ignore rules: droppings, configured globs, .git (pure), and the managed exclude block."""

import pytest

from config_vcs.ignore import StaticIgnore, is_git_internal, merge_exclude_file


@pytest.mark.parametrize(
    "path",
    [".config.json.swp", "config.json~", ".#config.json", "#config.json#", "x.tmp",
     "sub/.DS_Store", "strategies/__pycache__/s.cpython-311.pyc"],
)
def test_editor_and_os_droppings_are_ignored(path):
    assert StaticIgnore().ignores(path)


@pytest.mark.parametrize("path", ["config.json", "strategies/s.py", "tmp/config.toml", ".env"])
def test_configuration_files_are_not_ignored(path):
    assert not StaticIgnore().ignores(path)


def test_configured_globs_have_gitignore_semantics():
    ignore = StaticIgnore(["*.log", "cache/", "/local.json"])
    assert ignore.ignores("bot.log") and ignore.ignores("a/b/bot.log")
    assert ignore.ignores("cache", is_dir=True) and ignore.ignores("cache/x.json")
    assert ignore.ignores("local.json") and not ignore.ignores("sub/local.json")


def test_anything_in_dot_git_is_ignored():
    assert is_git_internal(".git") and is_git_internal(".git/index") and is_git_internal("sub/.git/HEAD")
    assert not is_git_internal("git/x") and not is_git_internal(".gitignore")
    assert StaticIgnore().ignores(".git/objects/ab/cdef")


def test_exclude_block_is_replaced_not_duplicated():
    first = merge_exclude_file("# user line\n*.bak\n", ["*.swp"])
    second = merge_exclude_file(first, ["*.swp", "*.log"])
    assert second.count("tradevault") == 2  # one begin and one end marker
    assert "# user line\n*.bak\n" in second and "*.log" in second
    assert merge_exclude_file(second, ["*.swp", "*.log"]) == second
