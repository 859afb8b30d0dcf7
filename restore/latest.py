"""What a restore builds as the latest point of its plan has it (types, the database's
other objects, sequence positions): not in the full backup's schema alone, since
incrementals change them."""

from __future__ import annotations

from typing import Any

from restore.planner import Plan
from trade_stream.schema import DatabaseSchema, TableSchema
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import header_of


class LatestPoint:
    """What a restore builds as the latest point of its plan has it, read from the headers
    of the full backup and of each incremental: the tables' types (each incremental's
    ``extra.end_schema``), the database's other objects and the sequences' positions (a
    SQLite source's: its AUTOINCREMENT counters, by table), and a SQLite source's header
    numbers (``user_version``, ``application_id``; none recorded: the full backup's file
    holds them). Positions and header numbers are those of the last incremental wholly
    before the point: where inside an incremental they changed is not recorded."""

    def __init__(self, table_sources: list[list[TableSchema]], objects: list[dict[str, Any]],
                 sequences: dict[str, list[Any]], objects_known: bool = True,
                 pragmas: dict[str, int] | None = None) -> None:
        self.table_sources = table_sources
        self.objects = objects
        self.sequences = sequences
        self.pragmas = pragmas or {}
        #: False: no incremental of a SQLite source recorded its views and triggers (the
        #: full backup's file holds them as they were then)
        self.objects_known = objects_known

    @classmethod
    def read(cls, store: BackupStore, plan: Plan, schema: DatabaseSchema) -> "LatestPoint":
        logical = schema.dialect == "postgresql"
        full = header_of(store, plan.full)
        sources, objects, known = [list(schema.tables)], list(schema.objects), logical
        sequences = dict(full.extra.get("sequences") or {})
        pragmas: dict[str, int] = {}
        for entry in plan.incrementals:
            header = header_of(store, entry)
            if logical:  # a SQLite source's table descriptions are its CREATE statements
                end = DatabaseSchema.from_dict(header.extra.get("end_schema") or header.schema)
                sources.append(end.tables)
                objects = end.objects or objects
            elif "objects" in header.extra:
                objects, known = header.extra["objects"], True
            target = plan.target
            if ((target.seq is None or entry.last_seq <= target.seq)
                    and (target.ts is None or (entry.last_ts or 0) <= target.ts)):  # wholly before the point
                sequences.update(header.extra.get("sequences") or {})
                pragmas.update(header.extra.get("pragmas") or {})
        return cls(sources, objects, sequences, known, pragmas)
