"""The command line as people expect it: ``--version``, commands listed in the order a user
needs them, and options that show their value's kind (TEXT, INTEGER, URL...), not typer's
Python type names."""

from __future__ import annotations

import re
import subprocess

import pytest
import typer

from tests.cli_harness import TV_CMD, clean_env
from tradevault.cli import ORDER, app
from tradevault.cli.support import run


def command_paths() -> list[list[str]]:
    """Every command and group, as the words that name it."""
    paths: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


def help_of(path: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", "120")
    assert run(app, [*path, "--help"]) == 0
    return capsys.readouterr().out


def test_version_prints_the_version_and_exits_0(tmp_path) -> None:
    proc = subprocess.run([*TV_CMD, "--version"], cwd=tmp_path, env=clean_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"tradevault \S+\n", proc.stdout)


def test_root_help_lists_commands_in_the_order_a_user_needs_them(capsys, monkeypatch) -> None:
    text = help_of([], capsys, monkeypatch)
    listed = re.findall(r"^│ (\w+) ", text.split("Commands")[1], re.MULTILINE)
    assert listed == list(ORDER)
    assert listed[:10] == ["init", "backup", "backups", "restore", "verify", "status", "history", "diff", "query",
                           "agent"]


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "tradevault")
def test_help_shows_value_kinds_not_python_types(path, capsys, monkeypatch) -> None:
    text = help_of(path, capsys, monkeypatch)
    assert not re.search(r"<(str|bool|int|float|path|list\[[a-z]+\])>", text, re.IGNORECASE), text


def test_restore_options_name_what_they_take(capsys, monkeypatch) -> None:
    text = help_of(["restore"], capsys, monkeypatch)
    for option, kind in (("--to", "URL"), ("--at", "TIME"), ("--seq", "INTEGER"), ("--from", "LOCATION"),
                         ("--config-to", "PATH"), ("--config", "FILE")):
        assert re.search(rf"{option} .*\b{kind}\b", text), (option, kind, text)
    assert not re.search(r"--dry-run\s+\S+\s{2,}Show", text)  # a flag takes no value
