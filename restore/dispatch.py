"""Restore targets: one per backend folder (``restore/sqlite/target.py``,
``restore/postgres/target.py``) behind ``RestoreTarget``; ``restore_to`` picks the target
by the URL's scheme, and the target picks its path by the full backup's codec:

=================  ===============  =====================================================
full backup codec  target           path
=================  ===============  =====================================================
sqlite-file        sqlite:///...    ``restore.sqlite.replay`` (physical)
pgcopy-binary      sqlite:///...    ``restore.sqlite.from_postgres`` (rows mapped)
sqlite-file        postgresql://    ``restore.postgres.replay`` + ``from_sqlite`` (mapped)
pgcopy-binary      postgresql://    ``restore.postgres.replay`` (COPY bytes as they are)
=================  ===============  =====================================================
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from restore.planner import Plan
from restore.replay import RestoreResult
from trade_stream.errors import BadInputError, IntegrityError
from trade_stream.manifest import ManifestEntry
from trade_stream.progress import Progress, no_progress
from trade_stream.source import backend_of
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import header_of

#: URL scheme -> "module:class" of its RestoreTarget
TARGETS = {
    "sqlite": "restore.sqlite.target:SqliteTarget",
    "postgresql": "restore.postgres.target:PostgresTarget",
}


class RestoreTarget(Protocol):
    """A fresh database a restore fills."""

    dialect: str
    #: the database handle of this backend
    db: Any
    #: the Kafka replay (``--from kafka``) can fill it
    accepts_kafka: bool

    def restore(self, store: BackupStore, plan: Plan, codec: str, *, force: bool = False,
                progress: Progress = no_progress) -> RestoreResult:
        """Replay ``plan`` (whose full backup has ``codec``) into the target, atomically;
        a non-empty target is refused without ``force``."""
        ...

    def mapping(self, store: BackupStore, plan: Plan, codec: str) -> list[str]:
        """What a restore of another dialect's backup changes or leaves out (its mapping
        decisions, for ``--dry-run``); none for the same dialect."""
        ...


def open_target(url: str) -> RestoreTarget:
    """The restore target of ``url`` (validated; nothing is connected yet)."""
    backend = backend_of(url)
    try:
        module, cls = TARGETS[backend].split(":")
    except KeyError:
        raise BadInputError(f"cannot restore into {backend!r} ({' or '.join(TARGETS)})") from None
    target: RestoreTarget = getattr(importlib.import_module(module), cls)(url)
    return target


def full_codec(store: BackupStore, entry: ManifestEntry) -> str:
    return header_of(store, entry).codec


def unknown_codec(entry: ManifestEntry, codec: str) -> IntegrityError:
    return IntegrityError(f"{entry.object}: unknown full backup codec {codec!r}")


def choose_tables(store: BackupStore, plan: Plan, names: list[str]) -> None:
    """Restrict ``plan`` to ``names`` (``restore --tables``), each a table of the full
    backup's recorded schema; an unknown one is bad input, refused before anything is
    written."""
    known = sorted(t["name"] for t in header_of(store, plan.full).schema.get("tables", ()))
    unknown = [name for name in names if name not in known]
    if unknown:
        raise BadInputError(f"--tables: no table {', '.join(repr(n) for n in unknown)} in {plan.full.object} "
                            f"(its tables: {', '.join(known)})")
    plan.tables = frozenset(names)


def mapping_of(store: BackupStore, plan: Plan, target_url: str) -> list[str]:
    return open_target(target_url).mapping(store, plan, full_codec(store, plan.full))


def restore_to(store: BackupStore, plan: Plan, target_url: str, *, force: bool = False,
               progress: Progress = no_progress) -> RestoreResult:
    target = open_target(target_url)
    return target.restore(store, plan, full_codec(store, plan.full), force=force, progress=progress)
