"""Path rules (pure): nothing may escape the target directory."""

from pathlib import Path

import pytest

from config_vcs.errors import PathEscapes
from config_vcs.paths import check_tree_path, in_scope, labels_for, tree_path


def test_relative_paths_are_normalised():
    assert tree_path("./a//b/../c.json") == b"a/c.json"
    assert tree_path(".") == b"" and tree_path("") == b""


def test_absolute_path_inside_the_root_is_made_relative(tmp_path):
    assert tree_path(str(tmp_path / "sub" / "x.json"), tmp_path) == b"sub/x.json"


@pytest.mark.parametrize("path", ["../x", "a/../../x", "/etc/passwd", ".git/config", "sub/.git/HEAD"])
def test_escaping_paths_are_refused_with_exit_code_2(path, tmp_path):
    with pytest.raises(PathEscapes) as err:
        tree_path(path, tmp_path / "root")
    assert err.value.exit_code == 2


@pytest.mark.parametrize("path", [b"../x", b"/abs", b"a/./b", b".git/hooks/post-commit", b"a//b", b""])
def test_unsafe_paths_found_in_a_tree_are_refused(path):
    with pytest.raises(PathEscapes):
        check_tree_path(path)


def test_scope_matches_files_and_directories():
    assert in_scope(b"strategies/s.py", [b"strategies"])
    assert not in_scope(b"strategies2/s.py", [b"strategies"])
    assert in_scope(b"anything", [])


def test_labels_are_unique_base_names():
    assert labels_for([Path("/a/config"), Path("/b/config"), Path("/c/strategies")]) == [
        "config", "config-2", "strategies",
    ]
