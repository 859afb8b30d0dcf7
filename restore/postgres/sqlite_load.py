"""A SQLite snapshot's rows bulk-loaded into the tables of a restore into PostgreSQL.

The work is Python's, per row: reading SQLite, mapping the values (``restore.copy_text``)
and formatting COPY text cost one interpreter about 5 s per million rows of the bench's
tables, while the server takes about a second to store them. Threads cannot share that
work out (one interpreter lock); processes can. So a big snapshot is cut into slices
(rowid ranges) and shared out between worker processes (``sqlite_load_worker``), one per
core: each reads its slices from the snapshot file and COPYs them on its own connection
into the restore's private schema (``Staging.session``), and reports its rows on stdout.
Measured on the 1M-row bench database, two cores: the load went from 5.8-6.2 s in one
process to 3.9-4.2 s in two. A snapshot under ``IN_PROCESS_ROWS`` is loaded on the main
connection: starting a process (about 0.2 s) would cost more than it saves.

A worker stops when its parent is gone (its stdin closes): it must not keep writing into
a schema the next restore is about to drop.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any, Callable, NamedTuple

import msgspec

from primitives.sqlite_files import open_read_only
from restore.copy_text import row_converter
from restore.postgres.copy_rows import copy_statement
from trade_stream.errors import BadInputError, IntegrityError, TradeStreamError
from trade_stream.schema import DatabaseSchema, TableSchema, quote_ident

IN_PROCESS_ROWS = 50_000
BATCH = 1000  # rows per fetch: measured faster than 10,000 (which outgrows the CPU caches)
WORKER = "restore.postgres.sqlite_load_worker"


class Slice(msgspec.Struct, frozen=True):
    """The rows of ``table`` whose rowid (reached by the name ``rowid``) is in [low, high);
    the whole table without them."""

    table: str
    low: int | None = None
    high: int | None = None
    rowid: str = "rowid"


def rowid_name(table: TableSchema) -> str | None:
    """The name that reaches the table's rowid if it has one: a column may take one or all
    of them."""
    taken = {c.name.lower() for c in table.columns}
    return next((name for name in ("rowid", "_rowid_", "oid") if name not in taken), None)


def plan_slices(rows: dict[str, int], bounds: dict[str, tuple[str, int, int] | None],
                workers: int) -> list[list[Slice]]:
    """Each worker's slices. A table with rowids (``bounds``: the name that reaches them,
    the smallest and the largest) and at least a batch of rows per worker is cut into one
    rowid range per worker, so each worker takes an equal part of it; the others go whole,
    largest first, each to the worker with the fewest rows so far. Pure."""
    shares: list[list[Slice]] = [[] for _ in range(workers)]
    totals = [0] * workers
    for name in sorted(rows, key=lambda n: (-rows[n], n)):
        span = bounds.get(name)
        if span is not None and workers > 1 and rows[name] >= workers * BATCH:
            rowid, low, high = span
            cuts = [low + (high + 1 - low) * i // workers for i in range(workers)] + [high + 1]
            for i in range(workers):
                shares[i].append(Slice(name, cuts[i], cuts[i + 1], rowid))
                totals[i] += rows[name] // workers
            continue
        lightest = totals.index(min(totals))
        shares[lightest].append(Slice(name))
        totals[lightest] += rows[name]
    return [share for share in shares if share]


def copy_slice(conn: Any, source: sqlite3.Connection, table: TableSchema, piece: Slice,
               counted: Callable[[int], None], into: str | None = None) -> None:
    """COPY one slice of the snapshot into the (mapped) table, or the table ``into``, each
    row through its table's row function; ``counted`` is told of each batch."""
    convert = row_converter(table)
    cols = ", ".join(quote_ident(c) for c in table.column_names)
    sql = f"SELECT {cols} FROM {quote_ident(table.name)}"
    params: tuple[Any, ...] = ()
    if piece.low is not None:
        sql += f" WHERE {piece.rowid} >= ? AND {piece.rowid} < ?"
        params = (piece.low, piece.high)
    cursor = source.execute(sql, params)
    target = quote_ident(into or table.name)
    with conn.cursor() as pg, pg.copy(copy_statement(target, table.column_names, False)) as copy:
        write = copy.write_row
        while rows := cursor.fetchmany(BATCH):
            for row in rows:
                write(convert(row))
            counted(len(rows))


def worker_count(rows: int) -> int:
    """Worker processes worth starting for a load of ``rows`` rows: one per core (at most
    four), none under IN_PROCESS_ROWS or on a single core."""
    cores = min(4, os.cpu_count() or 1)
    return cores if rows >= IN_PROCESS_ROWS and cores > 1 else 0


def load_snapshot(staging: Any, workers: "LoadWorkers", path: Path, rows: dict[str, int], schema: DatabaseSchema,
                  progress: Callable[[str, int, int | None], None]) -> int:
    """Every row of the snapshot at ``path`` COPYed into the tables of ``schema`` (created,
    empty) in ``staging``'s private schema, by ``workers`` (or on the main connection
    when there are none); ``rows``: the rows per table the backup recorded. Returns the
    rows loaded. The workers commit their own slices; on the main connection the caller
    commits."""
    tables = {t.name: t for t in schema.tables}
    source = open_read_only(path)
    try:
        sizes = {name: rows[name] if name in rows else _count(source, table) for name, table in tables.items()}
        loaded = _Count(progress, sum(sizes.values()))
        if not workers.count:
            for table in schema.tables:
                copy_slice(staging.conns[0], source, table, Slice(table.name), loaded)
            return loaded.done
        bounds = {name: _bounds(source, table) for name, table in tables.items()}
    finally:
        source.close()
    common = {"database": staging.target.url_text, "session": staging.session(), "snapshot": str(path)}
    jobs = [dict(common, tables=[tables[name].to_dict() for name in sorted({p.table for p in share})],
                 slices=msgspec.to_builtins(share)) for share in plan_slices(sizes, bounds, workers.count)]
    workers.run(jobs, loaded)
    return loaded.done


def _count(source: sqlite3.Connection, table: TableSchema) -> int:
    """Rows of a table the backup did not count (one written before it counted them)."""
    return int(source.execute(f"SELECT count(*) FROM {quote_ident(table.name)}").fetchone()[0])


def _bounds(source: sqlite3.Connection, table: TableSchema) -> tuple[str, int, int] | None:
    """(the name reaching the rowids, the smallest, the largest), or None for a table
    without rowids (WITHOUT ROWID, or every name taken by a column) or without rows."""
    rowid = rowid_name(table)
    if rowid is None:
        return None
    try:
        low, high = source.execute(f"SELECT min({rowid}), max({rowid}) FROM {quote_ident(table.name)}").fetchone()
    except sqlite3.OperationalError:  # no such column: a WITHOUT ROWID table
        return None
    return None if low is None else (rowid, low, high)


class _Count:
    """Rows loaded so far, told by several threads, shown as the ``load`` phase."""

    def __init__(self, progress: Callable[[str, int, int | None], None], total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0
        self._lock = threading.Lock()

    def __call__(self, rows: int) -> None:
        with self._lock:
            self.done += rows
            self.progress("load", self.done, self.total)


_ERRORS: dict[int, type[TradeStreamError]] = {BadInputError.exit_code: BadInputError,
                                              IntegrityError.exit_code: IntegrityError}


class _Worker(NamedTuple):
    proc: subprocess.Popen[bytes]
    errors: IO[bytes]  # its stderr: a file, so that nothing it writes there can block it


class LoadWorkers:
    """The worker processes of one load, started ahead of it (a start takes about 0.2 s,
    spent while the snapshot is decompressed and read), then each given a job by ``run``.
    Every worker has stopped when ``run`` returns or raises, and when the context is left."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._workers: list[_Worker] = []
        self._failures: list[TradeStreamError] = []
        self._lock = threading.Lock()
        try:
            for _ in range(count):
                errors: IO[bytes] = tempfile.TemporaryFile()
                # -P: the working directory's own packages must not shadow ours
                proc = subprocess.Popen([sys.executable, "-P", "-m", WORKER], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=errors)
                self._workers.append(_Worker(proc, errors))
        except BaseException:
            self.stop()
            raise

    def __enter__(self) -> "LoadWorkers":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def run(self, jobs: list[dict[str, Any]], counted: Callable[[int], None]) -> None:
        """Give job i to worker i (workers without one stop), follow them, and raise the
        first failure once all have stopped."""
        try:
            for worker, job in zip(self._workers, jobs):
                assert worker.proc.stdin is not None
                worker.proc.stdin.write(json.dumps(job).encode() + b"\n")
                worker.proc.stdin.flush()  # stdin stays open: its end tells the worker its parent is gone
            for worker in self._workers[len(jobs):]:
                self._close(worker)
            busy = self._workers[:len(jobs)]
            threads = [threading.Thread(target=self._follow, args=(worker, counted), daemon=True,
                                        name=f"tradevault-load-{i}") for i, worker in enumerate(busy)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            self.stop()
        if self._failures:
            raise self._failures[0]

    def stop(self) -> None:
        for worker in self._workers:
            if worker.proc.poll() is None and worker.proc.stdin is not None and not worker.proc.stdin.closed:
                self._close(worker)  # a worker still waiting for its job stops
                try:
                    worker.proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    pass
            if worker.proc.poll() is None:
                worker.proc.kill()
            worker.proc.wait()
            if worker.proc.stdout is not None:
                worker.proc.stdout.close()
            worker.errors.close()
        self._workers = []

    @staticmethod
    def _close(worker: _Worker) -> None:
        if worker.proc.stdin is not None and not worker.proc.stdin.closed:
            try:
                worker.proc.stdin.close()
            except BrokenPipeError:
                pass

    def _follow(self, worker: _Worker, counted: Callable[[int], None]) -> None:
        assert worker.proc.stdout is not None
        for line in worker.proc.stdout:
            counted(int(line))
        code = worker.proc.wait()
        if code == 0:
            return
        worker.errors.seek(0)
        lines = worker.errors.read().decode(errors="replace").strip().splitlines()
        message = lines[-1] if lines else f"a worker process exited with status {code}"
        with self._lock:
            self._failures.append(_ERRORS.get(code, TradeStreamError)(f"loading the SQLite snapshot: {message}"))
            for other in self._workers:  # the first failure says what went wrong; the others stop
                if other.proc.poll() is None:
                    other.proc.kill()
