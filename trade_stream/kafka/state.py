"""The latest state of the tables as the Kafka topics hold it (restore, check).

Rules (docs/kafka.md, "Reading the topics back"), which make the state right whether or not the
broker compacts and however often a record was published (the sink is at-least-once):

* per key, the record with the highest seq wins; at equal seq the later offset wins (a
  tombstone follows the delete event it belongs to);
* a key whose winning record is a delete or a tombstone does not exist;
* per table, the description with the highest seq in the schema topic wins (a null
  description: the table was dropped); a row record with a seq *below* it is stale,
  because every (re)description of a table is followed by a snapshot of all its rows
  at that seq or later (capture resync, sink bootstrap).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Iterator

from trade_stream.kafka import codec as codec
from trade_stream.kafka.client import ScanStats, scan
from trade_stream.kafka.config import KafkaConfig
from trade_stream.schema import TableSchema


class TableFold:
    """Last record per key of one table topic."""

    def __init__(self) -> None:
        self.latest: dict[bytes, codec.Record] = {}

    def add(self, record: codec.Record) -> None:
        current = self.latest.get(record.key)
        if current is None or record.seq >= current.seq:
            self.latest[record.key] = record


@dataclass
class KafkaState:
    schemas: dict[str, tuple[int, TableSchema | None]] = field(default_factory=dict)
    folds: dict[str, TableFold] = field(default_factory=dict)
    first_seq: int | None = None
    last_seq: int = 0
    records: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)

    def note_schema(self, table: str, seq: int, schema: TableSchema | None) -> None:
        """Keep the description with the highest seq (ties: the later one)."""
        current = self.schemas.get(table)
        if current is None or seq >= current[0]:
            self.schemas[table] = (seq, schema)

    def tables(self) -> dict[str, TableSchema]:
        """Tables that exist in the state, with their latest description."""
        return {t: s for t, (_, s) in sorted(self.schemas.items()) if s is not None}

    def rows(self, table: str) -> Iterator[tuple[bytes, dict[str, Any]]]:
        """(key bytes, JSON-level row) of every live, non-stale row of the table."""
        described = self.schemas.get(table)
        fold = self.folds.get(table)
        if described is None or described[1] is None or fold is None:
            return
        floor = described[0]
        for key, record in fold.latest.items():
            if record.live and record.seq >= floor:
                yield key, record.row  # type: ignore[misc]

    def _seen(self, seq: int) -> None:
        self.records += 1
        self.last_seq = max(self.last_seq, seq)
        self.first_seq = seq if self.first_seq is None else min(self.first_seq, seq)


async def _load(config: KafkaConfig, source: str, base: dict[str, tuple[int, TableSchema | None]],
                timeout: float | None) -> KafkaState:
    state = KafkaState()
    for table, (seq, schema) in base.items():
        state.note_schema(table, seq, schema)

    def on_schema(topic: str, partition: int, offset: int, key: Any, value: Any, headers: Any) -> None:
        try:
            record = codec.decode_record(key, value, headers)
            table = codec.decode_key(key)[0]
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            state.problems.append(f"{topic}[{partition}]@{offset}: undecodable record ({exc})")
            return
        state._seen(record.seq)
        if record.op == codec.SCHEMA:
            schema = TableSchema.from_dict(record.table_schema) if record.table_schema else None
            state.note_schema(str(table), record.seq, schema)

    stats: ScanStats = await scan(config, [codec.schema_topic_name(config.topic_prefix, source)], on_schema,
                                  timeout=timeout)
    state.bytes += stats.bytes
    topics = {codec.topic_name(config.topic_prefix, source, t): t for t in state.tables()}
    for table in topics.values():
        state.folds[table] = TableFold()

    def on_row(topic: str, partition: int, offset: int, key: Any, value: Any, headers: Any) -> None:
        try:
            record = codec.decode_record(key, value, headers)
        except (ValueError, TypeError, KeyError) as exc:
            state.problems.append(f"{topic}[{partition}]@{offset}: undecodable record ({exc})")
            return
        state._seen(record.seq)
        state.folds[topics[topic]].add(record)

    stats = await scan(config, list(topics), on_row, timeout=timeout)
    state.bytes += stats.bytes
    return state


def load_state(config: KafkaConfig, source: str,
               base: dict[str, tuple[int, TableSchema | None]] | None = None,
               timeout: float | None = None) -> KafkaState:
    """Read the schema topic, then every table topic it names (plus the tables of
    ``base``, e.g. a full backup's header at its seq), and fold them into the state."""
    return asyncio.run(_load(config, source, dict(base or {}), timeout))
