"""Storage locations: a small interface with one implementation per backend.

Keys are ``/``-separated paths relative to the location's root. Writes are atomic:
an object is either absent or complete under its key, never partial.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import uuid
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import unquote, urlparse

from trade_stream.durable import fsync_path
from trade_stream.errors import AlreadyStored, BadInputError, StorageError
from trade_stream.storage.requests import RequestCounter


class AtomicWriter(Protocol):
    def write(self, data: bytes, /) -> int: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...


class Location(Protocol):
    name: str
    url: str
    requests: RequestCounter  # what it has sent (storage/requests.py)

    def writer(self, key: str) -> AtomicWriter: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def put_new(self, key: str, data: bytes) -> None:
        """Like ``put_bytes``, but only if ``key`` does not exist yet (atomically): else
        AlreadyStored. Two writers racing for one name cannot both win."""
        ...
    def open(self, key: str) -> BinaryIO: ...
    def size(self, key: str) -> int | None: ...
    def list(self, prefix: str, start_after: str = "") -> list[str]:
        """Keys directly under ``prefix``, sorted; with ``start_after`` (a full key), only
        those after it, so a reader that holds a checkpoint never re-lists what it covers
        (S3 ``StartAfter``)."""
        ...
    def delete(self, key: str) -> None: ...


def _storage_error(location: "FileLocation", action: str, exc: OSError) -> StorageError:
    if exc.errno == errno.ENOSPC:
        return StorageError(f"location {location.name} ({location.root}): disk full while {action}: "
                            f"{exc.strerror or 'no space left on device'}")
    return StorageError(f"location {location.name} ({location.root}): {action} failed: {exc.strerror or exc}")


class _FileWriter:
    """Writes to a hidden temporary name; ``commit`` fsyncs, renames, fsyncs the directory."""

    def __init__(self, location: "FileLocation", final: Path) -> None:
        self.location = location
        self.final = final
        self.temp = final.with_name(f".tmp-{uuid.uuid4().hex}-{final.name}")
        try:
            location._mkdirs(final.parent)
            fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise _storage_error(location, f"creating {final.name}", exc) from None
        self.file = os.fdopen(fd, "wb", buffering=1 << 20)

    def write(self, data: bytes) -> int:
        try:
            return self.file.write(data)
        except OSError as exc:
            self.abort()
            raise _storage_error(self.location, f"writing {self.final.name}", exc) from None

    def commit(self, *, replace: bool = True) -> None:
        """``replace=False``: only if the final name is free. A hard link fails when it
        exists (AlreadyStored), so of two writers the first wins."""
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            if replace:
                os.replace(self.temp, self.final)
            else:
                os.link(self.temp, self.final)
                with contextlib.suppress(OSError):  # a stray hidden temporary is never listed
                    self.temp.unlink()
            fsync_path(self.final.parent)
            self.location.requests.add("put")
        except FileExistsError:
            self.abort()
            raise AlreadyStored(f"location {self.location.name}: {self.final.name} exists already") from None
        except OSError as exc:
            self.abort()
            raise _storage_error(self.location, f"storing {self.final.name}", exc) from None

    def abort(self) -> None:
        try:
            self.file.close()
        except OSError:
            pass
        try:
            self.temp.unlink()
        except FileNotFoundError:
            pass


class FileLocation:
    """``file:///absolute/dir`` or ``file://./relative/dir`` (or a plain path)."""

    def __init__(self, name: str, url: str, root: Path) -> None:
        self.name = name
        self.url = url
        self.root = root
        self.requests = RequestCounter()

    def _path(self, key: str) -> Path:
        parts = [p for p in key.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise BadInputError(f"invalid object key {key!r}")
        return self.root.joinpath(*parts)

    def _mkdirs(self, path: Path) -> None:
        missing = []
        while not path.exists():
            missing.append(path)
            path = path.parent
        for directory in reversed(missing):
            try:
                directory.mkdir(mode=0o700)
            except FileExistsError:
                pass

    def writer(self, key: str) -> _FileWriter:
        return _FileWriter(self, self._path(key))

    def put_bytes(self, key: str, data: bytes) -> None:
        writer = self.writer(key)
        writer.write(data)
        writer.commit()

    def put_new(self, key: str, data: bytes) -> None:
        writer = self.writer(key)
        writer.write(data)
        writer.commit(replace=False)

    def open(self, key: str) -> BinaryIO:
        self.requests.add("get")
        return open(self._path(key), "rb")

    def size(self, key: str) -> int | None:
        self.requests.add("head")
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def list(self, prefix: str, start_after: str = "") -> list[str]:
        """Keys directly under the ``prefix`` directory (no temporaries), sorted."""
        directory = self._path(prefix) if prefix.strip("/") else self.root
        base = prefix.strip("/")
        self.requests.add("list")
        try:
            keys = [f"{base}/{n}" if base else n for n in os.listdir(directory) if not n.startswith(".tmp-")]
            if start_after:  # before any stat: a long directory is mostly what the caller skips
                keys = [k for k in keys if k > start_after]
            keys = [k for k in keys if stat.S_ISREG(os.lstat(directory / k.rsplit("/", 1)[-1]).st_mode)]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise _storage_error(self, f"listing {prefix}", exc) from None
        return sorted(keys)

    def delete(self, key: str) -> None:
        self.requests.add("delete")
        try:
            self._path(key).unlink()
            fsync_path(self._path(key).parent)
        except FileNotFoundError:
            pass

def open_location(name: str, url: str, **options: str) -> Location:
    """A Location for a configured URL; unsupported or malformed URLs are bad input."""
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme in ("", "file"):
        if scheme == "file":
            raw = unquote((parsed.netloc or "") + parsed.path)
        else:
            raw = url
        if not raw:
            raise BadInputError(f"location {name}: empty path in {url!r}")
        return FileLocation(name, url, Path(raw).expanduser().absolute())
    if scheme == "s3":
        from trade_stream.storage.s3 import S3Location

        if not parsed.netloc:
            raise BadInputError(f"location {name}: no bucket in {url!r} (s3://bucket/prefix)")
        return S3Location(name, url, parsed.netloc, parsed.path, endpoint_url=options.get("endpoint_url", ""),
                          region=options.get("region", ""), access_key_id=options.get("access_key_id", ""),
                          secret_access_key=options.get("secret_access_key", ""))
    raise BadInputError(f"location {name}: unsupported URL scheme {scheme!r} in {url!r} (use file:// or s3://)")
