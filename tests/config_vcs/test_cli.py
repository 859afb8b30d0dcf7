"""``tradevault config ...`` end to end: the real CLI, exit codes, -c before/after,
and ``config watch`` as a real process stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cvs_helpers import bare_remote, commit_count, git, local_head, remote_head, wait_for, write

from config_vcs.options import Options
from tradevault.cli import app
from tradevault.cli.support import run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path):
    """A watched directory with two commits and a config file pointing at it."""
    work = tmp_path / "config"
    repo = Options().repo(work, create=True)
    write(work / "config.json", '{"v": 1}')
    repo.commit_worktree(when=1714564800)  # 2024-05-01T12:00:00Z
    write(work / "config.json", '{"v": 2}')
    write(work / "cert.der", bytes(range(256)))
    repo.commit_worktree(when=1714565400)  # 12:10
    usb = bare_remote(tmp_path / "usb.git")
    cfg = tmp_path / "tradevault.toml"
    cfg.write_text(
        f'[config_vcs]\npaths = ["{work}"]\nquiet_period = "100ms"\nmax_delay = "1s"\n'
        f'push_retry_max = "500ms"\n[config_vcs.remotes]\nusb = "{usb}"\n'
    )
    return work, cfg, usb


def cli(*argv: str) -> int:
    return run(app, list(argv))


def test_log_json_with_config_after_the_command(project, capsys):
    _work, cfg, _ = project
    assert cli("config", "log", "--json", "-c", str(cfg)) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["time"] for e in entries] == ["2024-05-01T12:10:00Z", "2024-05-01T12:00:00Z"]
    assert entries[0]["summary"] == "config: 2 files changed (+1 ~1 -0)"


def test_log_with_config_before_the_command_and_a_path(project, capsys):
    _work, cfg, _ = project
    assert cli("-c", str(cfg), "config", "log", "cert.der") == 0
    out = capsys.readouterr().out
    assert out.count("config:") == 1 and "added     cert.der" in out


def test_checkout_at_time_to_directory(project, tmp_path, capsys):
    _work, cfg, _ = project
    out_dir = tmp_path / "restored"
    code = cli("config", "checkout", "--at", "2024-05-01T12:05:00", "--to", str(out_dir), "--json", "-c", str(cfg))
    assert code == 0
    assert (out_dir / "config.json").read_text() == '{"v": 1}'
    assert json.loads(capsys.readouterr().out)["written"] == ["config.json"]


def test_checkout_in_place_is_committed(project, capsys):
    work, cfg, _ = project
    assert cli("config", "checkout", "--rev", "HEAD~1", "config.json", "-c", str(cfg)) == 0
    assert (work / "config.json").read_text() == '{"v": 1}'
    assert commit_count(work) == 3
    assert "restore config.json to" in git("log", "-1", "--format=%s", cwd=work)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["config", "checkout", "--rev", "HEAD", "--to", "OUT", "../../etc/passwd"], "escapes"),
        (["config", "checkout", "--rev", "nope", "--to", "OUT"], "unknown revision"),
        (["config", "checkout", "--at", "tomorrow-ish", "--to", "OUT"], "ISO 8601"),
        (["config", "checkout", "--at", "2020-01-01", "--to", "OUT"], "no configuration recorded"),
        (["config", "checkout", "--to", "OUT"], "exactly one"),
        (["config", "show", "HEAD:missing.json"], "does not exist"),
        (["config", "log", "--path", "/not/watched"], "not one of the watched"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(project, tmp_path, capsys, argv, message):
    work, cfg, _ = project
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    assert cli(*argv, "-c", str(cfg)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "out").exists() and commit_count(work) == 2


def test_show_writes_the_exact_bytes(project, capsysbinary):
    _work, cfg, _ = project
    assert cli("config", "show", "HEAD:cert.der", "-c", str(cfg)) == 0
    assert capsysbinary.readouterr().out == bytes(range(256))


def test_diff_between_two_revisions(project, capsys):
    _work, cfg, _ = project
    assert cli("config", "diff", "HEAD~1", "HEAD", "-c", str(cfg)) == 0
    out = capsys.readouterr().out
    assert '-{"v": 1}' in out and '+{"v": 2}' in out


def test_status_reports_unpushed_commits_per_remote(project, capsys):
    _work, cfg, _ = project
    assert cli("config", "status", "--json", "-c", str(cfg)) == 0
    report = json.loads(capsys.readouterr().out)
    assert report[0]["remotes"]["usb"]["unpushed"] == 2


def test_watch_runs_until_sigterm_then_flushes_and_pushes(project, tmp_path):
    work, cfg, usb = project
    text = cfg.read_text().replace('quiet_period = "100ms"', 'quiet_period = "30s"').replace(
        'max_delay = "1s"', 'max_delay = "60s"'
    )
    cfg.write_text(text)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tradevault.cli", "config", "watch", "-c", str(cfg)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for(lambda: remote_head(usb) == local_head(work), what="catch-up push at start")
        write(work / "config.json", '{"v": "edited just before shutdown"}')
        time.sleep(0.5)  # the event is seen; the 30 s quiet period has not passed
        assert commit_count(work) == 2
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert commit_count(work) == 3
    assert git("show", "HEAD:config.json", cwd=work) == '{"v": "edited just before shutdown"}'
    assert remote_head(usb) == local_head(work)


def test_path_option_chooses_among_several_watched_directories(tmp_path, capsys):
    one, two = tmp_path / "config", tmp_path / "strategies"
    for work, name in ((one, "config.json"), (two, "s.py")):
        write(work / name, "x")
        Options().repo(work, create=True).commit_worktree()
    cfg = tmp_path / "tv.toml"
    cfg.write_text(f'[config_vcs]\npaths = ["{one}", "{two}"]\n')
    assert cli("config", "log", "--json", "-c", str(cfg)) == 0
    assert json.loads(capsys.readouterr().out)[0]["files"] == [{"path": "config.json", "change": "added"}]
    assert cli("config", "log", "--json", "--path", "strategies", "-c", str(cfg)) == 0
    assert json.loads(capsys.readouterr().out)[0]["files"] == [{"path": "s.py", "change": "added"}]
    assert cli("config", "show", "HEAD:s.py", "--path", str(two), "-c", str(cfg)) == 0
    assert capsys.readouterr().out == "x"
