"""End to end: the newest backups deleted in every location while the bot keeps its
database. ``restore`` of the latest point must not hand back the previous point with exit 0
(found by the corruption campaign, case 83): it exits 3 naming the missing range, whichever
witness remains (a location's head record, the source's change log); ``--seq`` at the
chain's end restores the older point knowingly; ``verify``, ``status`` and ``recover`` say
the same.

The pristine store (see conftest): 1 full, 2 incremental, 3 full, 4 incremental, 5
incremental, in two locations.
"""

from __future__ import annotations

import json
from pathlib import Path

NEWEST = 5


def lose_newest(setup, *, heads: bool = False) -> None:
    """Entry #5 gone from every location (its object stays: only the catalog lost it). The
    heads stay as witnesses, in the form written before they carried copies of the newest
    entries (``heads``: gone too)."""
    for location in setup.locations:
        setup.entry_path(NEWEST, location).unlink()
        head = setup.source_dir(location) / "head.json"
        if heads:
            head.unlink()
        else:
            found = json.loads(head.read_text())
            head.write_text(json.dumps({k: found[k] for k in ("n", "last_seq", "entry_hash", "created_at")}))


def test_a_lost_entry_file_is_restored_from_the_heads_copy(cli, pristine, workdir: Path) -> None:
    """Today's heads carry copies of the newest entries: losing the entry files alone loses
    nothing a restore needs, and verify still names the missing file."""
    setup = cli.copy_setup(pristine.setup, workdir)
    for location in setup.locations:
        setup.entry_path(NEWEST, location).unlink()
    target, url = target_of(setup)
    done = setup.tv("restore", "--to", url, "--json")
    assert done.rc == 0 and done.json()["last_seq"] == pristine.entries[-1]["last_seq"], str(done)
    verify = setup.tv("verify", "--json")
    assert verify.rc == 3, str(verify)
    assert any(p["object"] == "manifest/0000000005.json" for p in verify.json()["problems"]), str(verify)


def check_refused(result, target: Path, context: str) -> str:
    assert result.rc == 3, f"{context}: must exit 3\n{result}"
    line = result.err.strip()
    assert len(line.splitlines()) == 1, f"{context}: one line\n{result}"
    assert not target.exists() and not any(target.parent.iterdir()), f"{context}: target written\n{result}"
    return line


def target_of(setup) -> tuple[Path, str]:
    directory = setup.root / "restored"
    directory.mkdir(exist_ok=True)
    path = directory / "out.sqlite"
    return path, f"sqlite:///{path}"


def test_restore_refuses_when_a_head_shows_newer_entries(cli, pristine, workdir: Path) -> None:
    setup = cli.copy_setup(pristine.setup, workdir)
    lose_newest(setup)
    target, url = target_of(setup)
    line = check_refused(setup.tv("restore", "--to", url), target, "head evidence")
    assert "newest backups are missing" in line and "#4" in line and "#5" in line, line
    assert "head" in line, line
    chain_end = pristine.entries[NEWEST - 2]["last_seq"]
    assert f"restore --seq {chain_end}" in line, line
    # knowingly older: --seq at the chain's end works and says what it restored
    done = setup.tv("restore", "--to", url, "--seq", str(chain_end), "--json")
    assert done.rc == 0, str(done)
    assert done.json()["last_seq"] == chain_end


def test_restore_refuses_on_the_source_change_log_alone(cli, pristine, workdir: Path) -> None:
    setup = cli.copy_setup(pristine.setup, workdir)
    lose_newest(setup, heads=True)  # no head left: the source's change log is the witness
    target, url = target_of(setup)
    line = check_refused(setup.tv("restore", "--to", url), target, "source evidence")
    assert "source database" in line and f"seq {pristine.entries[-1]['last_seq']}" in line, line


def test_restore_refuses_on_the_head_alone_when_the_database_is_gone(cli, pristine, workdir: Path) -> None:
    setup = cli.copy_setup(pristine.setup, workdir)
    lose_newest(setup)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{setup.db}{suffix}").unlink(missing_ok=True)
    target, url = target_of(setup)
    check_refused(setup.tv("restore", "--to", url), target, "database gone, head remains")
    recover = setup.tv("recover", "--if-missing")
    assert recover.rc == 3 and "newest backups are missing" in recover.out + recover.err, str(recover)
    assert not setup.db.exists(), "recover must not put an older database in place"


def test_verify_and_status_report_the_missing_newest_entries(cli, pristine, workdir: Path) -> None:
    setup = cli.copy_setup(pristine.setup, workdir)
    lose_newest(setup)
    verify = setup.tv("verify", "--json")
    assert verify.rc == 3, str(verify)
    assert any(p["object"] == "manifest/0000000005.json" and "#5" in p["problem"]
               for p in verify.json()["problems"]), str(verify)
    status = setup.tv("status", "--json")
    assert status.rc == 0, str(status)
    assert "newest backups are missing" in (status.json().get("backups_missing") or ""), str(status)
    text = setup.tv("status")
    assert "newest backups are missing" in text.out, str(text)


def test_an_intact_store_restores_the_latest_point(cli, pristine, workdir: Path) -> None:
    setup = cli.copy_setup(pristine.setup, workdir)
    for location in setup.locations:
        assert (setup.source_dir(location) / "head.json").exists(), "every location has a head record"
    target, url = target_of(setup)
    done = setup.tv("restore", "--to", url, "--json")
    assert done.rc == 0 and done.json()["last_seq"] == pristine.entries[-1]["last_seq"], str(done)
    assert setup.tv("status", "--json").json().get("backups_missing") is None


def test_the_agents_state_file_is_a_witness_too(cli, workdir: Path) -> None:
    """Heads gone and the database gone: what the agent's state file says it stored last
    still shows the chain is short (the agent need not be running)."""
    import signal
    import time

    extra = '[schedule]\nincremental = "0.3s"\nverify = ""\ndrill = false\n\n[agent]\nstate_dir = "{}"\n\n' \
            '[config_vcs]\npaths = []\n'
    setup = cli.new_setup(workdir / "agent", extra=extra.format(workdir / "agent" / "state"))
    setup.workload(40, seed=1)
    setup.ok("backup", "full", "--json")
    agent, _ = setup.start("agent")
    try:
        state_file = workdir / "agent" / "state" / "agent.json"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            setup.workload(5, seed=int(time.monotonic()))
            state = json.loads(state_file.read_text()) if state_file.exists() else {}
            if (state.get("stored") or {}).get("n", 0) > 1:  # an incremental after the full
                break
            time.sleep(0.3)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(120)
    newest = max(e["n"] for e in setup.ok("backups", "list", "--json").json())
    assert json.loads(state_file.read_text())["stored"]["n"] == newest  # its final seal included
    for location in setup.locations:
        setup.entry_path(newest, location).unlink()
        (setup.source_dir(location) / "head.json").unlink()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{setup.db}{suffix}").unlink(missing_ok=True)
    target, url = target_of(setup)
    line = check_refused(setup.tv("restore", "--to", url), target, "agent state evidence")
    assert "the agent's state file" in line and f"#{newest}" in line, line
