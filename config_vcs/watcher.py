"""watchdog at the edge: filesystem events become "directory X changed" callbacks.

Events are only triggers (the committer re-walks the tree), so this module filters
noise -- anything in ``.git`` (our own commits), paths that are not configuration
(droppings, logs, data, the live database and its -wal being written with every trade),
opens and read-only closes (our own scans) -- and reports the rest. When the kernel queue
overflows, events were lost: every directory is asked for a full rescan. watchdog
recovers its watches itself but tells only its log, so we listen there.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from watchdog.events import (
    DirAttribEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirModifiedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from config_vcs.ignore import is_git_internal

log = logging.getLogger(__name__)

# watchdog warns (with a page-long repr) when a directory appearing under .git races its
# own recursive watch set-up; it recovers by itself, so the warning is only noise.
warnings.filterwarnings("ignore", message="Callback with id", category=RuntimeWarning)

_EVENTS = [
    FileCreatedEvent, FileDeletedEvent, FileModifiedEvent, FileAttribEvent, FileMovedEvent,
    FileClosedEvent, DirCreatedEvent, DirDeletedEvent, DirModifiedEvent, DirMovedEvent,
    DirAttribEvent,
]  # no opened / closed-without-write: our own scans would wake us up
_OVERFLOW_LOGGERS = ("watchdog.observers.inotify_c", "watchdog.observers.inotify")
STOP_TIMEOUT = 10.0  # seconds the observer may take to stop


class Ignores(Protocol):
    """Which paths' events can never change a commit (StaticIgnore, ConfigRepo)."""

    def ignores(self, rel: str, is_dir: bool = False) -> bool: ...


class _Handler(FileSystemEventHandler):
    def __init__(self, root: Path, ignore: Ignores, on_change: Callable[[str], None]):
        self.root = os.fsdecode(os.path.abspath(root))
        self.ignore = ignore
        self.on_change = on_change

    def on_any_event(self, event: FileSystemEvent) -> None:
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if not raw:
                continue
            path = os.fsdecode(raw)
            rel = os.path.relpath(path, self.root)
            if rel == "." :
                rel = ""
            elif rel.startswith(".." + os.sep) or rel == "..":
                continue
            if rel and (is_git_internal(rel) or self.ignore.ignores(rel, event.is_directory)):
                continue
            self.on_change(rel)
            return


class _OverflowListener(logging.Handler):
    """Turns watchdog's "queue overflowed" log record into a callback."""

    def __init__(self, callback: Callable[[], None]) -> None:
        super().__init__(level=logging.WARNING)
        self.callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.callback()


class DirectoryWatcher:
    """One watchdog observer for all watched directories."""

    def __init__(self) -> None:
        self._observer = Observer()
        self._overflow_callbacks: list[Callable[[], None]] = []
        self._listener = _OverflowListener(self._overflowed)
        self._lock = threading.Lock()
        self._started = False

    def add(
        self,
        root: Path,
        ignore: Ignores,
        on_change: Callable[[str], None],
        on_overflow: Callable[[], None],
    ) -> None:
        self._observer.schedule(
            _Handler(root, ignore, on_change), str(root), recursive=True, event_filter=_EVENTS
        )
        with self._lock:
            self._overflow_callbacks.append(on_overflow)

    def start(self) -> None:
        for name in _OVERFLOW_LOGGERS:
            logging.getLogger(name).addHandler(self._listener)
        self._observer.start()
        self._started = True

    def stop(self) -> None:
        for name in _OVERFLOW_LOGGERS:
            logging.getLogger(name).removeHandler(self._listener)
        if self._started:
            # watchdog's stop() joins its emitter threads without a timeout: bound it, so
            # a stuck emitter cannot keep the final commit and pushes from happening
            stopper = threading.Thread(target=self._observer.stop, name="watch-stop", daemon=True)
            stopper.start()
            deadline = time.monotonic() + STOP_TIMEOUT
            stopper.join(STOP_TIMEOUT)
            self._observer.join(max(0.0, deadline - time.monotonic()))
            if stopper.is_alive() or self._observer.is_alive():
                log.warning("the filesystem watcher did not stop within %.0f s; going on without it",
                            STOP_TIMEOUT)
            self._started = False

    def _overflowed(self) -> None:
        log.warning("filesystem events were lost; rescanning every watched directory")
        with self._lock:
            callbacks = list(self._overflow_callbacks)
        for callback in callbacks:
            callback()
