"""A restore, or a point of the time-travel cache, that this machine cannot write out (its
disk is full, or a file-size limit stops it) is a one-line error naming that, exit 1, and
leaves nothing behind: it is not reported as damaged backups, and no other copy is tried.
The limit is a real one: RLIMIT_FSIZE, set on the command's process."""

from __future__ import annotations

import resource
import signal
import subprocess
from pathlib import Path

from tests.cli_harness import TV_CMD, clean_env


def _limited(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def _tv_limited(setup, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*TV_CMD, *args, "-c", str(setup.config)], cwd=setup.root, env=clean_env(),
                          capture_output=True, text=True, timeout=120, preexec_fn=_limited(16 * 1024))


def test_a_restore_this_machine_cannot_write_out_is_not_called_damaged_backups(cli, workdir: Path) -> None:
    setup = cli.new_setup(workdir / "full-disk")
    setup.workload(400, seed=51)
    setup.ok("backup", "full")
    target = workdir / "restored.sqlite"
    result = _tv_limited(setup, "restore", "--to", f"sqlite:///{target}")
    assert result.returncode == 1, result.stderr
    assert "could not write out what it holds" in result.stderr and "File too large" in result.stderr
    assert "intact" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert sorted(p.name for p in workdir.iterdir() if p.name.startswith(("restored", ".restored"))) == []
    setup.ok("restore", "--to", f"sqlite:///{target}")  # with room, the same restore works


def test_a_time_travel_point_with_no_room_says_where_room_is_missing(cli, workdir: Path) -> None:
    setup = cli.new_setup(workdir / "full-cache")
    setup.workload(400, seed=52)
    setup.ok("backup", "full")
    result = _tv_limited(setup, "query", "--seq", "0", "SELECT count(*) FROM trades")
    assert result.returncode == 1 and "no room in" in result.stderr and "work_dir" in result.stderr, result.stderr
    assert not [p for p in (setup.root / "work" / "time-travel").rglob("*") if p.is_file()]
