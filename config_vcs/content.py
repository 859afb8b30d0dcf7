"""What a file's first bytes say about it: a SQLite database, binary data, or text.

Pure functions over a file's name and its header (its first ``HEADER_BYTES``), so a
live database is recognised whatever its name, from 8 KiB read once per change.

The binary rule, as git's own heuristic: a NUL byte in the first 8 KiB means binary,
unless the file starts with a UTF-16/UTF-32 byte-order mark (text in a wide encoding)
or its extension is one of ``BINARY_CONFIG_SUFFIXES`` (configuration that is binary by
nature: certificates, key stores, encrypted files). Binary files are not configuration
by default; an ``include`` glob re-admits them.
"""

from __future__ import annotations

import os

from config_vcs.reasons import BINARY, SQLITE, TOO_LARGE

HEADER_BYTES = 8192
SQLITE_MAGIC = b"SQLite format 3\x00"
_WAL_MAGICS = (b"\x37\x7f\x06\x82", b"\x37\x7f\x06\x83")  # big- / little-endian checksums
_JOURNAL_MAGIC = b"\xd9\xd5\x05\xf9\x20\xa1\x63\xd7"
#: files SQLite keeps next to a database ``NAME``: ``NAME-wal``, ``NAME-shm``, ``NAME-journal``
SIDECAR_SUFFIXES: tuple[str, ...] = ("-wal", "-shm", "-journal")
_WIDE_TEXT_BOMS = (b"\xff\xfe", b"\xfe\xff")  # UTF-16 LE/BE (and UTF-32 LE starts the same)

#: binary configuration kept despite NUL bytes (lower-case, with the dot)
BINARY_CONFIG_SUFFIXES: frozenset[str] = frozenset({
    ".der", ".cer", ".crt", ".p12", ".pfx", ".jks", ".keystore", ".key",  # certificates, keys
    ".gpg", ".pgp", ".age",  # encrypted files
    ".plist",  # binary property lists
})


def is_sqlite(header: bytes) -> bool:
    """A SQLite database file (the 16-byte magic string every database starts with)."""
    return header.startswith(SQLITE_MAGIC)


def is_sqlite_companion(header: bytes) -> bool:
    """A SQLite write-ahead log or rollback journal, recognised by its own magic number."""
    return header[:4] in _WAL_MAGICS or header.startswith(_JOURNAL_MAGIC)


def sidecar_base(name: str) -> str | None:
    """``trades.db-wal`` -> ``trades.db``: the database a file would belong to by its name."""
    for suffix in SIDECAR_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def is_binary(name: str, header: bytes) -> bool:
    """See the module docstring: NUL in the first 8 KiB, unless wide text or allow-listed."""
    if os.path.splitext(name)[1].lower() in BINARY_CONFIG_SUFFIXES:
        return False
    if header.startswith(_WIDE_TEXT_BOMS):
        return False
    return b"\x00" in header[:HEADER_BYTES]


def content_reason(name: str, header: bytes, size: int, max_size: int) -> str | None:
    """Why a regular file is not configuration by what it holds, or None.

    ``header``: its first bytes (at least ``HEADER_BYTES`` when it is that long);
    ``size``: its length. A database is named as one even when it is also too large.
    """
    if is_sqlite(header) or is_sqlite_companion(header):
        return SQLITE
    if size > max_size:
        return TOO_LARGE
    if is_binary(name, header):
        return BINARY
    return None
