"""Producing a restore's replay steps in a thread of its own, ahead of the applier.

A PostgreSQL restore spends most of its time waiting for the server (loading the full
backup, joining a folded run with its table, building keys), with the GIL released;
reading, verifying, decoding and folding the incrementals is Python work that can happen
during those waits, starting while the full backup loads. (A SQLite applier holds the GIL
for most of its work: there the hand-offs cost more than they gain, so it replays inline.)
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class ReadAhead(Generic[T]):
    """The items of ``items``, produced by a thread started at once, at most ``limit``
    ``weight`` ahead of the consumer. After an item for which ``barrier`` is true the
    producer waits until the consumer has finished with it (asked for the next one): what
    comes next may depend on it. An error in the producer is raised to the consumer where
    it happened in the sequence. Use as a context manager: leaving it stops the thread."""

    def __init__(self, items: Iterator[T], *, limit: int, weight: Callable[[T], int],
                 barrier: Callable[[T], bool] = lambda item: False) -> None:
        self._items = items
        self._limit = limit
        self._weight = weight
        self._barrier = barrier
        self._ready: deque[T] = deque()
        self._held = 0
        self._produced = 0
        self._consumed = 0
        self._done = False
        self._complete = False
        self._stopped = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._produce, name="tradevault-read-ahead", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            for item in self._items:
                weight = self._weight(item)
                with self._cond:
                    while self._held >= self._limit and not self._stopped:
                        self._cond.wait()
                    if self._stopped:
                        return
                    self._ready.append(item)
                    self._held += weight
                    self._produced += 1
                    self._cond.notify_all()
                    if self._barrier(item):
                        wanted = self._produced
                        while self._consumed < wanted and not self._stopped:
                            self._cond.wait()
                del item  # not held while the next one is made: it counts against the limit only while queued
            self._complete = True
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            with self._cond:
                self._error = exc
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def __iter__(self) -> Iterator[T]:
        while True:
            with self._cond:
                while not self._ready and not self._done:
                    self._cond.wait()
                if not self._ready:
                    if self._error is not None:
                        raise self._error
                    return
                item = self._ready.popleft()
                self._held -= self._weight(item)
                self._cond.notify_all()
            yield item
            del item
            with self._cond:  # the consumer is back: it has finished with the item
                self._consumed += 1
                self._cond.notify_all()

    def wait_finished(self) -> bool:
        """Wait until the producer stops: True when it produced every item (no error, not
        stopped before the end), even if the consumer has closed it since."""
        with self._cond:
            while not self._done:
                self._cond.wait()
            return self._complete

    def close(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join()

    def __enter__(self) -> "ReadAhead[T]":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
