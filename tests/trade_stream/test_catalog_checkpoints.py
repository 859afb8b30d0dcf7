"""The bounded catalog: a backup reads a constant amount of catalog whatever the chain's
length (head, checkpoint, a listing after them), retention folds its records into a
checkpoint, and stores written before checkpoints are read and extended in place."""

from __future__ import annotations

import json
from pathlib import Path

from restore.planner import Target, plan_restore
from restore.sqlite.replay import restore_sqlite
from restore.verify import verify_store
from tests.trade_stream.test_multi_location import Source, _digest
from trade_stream.checkpoints import CHECKPOINT_EVERY
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.locations import open_location
from trade_stream.storage.requests import difference
from trade_stream.storage.store import BackupStore


def _source(tmp_path: Path, names: tuple[str, ...] = ("a",)) -> Source:
    return Source(tmp_path, [open_location(n, f"file://{tmp_path / n}") for n in names])


def _incremental_requests(src: Source) -> dict[str, int]:
    before = src.store.request_counts()
    src.workload.run(3)
    src.engine.incremental()
    total: dict[str, int] = {}
    for counts in difference(src.store.request_counts(), before).values():
        for kind, count in counts.items():
            total[kind] = total.get(kind, 0) + count
    return total


def _fresh_entries(src: Source, *, full: bool = False) -> list:
    """The catalog as a new process reads it (``full``: every entry listed and read)."""
    store = BackupStore("tradesv3", src.store.locations)
    return store.merged(store.catalogs(full=full))


def test_an_incremental_reads_the_same_catalog_at_any_chain_length(tmp_path):
    src = _source(tmp_path)
    src.workload.run(50)
    src.engine.full()
    early = [_incremental_requests(src) for _ in range(3)]
    for _ in range(3 * CHECKPOINT_EVERY):
        src.workload.run(2)
        src.engine.incremental()
    late = [_incremental_requests(src) for _ in range(CHECKPOINT_EVERY + 1)]  # one writes a checkpoint
    reads = {(r.get("get", 0), r.get("list", 0)) for r in early + late}
    # head + checkpoint + fence; manifest after the head + pruned; one more list when a
    # checkpoint replaces the one before it
    assert max(g for g, _ in reads) <= 3 and max(n for _, n in reads) <= 2, reads
    # object, entry, head; every 33rd also a checkpoint and the delete of the one before last
    assert max(sum(r.values()) for r in early + late) <= 10, (early, late)
    checkpoints = sorted(p.name for p in (tmp_path / "a" / "tradesv3" / "checkpoints").iterdir())
    assert len(checkpoints) == 2, checkpoints  # the newest and the one before it
    assert _fresh_entries(src) == _fresh_entries(src, full=True)
    assert verify_store(src.store).ok


def _chains(src: Source, fulls: int, incrementals: int) -> None:
    """``fulls`` times: a full backup, then ``incrementals`` incrementals."""
    for _ in range(fulls):
        src.workload.run(20)
        src.engine.full()
        for _ in range(incrementals):
            src.workload.run(5)
            src.engine.incremental()


def test_retention_folds_its_records_into_a_checkpoint(tmp_path):
    src = _source(tmp_path, ("a", "b"))
    _chains(src, 3, 4)
    chain = _fresh_entries(src)
    doomed = [e.n for e in chain if e.n < 11]
    src.store.prune(doomed)
    for name in ("a", "b"):
        assert not list((tmp_path / name / "tradesv3" / "pruned").glob("*.json"))
        assert not any((tmp_path / name / "tradesv3" / "manifest" / f"{n:010d}.json").exists() for n in doomed)
    kept = [e.n for e in _fresh_entries(src)]
    assert kept == [n for n in range(11, chain[-1].n + 1)]
    assert [e.n for e in _fresh_entries(src, full=True)] == kept
    assert verify_store(src.store).ok
    src.workload.run(5)
    src.engine.incremental()  # the chain goes on across the folded gap
    assert verify_store(src.store).ok
    target = tmp_path / "restored.sqlite"
    store = BackupStore("tradesv3", src.store.locations)
    restore_sqlite(store, plan_restore(store.entries(), Target()), DatabaseService(f"sqlite:///{target}"))
    assert _digest(target) == _digest(src.path)


def test_a_location_down_during_retention_finishes_the_prune_when_back(tmp_path):
    src = _source(tmp_path, ("a", "b"))
    _chains(src, 2, 3)
    b_dir = tmp_path / "b"
    b_dir.rename(tmp_path / "b-away")  # b is "down": its catalog reads as empty, so nothing lands there
    store_a = BackupStore("tradesv3", [src.store.locations[0]])
    store_a.prune([1, 2, 3, 4])
    (tmp_path / "b-away").rename(b_dir)
    assert (b_dir / "tradesv3" / "manifest" / "0000000002.json").exists()
    caught_up = src.store.catch_up()
    assert any("pruned on b" in line for line in caught_up), caught_up
    assert not (b_dir / "tradesv3" / "manifest" / "0000000002.json").exists()
    assert not (b_dir / "tradesv3" / "objects" / "0000000002-incremental.tvo").exists()
    assert not list((b_dir / "tradesv3" / "pruned").glob("*.json"))  # folded there too
    alone = BackupStore("tradesv3", [src.store.locations[1]])
    assert [e.n for e in alone.entries()] == [5, 6, 7, 8]
    assert verify_store(src.store).ok


def _as_written_before_checkpoints(root: Path) -> None:
    """A store as tradevault wrote it before checkpoints: no checkpoint, heads of four fields."""
    for checkpoint in root.glob("*/tradesv3/checkpoints/*"):
        checkpoint.unlink()
    for head in root.glob("*/tradesv3/head.json"):
        found = json.loads(head.read_text())
        head.write_text(json.dumps({k: found[k] for k in ("n", "last_seq", "entry_hash", "created_at")}))


def test_a_store_written_before_checkpoints_is_read_and_extended_in_place(tmp_path):
    src = _source(tmp_path, ("a", "b"))
    src.workload.run(20)
    src.engine.full()
    for _ in range(CHECKPOINT_EVERY + 5):
        src.workload.run(2)
        src.engine.incremental()
    before = _fresh_entries(src)
    _as_written_before_checkpoints(tmp_path)
    assert _fresh_entries(src) == before  # read the old way: every entry
    first = _incremental_requests(src)
    assert first.get("get", 0) > CHECKPOINT_EVERY  # the migration's one slow read
    for name in ("a", "b"):
        assert len(list((tmp_path / name / "tradesv3" / "checkpoints").iterdir())) == 1
    second = _incremental_requests(src)
    assert second.get("get", 0) <= 3 * 2, second  # two locations, three reads each
    assert _fresh_entries(src) == _fresh_entries(src, full=True)
    assert verify_store(src.store).ok


def test_a_damaged_head_or_checkpoint_costs_speed_not_entries(tmp_path):
    src = _source(tmp_path)
    src.workload.run(20)
    src.engine.full()
    for _ in range(2 * CHECKPOINT_EVERY + 3):
        src.workload.run(2)
        src.engine.incremental()
    expected = _fresh_entries(src)
    store_dir = tmp_path / "a" / "tradesv3"
    head = store_dir / "head.json"
    head.write_bytes(head.read_bytes().replace(b'"last_seq":', b'"last_seq": 1', 1))
    assert _fresh_entries(src) == expected
    report = verify_store(src.store)
    assert [p["object"] for p in report.problems] == ["head.json"], report.problems
    newest = sorted((store_dir / "checkpoints").iterdir())[-1]
    newest.write_bytes(newest.read_bytes()[:-7])
    assert _fresh_entries(src) == expected  # the checkpoint before it, and the entries after that
    problems = {p["object"] for p in verify_store(src.store).problems}
    assert f"checkpoints/{newest.name}" in problems, problems
    src.workload.run(2)
    src.engine.incremental()  # rewrites the head (and the next checkpoint heals the rest)
    assert len(_fresh_entries(src)) == len(expected) + 1
