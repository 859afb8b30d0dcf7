"""Compaction end to end on a real SQLite trading database: runs of incrementals merged in
levels, the small objects pruned, and every point in time still restoring exactly, with
fewer objects opened."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import msgspec
import pytest

from restore.planner import Target, plan_restore
from restore.sqlite.replay import restore_sqlite
from restore.verify import verify_store
from tests.trade_stream.test_multi_location import Source, _digest
from trade_stream.compaction import compact, fan_in_for, plan_compaction
from trade_stream.errors import BadInputError
from trade_stream.manifest import FULL, INCREMENTAL, ManifestEntry
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore


def _entry(n: int, kind: str = INCREMENTAL, level: int = 0) -> ManifestEntry:
    return ManifestEntry(n=n, kind=kind, object=f"o{n}", source="s", capture_id="c", after_seq=n - 1,
                         first_seq=n, last_seq=n, first_ts=n, last_ts=n, count=1, bytes=1, sha256="",
                         schema_hash="", created_at=n, level=level, format=2 if level else 1)


def test_the_plan_merges_the_newest_run_lowest_level_first():
    chain = [_entry(1, FULL)] + [_entry(n) for n in range(2, 5)]
    assert plan_compaction(chain, (3, 2)) == (1, chain[1:])
    assert plan_compaction(chain[:3], (3, 2)) is None  # two of level 0: not yet
    leveled = [_entry(1, FULL), _entry(2, level=1), _entry(3, level=1), _entry(4)]
    level, run = plan_compaction(leveled, (3, 2))
    assert level == 2 and [e.n for e in run] == [2, 3, 4]  # the level-0 tail goes along
    after_full = [_entry(1), _entry(2), _entry(3), _entry(4, FULL), _entry(5)]
    assert plan_compaction(after_full, (2, 2)) is None  # a run never spans a full backup
    changed = [_entry(1, FULL), _entry(2), _entry(3), msgspec.structs.replace(_entry(4), schema_hash="new"),
               msgspec.structs.replace(_entry(5), schema_hash="new")]
    level, run = plan_compaction(changed, (2,))
    assert [e.n for e in run] == [4, 5]  # not back past the schema change in 3


def test_fan_ins_follow_the_configured_level_durations():
    assert fan_in_for(30, [300, 3600, 21600, 86400]) == (10, 12, 6, 4)
    assert fan_in_for(600, [300, 3600]) == (6,)  # a level finer than the schedule is left out
    assert fan_in_for(30, []) == ()
    with pytest.raises(BadInputError):
        fan_in_for(30, [3600, 300])


def _digests(locations, tmp_path: Path, points: list[int]) -> dict[int, dict]:
    digests = {}
    for seq in points:
        target = tmp_path / f"at-{seq}.sqlite"
        store = BackupStore("tradesv3", locations)
        restore_sqlite(store, plan_restore(store.entries(), Target(seq=seq)), DatabaseService(f"sqlite:///{target}"))
        digests[seq] = _digest(target)
        target.unlink()
    return digests


def _chain(tmp_path: Path, incrementals: int) -> Source:
    """A full backup and ``incrementals`` incrementals on one file location."""
    src = Source(tmp_path, [open_location("a", f"file://{tmp_path / 'a'}")])
    src.workload.run(30)
    src.engine.full()
    for _ in range(incrementals):
        src.workload.run(3)
        src.engine.incremental()
    return src


def test_every_point_restores_the_same_after_compaction(tmp_path):
    src = _chain(tmp_path, 12)
    entries = src.store.entries()
    points = sorted({e.last_seq for e in entries} | {e.first_seq for e in entries if e.kind == INCREMENTAL}
                    | {(e.first_seq + e.last_seq) // 2 for e in entries if e.kind == INCREMENTAL})
    shutil.copytree(tmp_path / "a", tmp_path / "reference")
    result = compact(src.store, src.engine.publisher, (4, 3))
    assert [(m["level"], len(m["replaces"])) for m in result.merged] == [(1, 12)]
    reference = [open_location("ref", f"file://{tmp_path / 'reference'}")]
    assert _digests(src.store.locations, tmp_path, points) == _digests(reference, tmp_path, points)
    assert len(list((tmp_path / "a" / "tradesv3" / "objects").iterdir())) == 2  # the full and the merged one
    assert verify_store(src.store, deep=True).ok


def test_compacting_after_each_incremental_builds_levels(tmp_path):
    src = Source(tmp_path, [open_location(n, f"file://{tmp_path / n}") for n in ("a", "b")])
    src.workload.run(30)
    src.engine.full()
    levels = []
    for _ in range(20):
        src.workload.run(3)
        src.engine.incremental()
        levels += [m["level"] for m in compact(src.store, src.engine.publisher, (4, 3)).merged]
    assert levels == [1, 1, 1, 2, 1, 1]
    entries = src.store.entries()
    assert [e.level for e in entries if e.kind == INCREMENTAL] == [2, 1, 1]
    assert len(plan_restore(entries, Target()).incrementals) == 3
    for name in ("a", "b"):
        assert len(list((tmp_path / name / "tradesv3" / "objects").iterdir())) == 4
    assert verify_store(src.store, deep=True).ok
    target = tmp_path / "latest.sqlite"
    store = BackupStore("tradesv3", src.store.locations)
    restore_sqlite(store, plan_restore(store.entries(), Target()), DatabaseService(f"sqlite:///{target}"))
    assert _digest(target) == _digest(src.path)


def test_a_crash_before_the_small_ones_are_pruned_is_finished_by_the_next_compaction(tmp_path, monkeypatch):
    src = _chain(tmp_path, 4)
    expected = _digest(src.path)
    def killed(self, merged, catalogs=None):
        raise KeyboardInterrupt()

    monkeypatch.setattr(BackupStore, "retire", killed)
    with pytest.raises(KeyboardInterrupt):
        compact(src.store, src.engine.publisher, (4,))
    monkeypatch.undo()
    reader = BackupStore("tradesv3", src.store.locations)
    assert [(e.n, e.level) for e in reader.entries()] == [(1, 0), (6, 1)]  # the replaced ones are hidden
    assert len(list((tmp_path / "a" / "tradesv3" / "objects").iterdir())) == 6  # ... but still stored
    assert verify_store(reader).ok
    target = tmp_path / "mid-crash.sqlite"
    restore_sqlite(reader, plan_restore(reader.entries(), Target()), DatabaseService(f"sqlite:///{target}"))
    assert _digest(target) == expected
    result = compact(reader, src.engine.publisher, (4,))
    assert len(result.pruned) == 4 and not result.merged
    assert len(list((tmp_path / "a" / "tradesv3" / "objects").iterdir())) == 2
    assert verify_store(reader).ok
    sqlite3.connect(src.path).close()


def test_a_standby_inside_a_merged_run_follows_on_exactly(tmp_path):
    """A standby that applied some incrementals of a run goes on from inside the merged
    one: it skips what it has, and the tables it starts from are the header's."""
    from restore.standby import Follower

    src = Source(tmp_path, [open_location("a", f"file://{tmp_path / 'a'}")])
    src.workload.run(30)
    src.engine.full()
    follower = Follower(BackupStore("tradesv3", src.store.locations),
                        DatabaseService(f"sqlite:///{tmp_path / 'standby.sqlite'}"))
    for _ in range(2):
        src.workload.run(3)
        src.engine.incremental()
    assert follower.sync_once().seq == src.store.entries()[-1].last_seq
    for _ in range(2):
        src.workload.run(3)
        src.engine.incremental()
    merged = compact(src.store, src.engine.publisher, (4,)).merged
    assert [m["replaces"] for m in merged] == [[2, 3, 4, 5]]
    src.workload.run(3)
    src.engine.incremental()
    assert follower.sync_once().seq == src.store.entries()[-1].last_seq
    assert _digest(tmp_path / "standby.sqlite") == _digest(src.path)
