"""``verify``: every manifest entry and object on every location, checked independently.

Shallow: entries decode and hash-chain, seq continuity, each object exists with the
recorded size and SHA-256. Deep: additionally decode every record (events in order and
counted; a snapshot's database passes SQLite's integrity check with the recorded rows).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import msgspec

from restore.evidence import Evidence, shortfall
from trade_stream.checkpoints import checkpoint_key, checkpoint_number
from trade_stream.errors import BadInputError, IntegrityError, StorageError
from trade_stream.key_index import KeyIndexBuilder, index_problem
from trade_stream.manifest import (
    FULL,
    HEAD_KEY,
    INCREMENTAL,
    Head,
    ManifestEntry,
    Pruned,
    PrunedRecord,
    chain_problems,
    entry_key,
    head_problem,
    object_key,
)
from trade_stream.object_format import CODEC_EVENTS, CODEC_SQLITE_FILE, ObjectReader
from trade_stream.progress import Progress, no_progress
from trade_stream.schema import DatabaseSchema, TableSchema, quote_ident
from trade_stream.segments import decode_chunks, out_of_order
from trade_stream.storage.store import BackupStore, LocationCatalog


@dataclass
class VerifyReport:
    problems: list[dict[str, str]] = field(default_factory=list)
    objects_checked: int = 0
    bytes_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, location: str, obj: str, problem: str) -> None:
        self.problems.append({"location": location, "object": obj, "problem": problem})

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems, "objects_checked": self.objects_checked,
                "bytes_checked": self.bytes_checked}


def verify_store(store: BackupStore, *, deep: bool = False, progress: Progress = no_progress,
                 evidence: Iterable[Evidence] = ()) -> VerifyReport:
    """``evidence``: witnesses of how far the backups went (``restore.evidence``: the
    locations' head records, the source's change log). A chain ending before one of them
    means stored backups were lost, e.g. the newest manifest entry deleted everywhere."""
    report = VerifyReport()
    catalogs = store.catalogs(full=True)
    everywhere = {e.n: e for e in store.merged(catalogs)}
    pruned = store.pruned(catalogs)
    total = sum(len(c.entries) for c in catalogs)
    for catalog in catalogs:
        name = catalog.location.name
        if catalog.error:
            report.add(name, "", catalog.error)
            continue
        for key, problem in catalog.problems:
            report.add(name, key, problem)
        entries = [catalog.entries[n] for n in sorted(catalog.entries) if n not in pruned]
        for key, problem in chain_problems(entries, catalog.pruned.union(pruned)):  # its own copies first
            report.add(name, key, problem)
        for n in pruned.positions():
            if n not in catalog.pruned:
                report.add(name, f"pruned/{n:010d}.json", "pruned record missing on this location (present on another)")
        for n, record in catalog.pruned.records.items():
            copies = [c.pruned.records[n] for c in catalogs if c is not catalog and n in c.pruned.records]
            problem = _pruned_copy_problem(record, copies, everywhere.get(n + 1))
            if problem:
                report.add(name, f"pruned/{n:010d}.json", problem)
        for key, problem in _index_problems(store, catalog, pruned):
            report.add(name, key, problem)
        for n, entry in everywhere.items():
            if n not in catalog.entries:
                report.add(name, entry_key(n), "entry missing on this location (present on another)")
            elif catalog.entries[n].entry_hash != entry.entry_hash:
                report.add(name, entry_key(n), "entry differs from the other locations' copy")
        for entry in entries:
            problem = _check_object(store, catalog, entry, deep)
            report.objects_checked += 1
            report.bytes_checked += entry.bytes
            if problem:
                report.add(name, entry.object, problem)
            progress("verify", report.objects_checked, total)
    explained = any(p["object"].startswith("manifest/") for p in report.problems)  # a damaged entry says it
    found = shortfall(list(everywhere.values()), evidence)
    if found is not None and not explained:
        first, last = (found.chain_n or 0) + 1, found.witness.n
        for key in [entry_key(n) for n in range(first, last + 1)] if last is not None else ["manifest"]:
            report.add("", key, found.message())
    return report


def _index_problems(store: BackupStore, catalog: LocationCatalog, pruned: Pruned) -> list[tuple[str, str]]:
    """The copies a reader trusts instead of the entries (the newest checkpoint, the head's
    tail) checked against the entries themselves, and the checkpoint's link into the chain."""
    problems = []
    checkpoint = catalog.checkpoint
    for key in catalog.location.list(store.key("checkpoints")):  # the one kept before the newest too
        n = checkpoint_number(key)
        if n is not None and (checkpoint is None or n < checkpoint.n):
            try:
                store.read_checkpoint(catalog.location, n, fresh=True)
            except (IntegrityError, StorageError, OSError) as exc:
                problems.append((checkpoint_key(n), str(exc).split(": ", 1)[-1]))
    if checkpoint is not None:
        key = checkpoint_key(checkpoint.n)
        for copy in checkpoint.entries:
            entry = catalog.entries.get(copy.n)
            if entry is None and copy.n not in pruned:
                problems.append((entry_key(copy.n), f"entry missing (a copy is in {key})"))
            elif entry is not None and entry != copy:
                problems.append((entry_key(copy.n), f"entry differs from its copy in {key}"))
        at_n = catalog.entries.get(checkpoint.n)
        link = at_n.entry_hash if at_n is not None else pruned.link(checkpoint.n)
        if link != checkpoint.last_hash:
            problems.append((key, f"checkpoint does not link into the chain at entry {checkpoint.n}"))
    head, problem = _head(store, catalog)
    if problem:
        problems.append((HEAD_KEY, problem))
    if head is not None and head.checkpoint and (checkpoint is None or checkpoint.n != head.checkpoint):
        problems.append((checkpoint_key(head.checkpoint), f"checkpoint missing or unreadable ({HEAD_KEY} names it)"))
    for copy in head.tail if head is not None else ():
        entry = catalog.entries.get(copy.n)
        if entry is not None and entry != copy:
            problems.append((entry_key(copy.n), "entry differs from its copy in head.json"))
    return problems


def _head(store: BackupStore, catalog: LocationCatalog) -> tuple[Head | None, str]:
    """The location's head and what is wrong with it."""
    try:
        with catalog.location.open(store.key(HEAD_KEY)) as handle:
            data = handle.read()
    except (OSError, StorageError):
        # a head goes with every checkpoint; without one, it may never have been written
        return None, "head missing (a checkpoint is here, and one is written with it)" if catalog.checkpoint else ""
    try:
        head = msgspec.json.decode(data, type=Head)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return None, f"unreadable head: {exc}"
    problem = head_problem(head)
    at_n = catalog.entries.get(head.n)
    if not problem and at_n is not None and (at_n.entry_hash, at_n.last_seq, at_n.created_at) != (
            head.entry_hash, head.last_seq, head.created_at):
        problem = f"head does not match entry #{head.n}"
    return (None, problem) if problem else (head, "")


def _pruned_copy_problem(record: PrunedRecord, others: list[PrunedRecord], following: ManifestEntry | None) -> str:
    """A pruned record carries no hash of its own, so a damaged copy that still decodes is
    only seen against the other locations' copies and the chain: the copy that names the
    wrong object or breaks the next entry's link is the damaged one; when both look sound
    and still differ, each is reported (one of them is damaged)."""
    def sound(r: PrunedRecord) -> bool:
        named = r.object in (object_key(r.n, FULL), object_key(r.n, INCREMENTAL))
        return named and (following is None or following.prev_hash == r.entry_hash)

    differing = [o for o in others if o != record]
    if not differing:
        return "" if others or sound(record) else "pruned record does not fit the chain (damaged)"
    if not sound(record):
        return "pruned record differs from the other locations' copy and does not fit the chain (damaged)"
    if all(sound(o) for o in differing):
        return "pruned record differs from the other locations' copy (one of them is damaged)"
    return ""


def _check_object(store: BackupStore, catalog: LocationCatalog, entry: ManifestEntry, deep: bool) -> str:
    location = catalog.location
    key = store.key(entry.object)
    try:
        size = location.size(key)
        if size is None:
            return "object missing"
        if size != entry.bytes:
            return f"size {size} bytes, manifest says {entry.bytes}"
        sha = hashlib.sha256()
        with location.open(key) as handle:
            while chunk := handle.read(1 << 20):
                sha.update(chunk)
        if sha.hexdigest() != entry.sha256:
            return "SHA-256 mismatch (object is corrupt)"
        if not deep:
            return ""
        with store.open_reader(location, entry) as reader:
            problem = _deep_check(reader, entry)
            if not problem:
                store.check(reader, entry)
            return problem
    except IntegrityError as exc:
        return str(exc).removeprefix(f"{entry.object}: ")
    except BadInputError as exc:  # an object name that climbs out of the store: tampering
        return f"invalid object name: {exc}"
    except (OSError, StorageError) as exc:
        return f"unreadable: {exc}"


def _schema_problem(conn: sqlite3.Connection, recorded: DatabaseSchema) -> str:
    """A snapshot's tables and indexes must be the ones its header describes (what a
    restore into another dialect builds from)."""
    from trade_stream.sqlite.database import DatabaseService

    for table in recorded.tables:
        try:
            actual = DatabaseService.table_schema(conn, table.name)
        except (TypeError, sqlite3.Error):  # no such table
            return f"snapshot lacks table {table.name!r} its header records"
        if actual.ddl != table.ddl or table.indexes not in (None, actual.indexes):
            return f"snapshot table {table.name!r} differs from the schema its header records"
    return ""


def _deep_check(reader: ObjectReader, entry: ManifestEntry) -> str:
    """Decode every record; the caller checks the trailer afterwards."""
    header = reader.header
    if header.codec == CODEC_EVENTS:
        count, previous = 0, entry.after_seq
        keys = KeyIndexBuilder(TableSchema.from_dict(t) for t in header.schema.get("tables", ()))
        for batch in decode_chunks(reader.body_chunks(), entry.object):
            at = out_of_order(batch, previous)
            if at is not None:
                return f"events out of order at seq {at}"
            previous = batch[-1].seq if batch else previous
            count += len(batch)
            keys.add(batch)
        if count != entry.count or previous != entry.last_seq:
            return f"holds {count} events up to seq {previous}, manifest says {entry.count} up to {entry.last_seq}"
        # a key index that misses a key would hide the row's versions from history
        return index_problem(keys.to_header(), header.extra.get("keys"))
    if header.codec == CODEC_SQLITE_FILE and entry.kind == FULL:
        with tempfile.TemporaryDirectory(prefix="tradevault-verify-") as tmp:
            path = Path(tmp) / "snapshot.sqlite"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                for chunk in reader.body_chunks(4 << 20):
                    out.write(chunk)
            conn = sqlite3.connect(path)
            try:
                check = conn.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    return f"snapshot database fails SQLite's check: {check}"
                for table, rows in entry.tables.items():
                    actual = conn.execute(f"SELECT count(*) FROM {quote_ident(table)}").fetchone()[0]
                    if actual != rows:
                        return f"snapshot table {table!r} has {actual} rows, manifest says {rows}"
                problem = _schema_problem(conn, DatabaseSchema.from_dict(header.schema))
                if problem:
                    return problem
            except sqlite3.DatabaseError as exc:
                return f"snapshot database unreadable: {exc}"
            finally:
                conn.close()
        return ""
    if header.codec == "pgcopy-binary" and entry.kind == FULL:
        from trade_stream.postgres.snapshot_rows import deep_check_rows

        return deep_check_rows(reader, entry)
    return f"unknown codec {header.codec!r}"
