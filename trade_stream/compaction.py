"""Compaction: runs of small incrementals merged into larger ones, in levels.

An incremental every 30 s leaves 2,880 objects a day, and a restore of a point late in
the day would open every one since the last full backup. Like Litestream's levels, the
newest run of incrementals is merged once it holds enough of one level (by default 10
of level 0, 30 s each, make one of level 1, 5 min; 12 of those one of level 2, an hour;
then 6 h; then a day), so a restore of any point opens at most the sum of the fan-ins
(29) plus the full backup.

A merged incremental holds every event of what it replaces, in order, with their
transaction ids, so every point in time still restores exactly; its header keeps the
schema of the first (the tables at its start: later changes are SCHEMA events in the
stream) and the extras of the last (counters at its end). It is appended to the chain
(hash-linked like any entry, format 2, naming the positions it ``replaces``), so only the
newest run is ever merged: the merged entry is then also the newest, and everything that
reads the chain in position order stays right. A run holds entries of one schema only.
Only once it is stored in every location are the small ones removed (``BackupStore.retire``:
the merged entry is the record of why, so no pruned record is written); until then readers
ignore them (``manifest.superseded``), and the next compaction finishes the removal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trade_stream.errors import BadInputError
from trade_stream.key_index import KeyIndexBuilder
from trade_stream.manifest import INCREMENTAL, ManifestEntry, object_key
from trade_stream.object_format import BODY_SIZED_FRAMES, CODEC_EVENTS
from trade_stream.publish import Publisher
from trade_stream.schema import TableSchema
from trade_stream.segments import encode_chunk
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import events_of, header_of

FAN_IN = (10, 12, 6, 4)  # 30 s -> 5 min -> 1 h -> 6 h -> 1 day at the default schedule


@dataclass
class CompactionResult:
    merged: list[dict] = field(default_factory=list)  # one per merged entry: n, level, replaces
    pruned: list[str] = field(default_factory=list)  # objects removed
    skipped: str = ""

    def to_json(self) -> dict:
        return {"merged": self.merged, "pruned": self.pruned, "skipped": self.skipped}


def fan_in_for(incremental_seconds: float, level_seconds: list[float]) -> tuple[int, ...]:
    """Fan-ins from the configured level durations: each level holds this many of the one
    below (level 0 is one incremental interval). Levels must grow; one no longer than the
    incremental interval is left out (a slow schedule needs no fine level)."""
    if any(b <= a for a, b in zip(level_seconds, level_seconds[1:])):
        raise BadInputError(f"[schedule] compact: levels must grow, got {level_seconds}")
    fan_in, below = [], incremental_seconds
    for seconds in level_seconds:
        if seconds > below:
            fan_in.append(max(2, round(seconds / below)))
            below = seconds
    return tuple(fan_in)


def newest_run(entries: list[ManifestEntry]) -> list[ManifestEntry]:
    """The incrementals at the end of the chain: of the newest capture, after its newest
    full backup (a run never spans a full: a restore starts from one)."""
    run: list[ManifestEntry] = []
    for entry in reversed(entries):
        if entry.kind != INCREMENTAL or entry.capture_id != entries[-1].capture_id:
            break
        run.append(entry)
    return run[::-1]


def plan_compaction(entries: list[ManifestEntry], fan_in: tuple[int, ...]) -> tuple[int, list[ManifestEntry]] | None:
    """(level, run) to merge next, lowest level first, or None: the longest end of the
    newest run below ``level`` once it holds ``fan_in[level - 1]`` entries of the level
    just below (pure). A run does not reach back past a schema change: every entry in it
    starts with the same tables (``schema_hash``), so a reader that starts inside the
    merged object (a standby at a position within it) has the header's schema."""
    run = newest_run(entries)
    for level in range(1, len(fan_in) + 1):
        below: list[ManifestEntry] = []
        for entry in reversed(run):
            if entry.level >= level or entry.schema_hash != run[-1].schema_hash:
                break
            below.append(entry)
        below.reverse()
        if len(below) >= 2 and sum(1 for e in below if e.level == level - 1) >= fan_in[level - 1]:
            return level, below
    return None


def compact(store: BackupStore, publisher: Publisher, fan_in: tuple[int, ...] = FAN_IN,
            work_dir: str | None = None) -> CompactionResult:
    """Merge every run that is due, under the backup lock (an incremental appended while a
    run is merged would end the chain after it). Finishes first what a crash left: small
    incrementals whose merged entry is stored everywhere are pruned. ``work_dir``: where a
    merged body larger than 16 MB waits for its header (default: the system's temp)."""
    result = CompactionResult()
    if store.cipher.enabled and not store.cipher.identity_file:
        result.skipped = "backups are encrypted and this host has no [encryption] identity_file to read them"
        return result
    with publisher.exclusive():
        result.pruned += _prune_replaced(store)
        while True:
            _, entries = store.catch_up_for_write()
            due = plan_compaction(entries, fan_in)
            if due is None:
                break
            level, run = due
            entry, stored_in = _merge(store, publisher, entries, level, run, work_dir)
            result.merged.append({"n": entry.n, "level": level, "replaces": entry.replaces,
                                  "events": entry.count, "bytes": entry.bytes})
            if len(stored_in) == len(store.locations):
                result.pruned += store.retire(entry, store.last_seen())  # as publish left them
            else:
                break  # the small ones stay until the merged one is everywhere
    if not result.merged and not result.pruned:
        result.skipped = "nothing to compact"
    return result


def _merge(store: BackupStore, publisher: Publisher, entries: list[ManifestEntry], level: int,
           run: list[ManifestEntry], work_dir: str | None) -> tuple[ManifestEntry, list[str]]:
    """The run's events, in order, in one object whose header carries a key index of
    them all (``trade_stream.key_index``)."""
    first, last = run[0], run[-1]
    start, end = header_of(store, first), header_of(store, last)
    n = entries[-1].n + 1
    key = object_key(n, INCREMENTAL)
    keys = KeyIndexBuilder(TableSchema.from_dict(t) for t in start.schema.get("tables", ()))
    with publisher.body_ahead(work_dir) as body:
        for entry in run:  # each verified before its first event is used
            for batch in events_of(store, entry):
                body.write(encode_chunk(batch))
                keys.add(batch)
        body.finish()
        header = publisher.header(INCREMENTAL, CODEC_EVENTS, first.after_seq, last.last_seq, start.schema,
                                  first.capture_id, first.first_ts, last.last_ts, sum(e.count for e in run),
                                  {**end.extra, "keys": keys.to_header()}, body=BODY_SIZED_FRAMES)
        stored = body.store(key, header)
    return publisher.publish_entry(
        stored, entries[-1], format=2, level=level, replaces=[e.n for e in run],
        n=n, kind=INCREMENTAL, object=key, capture_id=first.capture_id, after_seq=first.after_seq,
        first_seq=first.first_seq, last_seq=last.last_seq, first_ts=first.first_ts, last_ts=last.last_ts,
        count=sum(e.count for e in run), schema_hash=first.schema_hash, tables=last.tables, config=last.config,
    )


def _prune_replaced(store: BackupStore) -> list[str]:
    """Incrementals a merged entry replaces, still stored after a crash: removed once the
    merged entry is in every location."""
    catalogs = store.catalogs()
    removed: list[str] = []
    for entry in store.merged(catalogs):
        if (entry.replaces and all(entry.n in c.entries for c in catalogs)
                and any(n in c.entries for c in catalogs for n in entry.replaces)):
            removed += store.retire(entry, catalogs)
    return removed
