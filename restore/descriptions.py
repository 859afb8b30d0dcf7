"""The description a restore finishes a PostgreSQL source's table with.

An incremental records a table's new description without reading its rows again when
only what a restore builds after the data changed (an index, a constraint, a default, an
enum label: ``trade_stream.postgres.database.same_rows``), where it used to copy the whole
table into the incremental. The replay meets the table under an earlier description (the
full backup's, a resynchronisation's), whose rows and changes read the same; it creates
and finishes the table with the latest description of its plan instead.
"""

from __future__ import annotations

from typing import Iterable

from trade_stream.postgres.database import same_rows
from trade_stream.schema import TableSchema


def latest_descriptions(sources: Iterable[Iterable[TableSchema]]) -> dict[str, TableSchema]:
    """Each table's last description: the full backup's, then each incremental's end."""
    latest: dict[str, TableSchema] = {}
    for tables in sources:
        for table in tables:
            latest[table.name] = table
    return latest


def described(table: TableSchema, latest: dict[str, TableSchema]) -> TableSchema:
    """``table``'s latest description when its rows read the same under it, else ``table``."""
    newer = latest.get(table.name)
    return newer if newer is not None and table.dialect == "postgresql" and same_rows(table, newer) else table
