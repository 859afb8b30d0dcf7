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


# -- what is not configuration by name: the defaults, include, exclude --------------------------

from config_vcs.errors import BadInput  # noqa: E402
from config_vcs.ignore import PathFilter, literal, managed_block  # noqa: E402
from config_vcs.options import Options  # noqa: E402
from config_vcs.reasons import DATA_DIR, EXCLUDE, LOG, SQLITE  # noqa: E402


@pytest.mark.parametrize("path, is_dir, reason", [
    ("freqtrade.log", False, LOG),
    ("sub/bot.log", False, LOG),
    ("logs", True, LOG),
    ("logs/freqtrade.log.1", False, LOG),
    ("data", True, DATA_DIR),
    ("data/binance/BTC_USDT-5m.feather", False, DATA_DIR),
    ("user_data/data", True, DATA_DIR),  # a bot directory one level down
    ("backtest_results", True, DATA_DIR),
    ("hyperopt_results", True, DATA_DIR),
    ("plot", True, DATA_DIR),
    ("notebooks", True, DATA_DIR),
    ("tradesv3.sqlite", False, SQLITE),
    ("tradesv3.sqlite-wal", False, SQLITE),
    ("tradesv3.sqlite-shm", False, SQLITE),
    ("x.sqlite3-journal", False, SQLITE),
    ("trades.db-wal", False, SQLITE),
])
def test_default_rules_name_their_reason(path, is_dir, reason):
    assert StaticIgnore().reason(path, is_dir) == reason


@pytest.mark.parametrize("path", ["config.json", "strategies/SampleStrategy.py", "database.json",
                                  "datasets.json", "logging.json", "plots.py", "trades.db"])
def test_configuration_names_are_not_caught_by_the_defaults(path):
    assert StaticIgnore().reason(path) is None


def test_include_re_admits_what_a_default_leaves_out_and_nothing_else():
    rules = StaticIgnore(include=["data/pairs.json", "*.log"])
    assert rules.reason("data/pairs.json") is None and rules.included("data/pairs.json")
    assert rules.reason("data/binance/BTC.feather") == DATA_DIR
    assert rules.reason("logs/freqtrade.log") is None  # *.log names the file below logs/
    assert rules.reason("logs/other.txt") == LOG
    assert not rules.included("config.json")


def test_exclude_wins_over_include():
    rules = StaticIgnore(exclude=["debug.log", "private/"], include=["*.log", "private/keep.json"])
    assert rules.reason("debug.log") == EXCLUDE and rules.reason("bot.log") is None
    assert rules.reason("private/keep.json") == EXCLUDE


def test_a_default_directory_is_walked_only_when_an_include_can_reach_below_it():
    assert StaticIgnore().may_prune("data", DATA_DIR)
    assert not StaticIgnore(include=["data/pairs.json"]).may_prune("data", DATA_DIR)
    assert not StaticIgnore(include=["*.json"]).may_prune("data", DATA_DIR)  # any depth
    assert not StaticIgnore(include=["user_data/data/**/*.json"]).may_prune("user_data/data", DATA_DIR)
    assert StaticIgnore(include=["/strategies/x.py"]).may_prune("data", DATA_DIR)
    assert StaticIgnore(include=["other/data/x.json"]).may_prune("data", DATA_DIR)
    assert StaticIgnore(include=["*.json"]).may_prune("private", EXCLUDE)  # exclude always prunes


@pytest.mark.parametrize("key, globs, message", [
    ("include", ["!data/"], "include globs re-admit"),
    ("include", [""], "empty glob"),
    ("exclude", ["  "], "empty glob"),
    ("exclude", ["a\nb"], "one line"),
])
def test_bad_globs_are_one_line_bad_input(key, globs, message):
    with pytest.raises(BadInput, match=message) as caught:
        Options(**{key: tuple(globs)}).static_ignore()
    assert "\n" not in str(caught.value).replace("\\n", "")


def test_max_file_size_must_be_positive():
    with pytest.raises(BadInput, match="max_file_size"):
        Options(max_file_size=0)


def test_the_managed_block_is_never_read_back_as_a_rule(tmp_path):
    """Our block lists data/ and content-detected paths; an include must still win, and the
    user's own lines in .git/info/exclude still count."""
    from dulwich.repo import Repo

    work = tmp_path / "config"
    work.mkdir()
    Repo.init(str(work)).close()
    exclude = work / ".git" / "info" / "exclude"
    exclude.parent.mkdir(exist_ok=True)
    exclude.write_text(merge_exclude_file("mine.json\n", ["data/", "/strategies/x.py"]))
    repo = Repo(str(work))
    try:
        pfilter = PathFilter.for_repo(repo, StaticIgnore(include=["data/pairs.json"]))
        assert pfilter.file_reason("data/pairs.json") is None
        assert pfilter.file_reason("strategies/x.py") is None
        assert pfilter.file_reason("mine.json") == "gitignore"
    finally:
        repo.close()
    assert managed_block(exclude.read_text()) == ["data/", "/strategies/x.py"]


def test_literal_patterns_match_exactly_one_path():
    from dulwich.ignore import IgnoreFilter

    for path in ["a/b.json", "we[ir]d*name?.bin", "#hash", "!bang", "trailing "]:
        pattern = literal(path)
        f = IgnoreFilter([pattern.encode()])
        assert f.is_ignored(path), (path, pattern)
    assert not IgnoreFilter([literal("we[ir]d*name?.bin").encode()]).is_ignored("weid-name-.bin")
    assert not IgnoreFilter([literal("a.json").encode()]).is_ignored("sub/a.json")  # anchored
