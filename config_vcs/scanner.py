"""Read a watched directory into a snapshot ``{path: (mode, blob id)}``.

The whole tree is walked on every commit: events only say *when* to look, the walk
says *what* changed, so a lost, reordered or overflowed event can never lose a change
(new nested directories, atomic renames, delete+recreate are all just "the tree now").
A stat cache keeps the walk cheap: a file is re-read only when its stat changed or is
too recent to trust (the racy-git problem). Symlinks are stored as links (their target
text), never followed; other special files are skipped. What is not configuration is
left out and recorded with its reason (``Snapshot.excluded``), see ``Scanner``.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dulwich.objects import Blob

from config_vcs.content import HEADER_BYTES, SQLITE_MAGIC, content_reason, is_sqlite, sidecar_base
from config_vcs.ignore import PathFilter
from config_vcs.protected import ProtectedFiles
from config_vcs.reasons import CONTENT_REASONS, DATABASE, GIT, SQLITE, TOO_LARGE

log = logging.getLogger(__name__)

MODE_FILE, MODE_EXEC, MODE_LINK = 0o100644, 0o100755, 0o120000
_RACY_NS = 2_000_000_000  # a file modified this close to its hashing is re-read next time


@dataclass(frozen=True)
class ScannedFile:
    mode: int
    sha: bytes  # hex blob id
    stat: os.stat_result  # for the git index
    sealed: bool = False  # the blob is an encrypted form of the file (see sealing.py)


@dataclass
class Snapshot:
    files: dict[bytes, ScannedFile] = field(default_factory=dict)
    #: present but unreadable right now: the committer keeps their last committed version
    unreadable: set[bytes] = field(default_factory=set)
    #: present but not configuration: path -> reason (reasons.py); a directory skipped
    #: whole ends with ``/``
    excluded: dict[bytes, str] = field(default_factory=dict)

    def entries(self) -> dict[bytes, tuple[int, bytes]]:
        return {path: (f.mode, f.sha) for path, f in self.files.items()}


def git_mode(st: os.stat_result) -> int | None:
    """The git mode of an lstat result, or None for what git cannot store."""
    if stat.S_ISLNK(st.st_mode):
        return MODE_LINK
    if stat.S_ISREG(st.st_mode):
        return MODE_EXEC if st.st_mode & stat.S_IXUSR else MODE_FILE
    return None


def _stat_key(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_mode)


class Scanner:
    """Walks one directory; keeps the stat cache between scans (one scanner per repo).

    What is left out, in this order: paths the PathFilter names (``.git``, exclude,
    defaults unless included, .gitignore), the protected database and its companions
    (always), companions of a SQLite database, then by contents (``content.py``: a SQLite
    header, above ``max_file_size``, binary) unless an include glob names the file. The
    contents of a left-out file are never added to the object store.
    """

    def __init__(
        self,
        root: Path,
        max_file_size: int,
        warn: Callable[[str], None] | None = None,
        seal: Callable[[str, bytes], bytes] | None = None,
        protected: ProtectedFiles | None = None,
        note: Callable[[str], None] | None = None,
    ) -> None:
        self.root = Path(root)
        self.max_file_size = max_file_size
        self._warn = warn or log.warning
        #: regular files' bytes -> the bytes to store (encrypted secrets); None: as is
        self._seal = seal
        self.protected = protected or ProtectedFiles()
        self._note_line = note or log.info  # "not configuration" notes (warnings go to warn)
        #: path -> (stat key, blob id, hashed at, sealed, reason it is left out or None)
        self._cache: dict[bytes, tuple[tuple[int, ...], bytes, int, bool, str | None]] = {}
        self._noted: dict[bytes, str] = {}  # said once in the log: path -> reason
        self._real_root = b""

    def scan(self, pfilter: PathFilter, store: object, known: set[bytes] | None = None) -> Snapshot:
        """Walk the tree; every blob read is added to ``store`` (a dulwich object store).

        ``known``: blob ids certainly in the store (HEAD's), spares a lookup per file.
        """
        snapshot = Snapshot()
        seen: set[bytes] = set()
        sink = _BlobSink(store, known or set())
        self._real_root = os.fsencode(os.path.realpath(self.root))
        self._walk(os.fsencode(self.root), b"", pfilter, sink, snapshot, seen)
        sink.flush()
        for gone in set(self._cache) - seen:
            del self._cache[gone]
        self._noted = {p: r for p, r in self._noted.items() if snapshot.excluded.get(p) == r}
        return snapshot

    def _walk(
        self,
        abs_dir: bytes,
        rel_dir: bytes,
        pfilter: PathFilter,
        sink: "_BlobSink",
        snapshot: Snapshot,
        seen: set[bytes],
    ) -> None:
        try:
            entries = sorted(os.scandir(abs_dir), key=lambda e: e.name)
        except FileNotFoundError:
            return  # vanished while we walked: it is simply not in the snapshot
        except OSError as exc:
            self._warn(f"cannot list {os.fsdecode(abs_dir)}: {exc.strerror}")
            return
        databases: set[str] = set()  # names of SQLite databases in this directory
        for entry in entries:
            name: bytes = entry.name  # type: ignore[assignment]
            if name == b".git":
                continue
            rel = rel_dir + b"/" + name if rel_dir else name
            rel_text = os.fsdecode(rel)
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                reason = pfilter.dir_reason(rel_text)
                if reason is None:
                    self._walk(entry.path, rel, pfilter, sink, snapshot, seen)  # type: ignore[arg-type]
                elif reason != GIT:
                    snapshot.excluded[rel + b"/"] = reason
                continue
            mode = git_mode(st)
            if mode is None:
                continue
            reason = self._path_reason(abs_dir, rel, rel_text, pfilter, databases)
            if reason is None:
                seen.add(rel)
                scanned = self._file(entry.path, rel, rel_text, st, mode, sink, pfilter)  # type: ignore[arg-type]
                if scanned is None:
                    snapshot.unreadable.add(rel)
                    continue
                if isinstance(scanned, ScannedFile):
                    snapshot.files[rel] = scanned
                    continue
                reason = scanned
            companion = reason in (DATABASE, SQLITE) and sidecar_base(os.fsdecode(name)) in databases
            if reason in (DATABASE, SQLITE):
                databases.add(os.fsdecode(name))
            if reason != GIT:
                snapshot.excluded[rel] = reason
                if not companion:  # a database is noted once, not once more per -wal/-shm
                    self._note(rel, reason, st.st_size)

    def _path_reason(
        self, abs_dir: bytes, rel: bytes, rel_text: str, pfilter: PathFilter, databases: set[str]
    ) -> str | None:
        """Why a file is left out before reading it, or None."""
        if self.protected and self.protected.contains(os.fsdecode(os.path.join(self._real_root, rel))):
            return DATABASE
        reason = pfilter.file_reason(rel_text)
        if reason is not None:
            return reason
        base = sidecar_base(rel_text.rsplit("/", 1)[-1])
        if base is None or pfilter.included(rel_text):
            return None
        if base in databases or _is_sqlite_file(os.path.join(abs_dir, os.fsencode(base))):
            return SQLITE
        return None

    def _note(self, rel: bytes, reason: str, size: int) -> None:
        """Say once per file why it is left out, when the reason is about the file itself
        (directories and names are listed by ``status`` and ``init --watch``)."""
        if self._noted.get(rel) == reason or reason not in CONTENT_REASONS:
            return
        self._noted[rel] = reason
        where = self.root / os.fsdecode(rel)
        if reason == TOO_LARGE:
            self._warn(
                f"{where}: {size} bytes is above max_file_size ({self.max_file_size}); "
                "not recorded in the configuration history"
            )
        elif reason == DATABASE:
            self._note_line(f"{where}: the protected database (and its -wal/-shm/-journal) is "
                            "never recorded in the configuration history")
        elif reason == SQLITE:
            self._note_line(f"{where}: a SQLite database (and its -wal/-shm/-journal) is not "
                            "configuration; not recorded in the configuration history")
        else:
            self._note_line(f"{where}: binary; not recorded in the configuration history "
                            "(an include glob re-admits it)")

    def _file(
        self,
        abs_path: bytes,
        rel: bytes,
        rel_text: str,
        st: os.stat_result,
        mode: int,
        sink: "_BlobSink",
        pfilter: PathFilter,
    ) -> ScannedFile | str | None:
        """The file as a blob, or why its contents keep it out, or None when unreadable."""
        cached = self._cache.get(rel)
        if cached is not None:
            key, sha, hashed_at, sealed, reason = cached
            if key == _stat_key(st) and st.st_mtime_ns + _RACY_NS < hashed_at and (
                reason is not None or sink.has(sha)
            ):
                return reason if reason is not None else ScannedFile(mode, sha, st, sealed)
        hashed_at = time.time_ns()
        judge = mode != MODE_LINK and not pfilter.included(rel_text)
        name = rel_text.rsplit("/", 1)[-1]
        try:
            if mode == MODE_LINK:
                data = os.readlink(abs_path)
            else:
                if judge and st.st_size > self.max_file_size:  # only its header is read
                    header, big = _read_nofollow(abs_path, HEADER_BYTES)
                    if big is None:
                        return None
                    if big.st_size > self.max_file_size:
                        reason = content_reason(name, header, big.st_size, self.max_file_size)
                        self._cache[rel] = (_stat_key(big), b"", hashed_at, False, reason)
                        return reason
                data, read_st = _read_nofollow(abs_path)
                if read_st is None:
                    return None
                st = read_st
                mode = git_mode(st) or mode
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno != errno.ELOOP:  # replaced by a symlink mid-scan: next scan sees it
                self._warn(f"cannot read {os.fsdecode(abs_path)}: {exc.strerror}")
            return None
        if judge:
            reason = content_reason(name, data[:HEADER_BYTES], len(data), self.max_file_size)
            if reason is not None:
                self._cache[rel] = (_stat_key(st), b"", hashed_at, False, reason)
                return reason
        sealed = False
        if self._seal is not None and mode != MODE_LINK:
            stored = self._seal(rel_text, data)  # plaintext never reaches the store
            sealed = stored != data
            data = stored
        blob = Blob.from_string(data)
        sink.add(blob)
        sha = blob.id
        self._cache[rel] = (_stat_key(st), sha, hashed_at, sealed, None)
        return ScannedFile(mode, sha, st, sealed)


class _BlobSink:
    """Adds the blobs of one scan to the object store: nothing already packed is
    written again (a restart re-reads every file), and many new blobs (a first commit)
    go into one pack instead of thousands of fsync'ed loose files."""

    _BATCH_COUNT = 512
    _BATCH_BYTES = 32 * 1024 * 1024
    _PACK_FROM = 32  # fewer new blobs than this are written loose, as git does

    def __init__(self, store: object, known: set[bytes]) -> None:
        self.store = store
        self._known = known
        self._batch: list[Blob] = []
        self._bytes = 0
        self._seen: set[bytes] = set()

    def has(self, sha: bytes) -> bool:
        """A cached blob id may only be trusted while its object exists (gc prunes
        blobs that were never committed)."""
        return sha in self._known or sha in self._seen or sha in self.store  # type: ignore[operator]

    def add(self, blob: Blob) -> None:
        sha = blob.id
        if sha in self._seen:
            return
        self._seen.add(sha)
        contains_packed = getattr(self.store, "contains_packed", None)
        if contains_packed is not None and contains_packed(sha):
            return
        self._batch.append(blob)
        self._bytes += len(blob.as_raw_string())
        if len(self._batch) >= self._BATCH_COUNT or self._bytes >= self._BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        batch, self._batch, self._bytes = self._batch, [], 0
        if not batch:
            return
        add_objects = getattr(self.store, "add_objects", None)
        if len(batch) >= self._PACK_FROM and add_objects is not None:
            add_objects([(blob, None) for blob in batch])
        else:
            for blob in batch:
                self.store.add_object(blob)  # type: ignore[attr-defined]


def _read_nofollow(path: bytes, limit: int | None = None) -> tuple[bytes, os.stat_result | None]:
    """Read a regular file (at most ``limit`` bytes) without following a symlink swapped
    in after the lstat."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return b"", None
        chunks = []
        left = limit
        while left is None or left > 0:
            chunk = os.read(fd, 1 << 20 if left is None else min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            if left is not None:
                left -= len(chunk)
        return b"".join(chunks), st
    finally:
        os.close(fd)


def _is_sqlite_file(path: bytes) -> bool:
    """Does the file at ``path`` start with SQLite's magic string (False when unreadable)."""
    try:
        header, st = _read_nofollow(path, len(SQLITE_MAGIC))
    except OSError:
        return False
    return st is not None and is_sqlite(header)
