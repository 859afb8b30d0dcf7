"""Updates that move primary keys, applied as the source's commit saw them. Pure.

A PostgreSQL key may be DEFERRABLE: checked when the transaction commits, so one statement
may shift every key by one (``UPDATE positions SET id = id + 1``) through keys that collide
on the way. Replayed row by row, each update would find two rows under one key (or, with
SQLite's OR REPLACE, delete the other). Such a run is applied in stretches of distinct old
keys, each as a whole: its rows deleted, then inserted with their new images: the same end,
and no trigger fires during a replay. A stretch whose old keys are not all in the table
(one row moved twice: 1 -> 2, then 2 -> 3) is cut before the first old key an earlier
update of the stretch made (``cut``), and each part applied the same way
(``apply_in_stretches``: the applier gives the step that applies one stretch whole).
"""

from __future__ import annotations

from typing import Any, Callable

from trade_stream.errors import IntegrityError


def moves_keys(params: list[Any], key_idx: list[int], nkeys: int) -> bool:
    """Whether an update run (each parameter row: new row, then old key) moves a key."""
    return any(tuple(p[i] for i in key_idx) != tuple(p[-nkeys:]) for p in params)


def stretches(params: list[Any], nkeys: int) -> list[list[Any]]:
    """The run cut before each old key seen already in the current stretch."""
    out: list[list[Any]] = []
    stretch: list[Any] = []
    seen: set[str] = set()
    for param in params:
        old = repr(tuple(param[-nkeys:]))
        if old in seen:
            out.append(stretch)
            stretch, seen = [], set()
        stretch.append(param)
        seen.add(old)
    if stretch:
        out.append(stretch)
    return out


def cut(stretch: list[Any], key_idx: list[int], nkeys: int) -> int | None:
    """Where a stretch whose old keys were not all there splits: before the first update
    whose old key an earlier update of the stretch made; None when there is no such one
    (the replay diverged)."""
    made: set[str] = set()
    for at, param in enumerate(stretch):
        if repr(tuple(param[-nkeys:])) in made:
            return at
        made.add(repr(tuple(param[i] for i in key_idx)))
    return None


def apply_in_stretches(table: str, params: list[Any], key_idx: list[int], nkeys: int,
                       whole: Callable[[list[Any]], bool]) -> None:
    """Apply a run that moves keys: ``whole(stretch)`` deletes the stretch's old keys and
    inserts its new rows, or changes nothing and returns False when its old keys are not
    all there; such a stretch is cut and each part applied the same way."""
    for stretch in stretches(params, nkeys):
        _apply(table, stretch, key_idx, nkeys, whole)


def _apply(table: str, stretch: list[Any], key_idx: list[int], nkeys: int,
           whole: Callable[[list[Any]], bool]) -> None:
    if whole(stretch):
        return
    at = cut(stretch, key_idx, nkeys)
    if at is None:
        raise IntegrityError(f"replay diverged from the source: an update of table {table!r} finds no row "
                             "under its old key")
    _apply(table, stretch[:at], key_idx, nkeys, whole)
    _apply(table, stretch[at:], key_idx, nkeys, whole)
