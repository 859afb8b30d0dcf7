"""The dialect-neutral half of every backup: the object header, storing the object in
every location, sealing its manifest entry onto the chain and publishing it last, and the
host lock that keeps one backup of a source running at a time. Each source's engine
(``trade_stream/sqlite/backup.py``, ``trade_stream/postgres/backup.py``) composes one."""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from primitives.file_lock import exclusive_lock
from trade_stream import manifest as mf
from trade_stream.errors import BadInputError, FencedError, IntegrityError, StorageError
from trade_stream.object_format import BODY_STREAM, FORMAT_VERSION, ObjectHeader, ObjectWriter, framed_body
from trade_stream.storage.encryption import AGE
from trade_stream.storage.store import BackupStore


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass
class StoredObject:
    """What storing one object produced: sizes and checksums of what was stored (and of
    the container before encryption), and where it went."""

    size: int
    sha256: str
    plain_size: int
    plain_sha256: str
    locations: list[str]
    failed: dict[str, str]


@dataclass
class BackupResult:
    kind: str
    n: int | None
    first_seq: int | None
    last_seq: int | None
    count: int
    bytes: int
    seconds: float
    locations: list[str]
    first_ts: int | None = None
    last_ts: int | None = None
    tables: dict[str, int] = field(default_factory=dict)
    skipped: str = ""  # why nothing was stored (nothing changed)
    warnings: list[str] = field(default_factory=list)
    catch_up: list[str] = field(default_factory=list)
    #: requests the command sent to each location, by kind (storage/requests.py)
    requests: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def of(cls, entry: mf.ManifestEntry, locations: list[str]) -> "BackupResult":
        """The result of a backup that stored ``entry`` in ``locations``."""
        return cls(kind=entry.kind, n=entry.n, first_seq=entry.first_seq, last_seq=entry.last_seq,
                   count=entry.count, bytes=entry.bytes, seconds=0.0, locations=locations,
                   first_ts=entry.first_ts, last_ts=entry.last_ts, tables=dict(entry.tables))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["rows" if self.kind == mf.FULL else "events"] = self.count
        return data


class BodyAhead:
    """An incremental's "sized-frames" body compressed ahead of its object, by ``workers``
    threads while the caller is still making the events (zstd lets go of the GIL), into a
    spool: 16 MB stay in memory (about half a million events), more go to ``work_dir``.
    The header, which comes first in the object, can then say what only the whole body
    knows (counts, bounds, the key index), and nothing but copying is left once the last
    event is known. A context manager: leaving it before ``finish`` abandons the work."""

    def __init__(self, publisher: "Publisher", work_dir: str | None, workers: int) -> None:
        self._publisher = publisher
        self._spool = tempfile.SpooledTemporaryFile(max_size=16 << 20, dir=work_dir)
        self._body = framed_body(self._spool, publisher.level, workers)

    def __enter__(self) -> "BodyAhead":
        return self

    def __exit__(self, *exc: object) -> None:
        self._body.abandon()  # (after finish, a no-op)
        self._spool.close()

    def write(self, data: bytes) -> None:
        self._body.write(data)

    def finish(self) -> None:
        """Every frame compressed: the body is complete."""
        self._body.close()

    def store(self, key: str, header: ObjectHeader) -> StoredObject:
        """The object, ``header`` then the finished body, in every location."""

        def write_body(writer: ObjectWriter) -> None:
            self._spool.seek(0)
            while chunk := self._spool.read(4 << 20):
                writer.write_framed(chunk)

        return self._publisher.store_object(key, header, write_body, threads=1)


class Publisher:
    """Stores objects and publishes their manifest entries for one source.

    ``annotate`` returns what to record beside each backup (the live config commit of each
    watched directory), so data and configuration share restore points. ``warnings``
    collects what the caller reports with its result (locations left behind)."""

    def __init__(self, store: BackupStore, source_id: str, *, level: int = 3, threads: int = -1,
                 annotate: Callable[[], dict[str, str]] | None = None) -> None:
        self.store = store
        #: names this source on this host (lock file, scratch directories)
        self.digest = hashlib.sha256(source_id.encode()).hexdigest()[:16]
        self.level = level
        self.threads = threads
        self.annotate = annotate
        self.warnings: list[str] = []

    def shared_chain(self, entries: list[mf.ManifestEntry], database: str) -> str | None:
        """What to tell the user when the chain's newest full backup was taken from another
        database than ``database`` (its header's ``extra.database``): two databases backed up
        under one source name on one location take turns at its chain, and each restore of
        the source gives the last one's rows. None when the same, or not recorded (older
        backups, or no copy of that header reads: never a reason to refuse a backup)."""
        from trade_stream.storage.stored_objects import header_of

        fulls = [e for e in entries if e.kind == mf.FULL]
        if not fulls:
            return None
        try:
            recorded = header_of(self.store, fulls[-1]).extra.get("database")
        except (IntegrityError, StorageError):
            return None
        if not recorded or recorded == database:
            return None
        return (f"the newest full backup of source {self.store.source!r} on these locations is of database "
                f"{recorded}, not this one ({database}): if both are in use, they take turns at one chain and "
                "each restore gives the last one's rows; give each its own source name ([database] name)")

    def require_capture(self, entries: list[mf.ManifestEntry], capture_id: str, database: str) -> None:
        """An incremental goes on the chain only from the capture the chain started with:
        another one is bad input, saying whether another database took the chain over
        (``shared_chain``) or this one's capture was reinstalled."""
        if entries[-1].capture_id != capture_id:
            raise BadInputError(self.shared_chain(entries, database) or
                                "change capture was reinstalled since the last backup: run `tradevault backup full`")

    def header(self, kind: str, codec: str, after: int, last: int, schema: dict, capture_id: str,
               first_ts: int | None = None, last_ts: int | None = None, count: int = -1,
               extra: dict | None = None, body: str = BODY_STREAM) -> ObjectHeader:
        return ObjectHeader(
            format=FORMAT_VERSION, kind=kind, codec=codec, source=self.store.source, after_seq=after,
            last_seq=last, first_ts=first_ts, last_ts=last_ts, count=count, schema=schema,
            capture_id=capture_id, extra=extra or {}, body=body,
        )

    def store_object(self, key: str, header: ObjectHeader, write_body: Callable[[ObjectWriter], None],
                     *, threads: int | None = None) -> StoredObject:
        """One object to every location: ``write_body`` streams the body (and may raise to
        abandon it); nothing is visible unless every step succeeded."""
        sink = self.store.object_writer(key)
        writer: ObjectWriter | None = None
        try:
            writer = ObjectWriter(sink, header, level=self.level, threads=self.threads if threads is None else threads)
            write_body(writer)
            plain_size, plain_sha = writer.finish()
            size, sha = sink.close_stream()
            stored_in = sink.commit()
        except BaseException:
            if writer is not None:
                writer.abandon()
            sink.abort()
            raise
        return StoredObject(size, sha, plain_size, plain_sha, stored_in, sink.failed)

    def body_ahead(self, work_dir: str | None, workers: int = 2) -> "BodyAhead":
        return BodyAhead(self, work_dir, workers)

    def publish_entry(self, stored: StoredObject, previous: mf.ManifestEntry | None,
                      **fields: Any) -> tuple[mf.ManifestEntry, list[str]]:
        """The manifest entry of a stored object, sealed onto the chain and written last;
        returns it and the locations that now hold both. A fenced capture (its database was
        replaced by a promoted standby) is refused: FencedError, exit 3."""
        promotion = self.store.fence().fenced_by(fields["capture_id"])
        if promotion is not None:
            for location in self.store.locations:  # the object never became part of the store
                if location.name in stored.locations:
                    with contextlib.suppress(StorageError, OSError):
                        location.delete(self.store.key(fields["object"]))
            raise FencedError(mf.fenced_message(promotion))
        entry = mf.seal(
            mf.ManifestEntry(source=self.store.source, bytes=stored.size, sha256=stored.sha256, created_at=now_us(),
                             **{**self._extra_fields(stored.plain_size, stored.plain_sha256), **fields}),
            previous,
        )
        return entry, self._publish(entry, stored.locations, stored.failed)

    def _extra_fields(self, plain_size: int, plain_sha: str) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if self.annotate is not None:
            try:
                fields["config"] = self.annotate()
            except Exception as exc:  # noqa: BLE001 - a config problem must not stop a backup
                self.warnings.append(f"could not record the config commit: {exc}")
        if self.store.cipher.enabled:
            fields.update(encryption=AGE, plain_bytes=plain_size, plain_sha256=plain_sha)
        return fields

    def _publish(self, entry: mf.ManifestEntry, stored_in: list[str], failed: dict[str, str]) -> list[str]:
        stored = self.store.publish(entry, stored_in, failed)
        for name in (loc.name for loc in self.store.locations):
            if name not in stored:
                reason = failed.get(name, "manifest entry not written")
                self.warnings.append(f"location {name} is behind (catches up at the next backup): {reason}")
        return stored

    def lock_path(self) -> Path:
        return Path(tempfile.gettempdir()) / f"tradevault-backup-{self.digest}.lock"

    @contextlib.contextmanager
    def exclusive(self, timeout: float = 900.0) -> Iterator[None]:
        """One backup of a source at a time on this host: a full and an incremental running
        together would both take the next chain position."""
        with exclusive_lock(self.lock_path(), timeout,
                            lambda: StorageError("another backup of this database is still running")):
            yield
