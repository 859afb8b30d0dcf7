"""The backup store of one source database across every configured location.

Layout per location: ``<source>/objects/<n>-<kind>.tvo`` and ``<source>/manifest/<n>.json``.
The same object and entry, byte for byte, go to every location; an entry is written only
after its object is stored everywhere.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import BinaryIO

from trade_stream.errors import IntegrityError, StorageError
from trade_stream.locations import AtomicWriter, Location
from trade_stream.manifest import ManifestEntry, decode_entry, encode_entry, entry_key


@dataclass
class LocationCatalog:
    """What one location holds for the source: good entries and problems found reading them."""

    location: Location
    entries: dict[int, ManifestEntry] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)
    error: str = ""


class TeeWriter:
    """Writes one object to every location at once; commit makes it visible everywhere."""

    def __init__(self, writers: list[AtomicWriter]) -> None:
        self.writers = writers

    def write(self, data: bytes) -> int:
        for writer in self.writers:
            writer.write(data)
        return len(data)

    def commit(self) -> None:
        for writer in self.writers:
            writer.commit()

    def abort(self) -> None:
        for writer in self.writers:
            writer.abort()


class BackupStore:
    def __init__(self, source: str, locations: list[Location]) -> None:
        self.source = source
        self.locations = locations

    def key(self, relative: str) -> str:
        return f"{self.source}/{relative}"

    # -- reading -------------------------------------------------------------------------
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
            except OSError as exc:
                catalog.problems.append((relative, f"unreadable: {exc}"))
                continue
            if entry_key(entry.n) != relative:
                catalog.problems.append((relative, f"entry claims position {entry.n}"))
                continue
            catalog.entries[entry.n] = entry
        return catalog

    def catalogs(self) -> list[LocationCatalog]:
        return [self.read_location(location) for location in self.locations]

    @staticmethod
    def merged(catalogs: list[LocationCatalog]) -> list[ManifestEntry]:
        """Union of every location's entries by position; the first good copy wins."""
        entries: dict[int, ManifestEntry] = {}
        for catalog in catalogs:
            for n, entry in catalog.entries.items():
                entries.setdefault(n, entry)
        return [entries[n] for n in sorted(entries)]

    def entries(self) -> list[ManifestEntry]:
        return self.merged(self.catalogs())

    def open_object(self, entry: ManifestEntry) -> tuple[Location, BinaryIO, int]:
        """The first location holding the object with the size its entry records."""
        tried = []
        for location in self.locations:
            key = self.key(entry.object)
            size = location.size(key)
            if size is None:
                tried.append(f"{location.name}: missing")
                continue
            if size != entry.bytes:
                tried.append(f"{location.name}: size {size} != {entry.bytes}")
                continue
            return location, location.open(key), size
        raise IntegrityError(f"{entry.object}: no usable copy ({'; '.join(tried)})")

    # -- writing -------------------------------------------------------------------------
    def object_writer(self, relative: str) -> TeeWriter:
        writers: list[AtomicWriter] = []
        try:
            for location in self.locations:
                writers.append(location.writer(self.key(relative)))
        except Exception:
            for writer in writers:
                writer.abort()
            raise
        return TeeWriter(writers)

    def publish(self, entry: ManifestEntry) -> None:
        """Write the entry last: from now on the object is part of the backup."""
        data = encode_entry(entry)
        for location in self.locations:
            location.put_bytes(self.key(entry_key(entry.n)), data)

    def catch_up(self) -> list[str]:
        """Copy entries (and their objects) that some location lacks from one that has them,
        checking each object's SHA-256 on the way. Returns what was copied."""
        catalogs = self.catalogs()
        merged = {e.n: e for e in self.merged(catalogs)}
        copied = []
        for catalog in catalogs:
            if catalog.error:
                continue
            for n, entry in merged.items():
                if n in catalog.entries:
                    continue
                source = next(c for c in catalogs if n in c.entries)
                self._copy_object(source.location, catalog.location, entry)
                catalog.location.put_bytes(self.key(entry_key(n)), encode_entry(entry))
                copied.append(f"{entry.object} -> {catalog.location.name}")
        return copied

    def _copy_object(self, source: Location, target: Location, entry: ManifestEntry) -> None:
        key = self.key(entry.object)
        writer = target.writer(key)
        sha = hashlib.sha256()
        try:
            with source.open(key) as handle:
                while chunk := handle.read(1 << 20):
                    sha.update(chunk)
                    writer.write(chunk)
            if sha.hexdigest() != entry.sha256:
                raise IntegrityError(f"{entry.object}: checksum mismatch on {source.name}, not copied")
        except BaseException:
            writer.abort()
            raise
        writer.commit()
