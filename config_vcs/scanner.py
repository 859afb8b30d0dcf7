"""Read a watched directory into a snapshot ``{path: (mode, blob id)}``.

The whole tree is walked on every commit: events only say *when* to look, the walk
says *what* changed, so a lost, reordered or overflowed event can never lose a change
(new nested directories, atomic renames, delete+recreate are all just "the tree now").
A stat cache keeps the walk cheap: a file is re-read only when its stat changed or is
too recent to trust (the racy-git problem). Symlinks are stored as links (their target
text), never followed; other special files are skipped.
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

from config_vcs.ignore import PathFilter

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
    """Walks one directory; keeps the stat cache between scans (one scanner per repo)."""

    def __init__(
        self,
        root: Path,
        max_file_size: int,
        warn: Callable[[str], None] | None = None,
        seal: Callable[[str, bytes], bytes] | None = None,
    ) -> None:
        self.root = Path(root)
        self.max_file_size = max_file_size
        self._warn = warn or log.warning
        #: regular files' bytes -> the bytes to store (encrypted secrets); None: as is
        self._seal = seal
        self._cache: dict[bytes, tuple[tuple[int, ...], bytes, int, bool]] = {}
        self._warned_large: dict[bytes, int] = {}

    def scan(self, pfilter: PathFilter, store: object, known: set[bytes] | None = None) -> Snapshot:
        """Walk the tree; every blob read is added to ``store`` (a dulwich object store).

        ``known``: blob ids certainly in the store (HEAD's), spares a lookup per file.
        """
        snapshot = Snapshot()
        seen: set[bytes] = set()
        sink = _BlobSink(store, known or set())
        self._walk(os.fsencode(self.root), b"", pfilter, sink, snapshot, seen)
        sink.flush()
        for gone in set(self._cache) - seen:
            del self._cache[gone]
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
                if not pfilter.skip_dir(rel_text):
                    self._walk(entry.path, rel, pfilter, sink, snapshot, seen)  # type: ignore[arg-type]
                continue
            mode = git_mode(st)
            if mode is None or pfilter.skip_file(rel_text):
                continue
            if mode != MODE_LINK and st.st_size > self.max_file_size:
                if self._warned_large.get(rel) != st.st_size:
                    self._warned_large[rel] = st.st_size
                    self._warn(
                        f"{self.root / rel_text}: {st.st_size} bytes is above max_file_size "
                        f"({self.max_file_size}); not recorded in the configuration history"
                    )
                continue
            seen.add(rel)
            scanned = self._file(entry.path, rel, st, mode, sink)  # type: ignore[arg-type]
            if scanned is None:
                snapshot.unreadable.add(rel)
            else:
                snapshot.files[rel] = scanned

    def _file(
        self, abs_path: bytes, rel: bytes, st: os.stat_result, mode: int, sink: "_BlobSink"
    ) -> ScannedFile | None:
        cached = self._cache.get(rel)
        if cached is not None:
            key, sha, hashed_at, sealed = cached
            if key == _stat_key(st) and st.st_mtime_ns + _RACY_NS < hashed_at and sink.has(sha):
                return ScannedFile(mode, sha, st, sealed)
        hashed_at = time.time_ns()
        try:
            if mode == MODE_LINK:
                data = os.readlink(abs_path)
            else:
                data, st = _read_nofollow(abs_path)
                if st is None:
                    return None
                mode = git_mode(st) or mode
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno != errno.ELOOP:  # replaced by a symlink mid-scan: next scan sees it
                self._warn(f"cannot read {os.fsdecode(abs_path)}: {exc.strerror}")
            return None
        sealed = False
        if self._seal is not None and mode != MODE_LINK:
            stored = self._seal(os.fsdecode(rel), data)  # plaintext never reaches the store
            sealed = stored != data
            data = stored
        blob = Blob.from_string(data)
        sink.add(blob)
        sha = blob.id
        self._cache[rel] = (_stat_key(st), sha, hashed_at, sealed)
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


def _read_nofollow(path: bytes) -> tuple[bytes, os.stat_result | None]:
    """Read a regular file without following a symlink swapped in after the lstat."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return b"", None
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks), st
    finally:
        os.close(fd)
