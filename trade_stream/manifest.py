"""Manifest entries: one small JSON document per stored object, hash-chained.

An object becomes visible only when its entry exists; entries are written last and
atomically, and never rewritten. ``prev_hash`` links each entry to the one before it,
so deleting, reordering or editing entries is detectable (tamper-evident chain).
The functions here are pure: they work on parsed entries, not on storage.
"""

from __future__ import annotations

import bisect
import hashlib
from typing import Any, Iterable, Iterator

import msgspec

from trade_stream.errors import IntegrityError

FULL = "full"
INCREMENTAL = "incremental"


class ManifestEntry(msgspec.Struct, frozen=True, kw_only=True):
    format: int = 1
    n: int  # position in the chain, 1, 2, 3, ...
    kind: str
    object: str  # key of the data object, relative to the source's root
    source: str
    capture_id: str
    after_seq: int  # incremental: holds events with after_seq < seq <= last_seq
    first_seq: int
    last_seq: int
    first_ts: int | None  # microseconds since the epoch, UTC
    last_ts: int | None
    count: int  # rows (full) or events (incremental)
    bytes: int
    sha256: str
    schema_hash: str
    created_at: int  # microseconds since the epoch, UTC
    tables: dict[str, int] = msgspec.field(default_factory=dict)  # rows per table at last_seq
    config: dict[str, str] = msgspec.field(default_factory=dict)  # watched dir -> live config commit
    encryption: str = ""  # "age" when the stored object is encrypted
    plain_bytes: int = 0  # size and SHA-256 of the container before encryption
    plain_sha256: str = ""
    prev_hash: str = ""
    entry_hash: str = ""
    # format 2 (compaction): an incremental merged from others keeps every event and
    # transaction of the incrementals it ``replaces`` (positions), at compaction ``level``
    level: int = 0
    replaces: list[int] = msgspec.field(default_factory=list)


class _EntryV1(msgspec.Struct, frozen=True, kw_only=True):
    """A format-1 entry exactly as written before compaction existed: its bytes and hash
    leave out the fields format 2 added."""

    format: int
    n: int
    kind: str
    object: str
    source: str
    capture_id: str
    after_seq: int
    first_seq: int
    last_seq: int
    first_ts: int | None
    last_ts: int | None
    count: int
    bytes: int
    sha256: str
    schema_hash: str
    created_at: int
    tables: dict[str, int]
    config: dict[str, str]
    encryption: str
    plain_bytes: int
    plain_sha256: str
    prev_hash: str
    entry_hash: str


_V1_FIELDS = _EntryV1.__struct_fields__


def _json(entry: ManifestEntry) -> bytes:
    if entry.format == 1:
        return msgspec.json.encode(_EntryV1(**{f: getattr(entry, f) for f in _V1_FIELDS}))
    return msgspec.json.encode(entry)


def compute_hash(entry: ManifestEntry) -> str:
    return hashlib.sha256(_json(msgspec.structs.replace(entry, entry_hash=""))).hexdigest()


def seal(entry: ManifestEntry, previous: ManifestEntry | None) -> ManifestEntry:
    """The entry with its chain link and its own hash filled in."""
    linked = msgspec.structs.replace(entry, prev_hash=previous.entry_hash if previous else "")
    return msgspec.structs.replace(linked, entry_hash=compute_hash(linked))


def encode_entry(entry: ManifestEntry) -> bytes:
    return msgspec.json.format(_json(entry), indent=2) + b"\n"


def decode_entry(data: bytes, name: str) -> ManifestEntry:
    try:
        entry = msgspec.json.decode(data, type=ManifestEntry)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"{name}: corrupt manifest entry: {exc}") from None
    if entry.format not in (1, 2) or (entry.format == 1) != (not entry.level and not entry.replaces):
        raise IntegrityError(f"{name}: corrupt manifest entry: format {entry.format} with level {entry.level}")
    if compute_hash(entry) != entry.entry_hash:
        raise IntegrityError(f"{name}: manifest entry hash mismatch (entry was altered)")
    if encode_entry(entry) != data:  # entries are byte-canonical: any other change is damage too
        raise IntegrityError(f"{name}: manifest entry bytes altered (not in canonical form)")
    return entry


def entry_key(n: int) -> str:
    return f"manifest/{n:010d}.json"


def object_key(n: int, kind: str) -> str:
    return f"objects/{n:010d}-{kind}.tvo"


def pruned_key(n: int) -> str:
    return f"pruned/{n:010d}.json"


HEAD_KEY = "head.json"


class Head(msgspec.Struct, frozen=True):
    """The newest entry a location was given: written after the entry, atomically, and
    replaced each time (entries and objects never are). Evidence for a restore: a head
    beyond the catalog means newer entries were lost everywhere.

    It is also where reading the catalog starts: ``checkpoint`` names the location's newest
    checkpoint (0: none yet, ``None``: a head written before checkpoints existed) and
    ``tail`` holds copies of the location's entries after it, so a reader needs the head,
    one checkpoint and a listing of what came after the head, whatever the chain's length."""

    n: int
    last_seq: int
    entry_hash: str
    created_at: int
    checkpoint: int | None = None
    tail: list[ManifestEntry] = msgspec.field(default_factory=list)
    previous_checkpoint: int = 0  # kept beside the newest; the next checkpoint deletes it
    head_hash: str = ""  # over the rest: a head that carries entries must prove itself intact


def _head_hash(head: Head) -> str:
    return hashlib.sha256(msgspec.json.encode(msgspec.structs.replace(head, head_hash=""))).hexdigest()


def head_of(entry: ManifestEntry, checkpoint: int | None = None, tail: Iterable[ManifestEntry] = (),
            previous_checkpoint: int = 0) -> Head:
    head = Head(n=entry.n, last_seq=entry.last_seq, entry_hash=entry.entry_hash, created_at=entry.created_at,
                checkpoint=checkpoint, tail=list(tail), previous_checkpoint=previous_checkpoint)
    return msgspec.structs.replace(head, head_hash=_head_hash(head))


def head_problem(head: Head) -> str:
    """Why a head cannot be trusted as the start of the catalog ("" when it can). A head in
    the form written before checkpoints (no checkpoint, no tail, no hash) is only evidence."""
    if head.checkpoint is None and not head.tail and not head.head_hash:
        return ""
    if head.head_hash != _head_hash(head):
        return "head hash mismatch (head was altered)"
    ends = [e.n for e in head.tail] or [head.checkpoint or 0]
    if ends[-1] != head.n or ends != sorted(set(ends)) or any(e.n <= (head.checkpoint or 0) for e in head.tail):
        return "head does not hang together (its entries do not end at its position)"
    altered = [e.n for e in head.tail if compute_hash(e) != e.entry_hash]
    return f"entry #{altered[0]} in the head was altered" if altered else ""


FENCE_KEY = "fence.json"


class Promotion(msgspec.Struct, frozen=True):
    """``tradevault promote`` handed the store to a standby: the captures that wrote the
    chain until then (the old primary's) may not append to it again. ``epoch`` counts the
    promotions: entries of a fenced capture belong to the epoch before it."""

    epoch: int
    capture_ids: list[str]
    promoted_at: int  # µs UTC
    seq: int  # the standby's position when promoted
    database: str  # the promoted database


class Fence(msgspec.Struct, frozen=True):
    """Every promotion so far (``<source>/fence.json`` in every location, replaced whole)."""

    promotions: list[Promotion] = msgspec.field(default_factory=list)

    @property
    def epoch(self) -> int:
        return max((p.epoch for p in self.promotions), default=0)

    def fenced_by(self, capture_id: str) -> Promotion | None:
        return next((p for p in self.promotions if capture_id in p.capture_ids), None)

    def epoch_of(self, capture_id: str) -> int:
        """The epoch an entry of ``capture_id`` belongs to."""
        found = self.fenced_by(capture_id)
        return found.epoch - 1 if found is not None else self.epoch

    def merged(self, other: "Fence") -> "Fence":
        by_epoch = {p.epoch: p for p in [*other.promotions, *self.promotions]}
        return Fence(promotions=[by_epoch[e] for e in sorted(by_epoch)])


def fenced_message(promotion: Promotion) -> str:
    """Why a fenced database may not back up into the store, and what to do."""
    return (f"this store no longer takes backups of this database: `tradevault promote` made "
            f"{promotion.database} the primary at {_utc(promotion.promoted_at)} (epoch {promotion.epoch}, "
            f"from seq {promotion.seq}). Changes this database made since are still in its own change "
            f"log; copy them out before you point it at another store or run `tradevault uninstall`")


def _utc(ts_us: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts_us / 1e6, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class PrunedRecord(msgspec.Struct, frozen=True):
    """Written before retention deletes an entry: keeps the hash chain verifiable across
    the gap and tells every location that the entry is gone on purpose."""

    n: int
    entry_hash: str
    object: str
    pruned_at: int


class PrunedRun(msgspec.Struct, frozen=True):
    """Consecutive positions retention removed, folded into a checkpoint. ``last_hash`` is
    the entry hash of ``last``: what the next entry's ``prev_hash`` links to."""

    first: int
    last: int
    last_hash: str


class Pruned:
    """Every position retention removed: runs folded into checkpoints, plus the pruned
    records written since (one per entry until the next checkpoint folds them). Runs are
    kept disjoint, so a lookup is a bisection, whatever the history's length."""

    def __init__(self, runs: Iterable[PrunedRun] = (), records: dict[int, PrunedRecord] | None = None) -> None:
        self.records: dict[int, PrunedRecord] = dict(records or {})
        self.runs = _disjoint(runs)
        self._starts = [r.first for r in self.runs]
        # most positions a backup asks about are newer than anything retention removed
        self._lowest = min([*self._starts, *self.records], default=1 << 62)
        self._highest = max([*(r.last for r in self.runs), *self.records], default=0)

    def _run_of(self, n: int) -> PrunedRun | None:
        i = bisect.bisect_right(self._starts, n) - 1
        return self.runs[i] if i >= 0 and self.runs[i].last >= n else None

    def __contains__(self, n: object) -> bool:
        if not isinstance(n, int) or not self._lowest <= n <= self._highest:
            return False
        return n in self.records or self._run_of(n) is not None

    def __bool__(self) -> bool:
        return bool(self.records or self.runs)

    def positions(self) -> Iterator[int]:
        """Every pruned position, ascending (verify walks them; nothing else needs to)."""
        seen = set(self.records)
        for run in self.runs:
            seen.update(range(run.first, run.last + 1))
        yield from sorted(seen)

    def link(self, n: int) -> str | None:
        """The entry hash of pruned position ``n``, where it is known: a record, or the
        end of a run (the only pruned positions a kept entry links to)."""
        if n in self.records:
            return self.records[n].entry_hash
        run = self._run_of(n)
        return run.last_hash if run is not None and run.last == n else None

    def union(self, other: "Pruned") -> "Pruned":
        return Pruned([*self.runs, *other.runs], {**other.records, **self.records})

    def folded(self, upto: int) -> list[PrunedRun]:
        """Runs and records up to ``upto`` as disjoint runs: what a checkpoint keeps."""
        singles = [PrunedRun(r.n, r.n, r.entry_hash) for r in self.records.values() if r.n <= upto]
        return [r for r in _disjoint([*self.runs, *singles]) if r.last <= upto]


def _disjoint(runs: Iterable[PrunedRun]) -> list[PrunedRun]:
    """Overlapping or adjacent runs merged; a merged run ends where one of its parts did,
    so its ``last_hash`` is known."""
    out: list[PrunedRun] = []
    for run in sorted(runs, key=lambda r: (r.first, r.last)):
        if out and run.first <= out[-1].last + 1:
            if run.last > out[-1].last:
                out[-1] = PrunedRun(out[-1].first, run.last, run.last_hash)
        else:
            out.append(run)
    return out


def superseded(entries: Iterable[ManifestEntry]) -> set[int]:
    """Positions a compacted entry among ``entries`` replaces. Until compaction prunes them
    (it does once the compacted entry is stored everywhere), they are still stored, but no
    reader uses them: the compacted entry holds the same events."""
    return {n for e in entries if e.replaces for n in e.replaces}


def replaced_runs(entries: Iterable[ManifestEntry]) -> list[PrunedRun]:
    """What compacted entries replaced, as pruned runs: a merged entry is the record of its
    run's removal (it was published everywhere before any of the run went), and its
    ``prev_hash`` is the hash of the run's last position. Every position between the run's
    first and last is in the run or was removed before, so the run covers them all."""
    return [PrunedRun(min(e.replaces), max(e.replaces), e.prev_hash) for e in entries if e.replaces]


def chain_problems(entries: list[ManifestEntry], pruned: Pruned | None = None) -> list[tuple[str, str]]:
    """(entry key, problem) for every break of the chain or of seq continuity.

    ``entries`` sorted by ``n``. Entries removed by retention leave a pruned record, which
    bridges the hash chain. Incrementals must continue exactly where the previous
    incremental ended; right after a full backup, an incremental may start at or before
    the full's seq (the events it holds up to that seq are already in the full). Entries a
    compacted entry replaces are links of the hash chain, not of the seq chain.
    """
    pruned = pruned or Pruned()
    replaced = superseded(entries)
    problems: list[tuple[str, str]] = []
    if entries:
        lost = [m for m in range(1, entries[0].n) if m not in pruned]
        if lost:  # the chain starts at 1; only retention (with a pruned record) removes entries
            problems.append((entry_key(lost[0]), f"entries {lost[0]}..{lost[-1]} missing (not pruned by retention)"))
    previous: ManifestEntry | None = None
    covered: int | None = None
    after_full = False
    for entry in entries:
        key = entry_key(entry.n)
        if previous is not None:
            missing = [m for m in range(previous.n + 1, entry.n) if m not in pruned]
            if missing:
                problems.append((key, f"chain gap: entries {missing[0]}..{missing[-1]} missing"))
            else:
                link = pruned.link(entry.n - 1) if entry.n - 1 in pruned else previous.entry_hash
                if entry.prev_hash != link:
                    problems.append((key, "hash chain broken: prev_hash does not match previous entry"))
            if missing or entry.capture_id != previous.capture_id:
                covered, after_full = None, False  # a new chain starts at the next full backup
        previous = entry
        if entry.n in replaced:  # a compacted entry later in the chain holds its events
            continue
        if entry.kind == FULL:
            covered, after_full = entry.last_seq, True
        elif entry.kind == INCREMENTAL:
            if covered is not None:
                fits = entry.after_seq <= covered if after_full else entry.after_seq == covered
                if not fits:
                    problems.append(
                        (key, f"seq gap: incremental starts after {entry.after_seq}, chain is at {covered}")
                    )
            covered, after_full = entry.last_seq, False
        else:
            problems.append((key, f"unknown kind {entry.kind!r}"))
    return problems


def summary(entry: ManifestEntry, locations: list[str] | None = None, fence: Fence | None = None) -> dict[str, Any]:
    """The entry as the CLI's JSON shows it (contract: first_seq, last_seq, rows/events,
    bytes, epoch)."""
    data = msgspec.to_builtins(entry)
    data["rows" if entry.kind == FULL else "events"] = entry.count
    data["epoch"] = (fence or Fence()).epoch_of(entry.capture_id)
    if locations is not None:
        data["locations"] = locations
    return data


def chain_end(entries: list[ManifestEntry]) -> ManifestEntry | None:
    """The entry the incremental chain of the current capture is stored up to: its newest
    incremental, or its first full backup when it has none yet. Searched from the newest
    end: a long chain is not walked for it."""
    if not entries:
        return None
    capture_id = entries[-1].capture_id
    first_full = None
    for entry in reversed(entries):
        if entry.capture_id != capture_id:
            continue
        if entry.kind == INCREMENTAL:
            return entry
        if entry.kind == FULL:
            first_full = entry
    return first_full


def chain_position(entries: list[ManifestEntry]) -> int | None:
    """The seq up to which the incremental chain of the current capture is stored."""
    end = chain_end(entries)
    return end.last_seq if end is not None else None


def continuous_from(entries: list[ManifestEntry]) -> ManifestEntry | None:
    """The oldest full backup of the current capture from which the stored incrementals
    reach the end of the chain without a gap: every instant since it is a restore point
    (retention may have thinned the days before it down to their full backups)."""
    if not entries:
        return None
    capture_id = entries[-1].capture_id
    low = max(e.last_seq for e in entries if e.capture_id == capture_id)
    for entry in reversed(entries):
        if entry.capture_id != capture_id or entry.kind != INCREMENTAL:
            continue
        if entry.last_seq < low:
            break
        low = min(low, entry.after_seq)
    return next((e for e in entries if e.kind == FULL and e.capture_id == capture_id and e.last_seq >= low), None)
