"""Turn a burst of filesystem events into one commit.

watchdog's own debouncer only waits for quiet; an editor or a bot that writes every
100 ms would then never be committed. This coalescer fires when either the burst has
been quiet for ``quiet_period`` or the first event of the burst is ``max_delay`` old.
Pure timing logic: the caller passes the clock, so it is tested without sleeping.
"""

from __future__ import annotations


class Coalescer:
    """Tracks one pending burst; not thread-safe (the caller holds its own lock)."""

    def __init__(self, quiet_period: float, max_delay: float) -> None:
        if quiet_period < 0 or max_delay < 0:
            raise ValueError("quiet_period and max_delay must not be negative")
        self.quiet_period = quiet_period
        self.max_delay = max(max_delay, quiet_period)
        self._first: float | None = None
        self._last: float | None = None
        self._count = 0

    @property
    def pending(self) -> bool:
        return self._first is not None

    @property
    def count(self) -> int:
        """Events in the current burst."""
        return self._count

    def add(self, now: float) -> None:
        """Record one event at time ``now``."""
        if self._first is None:
            self._first = now
        self._last = now if self._last is None else max(self._last, now)
        self._count += 1

    def deadline(self) -> float | None:
        """When the burst becomes due (None when nothing is pending)."""
        if self._first is None or self._last is None:
            return None
        return min(self._last + self.quiet_period, self._first + self.max_delay)

    def due(self, now: float) -> bool:
        deadline = self.deadline()
        return deadline is not None and now >= deadline

    def take(self) -> int:
        """Close the burst (the caller commits now); returns how many events it had."""
        count = self._count
        self._first = self._last = None
        self._count = 0
        return count
