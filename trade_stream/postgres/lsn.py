"""Seqs of the PostgreSQL change stream, derived from WAL positions (LSNs). Pure.

A transaction's events get ``seq = (commit_end_lsn << 20) + n`` where ``commit_end_lsn``
is the end of its commit record (what ``pg_logical_slot_peek_changes`` reports for the
commit, and what the slot is advanced to) and ``n`` = 0, 1, 2, ... counts its events.

Why this is strictly increasing in commit order and never collides:

* logical decoding emits transactions in commit order, so commit end LSNs increase;
* a commit record is at least 32 bytes (24-byte record header + commit time), so the
  commit end LSNs of two transactions differ by at least 32, i.e. their seq ranges start
  at least ``32 << 20 = 2**25`` apart. A transaction may hold up to ``2**24`` (16,777,216)
  row changes, which leaves the upper half ``[2**24, 2**25)`` after every LSN free.

Positions that are not a commit (the consistent point ``L`` of an exported snapshot) use
that free half: the full backup taken at ``L`` has seq ``snapshot_seq(L)`` = the top of
it, above every event of every transaction that committed at or before ``L`` (those are in
the snapshot) and below every event of a later commit (whose end is >= ``L + 32``).
A table resynchronised at ``L`` (schema change) gets its SCHEMA and SNAPSHOT events at
``resync_base(L) + i``, inside the same free half.

With the 20-bit shift a seq stays a signed 64-bit integer up to LSN 2**43 (8 TiB of WAL
written over the cluster's life).
"""

from __future__ import annotations

from trade_stream.errors import BadInputError

SHIFT = 20
MAX_TX_EVENTS = 1 << 24  # per transaction
FREE = 1 << 24  # start of the free half after each LSN
SPAN = 1 << 25  # minimum distance between two commits' seq bases


def parse_lsn(text: str) -> int:
    """'16/B374D848' -> int."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def event_seq(commit_end_lsn: int, index: int) -> int:
    if index >= MAX_TX_EVENTS:
        raise BadInputError(
            f"a transaction committed at {format_lsn(commit_end_lsn)} holds more than {MAX_TX_EVENTS:,} "
            "row changes, more than one transaction can carry in the change stream; the capture cannot go "
            "past it: start a new chain after it with `tradevault uninstall`, then `tradevault backup full` "
            "(the backups stored so far stay restorable up to before it)"
        )
    return (commit_end_lsn << SHIFT) + index


def snapshot_seq(consistent_lsn: int) -> int:
    """The seq of a snapshot exported at ``consistent_lsn``."""
    return (consistent_lsn << SHIFT) + SPAN - 1


def resync_base(consistent_lsn: int) -> int:
    """First seq of the SCHEMA/SNAPSHOT events of a table resynchronised at ``consistent_lsn``."""
    return (consistent_lsn << SHIFT) + FREE

