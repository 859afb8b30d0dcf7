"""End to end: after ``follow`` + ``promote``, the old primary comes back and writes. Two
primaries must not append to one chain: its ``backup incremental``, ``backup full``,
``agent`` and ``follow --to`` it all exit 3 naming the promotion, and its changes stay in
its own change log; the promoted database's first ``backup full`` starts the next chain,
``backups list`` shows the epochs, and ``restore`` of the latest point comes from it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from trade_stream.sqlite.capture import CHANGES

FAST_AGENT = '[schedule]\nincremental = "0.3s"\nverify = ""\ndrill = false\n\n[config_vcs]\npaths = []\n'


def promoted_config(path: Path, db: Path, locations: dict[str, Path], source: str) -> Path:
    """The promoted database's config: same locations and source name, its own database."""
    (path.parent / "work").mkdir(exist_ok=True)
    text = f'work_dir = "{path.parent / "work"}"\n\n[database]\nurl = "sqlite:///{db}"\nname = "{source}"\n\n'
    for name, directory in locations.items():
        text += f'[[locations]]\nname = "{name}"\nurl = "file://{directory}"\n\n'
    path.write_text(text + "[config_vcs]\npaths = []\n")
    return path


def test_promote_fences_the_old_primary_and_the_promoted_database_starts_the_next_chain(cli, workdir: Path) -> None:
    primary = cli.new_setup(workdir / "primary", ("local", "second"), extra=FAST_AGENT)
    primary.workload(60, seed=1)
    primary.ok("backup", "full", "--json")
    primary.workload(40, seed=2)
    primary.ok("backup", "incremental", "--json")
    standby = workdir / "standby.sqlite"
    primary.ok("follow", "--to", f"sqlite:///{standby}", "--once", "--json")
    promoted = primary.ok("promote", "--to", f"sqlite:///{standby}", "--json").json()
    assert promoted["epoch"] == 1 and sorted(promoted["recorded_in"]) == ["local", "second"], promoted
    for location in primary.locations:
        assert (primary.source_dir(location) / "fence.json").exists()

    # the old primary comes back and keeps writing
    primary.workload(30, seed=3)
    before = primary.ok("backups", "list", "--json").json()
    for command in (["backup", "incremental"], ["backup", "full"], ["agent"]):
        refused = primary.tv(*command, timeout=60)
        assert refused.rc == 3, f"{command}: two primaries must not share the chain\n{refused}"
        message = refused.err.strip().splitlines()[-1]
        assert "promote" in message and "epoch 1" in message and str(standby) in message, message
    assert primary.ok("backups", "list", "--json").json() == before, "a fenced backup changed the catalog"
    objects = {p.name for location in primary.locations for p in (primary.source_dir(location) / "objects").iterdir()}
    assert len(objects) == len(before), f"a fenced backup left its object behind: {sorted(objects)}"
    assert primary.tv("verify").rc == 0
    follow = primary.tv("follow", "--to", f"sqlite:///{primary.db}", "--once", "--force")
    assert follow.rc == 3 and "epoch 1" in follow.err, str(follow)
    conn = sqlite3.connect(primary.db)
    try:
        kept = conn.execute(f"SELECT count(*) FROM {CHANGES}").fetchone()[0]
    finally:
        conn.close()
    assert kept > 0, "the old primary's changes since the promotion stay in its change log"

    # the promoted database's first full backup starts the next chain
    config = promoted_config(workdir / "promoted.toml", standby, primary.locations, "tradesv3")
    bot = cli.TradingWorkload(standby, seed=4)
    try:
        bot.run(25)
    finally:
        bot.close()
    assert cli.tv("backup", "full", "--json", "-c", str(config), cwd=workdir).rc == 0
    entries = cli.tv("backups", "list", "--json", "-c", str(config), cwd=workdir).json()
    assert [e["epoch"] for e in entries] == [0] * len(before) + [1], entries
    restored = workdir / "restored.sqlite"
    done = cli.tv("restore", "--to", f"sqlite:///{restored}", "--json", "-c", str(config), cwd=workdir)
    assert done.rc == 0, str(done)
    assert cli.digest_of(restored) == cli.digest_of(standby), "the latest point is the promoted database's"
