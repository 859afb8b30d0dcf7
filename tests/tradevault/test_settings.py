"""The configuration contract: TOML, then TRADEVAULT_* variables over it; every mistake
is one clear line naming the key (exit 2 at the CLI), and nothing else is needed to read
it (no pydantic at start-up)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradevault.settings import Settings, SettingsError, environment_overrides, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tradevault.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "missing.toml")
    assert settings == Settings()
    assert settings.database.url == "sqlite:///tradesv3.sqlite"
    assert settings.schedule.incremental == 30.0
    assert [loc.name for loc in settings.locations] == ["local"]


def test_file_values_durations_sizes_and_remote_tables(tmp_path: Path) -> None:
    path = write(tmp_path, """
work_dir = "/tmp/w"
[database]
url = "sqlite:///bot.sqlite"
include = ["trades"]
[[locations]]
name = "a"
url = "file:///a"
[[locations]]
name = "b"
url = "file:///b"
[schedule]
incremental = "500ms"
drill = false
[retention]
pitr = "2d"
[config_vcs]
paths = ["user_data"]
max_file_size = "2MiB"
[config_vcs.remotes]
origin = "git@host:bot.git"
mirror = { url = "/srv/mirror.git", allow_plaintext_secrets = true }
""")
    s = load_settings(path)
    assert s.work_dir == "/tmp/w" and s.database.include == ["trades"]
    assert [(loc.name, loc.url) for loc in s.locations] == [("a", "file:///a"), ("b", "file:///b")]
    assert s.schedule.incremental == 0.5 and s.schedule.drill is False
    assert s.retention.pitr == 2 * 86400
    assert s.config_vcs.paths == [Path("user_data")] and s.config_vcs.max_file_size == 2 * 1024 * 1024
    assert s.config_vcs.remotes == {"origin": "git@host:bot.git", "mirror": "/srv/mirror.git"}
    assert s.config_vcs.plaintext_remotes == ("mirror",)


def test_environment_wins_over_the_file_and_reads_types(tmp_path: Path, monkeypatch) -> None:
    path = write(tmp_path, '[database]\nurl = "sqlite:///file.sqlite"\n[backup]\ncompression_level = 3\n')
    monkeypatch.setenv("TRADEVAULT_DATABASE__URL", "sqlite:///env.sqlite")
    monkeypatch.setenv("tradevault_backup__compression_level", "9")  # names are case-insensitive
    monkeypatch.setenv("TRADEVAULT_DATABASE__SQLITE_WAL", "false")
    monkeypatch.setenv("TRADEVAULT_SCHEDULE__INCREMENTAL", "10s")
    monkeypatch.setenv("TRADEVAULT_DATABASE__INCLUDE", '["orders"]')
    monkeypatch.setenv("TRADEVAULT_WORK_DIR", "[not json: a string setting]")
    monkeypatch.setenv("TRADEVAULT_CONFIG", str(path))  # names the file, not a setting
    s = load_settings(path)
    assert s.database.url == "sqlite:///env.sqlite"
    assert s.backup.compression_level == 9
    assert s.database.sqlite_wal is False
    assert s.schedule.incremental == 10.0
    assert s.database.include == ["orders"]
    assert s.work_dir == "[not json: a string setting]"


def test_locations_from_the_environment_as_json() -> None:
    data = environment_overrides({}, {"TRADEVAULT_LOCATIONS": '[{"name": "s3", "url": "s3://b/p"}]'})
    assert data == {"locations": [{"name": "s3", "url": "s3://b/p"}]}


@pytest.mark.parametrize(("text", "env", "message"), [
    ('[database]\nurll = "x"\n', {}, "database.urll: unknown setting"),
    ('[nope]\nx = 1\n', {}, "nope: unknown setting"),
    ('[backup]\ncompression_level = "high"\n', {}, "backup.compression_level: want an integer"),
    ('[schedule]\nincremental = "soon"\n', {}, "schedule.incremental: not a duration"),
    ('[schedule]\ndrill = "maybe"\n', {}, "schedule.drill: want true or false"),
    ('[[locations]]\nname = "a"\n', {}, "locations[0].url: required"),
    ('[config_vcs.remotes]\norigin = { allow_plaintext_secrets = true }\n', {}, "origin.url: required"),
    ('[config_vcs]\nmax_file_size = "-1"\n', {}, "config_vcs.max_file_size"),
    ("", {"TRADEVAULT_DATABASE__NOPE": "1"}, "database.nope: unknown setting"),
    ("", {"TRADEVAULT_DATABASE__INCLUDE": "[trades"}, "TRADEVAULT_DATABASE__INCLUDE: not valid JSON"),
    ('[[locations]]\nname = "a"\nurl = "file:///a"\n[[locations]]\nname = "a"\nurl = "file:///b"\n', {},
     "names must be unique"),
])
def test_mistakes_are_one_line_naming_the_key(tmp_path: Path, monkeypatch, text: str, env: dict, message: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = write(tmp_path, text)
    with pytest.raises(SettingsError) as caught:
        load_settings(path)
    assert message in str(caught.value) and str(path) in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 2
