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
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, TypeVar

import msgspec

from trade_stream.errors import AlreadyStored, IntegrityError, StorageError
from trade_stream.manifest import (
    FENCE_KEY,
    HEAD_KEY,
    Fence,
    Head,
    ManifestEntry,
    Promotion,
    PrunedRecord,
    decode_entry,
    encode_entry,
    entry_key,
    head_of,
    pruned_key,
)
from trade_stream.object_format import ObjectReader
from trade_stream.storage.encryption import NO_ENCRYPTION, Cipher
from trade_stream.storage.locations import AtomicWriter, Location

T = TypeVar("T")


@dataclass
class LocationCatalog:
    """What one location holds for the source: good entries and problems found reading them."""

    location: Location
    entries: dict[int, ManifestEntry] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)
    error: str = ""
    pruned: dict[int, PrunedRecord] = field(default_factory=dict)


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

    def request_counts(self) -> dict[str, dict[str, int]]:
        """Requests each location has sent so far, by kind (storage/requests.py)."""
        return {location.name: location.requests.snapshot() for location in self.locations}

    def key(self, relative: str) -> str:
        return f"{self.source}/{relative}"

    # -- reading the catalog ---------------------------------------------------------------
    def read_location(self, location: Location) -> LocationCatalog:
        catalog = LocationCatalog(location)
        try:
            keys = location.list(self.key("manifest"))
        except StorageError as exc:
            catalog.error = str(exc)
            return catalog
        for key in keys:
            name = key.rsplit("/", 1)[-1]
            if not name.endswith(".json"):
                continue
            relative = f"manifest/{name}"
            try:
                with location.open(key) as handle:
                    entry = decode_entry(handle.read(), relative)
            except IntegrityError as exc:
                catalog.problems.append((relative, str(exc).split(": ", 1)[-1]))
                continue
            except (OSError, StorageError) as exc:
                catalog.problems.append((relative, f"unreadable: {exc}"))
                continue
            if entry_key(entry.n) != relative:
                catalog.problems.append((relative, f"entry claims position {entry.n}"))
                continue
            catalog.entries[entry.n] = entry
        try:
            for key in location.list(self.key("pruned")):
                try:
                    with location.open(key) as handle:
                        record = msgspec.json.decode(handle.read(), type=PrunedRecord)
                    catalog.pruned[record.n] = record
                except (msgspec.DecodeError, msgspec.ValidationError, OSError, StorageError) as exc:
                    catalog.problems.append((key.split("/", 1)[-1], f"unreadable pruned record: {exc}"))
        except StorageError as exc:
            catalog.error = str(exc)
        return catalog

    def catalogs(self) -> list[LocationCatalog]:
        if len(self.locations) == 1:
            return [self.read_location(self.locations[0])]
        with concurrent.futures.ThreadPoolExecutor(len(self.locations)) as pool:
            return list(pool.map(self.read_location, self.locations))

    @staticmethod
    def merged(catalogs: list[LocationCatalog]) -> list[ManifestEntry]:
        """Union of every location's entries by position (the first good copy wins),
        without the entries that retention removed anywhere."""
        pruned = BackupStore.pruned(catalogs)
        entries: dict[int, ManifestEntry] = {}
        for catalog in catalogs:
            for n, entry in catalog.entries.items():
                if n not in pruned:
                    entries.setdefault(n, entry)
        return [entries[n] for n in sorted(entries)]

    @staticmethod
    def pruned(catalogs: list[LocationCatalog]) -> dict[int, PrunedRecord]:
        records: dict[int, PrunedRecord] = {}
        for catalog in catalogs:
            records.update(catalog.pruned)
        return records

    def entries(self) -> list[ManifestEntry]:
        return self.merged(self.catalogs())

    def entries_and_damage(self, catalogs: list[LocationCatalog] | None = None,
                           ) -> tuple[list[ManifestEntry], dict[int, str]]:
        """Every intact entry, and the positions whose entry is damaged in every copy
        (with the problem), so a restore can refuse to silently skip them."""
        catalogs = self.catalogs() if catalogs is None else catalogs
        merged = self.merged(catalogs)
        known = {e.n for e in merged} | set(self.pruned(catalogs))
        damaged: dict[int, str] = {}
        for catalog in catalogs:
            for key, problem in catalog.problems:
                name = key.rsplit("/", 1)[-1].removesuffix(".json")
                if key.startswith("manifest/") and name.isdigit() and int(name) not in known:
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
            except (IntegrityError, StorageError, OSError) as exc:
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
        for location in self.locations:
            if location.name in done:
                self._write_head(location, entry)
        return done

    def _write_head(self, location: Location, entry: ManifestEntry) -> None:
        """Best effort: the head is evidence, the entry already is the backup."""
        try:
            location.put_bytes(self.key(HEAD_KEY), msgspec.json.encode(head_of(entry)) + b"\n")
        except (StorageError, OSError):
            pass

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
        out: dict[str, Head | None] = {}
        for location in self.locations:
            try:
                with location.open(self.key(HEAD_KEY)) as handle:
                    out[location.name] = msgspec.json.decode(handle.read(), type=Head)
            except (OSError, StorageError, msgspec.DecodeError, msgspec.ValidationError):
                out[location.name] = None
        return out

    def catch_up_for_write(self) -> tuple[list[str], list[ManifestEntry]]:
        """What a backup starts from, with one read of the catalog: the lagging locations
        caught up (``catch_up``), then the entries it builds on (``entries_for_write``).
        Reading the catalog for each cost two GETs per stored entry."""
        catalogs = self.catalogs()
        return self.catch_up(catalogs), self.entries_for_write(catalogs)

    def catch_up(self, catalogs: list[LocationCatalog] | None = None) -> list[str]:
        """Copy entries (and their objects) that a location lacks from one that has them,
        checking each object's SHA-256 on the way. Locations that are down are skipped.
        Returns what was copied (and what could not be). ``catalogs``: as just read; what
        is copied is added to them."""
        catalogs = self.catalogs() if catalogs is None else catalogs
        merged = {e.n: e for e in self.merged(catalogs)}
        pruned = self.pruned(catalogs)
        copied = []
        for catalog in catalogs:
            if catalog.error:
                copied.append(f"{catalog.location.name}: unreachable, left behind ({catalog.error})")
                continue
            for n, record in pruned.items():  # finish what retention started elsewhere
                if n in catalog.entries or n not in catalog.pruned:
                    self._prune_one(catalog.location, record)
                    copied.append(f"{record.object}: pruned on {catalog.location.name}")
            behind = max(merged, default=-1) not in catalog.entries
            for n, entry in merged.items():
                if n in catalog.entries:
                    continue
                sources = [c.location for c in catalogs if n in c.entries and c is not catalog]
                try:
                    self._copy_object(sources, catalog.location, entry)
                    catalog.location.put_bytes(self.key(entry_key(n)), encode_entry(entry))
                    catalog.entries[n] = entry
                    copied.append(f"{entry.object} -> {catalog.location.name}")
                except (StorageError, OSError, IntegrityError) as exc:
                    copied.append(f"{entry.object} -> {catalog.location.name} failed: {exc}")
            if merged and behind and max(merged) in catalog.entries:  # caught up: its head moves too
                self._write_head(catalog.location, merged[max(merged)])
        return copied

    def prune(self, numbers: list[int]) -> list[str]:
        """Remove entries chosen by retention, oldest first, from every location: pruned
        record, then manifest entry, then object — a crash never leaves an entry pointing
        at nothing, and the next run (or catch-up) finishes the job."""
        catalogs = self.catalogs()
        merged = {e.n: e for e in self.merged(catalogs)}
        done = []
        for n in sorted(numbers):
            entry = merged.get(n)
            if entry is None:
                continue
            record = PrunedRecord(n=n, entry_hash=entry.entry_hash, object=entry.object,
                                  pruned_at=time.time_ns() // 1000)
            for catalog in catalogs:
                if not catalog.error:
                    self._prune_one(catalog.location, record)
            done.append(entry.object)
        return done

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

