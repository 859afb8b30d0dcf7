"""Restore the latest state from the Kafka topics into a fresh SQLite database.

Every table topic is read from the beginning up to its high watermark at the start, the
records are folded by ``trade_stream.kafka.state`` (last seq per key wins, deletes and
tombstones remove the key, rows older than their table's latest description are stale),
and the surviving rows are written into a hidden temporary file next to the target,
which is renamed over the target only when complete: a failure leaves the target as it
was. Tables are created from the latest description: the schema topic, or the header of
the latest stored full backup when that is newer (or the topic lacks the table).
Only tables are created: secondary indexes, views and user triggers live in the full
backups (restore from a location for those).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from restore.sqlite.apply import create_table
from restore.sqlite.replay import check_target
from trade_stream.durable import replacing_sqlite_file
from trade_stream.errors import BadInputError, IntegrityError, TradeStreamError
from trade_stream.kafka import codec as codec
from trade_stream.kafka.config import KafkaConfig
from trade_stream.kafka.state import KafkaState, load_state
from trade_stream.manifest import FULL
from trade_stream.progress import Progress, no_progress
from trade_stream.schema import DatabaseSchema, TableSchema, quote_ident
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import schema_of


@dataclass
class KafkaRestoreResult:
    target: str
    first_seq: int  # lowest seq among the records read
    last_seq: int  # highest seq among the records read: the state restored is as of it
    rows: int
    events: int  # records read (tombstones and table descriptions included)
    bytes: int  # key + value bytes read
    seconds: float
    tables: dict[str, int] = field(default_factory=dict)
    source: str = "kafka"
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def base_schemas(store: BackupStore | None) -> dict[str, tuple[int, TableSchema | None]]:
    """Table descriptions from the latest full backup's header, at its seq."""
    if store is None:
        return {}
    try:
        fulls = [e for e in store.entries() if e.kind == FULL]
        if not fulls:
            return {}
        full = fulls[-1]
        schema = DatabaseSchema.from_dict(schema_of(store, full))
    except (TradeStreamError, OSError):
        return {}  # the schema topic describes every table the sink ever published
    return {t.name: (full.last_seq, t) for t in schema.tables}


def restore_from_kafka(config: KafkaConfig, source: str, target: DatabaseService, *,
                       store: BackupStore | None = None, force: bool = False,
                       timeout: float | None = None, progress: Progress = no_progress) -> KafkaRestoreResult:
    """Rebuild the latest state of ``source`` (the database name in the topic names) from
    the topics of ``config`` into ``target``; refuses a non-empty target without force."""
    if not config.enabled:
        raise BadInputError("--from kafka needs [kafka] bootstrap_servers")
    started = time.perf_counter()
    check_target(target, force)
    state = load_state(config, source, base_schemas(store), timeout=timeout)
    if state.problems:
        raise IntegrityError(f"Kafka topics hold undecodable records: {state.problems[0]}")
    tables = state.tables()
    if not tables:
        raise BadInputError(
            f"no tables found in Kafka for {source!r} (topic {codec.schema_topic_name(config.topic_prefix, source)})"
        )
    final = target.path.absolute()
    with replacing_sqlite_file(final) as temp:
        conn = sqlite3.connect(temp, isolation_level=None)
        try:
            counts = _write(conn, state, tables, progress)
        finally:
            conn.close()
    return KafkaRestoreResult(
        target=str(final), first_seq=state.first_seq or 0, last_seq=state.last_seq,
        rows=sum(counts.values()), events=state.records, bytes=state.bytes,
        seconds=round(time.perf_counter() - started, 3), tables=counts,
    )


def _write(conn: sqlite3.Connection, state: KafkaState, tables: dict[str, TableSchema],
           progress: Progress) -> dict[str, int]:
    conn.execute("PRAGMA journal_mode = OFF")  # a private temp file: atomicity comes from the rename
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    counts: dict[str, int] = {}
    done = 0
    for name, table in tables.items():
        create_table(conn, table)
        columns = table.column_names
        known = set(columns)
        sql = (f"INSERT INTO {quote_ident(name)} ({', '.join(quote_ident(c) for c in columns)}) "
               f"VALUES ({', '.join('?' * len(columns))})")
        params = []
        for key, row in state.rows(name):
            if not known.issuperset(row):
                raise IntegrityError(f"Kafka row {key.decode(errors='replace')} of {name!r} has columns "
                                     f"{sorted(set(row) - known)} the table does not have")
            values = codec.decode_row(row)
            params.append(tuple(values.get(c) for c in columns))
        try:
            conn.executemany(sql, params)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(f"rows of {name!r} from Kafka violate the table's constraints: {exc}") from None
        counts[name] = len(params)
        done += len(params)
        progress("restore", done, None)
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode = WAL")
    return counts
