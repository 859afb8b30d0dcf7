"""The Source interface: what tradevault needs of a database it protects.

One implementation per backend folder (``trade_stream/sqlite/source.py``,
``trade_stream/postgres/source.py``); ``open_source`` picks it by the URL's scheme and
imports only that backend. Callers (the CLI, the agent, status, verify, the Kafka sink)
talk to this interface and never branch on the dialect: a new backend is a new folder
plus one line in ``BACKENDS``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterator, NamedTuple, Protocol

from trade_stream.errors import BadInputError
from trade_stream.progress import Progress, no_progress

if TYPE_CHECKING:
    from trade_stream.events import ChangeEvent
    from trade_stream.manifest import ManifestEntry
    from trade_stream.publish import BackupResult, Publisher
    from trade_stream.schema import DatabaseSchema
    from trade_stream.storage.store import BackupStore

#: URL scheme (SQLAlchemy backend name) -> "module:class" of its Source
BACKENDS = {
    "sqlite": "trade_stream.sqlite.source:SqliteSource",
    "postgresql": "trade_stream.postgres.source:PostgresSource",
}


class BackupEngine(Protocol):
    """Full and incremental backups of one source into one store."""

    store: BackupStore
    publisher: Publisher
    warnings: list[str]

    def full(self) -> BackupResult: ...

    def incremental(self, commit_points: Collection[int] = ()) -> BackupResult:
        """``commit_points``: seqs seen to end a committed transaction (``PendingWatch``),
        for a source whose events carry no transaction of their own."""
        ...


@dataclass(frozen=True)
class EngineOptions:
    """How backups are taken; each backend uses what applies to it."""

    work_dir: str = ""  # scratch space; empty: memory when it fits (SQLite), else the system's
    level: int = 3  # zstd level
    use_wal: bool = True  # SQLite: switch the database to WAL so backups never block writers
    copy_in_memory: bool = True  # SQLite: the full backup's transient copy in /dev/shm when it fits


class Pending(NamedTuple):
    """What the agent's loop needs to decide when to seal, read cheaply and often."""

    events: int  # captured, not yet stored
    oldest_ts: int | None  # commit time (µs UTC) of the oldest of them
    schema_changed: bool  # the capture must resynchronise (seal now)


class PendingWatch(Protocol):
    """A long-lived read handle for ``Pending`` (one per agent)."""

    def pending(self, position: int | None) -> Pending: ...

    def commit_points(self) -> list[int]:
        """Every position seen by ``pending`` after the last one handed out: each ends a
        committed transaction (a reader only sees committed rows). For the next seal."""
        ...

    def close(self) -> None: ...


class ChangeLog(Protocol):
    """A capture whose not-yet-pruned events can be read again (the SQLite change log);
    the Kafka sink publishes from it. Reads take the caller's connection, so a sequence
    of them can share one read transaction."""

    def exists(self) -> bool: ...

    def require_exists(self) -> None: ...

    def connect(self, *, readonly: bool = False) -> Any: ...

    def is_installed(self, conn: Any) -> bool: ...

    def meta(self, conn: Any) -> dict[str, str]: ...

    def last_seq(self, conn: Any) -> int: ...

    def oldest_seq(self, conn: Any) -> int | None:
        """The oldest event still in the log (older ones were pruned once stored)."""
        ...

    def schema_at(self, conn: Any, seq: int) -> DatabaseSchema: ...

    def read(self, conn: Any, after_seq: int, upto: int, batch: int = ...) -> Iterator[list[ChangeEvent]]: ...


class Source(Protocol):
    """A database tradevault protects."""

    dialect: str
    #: the database handle (connections, reflection, row counts) of this backend
    db: Any

    @property
    def url_text(self) -> str: ...

    @property
    def display_url(self) -> str:
        """The URL without its password."""
        ...

    @property
    def name(self) -> str:
        """The source's default name in the store (from the URL)."""
        ...

    @property
    def database_file(self) -> Path | None:
        """The database's file when it is one (SQLite): recovery checks it, config
        history never versions it, the agent waits for a bot to create it."""
        ...

    @property
    def physical_snapshots(self) -> bool:
        """Full backups are database files: restore drills and consolidation build on them."""
        ...

    def exists(self) -> bool: ...

    def require_exists(self) -> None:
        """Bad input (exit 2) when the database cannot be opened."""
        ...

    def engine(self, store: BackupStore, options: EngineOptions | None = None, *,
               progress: Progress = no_progress,
               annotate: Callable[[], dict[str, str]] | None = None) -> BackupEngine:
        """``options`` None: ``EngineOptions()``, the defaults."""
        ...

    def capture_status(self, store: BackupStore, entries: list[ManifestEntry]) -> dict[str, Any]:
        """The ``capture`` part of ``status`` (installed, lag, backend details)."""
        ...

    def uninstall(self, source_name: str) -> dict[str, Any]:
        """Remove change capture (backups stay)."""
        ...

    def capture_id(self, source_name: str) -> str | None:
        """The id of the installed change capture (a chain belongs to one), None when
        capture is not installed (a new or just restored database)."""
        ...

    def stored_upto(self) -> int | None:
        """The seq up to which the source already trusts the backups (pruned its change
        log): a stored chain ending earlier lost backups. None when it cannot tell."""
        ...

    def watch(self, state_dir: Path | None = None) -> PendingWatch | None:
        """None: pending changes cannot be counted cheaply (the agent seals on the clock).
        ``state_dir``: where the watch may keep what it learnt across restarts."""
        ...

    def change_log(self) -> ChangeLog | None:
        """None: captured events are readable only once stored."""
        ...


def backend_of(url: str) -> str:
    from trade_stream.database_url import parse_url

    return parse_url(url).get_backend_name()


def open_source(url: str, include: list[str] | None = None, exclude: list[str] | None = None,
                schema: str = "") -> Source:
    """The Source of ``url`` (validated; nothing is connected yet); ``schema``: the one whose
    tables are backed up, where the database has schemas (empty: its default one)."""
    backend = backend_of(url)
    try:
        module, cls = BACKENDS[backend].split(":")
    except KeyError:
        raise BadInputError(f"unsupported database {backend!r} in {url!r} ({' or '.join(BACKENDS)})") from None
    source: Source = getattr(importlib.import_module(module), cls)(url, include, exclude, schema)
    return source
