"""The broker side of the Kafka sink and readers, on aiokafka (asyncio).

* ``Publisher``: one producer (acks=all, batching, compression) plus an admin client that
  creates the compacted topics. aiokafka keeps at most one request in flight per
  partition and retries a failed batch before the next one, so records of one key (one
  partition) are written in the order they were sent, retries included. ``abort`` drops
  whatever is still queued so a later attempt (a new Publisher) can start over from the
  checkpoint without old batches trickling in behind it.
* ``scan``: reads topics from the beginning up to their high watermark at start. The high
  watermark is taken from the first fetch response of each partition, not from
  ListOffsets alone, because some Kafka-compatible brokers answer ListOffsets(latest)
  with the base offset of the last batch.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from trade_stream.errors import TradeStreamError
from trade_stream.kafka.config import KafkaConfig

TOPIC_ALREADY_EXISTS = 36


def _seen(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


class KafkaUnavailable(TradeStreamError):
    """The broker could not be reached or did not confirm in time (exit 1)."""


def topic_configs() -> dict[str, str]:
    """Compacted: the topic keeps the last record of every key (tombstones remove keys)."""
    return {"cleanup.policy": "compact"}


class Publisher:
    def __init__(self, config: KafkaConfig) -> None:
        self.config = config
        self.producer: AIOKafkaProducer | None = None
        self.admin: AIOKafkaAdminClient | None = None
        self.known_topics: set[str] = set()
        self._partitions: dict[str, int] = {}
        self._open: dict[tuple[str, int], Any] = {}  # (topic, partition) -> BatchBuilder being filled
        self._submitted: list[asyncio.Future] = []

    async def start(self) -> None:
        timeout_ms = max(1000, int(self.config.timeout * 1000))
        self.admin = AIOKafkaAdminClient(
            bootstrap_servers=self.config.bootstrap_servers, client_id=f"{self.config.client_id}-admin",
            request_timeout_ms=timeout_ms,
        )
        await self.admin.start()
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.config.bootstrap_servers, client_id=self.config.client_id,
            acks="all", enable_idempotence=False, compression_type=self.config.compression_type,
            linger_ms=self.config.linger_ms, max_batch_size=self.config.batch_bytes,
            max_request_size=self.config.max_request_bytes, request_timeout_ms=timeout_ms,
            retry_backoff_ms=200,
        )
        await self.producer.start()
        self.known_topics = set(await self.admin.list_topics())

    async def refresh_topics(self) -> set[str]:
        assert self.admin is not None
        self.known_topics = set(await self.admin.list_topics())
        return self.known_topics

    async def ensure_topic(self, topic: str) -> bool:
        """Create the topic (compacted) unless it exists; True when it was created now."""
        if topic in self.known_topics:
            return False
        assert self.admin is not None
        response = await self.admin.create_topics([NewTopic(
            topic, self.config.partitions, self.config.replication_factor, topic_configs=topic_configs(),
        )])
        created = True
        for name, code, *rest in response.topic_errors:
            if code == TOPIC_ALREADY_EXISTS:
                created = False
            elif code != 0:
                message = rest[0] if rest else ""
                raise KafkaUnavailable(f"cannot create Kafka topic {name}: error {code} {message or ''}".strip())
        self.known_topics.add(topic)
        return created

    async def _partition_count(self, topic: str) -> int:
        count = self._partitions.get(topic)
        if count is None:
            assert self.producer is not None
            count = self._partitions[topic] = len(await self.producer.partitions_for(topic))
        return count

    async def _partition(self, topic: str, key: bytes) -> int:
        """The Java client's default partitioning (murmur2 of the key), so other producers
        and consumers agree on where a key lives."""
        count = self._partitions.get(topic) or await self._partition_count(topic)
        return 0 if count == 1 else (murmur2(key) & 0x7FFFFFFF) % count

    async def append(self, topic: str, key: bytes, value: bytes | None, headers: list[tuple[str, bytes]],
                     ts_ms: int) -> None:
        """Add one record to the batch being filled for its partition; a full batch is handed
        to the producer (which sends it once the previous batch of that partition is done)."""
        assert self.producer is not None
        partition = await self._partition(topic, key)
        slot = (topic, partition)
        builder = self._open.get(slot)
        if builder is None:
            builder = self._open[slot] = self.producer.create_batch()
        if builder.append(timestamp=ts_ms, key=key, value=value, headers=headers) is None:
            await self._submit(slot, builder)
            builder = self._open[slot] = self.producer.create_batch()
            builder.append(timestamp=ts_ms, key=key, value=value, headers=headers)  # a first record always fits

    async def _submit(self, slot: tuple[str, int], builder: Any) -> None:
        assert self.producer is not None
        future = await self.producer.send_batch(builder, slot[0], partition=slot[1])
        future.add_done_callback(_seen)  # a failure is reported by whoever waits, or by abort
        self._submitted.append(future)

    async def submit(self) -> list[asyncio.Future]:
        """Hand every open batch to the producer; the futures of all batches handed over
        since the last call (they resolve when the broker confirmed them, acks=all)."""
        for slot, builder in list(self._open.items()):
            await self._submit(slot, builder)
        self._open.clear()
        submitted, self._submitted = self._submitted, []
        return submitted

    async def confirm(self) -> int:
        """Submit and wait until the broker confirmed everything; raises when any batch
        failed. Returns the number of batches confirmed."""
        submitted = await self.submit()
        if submitted:
            await asyncio.gather(*submitted)
        return len(submitted)

    async def send(self, topic: str, key: bytes, value: bytes | None, headers: list[tuple[str, bytes]],
                   ts_ms: int) -> asyncio.Future:
        """One record on its own (tools and tests): a future of its delivery."""
        assert self.producer is not None
        partition = await self._partition(topic, key)
        return await self.producer.send(topic, value=value, key=key, partition=partition,
                                        timestamp_ms=ts_ms, headers=headers)

    async def stop(self) -> None:
        """Deliver what is queued, then close (normal end)."""
        try:
            if self.producer is not None:
                await self.producer.stop()
        finally:
            self.producer = None
            if self.admin is not None:
                await self.admin.close()
                self.admin = None

    async def abort(self) -> None:
        """Fail everything still queued and close without waiting for the broker."""
        producer, admin = self.producer, self.admin
        self.producer = self.admin = None
        self._open.clear()
        self._submitted = []
        if producer is not None:
            accumulator = producer._message_accumulator
            batches = [b for queue in accumulator._batches.values() for b in queue]
            batches += list(accumulator._pending_batches)
            accumulator.fail_all(KafkaError("sink aborted"))
            for batch in batches:  # nobody waits on these any more: mark their failures seen
                for waiter in (batch.future, batch._drain_waiter):
                    if waiter.done() and not waiter.cancelled():
                        waiter.exception()
            try:
                await asyncio.wait_for(producer.stop(), 5)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - best effort close
                pass
        if admin is not None:
            try:
                await asyncio.wait_for(admin.close(), 5)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001
                pass


@dataclass
class ScanStats:
    records: int = 0
    bytes: int = 0
    partitions: int = 0


OnRecord = Callable[[str, int, int, "bytes | None", "bytes | None", Any], None]


async def scan(config: KafkaConfig, topics: list[str], on_record: OnRecord, *,
               timeout: float | None = None) -> ScanStats:
    """Call ``on_record(topic, partition, offset, key, value, headers)`` for every record
    of the topics (those that exist), from the beginning up to the high watermark each
    partition had when the scan started; partitions in offset order."""
    timeout = timeout or config.timeout
    deadline = time.monotonic() + timeout
    consumer = AIOKafkaConsumer(
        bootstrap_servers=config.bootstrap_servers, client_id=f"{config.client_id}-reader",
        group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
        request_timeout_ms=max(1000, int(timeout * 1000)), fetch_max_wait_ms=100,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    stats = ScanStats()
    try:
        await asyncio.wait_for(consumer.start(), timeout)
        existing = await consumer.topics()
        tps: list[TopicPartition] = []
        for topic in topics:
            if topic in existing:
                parts = consumer.partitions_for_topic(topic) or set()
                tps.extend(TopicPartition(topic, p) for p in sorted(parts))
        stats.partitions = len(tps)
        if not tps:
            return stats
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        begins = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if ends[tp] > begins[tp]}
        stop: dict[TopicPartition, int] = {}
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise KafkaUnavailable(f"reading {len(pending)} partition(s) did not finish within {timeout:g} s")
            batches = await consumer.getmany(*pending, timeout_ms=int(min(left, 0.5) * 1000), max_records=20000)
            for tp, records in batches.items():
                for r in records:
                    stats.records += 1
                    stats.bytes += len(r.key or b"") + len(r.value or b"")
                    on_record(tp.topic, tp.partition, r.offset, r.key, r.value, r.headers)
            for tp in list(pending):
                high = consumer.highwater(tp)
                if high is None:
                    continue
                limit = stop.setdefault(tp, max(high, ends[tp]))
                if await consumer.position(tp) >= limit:
                    pending.discard(tp)
        return stats
    except KafkaError as exc:
        raise KafkaUnavailable(f"Kafka at {config.bootstrap_servers}: {exc}") from None
    except asyncio.TimeoutError:
        raise KafkaUnavailable(f"Kafka at {config.bootstrap_servers} did not answer within {timeout:g} s") from None
    finally:
        try:
            await asyncio.wait_for(consumer.stop(), 5)
        except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - best effort close
            pass
