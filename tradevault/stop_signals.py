"""SIGTERM / SIGINT as a stop request the main thread waits on.

A Python signal handler runs in the main thread between two bytecodes, possibly while
that thread is inside ``threading.Event.wait()`` holding the Event's own lock; a handler
that calls ``Event.set()`` then waits for that lock forever (a ``config watch`` ignored
SIGTERM until it was killed). So the handler here only sets an attribute, and the
interpreter's wakeup fd (written by its C-level handler) wakes :meth:`StopSignals.wait`.
Other threads are told to stop by ordinary code once the main thread has seen the request.
"""

from __future__ import annotations

import os
import select
import signal
from types import FrameType
from typing import Any


class StopSignals:
    """Install with ``with StopSignals() as stop:`` in the main thread; ``stop.wait(t)``
    returns True once SIGTERM or SIGINT arrived (at once if it already had)."""

    def __init__(self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self.signals = signals
        self.received: int | None = None
        self._read_fd = -1
        self._write_fd = -1
        self._old_wakeup_fd = -1
        self._old_handlers: dict[int, Any] = {}

    def _handler(self, signum: int, _frame: FrameType | None) -> None:
        self.received = signum  # no lock taken here: see the module docstring

    def is_set(self) -> bool:
        return self.received is not None

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds or until a stop signal; True when one arrived."""
        if self.received is None:
            ready, _, _ = select.select([self._read_fd], [], [], max(0.0, timeout))
            if ready:
                try:
                    os.read(self._read_fd, 512)
                except BlockingIOError:
                    pass
        return self.received is not None

    def __enter__(self) -> "StopSignals":
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._old_wakeup_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        self._old_handlers = {sig: signal.signal(sig, self._handler) for sig in self.signals}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self._old_wakeup_fd)
        os.close(self._read_fd)
        os.close(self._write_fd)
