"""`tradevault backup consolidate`: a full backup built from the store, so a restore of the
latest point replays nothing, while every earlier point stays restorable.

Real CLI, real SQLite source with the trading workload, real file locations.
"""

from __future__ import annotations

import json
import sqlite3
import time

from restore.planner import format_ts
from tests.cli_harness import digest_of
from trade_stream.object_format import ObjectReader


def test_consolidated_full_restores_the_latest_point_without_replay_and_keeps_history(workdir, cli):
    setup = cli.new_setup(workdir / "s", ("local", "second"))
    setup.workload(60, seed=1)
    setup.ok("backup", "full")
    setup.workload(80, seed=2)
    setup.bulk_update(3, salt=1)
    setup.ok("backup", "incremental")
    middle = digest_of(setup.db)
    time.sleep(0.05)
    middle_at = format_ts(time.time_ns() // 1000)
    time.sleep(0.05)
    setup.workload(80, seed=3)
    setup.bulk_update(5, salt=2)
    before = setup.ok("backup", "incremental", "--json").json()
    latest = digest_of(setup.db)
    source_bytes = setup.db.read_bytes()

    result = setup.ok("backup", "consolidate", "--json").json()

    assert result["kind"] == "full" and result["n"] == 4
    assert result["last_seq"] == before["last_seq"] and sorted(result["locations"]) == ["local", "second"]
    assert setup.db.read_bytes() == source_bytes  # the source was not touched
    path = setup.object_path(4, "full")
    with path.open("rb") as handle:
        origin = ObjectReader(handle, path.stat().st_size, path.name).header.extra["origin"]
    assert origin["consolidated_from"] == ["objects/0000000001-full.tvo", "objects/0000000002-incremental.tvo",
                                           "objects/0000000003-incremental.tvo"]
    assert origin["events_replayed"] == before["count"] + json.loads(setup.entry_path(2).read_text())["count"]

    restored = setup.ok("restore", "--to", f"sqlite:///{workdir / 'latest.sqlite'}", "--json").json()
    assert restored["events"] == 0 and restored["full"].endswith("0000000004-full.tvo")
    assert digest_of(workdir / "latest.sqlite") == latest
    earlier = setup.ok("restore", "--to", f"sqlite:///{workdir / 'middle.sqlite'}", "--at", middle_at, "--json").json()
    assert earlier["full"].endswith("0000000001-full.tvo")
    assert digest_of(workdir / "middle.sqlite") == middle
    assert setup.ok("verify", "--deep", "--json").json()["ok"] is True

    # the chain goes on from the consolidated full
    setup.workload(30, seed=4)
    setup.ok("backup", "incremental")
    after = setup.ok("restore", "--to", f"sqlite:///{workdir / 'after.sqlite'}", "--json").json()
    assert after["full"].endswith("0000000004-full.tvo") and after["events"] > 0
    assert digest_of(workdir / "after.sqlite") == digest_of(setup.db)


def test_consolidate_stores_nothing_below_the_threshold_or_when_nothing_would_replay(workdir, cli):
    setup = cli.new_setup(workdir / "s")
    setup.workload(30, seed=1)
    setup.ok("backup", "full")
    nothing = setup.ok("backup", "consolidate", "--json").json()
    assert nothing["skipped"].startswith("a restore of the latest point replays 0 event(s)")
    setup.workload(20, seed=2)
    events = setup.ok("backup", "incremental", "--json").json()["count"]
    below = setup.ok("backup", "consolidate", "--min-events", str(events + 1), "--json").json()
    assert below["skipped"] and below["n"] is None
    assert len(list((setup.source_dir() / "manifest").iterdir())) == 2
    human = setup.ok("backup", "consolidate")
    assert "full backup #3" in human.out


def test_consolidate_without_backups_is_a_clear_one_line_error(workdir, cli):
    setup = cli.new_setup(workdir / "s")
    result = setup.tv("backup", "consolidate")
    assert result.rc == 2, str(result)
    assert "no backups" in result.err and len(result.err.strip().splitlines()) == 1


def test_restore_of_a_consolidated_full_has_the_source_triggers_and_no_capture(workdir, cli):
    setup = cli.new_setup(workdir / "s")
    conn = sqlite3.connect(setup.db)
    conn.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT)")
    conn.execute("CREATE TRIGGER trades_audit AFTER UPDATE ON trades BEGIN INSERT INTO audit (what) VALUES ('u'); END")
    conn.commit()
    conn.close()
    setup.workload(40, seed=1)
    setup.ok("backup", "full")
    setup.workload(40, seed=2)
    setup.ok("backup", "incremental")
    setup.ok("backup", "consolidate")
    setup.ok("restore", "--to", f"sqlite:///{workdir / 'r.sqlite'}")
    conn = sqlite3.connect(workdir / "r.sqlite")
    names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert "trades_audit" in names
    assert not any(n.startswith("_tradevault") for n in names)
