"""End to end through the command: ``backup compact`` merges the newest incrementals, and
the agent compacts on its own as levels fill up; the latest point and every earlier one
still restore exactly."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.restore.conftest import digest_of


def test_backup_compact_merges_and_restores_exactly(cli, workdir: Path) -> None:
    setup = cli.new_setup(workdir / "manual", extra='[schedule]\nincremental = "30s"\ncompact = ["2m"]\n')
    setup.workload(30, seed=1)
    setup.ok("backup", "full", "--json")
    digests = {}
    for i in range(4):
        setup.workload(10, seed=10 + i)
        seq = setup.ok("backup", "incremental", "--json").json()["last_seq"]
        digests[seq] = digest_of(setup.db)
    result = setup.ok("backup", "compact", "--json").json()
    assert [(m["level"], m["replaces"]) for m in result["merged"]] == [(1, [2, 3, 4, 5])], result
    assert len(result["pruned"]) == 4
    listed = setup.ok("backups", "list", "--json").json()
    assert [(e["n"], e["kind"], e["level"]) for e in listed] == [(1, "full", 0), (6, "incremental", 1)]
    for seq, digest in digests.items():
        target = workdir / f"at-{seq}.sqlite"
        setup.ok("restore", "--to", f"sqlite:///{target}", "--seq", str(seq), "--json")
        assert digest_of(target) == digest, seq
    assert setup.ok("verify", "--deep", "--json").json()["ok"]
    again = setup.ok("backup", "compact", "--json").json()
    assert again["merged"] == [] and again["skipped"] == "nothing to compact"


def test_the_agent_compacts_as_levels_fill(cli, workdir: Path) -> None:
    extra = ('[schedule]\nincremental = "0.2s"\ncompact = ["0.6s", "1.8s"]\nverify = ""\ndrill = false\n\n'
             f'[agent]\nstate_dir = "{workdir / "agent" / "state"}"\n\n[config_vcs]\npaths = []\n')
    setup = cli.new_setup(workdir / "agent", extra=extra)  # fan-ins 3 and 3
    setup.workload(30, seed=1)
    setup.ok("backup", "full", "--json")
    agent, _ = setup.start("agent")
    try:
        deadline = time.monotonic() + 90
        levels: list[int] = []
        while time.monotonic() < deadline and 2 not in levels:
            setup.workload(3, seed=int(time.monotonic() * 1000))
            time.sleep(0.2)
            levels = [e["level"] for e in setup.ok("backups", "list", "--json").json()]
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(120)
    assert 2 in levels, levels
    target = workdir / "latest.sqlite"
    setup.ok("restore", "--to", f"sqlite:///{target}", "--json")
    assert digest_of(target) == digest_of(setup.db)
    assert setup.ok("verify", "--json").json()["ok"]


def test_a_long_catalog_is_listed_as_plain_columns(cli, workdir: Path, monkeypatch) -> None:
    """rich draws about 1,700 rows a second; past PLAIN_AFTER_ROWS the list is plain text,
    every entry still on its own line."""
    from typer.testing import CliRunner

    from tradevault.cli import app
    from tradevault.cli import backup as backup_cli

    setup = cli.new_setup(workdir / "long")
    setup.workload(20, seed=1)
    setup.ok("backup", "full", "--json")
    for i in range(4):
        setup.workload(2, seed=100 + i)
        setup.ok("backup", "incremental", "--json")
    runner = CliRunner()
    monkeypatch.setattr(backup_cli, "PLAIN_AFTER_ROWS", 3)
    plain = runner.invoke(app, ["backups", "list", "-c", str(setup.config)])
    assert plain.exit_code == 0, plain.output
    lines = plain.output.splitlines()
    assert lines[0].split()[:4] == ["#", "kind", "seq", "time"] and len(lines) == 6, plain.output
    assert [line.split()[0] for line in lines[1:]] == ["1", "2", "3", "4", "5"]
    monkeypatch.setattr(backup_cli, "PLAIN_AFTER_ROWS", 500)
    drawn = runner.invoke(app, ["backups", "list", "-c", str(setup.config)])
    assert drawn.exit_code == 0 and "┃" in drawn.output, drawn.output
