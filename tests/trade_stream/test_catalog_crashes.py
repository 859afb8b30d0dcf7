"""Property test over generated chains: appends, retention, compaction and checkpoints
interleaved with a crash at any write or delete, on two locations. After every step, a new reader sees the
same catalog the slow way (every entry) and the fast way (head and checkpoint), every entry
it sees has its object, no point that restored before a compaction stops restoring, and
once the next backup has caught the locations up, ``verify`` proves the chain."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trade_stream.storage.store as store_module
from restore.planner import Target, plan_restore
from restore.verify import verify_store
from trade_stream.compaction import compact
from trade_stream.errors import BadInputError, IntegrityError
from trade_stream.events import INSERT, ChangeEvent
from trade_stream.manifest import FULL, INCREMENTAL, chain_position, object_key
from trade_stream.object_format import CODEC_EVENTS, CODEC_SQLITE_FILE
from trade_stream.publish import Publisher
from trade_stream.retention import RetentionPolicy, plan_retention
from trade_stream.segments import encode_chunk
from trade_stream.storage.locations import FileLocation
from trade_stream.storage.store import BackupStore


class Crash(BaseException):
    """The process died (BaseException: nothing on the way may swallow it)."""


class Budget:
    def __init__(self, writes: int | None) -> None:
        self.left = writes

    def spend(self) -> None:
        if self.left is not None:
            if self.left == 0:
                raise Crash()
            self.left -= 1


class _Writer:
    def __init__(self, inner: Any, budget: Budget) -> None:
        self.inner, self.budget = inner, budget

    def write(self, data: bytes) -> int:
        return self.inner.write(data)

    def commit(self) -> None:
        self.budget.spend()
        self.inner.commit()

    def abort(self) -> None:
        self.inner.abort()


class CrashingLocation:
    """A file location whose process dies at a chosen write or delete: the write either
    happened whole or not at all (as the atomic writer guarantees), then nothing more."""

    def __init__(self, inner: FileLocation, budget: Budget) -> None:
        self.inner, self.budget = inner, budget
        self.name, self.url, self.requests = inner.name, inner.url, inner.requests

    def writer(self, key: str) -> _Writer:
        return _Writer(self.inner.writer(key), self.budget)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.budget.spend()
        self.inner.put_bytes(key, data)

    def put_new(self, key: str, data: bytes) -> None:
        self.budget.spend()
        self.inner.put_new(key, data)

    def delete(self, key: str) -> None:
        self.budget.spend()
        self.inner.delete(key)

    def open(self, key: str) -> Any:
        return self.inner.open(key)

    def size(self, key: str) -> int | None:
        return self.inner.size(key)

    def list(self, prefix: str, start_after: str = "") -> list[str]:
        return self.inner.list(prefix, start_after)


def _store(root: Path, budget: Budget | None = None) -> BackupStore:
    locations: list[Any] = [FileLocation(n, f"file://{root / n}", root / n) for n in ("a", "b")]
    if budget is not None:
        locations = [CrashingLocation(loc, budget) for loc in locations]
    return BackupStore("src", locations)


def _append(store: BackupStore, kind: str, now: int) -> None:
    """One backup: a real container (an incremental holds one event per seq, so compaction
    can read it back), published like any other."""
    publisher = Publisher(store, "src")
    _, entries = store.catch_up_for_write()
    previous = entries[-1] if entries else None
    n = previous.n + 1 if previous else 1
    covered = chain_position(entries) or 0
    after, last = (covered, covered) if kind == FULL else (covered, covered + 5)
    key = object_key(n, kind)
    events = [ChangeEvent(seq, seq, now, "t", INSERT, [seq], [seq]) for seq in range(after + 1, last + 1)]
    header = publisher.header(kind, CODEC_EVENTS if kind == INCREMENTAL else CODEC_SQLITE_FILE, after, last, {}, "c")
    stored = publisher.store_object(key, header, lambda w: w.write(encode_chunk(events) if events else b"x" * n))
    publisher.publish_entry(stored, previous, n=n, kind=kind, object=key, capture_id="c", after_seq=after,
                            first_seq=after + 1, last_seq=last, first_ts=now, last_ts=now, count=last - after,
                            schema_hash="")


def _reachable(entries: list, seqs: set[int]) -> set[int]:
    """Which of ``seqs`` a restore can reach with these entries."""
    found = set()
    for seq in seqs:
        try:
            plan_restore(entries, Target(seq=seq))
            found.add(seq)
        except (BadInputError, IntegrityError):
            pass
    return found


def _prune(store: BackupStore, now: int) -> list[int]:
    plan = plan_retention(store.entries(), RetentionPolicy(keep_full=1, pitr_seconds=0), now)
    store.prune(plan.delete)
    return plan.delete


def _seen(root: Path) -> tuple[list[int], list[int]]:
    """Positions a new reader finds: from the heads, and by reading every entry."""
    store = _store(root)
    fast = [e.n for e in store.entries()]
    slow = [e.n for e in store.merged(store.catalogs(full=True))]
    return fast, slow


OPS = st.lists(st.tuples(st.sampled_from(["full", "incr", "incr", "incr", "prune", "compact"]),
                         st.one_of(st.none(), st.integers(0, 14))), min_size=4, max_size=14)


@pytest.fixture()
def small_checkpoints(monkeypatch):
    monkeypatch.setattr(store_module, "CHECKPOINT_EVERY", 2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(OPS)
def test_a_crash_at_any_write_keeps_the_catalog_whole(small_checkpoints, ops):
    root = Path(tempfile.mkdtemp(prefix="tv-catalog-crash-"))
    try:
        now = 1_000_000
        _append(_store(root), FULL, now)
        for op, crash_at in ops:
            now += 1_000_000
            before = set(_seen(root)[0])
            entries_before = _store(root).entries()
            reachable = _reachable(entries_before, {e.last_seq for e in entries_before})
            doomed: list[int] = []
            try:
                store = _store(root, Budget(crash_at))
                if op == "prune":
                    doomed = plan_retention(store.entries(), RetentionPolicy(keep_full=1, pitr_seconds=0),
                                            now).delete
                    store.prune(doomed)
                elif op == "compact":
                    doomed = [e.n for e in store.entries()]  # what a merge may replace
                    compact(store, Publisher(store, "src"), (2, 2))
                else:
                    _append(store, FULL if op == "full" else INCREMENTAL, now)
            except Crash:
                pass
            fast, slow = _seen(root)
            assert fast == slow, (op, crash_at)
            new = {n for n in fast if n > max(before)}
            assert before - set(doomed) <= set(fast) <= before | new, (op, crash_at, before, fast)
            assert len(new) <= 1 or op == "compact", (op, crash_at, new)
            if op != "prune":  # retention may drop points; nothing else does
                assert reachable <= _reachable(_store(root).entries(), reachable), (op, crash_at)
            reader = _store(root)
            for catalog in reader.catalogs():
                for entry in reader.merged([catalog]):
                    assert catalog.location.size(reader.key(entry.object)) == entry.bytes, (op, crash_at, entry.n)
        repair = _store(root)
        repair.catch_up()  # what the next backup does first
        _append(repair, INCREMENTAL, now + 1)
        report = verify_store(_store(root))
        assert report.ok, report.problems
        assert _seen(root)[0] == _seen(root)[1]
    finally:
        shutil.rmtree(root, ignore_errors=True)
