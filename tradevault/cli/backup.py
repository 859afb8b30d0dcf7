"""``tradevault backup full|incremental|consolidate|compact``, ``backups list`` and
``locations sync``: taking backups and looking at the catalog."""

from __future__ import annotations

from typing import Annotated

import typer

from tradevault.cli.support import ConfigOption, JsonOption, print_json, progress_display, settings_for, stderr, stdout

PLAIN_AFTER_ROWS = 500
backup_app = typer.Typer(no_args_is_help=True, help="Take a backup now.")
backups_app = typer.Typer(no_args_is_help=True, help="The backup catalog.")
locations_app = typer.Typer(no_args_is_help=True, help="Storage locations.")


def short_time(value: int | None) -> str:
    from restore.planner import format_ts

    return format_ts(value) if value else "-"


def _print_backup(result, as_json: bool, store) -> None:
    """``store``: the one the command used, for the requests it sent (``--json``)."""
    result.requests = store.request_counts()
    if as_json:
        print_json(result.to_json())
        return
    for warning in result.warnings:
        stderr.print(f"warning: {warning}", markup=False)
    if result.skipped:
        stdout.print(f"{result.kind}: nothing to store ({result.skipped}); chain at seq {result.last_seq}")
        return
    what = f"{result.count:,} rows" if result.kind == "full" else f"{result.count:,} events"
    stdout.print(
        f"{result.kind} backup #{result.n}: seq {result.first_seq}..{result.last_seq}, {what}, "
        f"{result.bytes:,} bytes, {result.seconds:.2f} s -> {', '.join(result.locations)}"
    )


@backup_app.command("full")
def backup_full(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """One consistent full backup now (installs change capture on first use)."""
    from tradevault import wiring

    settings = settings_for(ctx, config)
    with progress_display(not as_json) as progress:
        engine = wiring.engine(settings, progress)
        result = engine.full()
    _print_backup(result, as_json, engine.store)


@backup_app.command("incremental")
def backup_incremental(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Seal and store every change captured since the last backup."""
    from tradevault import wiring

    settings = settings_for(ctx, config)
    with progress_display(not as_json) as progress:
        engine = wiring.engine(settings, progress)
        result = engine.incremental()
    _print_backup(result, as_json, engine.store)


@backup_app.command("consolidate")
def backup_consolidate(
    ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False,
    min_events: Annotated[int, typer.Option("--min-events", help="only when a restore of the latest point would "
                                            "replay at least this many events")] = 1,
) -> None:
    """Build a full backup from the store (the source is not read), so a restore of the
    latest point replays nothing."""
    from restore.consolidate import consolidate
    from tradevault import wiring

    settings = settings_for(ctx, config)
    with progress_display(not as_json) as progress:
        engine = wiring.engine(settings)
        result = consolidate(engine, progress, work_dir=settings.work_dir or None, min_events=min_events)
    _print_backup(result, as_json, engine.store)


@backup_app.command("compact")
def backup_compact(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Merge the newest incrementals into larger ones where a level is due ([schedule]
    compact); every point in time still restores exactly, from fewer objects."""
    from trade_stream.compaction import compact
    from tradevault import wiring

    settings = settings_for(ctx, config)
    engine = wiring.engine(settings)
    result = compact(engine.store, engine.publisher, wiring.compaction_fan_in(settings),
                     settings.work_dir or None)
    if as_json:
        print_json({**result.to_json(), "requests": engine.store.request_counts()})
        return
    for merged in result.merged:
        stdout.print(f"compacted #{merged['replaces'][0]}..#{merged['replaces'][-1]} into #{merged['n']} "
                     f"(level {merged['level']}, {merged['events']:,} events, {merged['bytes']:,} bytes)")
    if result.pruned:
        stdout.print(f"removed {len(result.pruned)} replaced objects")
    if result.skipped:
        stdout.print(f"compact: nothing done ({result.skipped})")


@backups_app.command("list")
def backups_list(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """The catalog: kind, seq range, time range, rows/events, bytes, locations."""
    from rich.table import Table

    from trade_stream.manifest import summary
    from tradevault import wiring

    settings = settings_for(ctx, config)
    store = wiring.store(settings)
    catalogs = store.catalogs()
    fence = store.fence()
    rows = []
    for entry in store.merged(catalogs):
        where = [c.location.name for c in catalogs if entry.n in c.entries]
        rows.append(summary(entry, where, fence))
    if as_json:
        print_json(rows)
        return
    header = ["#", "kind", "seq", "time (UTC)", "rows/events", "bytes", "locations", "config",
              *(["epoch"] if fence.promotions else [])]

    def short(ts: int | None) -> str:
        return short_time(ts)[5:19].replace("T", " ") if ts else "-"

    lines = []
    for r in rows:
        seqs = f"{r['first_seq']}" if r["kind"] == "full" else f"{r['after_seq'] + 1}..{r['last_seq']}"
        times = short(r["first_ts"]) if r["kind"] == "full" else f"{short(r['first_ts'])}..{short(r['last_ts'])[6:]}"
        config = " ".join(sha[:8] for sha in (r.get("config") or {}).values()) or "-"
        kind = "full" if r["kind"] == "full" else f"incr L{r['level']}" if r.get("level") else "incr"
        lines.append([str(r["n"]), kind, seqs, times, f"{r['count']:,}", f"{r['bytes']:,}",
                      ", ".join(r["locations"]), config, *([str(r["epoch"])] if fence.promotions else [])])
    if not rows:
        stdout.print("no backups yet")
    elif len(lines) <= PLAIN_AFTER_ROWS:
        table = Table(*header)
        for line in lines:
            table.add_row(*line)
        stdout.print(table)
    else:  # rich draws about 1,700 rows a second: a long catalog is printed as plain columns
        widths = [max(len(c) for c in column) for column in zip(header, *lines)]
        for line in [header, *lines]:
            print("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())


@locations_app.command("sync")
def locations_sync(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Copy to each location what it lacks from the others (after an outage or a new disk)."""
    from trade_stream.errors import IntegrityError, StorageError
    from tradevault import wiring

    settings = settings_for(ctx, config)
    report = wiring.store(settings).catch_up()
    failed = [line for line in report if "failed" in line or "unreachable" in line]
    if as_json:
        print_json({"copied": [line for line in report if line not in failed], "failed": failed})
    else:
        for line in report:
            stdout.print(line, markup=False)
        if not report:
            stdout.print("every location holds every backup")
    if failed:
        error = IntegrityError if any("intact" in line or "checksum" in line for line in failed) else StorageError
        raise error(f"{len(failed)} location/object copies failed, first: {failed[0]}")
