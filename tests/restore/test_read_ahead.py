"""ReadAhead: a producer thread ahead of the consumer, bounded, with barriers, errors
delivered in place, and a clean stop."""

from __future__ import annotations

import threading
import time
from typing import Iterator

import pytest

from restore.read_ahead import ReadAhead


def test_items_arrive_in_order_and_the_producer_stays_within_its_limit() -> None:
    produced: list[int] = []
    lock = threading.Lock()

    def items() -> Iterator[int]:
        for i in range(200):
            with lock:
                produced.append(i)
            yield i

    ahead_seen = []
    with ReadAhead(items(), limit=10, weight=lambda item: 1) as ahead:
        got = []
        for item in ahead:
            time.sleep(0.0005)
            with lock:
                ahead_seen.append(len(produced) - len(got))
            got.append(item)
    assert got == list(range(200))
    # produced but not yet consumed: the queue (<= limit) plus the one being produced
    assert max(ahead_seen) <= 10 + 2


def test_the_producer_starts_before_anyone_asks() -> None:
    started = threading.Event()

    def items() -> Iterator[int]:
        started.set()
        yield 1

    with ReadAhead(items(), limit=5, weight=lambda item: 1) as ahead:
        assert started.wait(5)
        assert list(ahead) == [1]


def test_after_a_barrier_nothing_is_produced_until_the_consumer_is_done_with_it() -> None:
    log: list[str] = []
    lock = threading.Lock()

    def items() -> Iterator[str]:
        for name in ["a", "b", "SCHEMA", "c", "d"]:
            with lock:
                log.append(f"make {name}")
            yield name

    with ReadAhead(items(), limit=100, weight=lambda item: 1, barrier=lambda item: item == "SCHEMA") as ahead:
        for item in ahead:
            if item == "SCHEMA":
                time.sleep(0.05)  # the producer would have made c and d by now without the barrier
            with lock:
                log.append(f"done {item}")
    assert log.index("make c") > log.index("done SCHEMA")


def test_a_producer_error_is_raised_where_it_happened() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("corrupt segment")

    got = []
    with ReadAhead(items(), limit=5, weight=lambda item: 1) as ahead:
        with pytest.raises(ValueError, match="corrupt segment"):
            for item in ahead:
                got.append(item)
    assert got == [1, 2]


def test_leaving_early_stops_and_closes_the_producer() -> None:
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                n += 1
                yield n
        finally:
            closed.set()

    ahead = ReadAhead(endless(), limit=3, weight=lambda item: 1)
    with ahead:
        for item in ahead:
            if item == 5:
                break
    assert closed.is_set()
    assert not ahead._thread.is_alive()


def test_weights_bound_what_is_held() -> None:
    """Heavy items count for their weight: with a limit of 10 and items of weight 6, the
    producer holds at most two (it adds one while below the limit)."""
    held_max = 0

    def items() -> Iterator[int]:
        yield from range(20)

    ahead = ReadAhead(items(), limit=10, weight=lambda item: 6)
    with ahead:
        for _ in ahead:
            time.sleep(0.001)
            held_max = max(held_max, ahead._held)
    assert held_max <= 12


def test_wait_finished_tells_whether_every_item_was_produced() -> None:
    with ReadAhead(iter(range(5)), limit=10, weight=lambda item: 1) as ahead:
        assert ahead.wait_finished() is True  # all five queued: complete before anyone consumed
    assert ahead.wait_finished() is True  # and still so once closed

    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("damaged")

    with ReadAhead(failing(), limit=10, weight=lambda item: 1) as ahead:
        assert ahead.wait_finished() is False

    with ReadAhead(iter(range(1000)), limit=2, weight=lambda item: 1) as ahead:
        next(iter(ahead))
    assert ahead.wait_finished() is False  # closed while it still had items to make
