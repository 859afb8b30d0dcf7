"""The Applier interface: what the replay loop needs of a restore target.

One implementation per target backend (``restore/sqlite/apply.py``,
``restore/postgres/apply.py``). The loop hands an applier one table's folded events at a
time; an applier that can do part of the work ahead (turn events into parameter rows while
its server works) says so through ``prepare``, which the read-ahead thread calls.
"""

from __future__ import annotations

from typing import Any, Protocol

from trade_stream.events import ChangeEvent


class Applier(Protocol):
    #: the tables the target holds (name -> its description), kept current by SCHEMA events
    tables: dict[str, Any]

    def fold_key(self, table: str) -> list[int] | None:
        """The key columns by which the table's events may be folded (NetEffect), or None
        when its rows can interact (unique indexes besides the key, collations)."""
        ...

    def apply(self, events: list[ChangeEvent]) -> None:
        """Apply events of one table (or one SCHEMA event), in order, checked."""
        ...

    def prepare(self, events: list[ChangeEvent]) -> Any | None:
        """Work done ahead, in the read-ahead thread, for ``apply_prepared``; None when
        this applier has nothing to do ahead (``apply`` gets the events)."""
        ...

    def apply_prepared(self, prepared: Any) -> None: ...
