"""The backup store of one source database across every configured location.

Layout per location: ``<source>/objects/<n>-<kind>.tvo`` and ``<source>/manifest/<n>.json``.
The same object and entry, byte for byte, go to every location at once; an entry is
written only after its object is stored. A location that fails is left behind (the
backup still succeeds when ``min_locations`` have it) and catches up at the next backup.
Reads take the first copy that proves intact and fall back copy by copy.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, TypeVar

import msgspec

from trade_stream.checkpoints import (
    CHECKPOINT_EVERY,
    Checkpoint,
    build_checkpoint,
    checkpoint_key,
    checkpoint_number,
    decode_checkpoint,
    encode_checkpoint,
)
from trade_stream.errors import AlreadyStored, IntegrityError, LocalDiskFull, StorageError
from trade_stream.manifest import (
    FENCE_KEY,
    HEAD_KEY,
    Fence,
    Head,
    ManifestEntry,
    Promotion,
    Pruned,
    PrunedRecord,
    decode_entry,
    encode_entry,
    entry_key,
    head_of,
    head_problem,
    pruned_key,
    replaced_runs,
    superseded,
)
from trade_stream.object_format import ObjectReader
from trade_stream.storage.encryption import NO_ENCRYPTION, Cipher
from trade_stream.storage.locations import AtomicWriter, Location

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # local limits: no other copy helps

T = TypeVar("T")


@dataclass
class LocationCatalog:
    """What one location holds for the source: good entries and problems found reading them."""

    location: Location
    entries: dict[int, ManifestEntry] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)
    error: str = ""
    pruned: Pruned = field(default_factory=Pruned)
    checkpoint: Checkpoint | None = None  # the newest this location holds
    head: Head | None = None  # its head, when the catalog was read from it


class StoredObjectWriter:
    """One object on its way to every location: hashes what is stored (the ciphertext when
    encrypting) and drops a location whose write fails instead of failing the backup."""

    def __init__(self, locations: list[Location], writers: list[AtomicWriter], cipher: Cipher) -> None:
        self.live: list[tuple[Location, AtomicWriter]] = list(zip(locations, writers))
        self.failed: dict[str, str] = {}
        self.sha = hashlib.sha256()
        self.size = 0
        self._front: Any = cipher.encrypting(_Raw(self)) if cipher.enabled else _Raw(self)
        self.encrypted = cipher.enabled

    def _fail(self, location: Location, writer: AtomicWriter, exc: Exception) -> None:
        self.failed[location.name] = str(exc)
        writer.abort()
        self.live = [(loc, w) for loc, w in self.live if w is not writer]

    def _store(self, data: bytes) -> None:
        self.sha.update(data)
        self.size += len(data)
        for location, writer in list(self.live):
            try:
                writer.write(data)
            except (StorageError, OSError) as exc:
                self._fail(location, writer, exc)
        if not self.live:
            raise StorageError("every location failed: " + "; ".join(f"{k}: {v}" for k, v in self.failed.items()))

    def write(self, data: bytes) -> int:
        self._front.write(data)
        return len(data)

    def close_stream(self) -> tuple[int, str]:
        """End of data: flush the encryption layer; returns the stored size and SHA-256."""
        if self.encrypted:
            self._front.close()
        return self.size, self.sha.hexdigest()

    def commit(self) -> list[str]:
        """Make the object visible in every live location, concurrently."""
        with concurrent.futures.ThreadPoolExecutor(max(1, len(self.live))) as pool:
            futures = {pool.submit(w.commit): (loc, w) for loc, w in self.live}
            for future, (location, writer) in futures.items():
                try:
                    future.result()
                except (StorageError, OSError) as exc:
                    self._fail(location, writer, exc)
        return [loc.name for loc, _ in self.live]

    def abort(self) -> None:
        for _, writer in self.live:
            writer.abort()
        self.live = []


class _Raw:
    def __init__(self, owner: StoredObjectWriter) -> None:
        self.owner = owner

    def write(self, data: bytes) -> int:
        self.owner._store(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


class BackupStore:
    def __init__(self, source: str, locations: list[Location], *, cipher: Cipher = NO_ENCRYPTION,
                 min_locations: int = 0) -> None:
        self.source = source
        self.locations = locations
        self.cipher = cipher
        self.min_locations = min_locations or len(locations)
        self._read_for_write: list[LocationCatalog] | None = None
        self._last_seen: list[LocationCatalog] | None = None
        self._checkpoints: dict[str, Checkpoint] = {}  # by location: see read_checkpoint

    def request_counts(self) -> dict[str, dict[str, int]]:
        """Requests each location has sent so far, by kind (storage/requests.py)."""
        return {location.name: location.requests.snapshot() for location in self.locations}

    def key(self, relative: str) -> str:
        return f"{self.source}/{relative}"

    # -- reading the catalog ---------------------------------------------------------------
    def read_location(self, location: Location, *, full: bool = False) -> LocationCatalog:
        """What ``location`` holds. Normally from its head: the checkpoint the head names,
        the entries the head carries and whatever was listed after it, a constant number
        of requests. Without a usable head (none yet, written before checkpoints, damaged),
        from the newest checkpoint that reads and every entry after it. ``full``: every
        entry listed and read, the checkpoint beside them (``verify`` compares the two)."""
        catalog = LocationCatalog(location)
        try:
            if full or not self._read_from_head(catalog):
                self._read_from_checkpoint(catalog, full)
            records: dict[int, PrunedRecord] = {}
            for key in location.list(self.key("pruned")):
                try:
                    with location.open(key) as handle:
                        record = msgspec.json.decode(handle.read(), type=PrunedRecord)
                    records[record.n] = record
                except (msgspec.DecodeError, msgspec.ValidationError, OSError, StorageError) as exc:
                    catalog.problems.append((key.split("/", 1)[-1], f"unreadable pruned record: {exc}"))
            folded = catalog.checkpoint.pruned if catalog.checkpoint else []
            catalog.pruned = Pruned([*folded, *replaced_runs(catalog.entries.values())], records)
        except StorageError as exc:
            catalog.error = str(exc)
        return catalog

    def _read_from_head(self, catalog: LocationCatalog) -> bool:
        location = catalog.location
        head = self.read_head(location)
        if head is None or head.checkpoint is None or head_problem(head):
            return False
        checkpoint = None
        if head.checkpoint:
            try:
                checkpoint = self.read_checkpoint(location, head.checkpoint)
            except (IntegrityError, OSError, StorageError) as exc:
                catalog.problems.append((checkpoint_key(head.checkpoint), str(exc).split(": ", 1)[-1]))
                return False
        catalog.head, catalog.checkpoint = head, checkpoint
        catalog.entries = {e.n: e for e in [*(checkpoint.entries if checkpoint else ()), *head.tail]}
        for key in location.list(self.key("manifest"), start_after=self.key(entry_key(head.n))):
            self._read_entry(catalog, key)
        return True

    def _read_from_checkpoint(self, catalog: LocationCatalog, full: bool) -> None:
        location = catalog.location
        catalog.entries, catalog.head = {}, None
        catalog.checkpoint = checkpoint = self._newest_checkpoint(catalog, fresh=full)
        after = "" if full or checkpoint is None else self.key(entry_key(checkpoint.n))
        if checkpoint is not None and not full:
            catalog.entries = {e.n: e for e in checkpoint.entries}
        for key in location.list(self.key("manifest"), start_after=after):
            self._read_entry(catalog, key)

    def _newest_checkpoint(self, catalog: LocationCatalog, fresh: bool) -> Checkpoint | None:
        location = catalog.location
        numbers = [n for n in map(checkpoint_number, location.list(self.key("checkpoints"))) if n is not None]
        for n in sorted(numbers, reverse=True):
            try:
                return self.read_checkpoint(location, n, fresh=fresh)
            except (IntegrityError, OSError, StorageError) as exc:
                catalog.problems.append((checkpoint_key(n), str(exc).split(": ", 1)[-1]))
        return None

    def read_checkpoint(self, location: Location, n: int, *, fresh: bool = False) -> Checkpoint:
        """Checkpoints are never rewritten, so one read (or written) by this process is
        kept: the agent decodes the one it builds on once, not at every incremental.
        ``fresh``: read it again (verify)."""
        cached = None if fresh else self._checkpoints.get(location.name)
        if cached is not None and cached.n == n:
            return cached
        with location.open(self.key(checkpoint_key(n))) as handle:
            checkpoint = decode_checkpoint(handle.read(), checkpoint_key(n))
        if checkpoint.n != n:
            raise IntegrityError(f"{checkpoint_key(n)}: checkpoint claims position {checkpoint.n}")
        self._checkpoints[location.name] = checkpoint  # one per location: a backup needs only the newest
        return checkpoint

    def read_head(self, location: Location) -> Head | None:
        try:
            with location.open(self.key(HEAD_KEY)) as handle:
                return msgspec.json.decode(handle.read(), type=Head)
        except (OSError, StorageError, msgspec.DecodeError, msgspec.ValidationError):
            return None

    def _read_entry(self, catalog: LocationCatalog, key: str) -> None:
        name = key.rsplit("/", 1)[-1]
        if not name.endswith(".json"):
            return
        relative = f"manifest/{name}"
        try:
            with catalog.location.open(key) as handle:
                entry = decode_entry(handle.read(), relative)
        except IntegrityError as exc:
            catalog.problems.append((relative, str(exc).split(": ", 1)[-1]))
            return
        except (OSError, StorageError) as exc:
            catalog.problems.append((relative, f"unreadable: {exc}"))
            return
        if entry_key(entry.n) != relative:
            catalog.problems.append((relative, f"entry claims position {entry.n}"))
            return
        catalog.entries[entry.n] = entry

    def last_seen(self) -> list[LocationCatalog]:
        """The catalogs as this process last published into them (read when it has not):
        for figures shown after a backup, which need no second read of every location."""
        return self._last_seen if self._last_seen is not None else self.catalogs()

    def catalogs(self, *, full: bool = False) -> list[LocationCatalog]:
        if len(self.locations) == 1:
            return [self.read_location(self.locations[0], full=full)]
        with concurrent.futures.ThreadPoolExecutor(len(self.locations)) as pool:
            return list(pool.map(lambda loc: self.read_location(loc, full=full), self.locations))

    @staticmethod
    def merged(catalogs: list[LocationCatalog]) -> list[ManifestEntry]:
        """Union of every location's entries by position (the first good copy wins),
        without the entries that retention removed anywhere, or that a compacted entry
        replaces (a crash before compaction pruned them leaves both)."""
        pruned = BackupStore.pruned(catalogs)
        entries: dict[int, ManifestEntry] = {}
        for catalog in catalogs:
            for n, entry in catalog.entries.items():
                entries.setdefault(n, entry)
        hidden = superseded(entries.values())
        return [entries[n] for n in sorted(entries) if (not pruned or n not in pruned) and n not in hidden]

    @staticmethod
    def pruned(catalogs: list[LocationCatalog]) -> Pruned:
        found = Pruned()
        for catalog in catalogs:
            found = found.union(catalog.pruned)
        return found

    def entries(self) -> list[ManifestEntry]:
        return self.merged(self.catalogs())

    def entries_and_damage(self, catalogs: list[LocationCatalog] | None = None,
                           ) -> tuple[list[ManifestEntry], dict[int, str]]:
        """Every intact entry, and the positions whose entry is damaged in every copy
        (with the problem), so a restore can refuse to silently skip them."""
        catalogs = self.catalogs() if catalogs is None else catalogs
        merged = self.merged(catalogs)
        known, pruned = {e.n for e in merged}, self.pruned(catalogs)
        damaged: dict[int, str] = {}
        for catalog in catalogs:
            for key, problem in catalog.problems:
                name = key.rsplit("/", 1)[-1].removesuffix(".json")
                if not (key.startswith("manifest/") and name.isdigit()):
                    continue
                if int(name) not in known and int(name) not in pruned:
                    damaged.setdefault(int(name), f"{key}: {problem}")
        return merged, damaged

    def entries_for_write(self, catalogs: list[LocationCatalog] | None = None) -> list[ManifestEntry]:
        """The catalog a new backup builds on: a damaged entry must be repaired first, or
        the next entry would take its place in the chain."""
        entries, damaged = self.entries_and_damage(catalogs)
        if damaged:
            first = damaged[min(damaged)]
            raise IntegrityError(f"{first} (in every location); run `tradevault verify` and repair before backing up")
        return entries

    # -- reading objects -------------------------------------------------------------------
    @contextlib.contextmanager
    def open_reader(self, location: Location, entry: ManifestEntry) -> Iterator[ObjectReader]:
        """An ObjectReader over one location's copy (decrypting when needed). After the body
        is read, ``check(reader, entry)`` proves the copy intact."""
        key = self.key(entry.object)
        size = location.size(key)
        if size is None:
            raise IntegrityError(f"{entry.object}: missing")
        if size != entry.bytes:
            raise IntegrityError(f"{entry.object}: size {size}, expected {entry.bytes}")
        with location.open(key) as handle:
            if entry.encryption:
                with self.cipher.decrypting(handle, entry.object) as plain:
                    yield ObjectReader(plain, entry.plain_bytes, entry.object)  # type: ignore[arg-type]
            else:
                yield ObjectReader(handle, size, entry.object)

    @staticmethod
    def check(reader: ObjectReader, entry: ManifestEntry) -> None:
        reader.check_trailer(entry.plain_sha256 if entry.encryption else entry.sha256)
        header = reader.header
        if (header.kind, header.after_seq, header.last_seq) != (entry.kind, entry.after_seq, entry.last_seq):
            raise IntegrityError(f"{entry.object}: header does not match its manifest entry")

    def read_object(self, entry: ManifestEntry, consume: Callable[[ObjectReader], T]) -> T:
        """``consume`` over the first copy that proves intact, falling back copy by copy.

        ``consume`` must read the whole body and may be called again for another copy, so
        it must start from scratch each time; the trailer and the manifest's checksum are
        checked after it returns, before its result is handed back."""
        tried: list[str] = []
        for location in self.locations:
            try:
                with self.open_reader(location, entry) as reader:
                    result = consume(reader)
                    self.check(reader, entry)
                return result
            except OSError as exc:
                if exc.errno in _DISK_FULL:  # writing here, not reading the copy: no other copy helps
                    where = f" to {exc.filename}" if exc.filename else ""
                    raise LocalDiskFull(f"{entry.object}: could not write out what it holds{where} on this "
                                        f"machine ({exc.strerror}): free some space, or write it elsewhere") from None
                tried.append(f"{location.name}: {str(exc).removeprefix(entry.object + ': ')}")
            except (IntegrityError, StorageError) as exc:
                tried.append(f"{location.name}: {str(exc).removeprefix(entry.object + ': ')}")
        raise IntegrityError(f"{entry.object}: no intact copy in any location ({'; '.join(tried)})")

    # -- writing ---------------------------------------------------------------------------
    def object_writer(self, relative: str) -> StoredObjectWriter:
        locations, writers = [], []
        failed: dict[str, str] = {}
        for location in self.locations:
            try:
                writers.append(location.writer(self.key(relative)))
                locations.append(location)
            except (StorageError, OSError) as exc:
                failed[location.name] = str(exc)
        if len(writers) < self.min_locations:
            for writer in writers:
                writer.abort()
            raise StorageError(_too_few(len(writers), self, failed))
        sink = StoredObjectWriter(locations, writers, self.cipher)
        sink.failed.update(failed)
        return sink

    def publish(self, entry: ManifestEntry, stored_in: list[str], failed: dict[str, str] | None = None) -> list[str]:
        """Write the entry last, in every location holding the object: from now on the
        object is part of the backup. Returns the locations that have both. ``failed``: why
        the object itself is missing where it is (named when too few locations remain)."""
        data = encode_entry(entry)
        done: list[str] = []
        failed = dict(failed or {})
        for location in self.locations:
            if location.name not in stored_in:
                continue
            try:
                location.put_new(self.key(entry_key(entry.n)), data)
                done.append(location.name)
            except AlreadyStored:
                raise IntegrityError(
                    f"location {location.name}: manifest entry #{entry.n} was published by another backup "
                    "first: two writers are appending to this chain (an old primary after a promote?)"
                ) from None
            except (StorageError, OSError) as exc:
                failed[location.name] = str(exc)
        if len(done) < self.min_locations:
            raise StorageError(_too_few(len(done), self, failed))
        catalogs, self._read_for_write = self._read_for_write or self.catalogs(), None
        self._last_seen = catalogs
        pruned = self.pruned(catalogs)
        for catalog in catalogs:
            if catalog.location.name in done:
                catalog.entries[entry.n] = entry
                self._write_catalog(catalog, pruned)
        return done

    def _write_catalog(self, catalog: LocationCatalog, pruned: Pruned, *, fold: bool = False) -> None:
        """The location's head, and a checkpoint first when one is due: more entries since
        the last than a head carries, pruned records to fold, or ``fold``. Best effort: the entries
        are the backup; a head or checkpoint that fails to be written only makes the next
        reader list more. Pruned records and older checkpoints go only once the head names
        the checkpoint that replaces them."""
        location = catalog.location
        if not catalog.entries:
            return
        newest = catalog.entries[max(catalog.entries)]
        kept = [catalog.entries[n] for n in sorted(catalog.entries) if not pruned or n not in pruned]
        previous = catalog.checkpoint
        base = previous.n if previous else 0
        tail = [e for e in kept if e.n > base]
        folding = [n for n in catalog.pruned.records if n <= newest.n]
        checkpoint = None
        if len(tail) > CHECKPOINT_EVERY or folding or fold:
            checkpoint = build_checkpoint(kept, pruned, newest.n)
        kept_before = catalog.head.previous_checkpoint if catalog.head is not None else 0
        try:
            if checkpoint is not None:
                location.put_bytes(self.key(checkpoint_key(checkpoint.n)), encode_checkpoint(checkpoint))
                self._checkpoints[location.name] = checkpoint
                catalog.checkpoint, base, tail = checkpoint, checkpoint.n, []
            head = head_of(newest, base, tail, previous.n if checkpoint and previous else kept_before)
            location.put_bytes(self.key(HEAD_KEY), msgspec.json.encode(head) + b"\n")
            catalog.head = head
            if checkpoint is None:
                return
            for n in folding:
                location.delete(self.key(pruned_key(n)))
            catalog.pruned = Pruned(checkpoint.pruned)
            self._delete_checkpoints_before(catalog, head.previous_checkpoint or checkpoint.n, kept_before)
        except (StorageError, OSError):
            pass

    def _delete_checkpoints_before(self, catalog: LocationCatalog, keep: int, known: int) -> None:
        """Checkpoints older than ``keep`` (the one before the newest stays, for a reader
        that read the head just before it moved). ``known``: the only such one, as the
        head said, so nothing needs listing; 0 when the head did not say."""
        stale = [known] if known else [checkpoint_number(k) for k in catalog.location.list(self.key("checkpoints"))]
        for number in stale:
            if number is not None and number < keep:
                catalog.location.delete(self.key(checkpoint_key(number)))

    def fence(self) -> Fence:
        """Every promotion any reachable location records (``tradevault promote``)."""
        fence = Fence()
        for location in self.locations:
            try:
                with location.open(self.key(FENCE_KEY)) as handle:
                    fence = fence.merged(msgspec.json.decode(handle.read(), type=Fence))
            except (OSError, StorageError):
                continue  # none yet, or the location is down: the others hold the same record
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise IntegrityError(f"location {location.name}: {FENCE_KEY}: unreadable ({exc})") from None
        return fence

    def record_promotion(self, capture_id: str, seq: int, database: str,
                         promoted_at: int) -> tuple[Promotion, list[str]]:
        """A promotion, the next epoch, added to the fence of every location (written whole,
        atomically): the promotion and where it was recorded. Fewer than ``min_locations``:
        StorageError."""
        fence = self.fence()
        promotion = Promotion(epoch=fence.epoch + 1, capture_ids=[capture_id], promoted_at=promoted_at, seq=seq,
                              database=database)
        fence = fence.merged(Fence(promotions=[promotion]))
        data = msgspec.json.format(msgspec.json.encode(fence), indent=2) + b"\n"
        done, failed = [], {}
        for location in self.locations:
            try:
                location.put_bytes(self.key(FENCE_KEY), data)
                done.append(location.name)
            except (StorageError, OSError) as exc:
                failed[location.name] = str(exc)
        if len(done) < self.min_locations:
            raise StorageError(_too_few(len(done), self, failed))
        return promotion, done

    def heads(self) -> dict[str, Head | None]:
        """Each location's head (None: none yet, unreadable, or the location is down)."""
        return {location.name: self.read_head(location) for location in self.locations}

    def catch_up_for_write(self) -> tuple[list[str], list[ManifestEntry]]:
        """What a backup starts from, with one read of the catalog: the lagging locations
        caught up (``catch_up``), then the entries it builds on (``entries_for_write``).
        Reading the catalog for each cost two GETs per stored entry."""
        catalogs = self.catalogs()
        caught_up, entries = self.catch_up(catalogs), self.entries_for_write(catalogs)
        self._read_for_write = catalogs  # ``publish`` extends these instead of reading again
        return caught_up, entries

    def catch_up(self, catalogs: list[LocationCatalog] | None = None) -> list[str]:
        """Copy entries (and their objects) that a location lacks from one that has them,
        checking each object's SHA-256 on the way. Locations that are down are skipped.
        Returns what was copied (and what could not be). ``catalogs``: as just read; what
        is copied is added to them."""
        catalogs = self.catalogs() if catalogs is None else catalogs
        merged = {e.n: e for e in self.merged(catalogs)}
        pruned = self.pruned(catalogs)
        copied: list[str] = []
        for catalog in catalogs:
            if catalog.error:
                copied.append(f"{catalog.location.name}: unreachable, left behind ({catalog.error})")
                continue
            changed = self._finish_prunes(catalog, pruned, copied)
            for n, entry in merged.items():
                if n in catalog.entries:
                    continue
                sources = [c.location for c in catalogs if n in c.entries and c is not catalog]
                try:
                    self._copy_object(sources, catalog.location, entry)
                    catalog.location.put_bytes(self.key(entry_key(n)), encode_entry(entry))
                    catalog.entries[n] = entry
                    changed = True
                    copied.append(f"{entry.object} -> {catalog.location.name}")
                except (StorageError, OSError, IntegrityError) as exc:
                    copied.append(f"{entry.object} -> {catalog.location.name} failed: {exc}")
            if changed or catalog.head is None:  # its head moves too (or is written in today's form)
                self._write_catalog(catalog, pruned)
        return copied

    def _finish_prunes(self, catalog: LocationCatalog, pruned: Pruned, done: list[str]) -> bool:
        """Finish on this location what retention did elsewhere: remove what was pruned,
        and record what it lacks, so its chain bridges the same gaps."""
        changed = False
        for n in sorted(n for n in catalog.entries if n in pruned) if pruned else ():
            entry = catalog.entries.pop(n)
            record = pruned.records.get(n) or PrunedRecord(n=n, entry_hash=entry.entry_hash, object=entry.object,
                                                           pruned_at=time.time_ns() // 1000)
            self._prune_one(catalog.location, record)
            catalog.pruned.records[n] = record
            done.append(f"{record.object}: pruned on {catalog.location.name}")
            changed = True
        for n, record in pruned.records.items():
            if n not in catalog.pruned:
                catalog.location.put_bytes(self.key(pruned_key(n)), msgspec.json.encode(record))
                catalog.pruned.records[n] = record
                changed = True
        return changed

    def prune(self, numbers: list[int]) -> list[str]:
        """Remove entries chosen by retention, oldest first, from every location: pruned
        record, then manifest entry, then object — a crash never leaves an entry pointing
        at nothing, and the next run (or catch-up) finishes the job. Then a checkpoint
        folds the records in, so they are not read one by one ever after."""
        catalogs = self.catalogs()
        pruned = self.pruned(catalogs)
        stored: dict[int, ManifestEntry] = {}  # what compaction replaced included
        for catalog in catalogs:
            for n, found in catalog.entries.items():
                if n not in pruned:
                    stored.setdefault(n, found)
        done = []
        for n in sorted(numbers):
            entry = stored.get(n)
            if entry is None:
                continue
            record = PrunedRecord(n=n, entry_hash=entry.entry_hash, object=entry.object,
                                  pruned_at=time.time_ns() // 1000)
            for catalog in catalogs:
                if not catalog.error:
                    self._prune_one(catalog.location, record)
                    catalog.entries.pop(n, None)
                    catalog.pruned.records[n] = record
            done.append(entry.object)
        pruned = self.pruned(catalogs)
        for catalog in catalogs:
            if not catalog.error:
                self._write_catalog(catalog, pruned)
        self._last_seen = catalogs
        return done

    def retire(self, merged: ManifestEntry, catalogs: list[LocationCatalog] | None = None) -> list[str]:
        """Remove the incrementals a compacted entry replaces, from every location: entry,
        then object. No pruned record: the compacted entry, stored everywhere before this
        is called, records the removal (``replaced_runs``). Then a checkpoint folds the run
        in. A crash on the way leaves entries that every reader already ignores; calling
        this again finishes the job. ``catalogs``: as just read (or published into)."""
        catalogs = self.catalogs() if catalogs is None else catalogs
        removed: set[str] = set()
        for catalog in catalogs:
            if catalog.error:
                continue
            for n in merged.replaces:
                entry = catalog.entries.pop(n, None)
                if entry is not None:
                    catalog.location.delete(self.key(entry_key(n)))
                    catalog.location.delete(self.key(entry.object))
                    removed.add(entry.object)
        # the run, as the next read derives it from the merged entry (these catalogs may
        # have been read before it was published)
        pruned = self.pruned(catalogs).union(Pruned(replaced_runs([merged])))
        for catalog in catalogs:
            if not catalog.error:
                self._write_catalog(catalog, pruned, fold=True)
        self._last_seen = catalogs
        return sorted(removed)

    def _prune_one(self, location: Location, record: PrunedRecord) -> None:
        location.put_bytes(self.key(pruned_key(record.n)), msgspec.json.encode(record))
        location.delete(self.key(entry_key(record.n)))
        location.delete(self.key(record.object))

    def _copy_object(self, sources: list[Location], target: Location, entry: ManifestEntry) -> None:
        key = self.key(entry.object)
        problems = []
        for source in sources:
            writer = target.writer(key)
            sha = hashlib.sha256()
            try:
                with source.open(key) as handle:
                    while chunk := handle.read(1 << 20):
                        sha.update(chunk)
                        writer.write(chunk)
                if sha.hexdigest() != entry.sha256:
                    raise IntegrityError(f"checksum mismatch on {source.name}")
            except (IntegrityError, StorageError, OSError) as exc:
                writer.abort()
                problems.append(str(exc))
                continue
            except BaseException:
                writer.abort()
                raise
            writer.commit()
            return
        raise IntegrityError(f"{entry.object}: no intact copy to copy from ({'; '.join(problems)})")


def _too_few(count: int, store: BackupStore, failed: dict[str, str]) -> str:
    reasons = "; ".join(v if v.startswith(f"location {k} ") else f"{k}: {v}" for k, v in failed.items())
    return (f"stored in {count} of {len(store.locations)} locations, "
            f"min_locations is {store.min_locations}: {reasons}")

