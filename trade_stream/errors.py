"""Errors the CLI maps to exit codes (``exit_code``): 2 bad input, 3 integrity failure."""

from __future__ import annotations


class TradeStreamError(Exception):
    exit_code = 1


class BadInputError(TradeStreamError):
    """The user asked for something that cannot be done; nothing was changed."""

    exit_code = 2


class IntegrityError(TradeStreamError):
    """Stored backup data is corrupt, missing or inconsistent."""

    exit_code = 3


class CaptureLost(IntegrityError):
    """The source can no longer give the changes since the last backup (a PostgreSQL slot
    that lost its WAL): only a new full backup, a new chain, protects it again."""


class FencedError(IntegrityError):
    """The store was handed to a promoted standby; this database may not append to it."""


class DatabaseBusy(TradeStreamError):
    """The database stayed locked by another connection for as long as tradevault waited:
    nothing was read or changed; the next attempt may find it free."""


class StorageError(TradeStreamError):
    """A storage location failed (unreachable, full disk, permissions)."""

    exit_code = 1


class LocalDiskFull(StorageError):
    """This machine's disk filled while writing what a stored object holds (a restore, a
    point of the time-travel cache): not the stored copy's fault, so no other copy is tried."""


class AlreadyStored(StorageError):
    """``put_new``: the name is taken. For a manifest entry, another writer published at
    that position first (two primaries racing for one chain)."""
