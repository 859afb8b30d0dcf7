"""The change event: one row change (or one schema change) at one position of the stream."""

from __future__ import annotations

from typing import Any, Iterator

import msgspec

INSERT = "insert"
UPDATE = "update"
DELETE = "delete"
SNAPSHOT = "snapshot"  # a row of a (re)synchronised table: replayed as an insert
SCHEMA = "schema"  # a table was created, changed or dropped: ``table_schema`` holds it



class ChangeEvent(msgspec.Struct, array_like=True, frozen=True):
    """``seq`` strictly increases in commit order; ``ts`` is microseconds since the epoch,
    UTC; ``key`` holds the primary-key values the change applies to (the *old* key for an
    update that changes it); ``row`` is the full after-image in the table's column order
    at that point of the stream (None for a delete); ``table_schema`` is the new table
    description of a SCHEMA event (None when the table was dropped)."""

    seq: int
    tx: int
    ts: int
    table: str
    op: str
    key: list[Any] | None = None
    row: list[Any] | None = None
    table_schema: dict[str, Any] | None = None


def runs(events: list[ChangeEvent]) -> Iterator[tuple[str, str, list[ChangeEvent]]]:
    """(table, op, events): consecutive events of one table and operation, in stream order,
    so an applier can send each run as one batched statement; a SCHEMA event stands alone."""
    start = 0
    for i in range(1, len(events) + 1):
        first = events[start]
        if (i == len(events) or first.op == SCHEMA or events[i].op == SCHEMA
                or events[i].table != first.table or events[i].op != first.op):
            yield first.table, first.op, events[start:i]
            start = i
