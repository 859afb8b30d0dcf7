"""The Kafka sink: publishes every captured event to one compacted topic per table.

Driven from outside (the agent calls ``sync_once`` every ``sync_interval`` seconds in a
thread of its own; ``tradevault kafka sync`` calls it once), so a broker that is down or
slow only makes the sink fall behind: segment backups and pruning never wait for it, and
the next successful sync catches up from the stored segments and then the change log.

One sync:
1. connect (producer acks=all + admin); read the checkpoint (``checkpoint.py``);
2. without a checkpoint, or when topics the sink created are gone (the broker lost them),
   **bootstrap**: publish the description of every table (schema topic) and every row
   of the latest full backup as ``snapshot`` records at the full's seq; then
3. publish the events after the checkpoint up to the last seq at the start of the sync,
   in chunks; after each chunk wait until the broker confirmed every record of it, then
   move the checkpoint to the chunk's last seq (file replaced atomically).

Delivery is at-least-once (a failed chunk is published again from the checkpoint), never
out of order per key: the same key always goes to the same partition and aiokafka keeps
one request in flight per partition. What each event becomes is in ``codec.py``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError

from trade_stream.errors import BadInputError
from trade_stream.events import DELETE, INSERT, SCHEMA, SNAPSHOT, UPDATE, ChangeEvent
from trade_stream.kafka import checkpoint as ckpt
from trade_stream.kafka import codec as codec
from trade_stream.kafka.client import KafkaUnavailable, Publisher
from trade_stream.kafka.config import KafkaConfig
from trade_stream.kafka.source import EventSource, GapError, TableShapes, full_snapshot, table_rows
from trade_stream.source import Source
from trade_stream.storage.store import BackupStore


class CaptureChanged(BadInputError):
    """The topics hold another capture's seq numbering (capture was reinstalled)."""


@dataclass
class SyncResult:
    published: int = 0  # change events published (a snapshot row counts as one)
    records: int = 0  # Kafka records, tombstones and schema records included
    from_seq: int = 0  # checkpoint before the sync
    to_seq: int = 0  # checkpoint after the sync
    behind: int = 0  # events captured but not yet confirmed by the broker
    seconds: float = 0.0
    bootstrapped: bool = False
    error: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["events"] = self.published
        return data


class KafkaSink:
    def __init__(self, config: KafkaConfig, store: BackupStore, source: Source, *,
                 state_dir: str | Path | None = None, work_dir: str | None = None) -> None:
        if not config.enabled:
            raise BadInputError("the Kafka sink is off: set [kafka] bootstrap_servers")
        log = source.change_log()
        if log is None:
            raise BadInputError(f"the Kafka sink needs a source whose captured changes can be read again; "
                                f"{source.dialect} sources are not supported yet")
        self.config = config
        self.store = store
        self.database = source
        self.log = log
        self.source = EventSource(log, store, chunk=config.chunk_events)
        home = source.database_file.absolute().parent if source.database_file else None
        directory = Path(state_dir or config.state_dir or home or ".")
        self.path = ckpt.checkpoint_path(directory, store.source, config.topic_prefix)
        self.work_dir = work_dir
        self._loop: asyncio.AbstractEventLoop | None = None
        self._publisher: Publisher | None = None
        self._topics: dict[str, str] = {}

    # -- public ----------------------------------------------------------------------------
    def checkpoint(self) -> ckpt.Checkpoint:
        return ckpt.load(self.path, self.store.source, self.config.topic_prefix)

    def sync_once(self, timeout: float | None = None) -> SyncResult:
        """Publish everything after the checkpoint up to the last seq now. Never raises for
        an unreachable or slow broker: the result says what went wrong (``error``) and the
        checkpoint stays at the last confirmed seq. Bad input (no capture, no full backup,
        reinstalled capture) raises."""
        timeout = timeout or self.config.timeout
        started = time.perf_counter()
        point = self.checkpoint()
        result = SyncResult(from_seq=point.seq, to_seq=point.seq)
        loop = self._loop or asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(asyncio.wait_for(self._sync(point, result), timeout))
        except (KafkaError, KafkaUnavailable, OSError, asyncio.TimeoutError) as exc:
            text = str(exc) or type(exc).__name__
            if isinstance(exc, asyncio.TimeoutError):
                text = f"not confirmed within {timeout:g} s"
            result.error = f"Kafka at {self.config.bootstrap_servers}: {text}"
            loop.run_until_complete(self._drop_publisher())
            point = self.checkpoint()
            point.last_error, point.last_attempt = result.error, ckpt.now_us()
            ckpt.save(self.path, point)
        except BaseException:
            loop.run_until_complete(self._drop_publisher())
            raise
        result.behind = self._behind(result.to_seq)
        result.seconds = round(time.perf_counter() - started, 3)
        return result

    def lag(self) -> dict[str, Any]:
        """For ``status``: how far the topics are behind the capture."""
        point = self.checkpoint()
        source_seq = 0
        if self.log.exists():
            conn = self.log.connect(readonly=True)
            try:
                if self.log.is_installed(conn):
                    source_seq = self.log.last_seq(conn)
            finally:
                conn.close()
        behind = max(0, source_seq - point.seq)
        return {
            "enabled": True, "bootstrap_servers": self.config.bootstrap_servers,
            "topic_prefix": self.config.topic_prefix, "started": point.started,
            "checkpoint_seq": point.seq, "source_seq": source_seq, "behind_events": behind,
            "last_confirmed_at": point.updated_at or None,
            "seconds_since_confirmed": round((ckpt.now_us() - point.updated_at) / 1e6, 3)
            if point.updated_at and behind else 0.0,
            "last_error": point.last_error, "checkpoint_file": str(self.path),
        }

    def close(self) -> None:
        """Deliver what is queued and disconnect (call from the thread that syncs)."""
        if self._loop is None:
            return
        try:
            if self._publisher is not None:
                try:
                    self._loop.run_until_complete(asyncio.wait_for(self._publisher.stop(), self.config.timeout))
                except (KafkaError, asyncio.TimeoutError, OSError):
                    self._loop.run_until_complete(self._drop_publisher())
                self._publisher = None
        finally:
            self._loop.close()
            self._loop = None

    # -- one sync ----------------------------------------------------------------------------
    def _behind(self, seq: int) -> int:
        try:
            conn = self.log.connect(readonly=True)
        except sqlite3.Error:
            return 0
        try:
            return max(0, self.log.last_seq(conn) - seq)
        except sqlite3.Error:
            return 0
        finally:
            conn.close()

    async def _drop_publisher(self) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            await publisher.abort()

    async def _connect(self) -> Publisher:
        if self._publisher is None:
            publisher = Publisher(self.config)
            self._publisher = publisher
            await publisher.start()
        else:
            await self._publisher.refresh_topics()
        return self._publisher

    async def _sync(self, point: ckpt.Checkpoint, result: SyncResult) -> None:
        conn = self.source.connect()
        try:
            capture_id = self.source.capture_id(conn)
            if point.started and point.capture_id != capture_id:
                raise CaptureChanged(
                    "change capture was reinstalled since the topics were written (new seq numbering): "
                    f"delete the topics {self.config.topic_prefix}.{codec.escape_name(self.store.source)}.* "
                    "or choose another [kafka] topic_prefix, then sync again"
                )
            publisher = await self._connect()
            if point.started:
                lost = sorted(set(point.topics) - publisher.known_topics)
                if lost:
                    result.warnings.append(f"{len(lost)} topic(s) the sink created are gone ({lost[0]}, ...): "
                                           "republishing from the latest full backup")
                    point = ckpt.Checkpoint(self.store.source, self.config.topic_prefix)
            if not point.started:
                point = await self._bootstrap(publisher, capture_id, result)
            try:
                await self._catch_up(conn, publisher, point, result)
            except GapError as exc:
                result.warnings.append(f"{exc}: republishing from the latest full backup")
                point = await self._bootstrap(publisher, capture_id, result)
                await self._catch_up(conn, publisher, point, result)
        finally:
            conn.close()

    def _topic(self, table: str) -> str:
        topic = self._topics.get(table)
        if topic is None:
            topic = self._topics[table] = codec.topic_name(self.config.topic_prefix, self.store.source, table)
        return topic

    async def _bootstrap(self, publisher: Publisher, capture_id: str, result: SyncResult) -> ckpt.Checkpoint:
        """Topics rebuilt from the latest full backup: every table's description, then
        every row as a ``snapshot`` record, all at the full's seq."""
        full = self.source.latest_full(capture_id)
        seq, ts = full.last_seq, full.last_ts or 0
        ts_ms = ts // 1000
        schema_topic = codec.schema_topic_name(self.config.topic_prefix, self.store.source)
        point = ckpt.Checkpoint(self.store.source, self.config.topic_prefix)
        await publisher.ensure_topic(schema_topic)
        with full_snapshot(self.store, full, self.work_dir) as (schema, snap):
            for table in schema.tables:
                await publisher.ensure_topic(self._topic(table.name))
                await self._send(publisher, result, schema_topic, codec.schema_key(table.name),
                                 codec.encode_schema_value(seq, seq, ts, table.name, table.to_dict()),
                                 codec.headers(seq, SCHEMA), ts_ms)
            for table in schema.tables:
                topic = self._topic(table.name)
                columns, key_idx = table.column_names, table.identity_indexes()
                hdrs = codec.headers(seq, SNAPSHOT)
                for rows in table_rows(snap, table, self.config.chunk_events):
                    for row in rows:
                        await self._send(publisher, result, topic, codec.encode_key([row[i] for i in key_idx]),
                                         codec.encode_row_value(seq, seq, ts, SNAPSHOT, table.name, columns, row),
                                         hdrs, ts_ms)
                    result.published += len(rows)
                    await publisher.confirm()
        await publisher.confirm()
        point.capture_id, point.seq, point.bootstrap_seq = capture_id, seq, seq
        point.topics = sorted(t for t in publisher.known_topics if self._ours(t))
        point.updated_at, point.last_error = ckpt.now_us(), ""
        ckpt.save(self.path, point)
        result.bootstrapped = True
        result.from_seq = result.to_seq = seq
        return point

    def _ours(self, topic: str) -> bool:
        return topic.startswith(f"{self.config.topic_prefix}.{codec.escape_name(self.store.source)}.")

    @staticmethod
    async def _send(publisher: Publisher, result: SyncResult, topic: str, key: bytes, value: bytes | None,
                    headers: list[tuple[str, bytes]], ts_ms: int) -> None:
        await publisher.append(topic, key, value, headers, ts_ms)
        result.records += 1

    async def _catch_up(self, conn: sqlite3.Connection, publisher: Publisher, point: ckpt.Checkpoint,
                        result: SyncResult) -> None:
        """Chunk by chunk; chunk k is confirmed (and checkpointed) while chunk k+1 is being
        read and encoded, so the broker and the encoder work at the same time. The
        producer still sends the batches of one partition strictly one after the other."""
        shapes = TableShapes(self.source.schema_at(conn, point.seq))
        previous: tuple[list[asyncio.Future], int, int] | None = None
        for batch in self.source.batches(conn, point.seq, point.capture_id):
            for event in batch:
                await self._publish(publisher, shapes, event, result)
            submitted = await publisher.submit()
            if previous is not None:
                await self._settle(publisher, point, result, *previous)
            previous = (submitted, batch[-1].seq, len(batch))
        if previous is not None:
            await self._settle(publisher, point, result, *previous)

    async def _settle(self, publisher: Publisher, point: ckpt.Checkpoint, result: SyncResult,
                      submitted: list[asyncio.Future], seq: int, events: int) -> None:
        """Wait for the broker's confirmation of one chunk, then move the checkpoint."""
        if submitted:
            await asyncio.gather(*submitted)
        result.published += events
        point.seq = result.to_seq = seq
        point.topics = sorted(t for t in publisher.known_topics if self._ours(t))
        point.updated_at, point.last_error = ckpt.now_us(), ""
        point.published_total += events
        ckpt.save(self.path, point)

    async def _publish(self, publisher: Publisher, shapes: TableShapes, event: ChangeEvent,
                       result: SyncResult) -> None:
        seq, tx, ts, name, op = event.seq, event.tx, event.ts, event.table, event.op
        ts_ms = ts // 1000
        if op == SCHEMA:
            shapes.apply(event)
            schema_topic = codec.schema_topic_name(self.config.topic_prefix, self.store.source)
            await publisher.ensure_topic(schema_topic)
            if event.table_schema is not None:
                await publisher.ensure_topic(self._topic(name))
            await self._send(publisher, result, schema_topic, codec.schema_key(name),
                             codec.encode_schema_value(seq, tx, ts, name, event.table_schema),
                             codec.headers(seq, SCHEMA), ts_ms)
            return
        table = shapes.get(name)
        topic = self._topic(name)
        if topic not in publisher.known_topics:
            await publisher.ensure_topic(topic)
        if op == DELETE:
            await self._delete(publisher, result, topic, table.identity, event, event.key or [])
            return
        row = event.row or []
        new_key = codec.encode_key([row[i] for i in shapes.identity_indexes(name)])
        if op == UPDATE and event.key is not None and codec.encode_key(event.key) != new_key:
            # The primary key changed: the old key's row is gone (delete + tombstone),
            # the row now lives under its new key.
            await self._delete(publisher, result, topic, table.identity, event, event.key)
        if op not in (INSERT, UPDATE, SNAPSHOT):
            raise BadInputError(f"unknown change operation {op!r} at seq {seq}")
        await self._send(publisher, result, topic, new_key,
                         codec.encode_row_value(seq, tx, ts, op, name, shapes.columns(name), row),
                         codec.headers(seq, op), ts_ms)

    async def _delete(self, publisher: Publisher, result: SyncResult, topic: str, key_columns: list[str],
                      event: ChangeEvent, key: list[Any]) -> None:
        key_bytes = codec.encode_key(key)
        ts_ms = event.ts // 1000
        await self._send(publisher, result, topic, key_bytes,
                         codec.encode_delete_value(event.seq, event.tx, event.ts, event.table, key_columns, key),
                         codec.headers(event.seq, DELETE), ts_ms)
        await self._send(publisher, result, topic, key_bytes, None, codec.headers(event.seq, codec.TOMBSTONE), ts_ms)
