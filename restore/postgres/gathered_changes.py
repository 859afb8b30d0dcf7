"""Updates and deletes of tables whose key is not built yet, gathered across runs and
applied with one scan of each table (PostgreSQL restore; see restore/postgres/apply.py).

A restore bulk-loads a table without its key, so a run of updates or deletes finds its
rows by hashing the run and scanning the whole heap. Replay hands out runs one folding
window (50,000 events) at a time: a scan per window would read a big table again for
every window of a big incremental. Runs with distinct keys commute, so their rows are
gathered in scratch tables instead, and the table is scanned once when they are settled:
before a run that touches a gathered key (an insert included), before anything that needs
the key's index, before a schema change of the table, and past ``SETTLE_KEYS`` gathered
keys (the key set kept for that check is what bounds memory).

Settling keeps every check of the runs it stands for: the one DELETE must remove exactly
one row per gathered update and delete (a missing row, or a duplicated one, is a
divergence), then the updates' new images are inserted. (With no index to maintain, that
costs less than an UPDATE, which writes a new version of each row anyway: measured.)
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from restore.postgres.copy_rows import copy_rows, create_scratch, run_columns, scratch_columns
from trade_stream.errors import IntegrityError
from trade_stream.events import UPDATE
from trade_stream.schema import TableSchema, quote_ident

SETTLE_KEYS = 500_000  # gathered keys per table before they are settled (a few tens of MB)


class _Gathered:
    def __init__(self) -> None:
        self.keys: set[Any] = set()
        self.scratch: dict[str, str] = {}  # op -> scratch table
        self.rows = 0


class GatheredChanges:
    """The gathered runs of one restore transaction, per table."""

    def __init__(self, conn: Any, ready: Callable[[str], None] = lambda table: None) -> None:
        """``ready(table)``: returns once the table can be read and written (a restore may
        gather while the table is still being loaded; settling needs it loaded)."""
        self.conn = conn
        self._ready = ready
        self._tables: dict[str, _Gathered] = {}
        self._serial = 0

    def holds(self, table: str) -> bool:
        return table in self._tables

    def overlaps(self, table: str, keys: Iterable[Any]) -> bool:
        gathered = self._tables.get(table)
        return gathered is not None and not gathered.keys.isdisjoint(keys)

    def add(self, table: TableSchema, op: str, rows: list[Any], keys: set[Any], types: list[int] | None) -> None:
        """Gather a run of distinct ``keys`` (disjoint from those gathered: see
        ``overlaps``): updates as their new images, deletes as their keys (``types``: see
        copy_rows)."""
        gathered = self._tables.setdefault(table.name, _Gathered())
        columns = run_columns(table, op)
        with self.conn.cursor() as cursor:
            scratch = gathered.scratch.get(op)
            if scratch is None:
                self._serial += 1
                scratch = gathered.scratch[op] = f"_tradevault_{op}_{self._serial}"
                create_scratch(cursor, scratch, table, columns)
            copy_rows(cursor, scratch, columns, rows, types)
        gathered.keys |= keys
        gathered.rows += len(rows)
        if len(gathered.keys) >= SETTLE_KEYS:
            self.settle(table)

    def settle(self, table: TableSchema) -> None:
        """Apply what is gathered for ``table``: one hash join of the scratch rows with the
        heap deletes the old rows, then the updates' new images are inserted."""
        import psycopg

        if table.name not in self._tables:
            return
        self._ready(table.name)
        gathered = self._tables.pop(table.name)
        name = quote_ident(table.name)
        keys = [quote_ident(k) for k in table.primary_key]
        scratch = list(gathered.scratch.values())
        with self.conn.cursor() as cursor:
            for part in scratch:
                # the key columns' statistics are all the planner needs to hash the scratch
                # side (analysing every column costs several times as much)
                cursor.execute(f"ANALYZE {part} ({', '.join(keys)})")
            side = " UNION ALL ".join(f"SELECT {', '.join(keys)} FROM {part}" for part in scratch)
            where = " AND ".join(f"t.{k} = v.{k}" for k in keys)
            # a hash join (the connection may forbid them for batched statements), with up
            # to SETTLE_KEYS keys hashed in memory, not in batches spilled to disk; both
            # settings put back as they were afterwards
            previous = cursor.execute("SELECT current_setting('enable_hashjoin'), current_setting('work_mem')"
                                      ).fetchone()
            cursor.execute("SELECT set_config('enable_hashjoin', 'on', true), set_config('work_mem', '64MB', true)")
            cursor.execute(f"DELETE FROM {name} AS t USING ({side}) AS v WHERE {where}")
            deleted = cursor.rowcount
            cursor.execute("SELECT set_config('enable_hashjoin', %s, true), set_config('work_mem', %s, true)",
                           previous)
            if deleted != gathered.rows:
                missing = gathered.rows - deleted
                found = f"{missing} missing row(s)" if missing > 0 else f"{-missing} duplicated row(s)"
                raise IntegrityError(f"replay diverged from the source: update/delete of {found} in table "
                                     f"{table.name!r}")
            updates = gathered.scratch.get(UPDATE)
            if updates is not None:
                cols = ", ".join(quote_ident(c) for c in table.column_names)
                values = ", ".join(scratch_columns(table, table.column_names))
                try:
                    cursor.execute(f"INSERT INTO {name} ({cols}) SELECT {values} FROM {updates}")
                except psycopg.errors.IntegrityError as exc:  # e.g. a NULL the column refuses
                    raise IntegrityError(f"replay diverged from the source on table {table.name!r}: "
                                         f"{str(exc).splitlines()[0]}") from None
            cursor.execute(f"DROP TABLE {', '.join(scratch)}")
