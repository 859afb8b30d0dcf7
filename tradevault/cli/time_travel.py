"""``tradevault history``, ``diff`` and ``query``: the stored change log read without a
restore (restore/history.py, restore/diff.py, restore/query.py; past states are cached by
restore/point_cache.py in the work dir)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from tradevault.cli.support import (
    ConfigOption,
    JsonOption,
    print_json,
    progress_display,
    settings_for,
    stderr,
    stdout,
)

if TYPE_CHECKING:
    from restore.point_cache import PointCache
    from trade_stream.storage.store import BackupStore
    from tradevault.settings import Settings

FromOption = Annotated[Optional[str], typer.Option("--from", metavar="TIME", help="ISO 8601 time (naive = UTC).")]
ToOption = Annotated[Optional[str], typer.Option("--to", metavar="TIME", help="ISO 8601 time (naive = UTC).")]


def _store_and_cache(settings: Settings) -> tuple[BackupStore, PointCache]:
    from restore.point_cache import PointCache, cache_dir
    from tradevault import wiring

    store = wiring.store(settings, wiring.source(settings))
    return store, PointCache(store, cache_dir(settings.work_dir or None, store.source))


def _time(text: str | None) -> int | None:
    from restore.planner import parse_time

    return parse_time(text) if text is not None else None


def _key_values(keys: list[str]) -> dict[str, str]:
    from trade_stream.errors import BadInputError

    given: dict[str, str] = {}
    for item in keys:
        column, sep, value = item.partition("=")
        if not sep or not column:
            raise BadInputError(f"--key {item!r}: expected COLUMN=VALUE")
        if column in given:
            raise BadInputError(f"--key {column} given twice")
        given[column] = value
    if not given:
        raise BadInputError("name the row with --key COLUMN=VALUE (one per key column)")
    return given


def _cell(value: Any) -> str:
    return "NULL" if value is None else str(value)


def history(
    ctx: typer.Context,
    table: Annotated[str, typer.Argument(help="The table.")],
    key: Annotated[list[str], typer.Option("--key", metavar="COL=VALUE",
                                           help="A key column's value (one --key per column).")],
    from_: FromOption = None,
    to: ToOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every version of one row, oldest first, read from the stored backups."""
    from restore.history import read_history
    from restore.json_values import json_value

    settings = settings_for(ctx, config)
    given = _key_values(key)
    from_ts, to_ts = _time(from_), _time(to)
    store, cache = _store_and_cache(settings)
    found = read_history(store, store.entries(), table, given, cache, from_ts=from_ts, to_ts=to_ts)
    versions = [v.to_json(json_value) for v in found.versions]
    chain = len(found.opened) + found.skipped
    stderr.print(f"{len(versions)} version(s) of {table} {given}: read {found.headers} header(s), opened "
                 f"{len(found.opened)} of {chain} incremental(s) (the key index ruled out {found.skipped}) "
                 f"after full backup {found.full.object}", markup=False)
    if as_json:
        print_json(versions)
        return
    if not versions:
        stdout.print(f"no version of that row in the backups since {found.full.object}")
        return
    previous: dict[str, Any] | None = None
    for version in versions:  # the first version whole, then what each change changed
        row = version["row"]
        if row is None:
            change = "(row deleted)"
        elif previous is None or version["op"] in ("snapshot", "insert"):
            change = ", ".join(f"{k}={_cell(v)}" for k, v in row.items())
        else:
            change = ", ".join(f"{k}: {_cell(previous.get(k))} -> {_cell(v)}" for k, v in row.items()
                               if k not in previous or previous[k] != v) or "(no column changed)"
        stdout.print(f"seq {version['seq']:<10} {version['time']}  {version['op']:<8}  {change}",
                     markup=False, highlight=False)
        previous = row


def query(
    ctx: typer.Context,
    sql: Annotated[str, typer.Argument(metavar="SQL", help="One read-only statement (SQLite's SQL dialect).")],
    at: Annotated[Optional[str], typer.Option("--at", metavar="TIME", help="ISO 8601 time (naive = UTC).")] = None,
    seq: Annotated[Optional[int], typer.Option("--seq", help="The point: this seq.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Read-only SQL on the database as it was at a point (SQLite's dialect, on a cached copy)."""
    from restore.json_values import json_value
    from restore.planner import Target, format_ts
    from restore.query import run_query
    from trade_stream.errors import BadInputError

    settings = settings_for(ctx, config)
    if (at is None) == (seq is None):
        raise BadInputError("give the point with --at TIME or --seq N")
    target = Target(seq=seq, ts=_time(at))
    store, cache = _store_and_cache(settings)
    entries, damaged = store.entries_and_damage()
    with progress_display(not as_json) as progress:
        point = cache.point(entries, target, damaged, progress)
    result = run_query(point.path, sql)
    when = f"{format_ts(point.ts, precise=True)}, " if point.ts else ""
    stderr.print(f"{len(result.rows)} row(s) at seq {point.seq} ({when}the last committed point at or before "
                 f"{target.describe()}){', cached' if point.cached else ''}", markup=False)
    if as_json:
        print_json([{c: json_value(v) for c, v in zip(result.columns, row)} for row in result.rows])
        return
    from rich.table import Table

    view = Table(*result.columns, box=None, pad_edge=False)
    for row in result.rows:
        view.add_row(*(_cell(json_value(v)) for v in row))
    stdout.print(view)


def diff(
    ctx: typer.Context,
    from_: FromOption = None,
    from_seq: Annotated[Optional[int], typer.Option("--from-seq", metavar="N", help="The earlier point.")] = None,
    to: ToOption = None,
    to_seq: Annotated[Optional[int], typer.Option("--to-seq", metavar="N", help="The later point: a seq.")] = None,
    table: Annotated[Optional[list[str]], typer.Option("--table", metavar="NAME", help="Only this table.")] = None,
    rows: Annotated[bool, typer.Option("--rows", help="Each changed row: key, before, after.")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """What changed between two points, per table (net effect), read from the incrementals between them."""
    from restore.diff import diff_points
    from restore.json_values import json_value
    from restore.planner import Target
    from trade_stream.errors import BadInputError

    settings = settings_for(ctx, config)
    if (from_ is None) == (from_seq is None):
        raise BadInputError("give the earlier point with --from TIME or --from-seq N")
    if to is not None and to_seq is not None:
        raise BadInputError("give the later point with --to TIME or --to-seq N, not both")
    start = Target(seq=from_seq, ts=_time(from_))
    end = Target(seq=to_seq, ts=_time(to)) if to is not None or to_seq is not None else None
    store, cache = _store_and_cache(settings)
    found = diff_points(store, store.entries(), start, end, cache=cache, rows=rows, tables=table)
    stderr.print(f"seq {found.from_seq} -> {found.to_seq}: read {len(found.read)} incremental(s)", markup=False)
    if as_json:
        print_json(found.to_json(json_value))
        return
    if not found.tables:
        stdout.print(f"no changes between seq {found.from_seq} and seq {found.to_seq}")
        return
    from rich.table import Table

    view = Table("table", "inserted", "updated", "deleted", box=None, pad_edge=False)
    for name, changes in sorted(found.tables.items()):
        note = " (schema changed)" if changes.schema_changed else ""
        view.add_row(name + note, f"{changes.inserted:,}", f"{changes.updated:,}", f"{changes.deleted:,}")
    stdout.print(view)
    for name, changes in sorted(found.tables.items()):
        for change in changes.rows or ():
            key = ", ".join(f"{k}={_cell(json_value(v))}" for k, v in change.key.items())
            stdout.print(f"{name} {change.op} {key}: {_row_text(change.before)} -> {_row_text(change.after)}",
                         markup=False, highlight=False)


def _row_text(row: dict[str, Any] | None) -> str:
    from restore.json_values import json_value

    return "—" if row is None else "{" + ", ".join(f"{k}={_cell(json_value(v))}" for k, v in row.items()) + "}"
