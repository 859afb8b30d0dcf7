"""The ``tradevault`` command: a thin layer over the domain packages."""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from restore.consolidate import consolidate
from restore.planner import Target, format_ts, parse_time, plan_restore
from restore.dispatch import open_target, restore_to
from restore.verify import verify_store
from trade_stream.sqlite.database import DatabaseService
from trade_stream.errors import BadInputError, IntegrityError, StorageError
from trade_stream.manifest import summary
from trade_stream.status import source_status
from tradevault import wiring
from tradevault.cli_support import (
    ConfigOption, JsonOption, chosen_config, print_json, progress_display, run, settings_for, stderr, stdout,
)

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="Backup and disaster recovery for trading systems.",
)
backup_app = typer.Typer(no_args_is_help=True, help="Take a backup now.")
backups_app = typer.Typer(no_args_is_help=True, help="The backup catalog.")
app.add_typer(backup_app, name="backup")
app.add_typer(backups_app, name="backups")
locations_app = typer.Typer(no_args_is_help=True, help="Storage locations.")
app.add_typer(locations_app, name="locations")


@app.callback()
def _root(ctx: typer.Context, config: ConfigOption = None) -> None:
    ctx.obj = {"config": config}


def _ts(value: int | None) -> str:
    return format_ts(value) if value else "-"


def _print_backup(result, as_json: bool) -> None:
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
    settings = settings_for(ctx, config)
    with progress_display(not as_json) as progress:
        result = wiring.engine(settings, progress).full()
    _print_backup(result, as_json)


@backup_app.command("incremental")
def backup_incremental(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Seal and store every change captured since the last backup."""
    settings = settings_for(ctx, config)
    with progress_display(not as_json) as progress:
        result = wiring.engine(settings, progress).incremental()
    _print_backup(result, as_json)


@backup_app.command("consolidate")
def backup_consolidate(
    ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False,
    min_events: Annotated[int, typer.Option("--min-events", help="only when a restore of the latest point would "
                                            "replay at least this many events")] = 1,
) -> None:
    """Build a full backup from the store (the source is not read), so a restore of the
    latest point replays nothing."""
    settings = settings_for(ctx, config)
    with progress_display(not as_json) as progress:
        result = consolidate(wiring.engine(settings), progress, work_dir=settings.work_dir or None,
                             min_events=min_events)
    _print_backup(result, as_json)


@backups_app.command("list")
def backups_list(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """The catalog: kind, seq range, time range, rows/events, bytes, locations."""
    settings = settings_for(ctx, config)
    store = wiring.store(settings)
    catalogs = store.catalogs()
    rows = []
    for entry in store.merged(catalogs):
        where = [c.location.name for c in catalogs if entry.n in c.entries]
        rows.append(summary(entry, where))
    if as_json:
        print_json(rows)
        return
    table = Table("#", "kind", "seq", "time (UTC)", "rows/events", "bytes", "locations", "config")
    def short(ts: int | None) -> str:
        return _ts(ts)[5:19].replace("T", " ") if ts else "-"

    for r in rows:
        seqs = f"{r['first_seq']}" if r["kind"] == "full" else f"{r['after_seq'] + 1}..{r['last_seq']}"
        times = short(r["first_ts"]) if r["kind"] == "full" else f"{short(r['first_ts'])}..{short(r['last_ts'])[6:]}"
        config = " ".join(sha[:8] for sha in (r.get("config") or {}).values()) or "-"
        table.add_row(str(r["n"]), "full" if r["kind"] == "full" else "incr", seqs, times, f"{r['count']:,}", f"{r['bytes']:,}", ", ".join(r["locations"]), config)
    stdout.print(table if rows else "no backups yet")


@locations_app.command("sync")
def locations_sync(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Copy to each location what it lacks from the others (after an outage or a new disk)."""
    settings = settings_for(ctx, config)
    report = wiring.store(settings).catch_up()
    failed = [line for line in report if "failed" in line or "unreachable" in line]
    if as_json:
        print_json({"copied": [l for l in report if l not in failed], "failed": failed})
    else:
        for line in report:
            stdout.print(line, markup=False)
        if not report:
            stdout.print("every location holds every backup")
    if failed:
        error = IntegrityError if any("intact" in line or "checksum" in line for line in failed) else StorageError
        raise error(f"{len(failed)} location/object copies failed, first: {failed[0]}")


@app.command("verify")
def verify(
    ctx: typer.Context,
    deep: Annotated[bool, typer.Option("--deep", help="Also decode every record.")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check every manifest and object on every location."""
    settings = settings_for(ctx, config)
    source = wiring.source(settings)
    store = wiring.store(settings, source)
    with progress_display(not as_json) as progress:
        report = verify_store(store, deep=deep, progress=progress, source_stored_upto=source.stored_upto())
    if as_json:
        print_json(report.to_json())
    elif report.ok:
        stdout.print(f"ok: {report.objects_checked} objects, {report.bytes_checked:,} bytes checked"
                     f"{' (deep)' if deep else ''}")
    else:
        for p in report.problems:
            stderr.print(f"{p['location']}: {p['object']}: {p['problem']}", markup=False)
    if not report.ok:
        first = report.problems[0]
        if not as_json:
            raise IntegrityError(f"{len(report.problems)} problem(s), first: {first['object']}: {first['problem']}")
        raise typer.Exit(3)


@app.command("restore")
def restore(
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", help="Target database URL (must be empty).")],
    at: Annotated[Optional[str], typer.Option("--at", help="ISO 8601 time (naive = UTC).")] = None,
    seq: Annotated[Optional[int], typer.Option("--seq", help="Restore up to this seq.")] = None,
    from_: Annotated[Optional[str], typer.Option("--from", help="Read from this location only.")] = None,
    config_to: Annotated[Optional[Path], typer.Option("--config-to", help="Also write the config as it was.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan, change nothing.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty target.")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replay backups into a fresh database, at the latest point or any point in time."""
    settings = settings_for(ctx, config)
    if at is not None and seq is not None:
        raise BadInputError("give either --at or --seq, not both")
    target = Target(seq=seq, ts=parse_time(at) if at is not None else None)
    target_db = open_target(to)  # validates the URL before anything else
    store = wiring.store(settings)
    if from_ == "kafka":
        if not target_db.accepts_kafka:
            raise BadInputError(f"--from kafka cannot restore into a {target_db.dialect} database")
        _restore_from_kafka(settings, store, target_db.db, target, to, dry_run, force, as_json)
        return
    if from_ is not None:
        chosen = [loc for loc in store.locations if loc.name == from_]
        if not chosen:
            raise BadInputError(f"--from {from_}: no such location (have: {', '.join(l.name for l in store.locations)})")
        store.locations = chosen
    if config_to is not None and not settings.config_vcs.paths:
        raise BadInputError("--config-to: no [config_vcs] paths are configured")
    entries, damaged = store.entries_and_damage()
    plan = plan_restore(entries, target, damaged)
    if dry_run:
        info = {
            "dry_run": True, "target": to, "at": target.describe(), "full": summary(plan.full),
            "incrementals": [summary(e) for e in plan.incrementals], "first_seq": plan.full.last_seq,
            "last_seq": plan.stop_seq, "rows": plan.full.count,
            "events": sum(e.count for e in plan.incrementals),
            "bytes": plan.full.bytes + sum(e.bytes for e in plan.incrementals), "seconds": 0.0,
        }
        if as_json:
            print_json(info)
        else:
            stdout.print(f"would restore {plan.full.object} (seq {plan.full.last_seq}) + "
                         f"{len(plan.incrementals)} incremental(s) up to {target.describe()} into {to}")
        return
    if config_to is not None:  # sealed config secrets without the key: refused before any write
        from tradevault.config_commands import require_restorable_config

        require_restorable_config(settings, [plan.full, *plan.incrementals], target.ts)
    with progress_display(not as_json) as progress:
        result = restore_to(store, plan, to, force=force, progress=progress)
    if config_to is not None:
        from config_vcs.history import export_config_at
        from tradevault.config_commands import options_from

        moment = datetime.fromtimestamp((target.ts or result.last_ts or time.time_ns() // 1000) / 1e6, tz=timezone.utc)
        exported = export_config_at(settings.config_vcs.paths, moment, config_to, options_from(settings),
                                    settings.config_vcs.remotes)
        result.config = [{"path": str(e.watched), "to": str(e.target), "commit": e.commit, "files": e.files}
                         for e in exported]
    if as_json:
        print_json(result.to_json())
    else:
        stdout.print(
            f"restored {result.target}: seq {result.last_seq} ({_ts(result.last_ts)}), {result.rows:,} rows, "
            f"{result.events:,} events replayed from {1 + len(result.incrementals)} object(s), {result.seconds:.2f} s"
        )
        for item in result.config:
            where = f"commit {item['commit'][:10]}" if item["commit"] else "no history at that time"
            stdout.print(f"config {item['path']} -> {item['to']}: {where}, {item['files']} files")


def _restore_from_kafka(settings, store, target_db: DatabaseService, target: Target, to: str,
                        dry_run: bool, force: bool, as_json: bool) -> None:
    from restore.kafka_replay import restore_from_kafka
    from trade_stream.kafka.config import KafkaConfig

    if target.seq is not None or target.ts is not None:
        raise BadInputError("--from kafka restores the latest state only (no --at / --seq)")
    config = KafkaConfig.from_settings(settings.kafka)
    if not config.enabled:
        raise BadInputError("--from kafka: [kafka] bootstrap_servers is not configured")
    if dry_run:
        print_json({"dry_run": True, "target": to, "from": "kafka",
                    "topics": f"{config.topic_prefix}.{store.source}.*"})
        return
    with progress_display(not as_json) as progress:
        result = restore_from_kafka(config, store.source, target_db, store=store, force=force, progress=progress)
    if as_json:
        print_json(result.to_json())
    else:
        stdout.print(f"restored {result.target} from Kafka: seq {result.last_seq}, {result.rows:,} rows, "
                     f"{result.events:,} records read, {result.seconds:.2f} s")


@app.command("status")
def status(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Capture lag, last backups and jobs, unpushed config commits, locations health."""
    from tradevault.agent_state import read_live_state
    from tradevault.status_view import render_status

    settings = settings_for(ctx, config)
    source = wiring.source(settings)
    info = source_status(source, wiring.store(settings, source))
    info["agent"] = read_live_state(Path(settings.agent.state_dir))
    if info["agent"] is None and settings.config_vcs.paths:
        from config_vcs.service import offline_status
        from tradevault.config_commands import options_from

        try:
            info["config"] = offline_status(settings.config_vcs.paths, settings.config_vcs.remotes,
                                            options_from(settings))
        except Exception as exc:  # noqa: BLE001 - status must always answer
            info["config"] = {"error": str(exc)}
    elif info["agent"] is not None:
        info["config"] = info["agent"].get("config")
    from tradevault.private_files import private_file_problems

    info["private_files"] = private_file_problems(chosen_config(ctx, config), {
        "config_vcs.secret_identity_file": settings.config_vcs.secret_identity_file,
        "encryption.identity_file": settings.encryption.identity_file,
    })
    if settings.standby.url:
        from tradevault.standby_commands import standby_state

        info["standby"] = standby_state(settings.standby.url)
    if as_json:
        print_json(info)
        return
    stdout.print(render_status(info))


@app.command("uninstall")
def uninstall(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Remove change capture from the database (PostgreSQL: drop the replication slot so the
    server stops retaining WAL; SQLite: drop the triggers and change log). Backups stay."""
    settings = settings_for(ctx, config)
    source = wiring.source(settings)
    info = source.uninstall(wiring.source_name(settings, source))
    if as_json:
        print_json(info)
    else:
        stdout.print(", ".join(f"{k}: {v}" for k, v in info.items()), markup=False)


@app.command("init")
def init(
    ctx: typer.Context,
    db: Annotated[str, typer.Option("--db", help="Database URL.")] = "sqlite:///tradesv3.sqlite",
    watch: Annotated[Optional[list[str]], typer.Option("--watch", help="Config directory to watch.")] = None,
    location: Annotated[Optional[list[str]], typer.Option("--location", help="Backup location URL.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    config: ConfigOption = None,
) -> None:
    """Write a commented tradevault.toml with the embedded defaults (without --watch, the
    bot's config directory is detected: user_data/ with config*.json, or config/). It is
    written 0600, and an age identity is made so config secrets are sealed from the start."""
    from trade_stream.source import open_source
    from trade_stream.storage.locations import open_location
    from tradevault.init_config import detect_watch, render
    from tradevault.init_secrets import prepare_identity
    from tradevault.private_files import write_private
    from tradevault.scope_view import print_watch_scope
    from tradevault.settings import load_settings

    path = chosen_config(ctx, config)
    if path.exists() and not force:
        raise BadInputError(f"{path} already exists (use --force to overwrite)")
    source = open_source(db)  # validates the URL
    urls = location or ["file://./tradevault-backups"]
    for i, url in enumerate(urls):
        open_location(f"location{i + 1}", url)
    if watch:
        chosen, why = list(watch), "given with --watch"
    else:
        chosen, why = detect_watch(Path.cwd(), source.database_file)
    identity = prepare_identity(path)  # credentials in watched files are sealed from the start
    text = render(db, chosen, urls, identity)
    write_private(path, text, check=lambda temp: load_settings(temp, must_exist=True), before_replace=identity.save)
    stdout.print(f"wrote {path} (mode 0600: it can hold credentials)", markup=False)
    stdout.print(identity.notice(), markup=False)
    if chosen:
        stdout.print(f"config history: watching {', '.join(chosen)} ({why})", markup=False)
        print_watch_scope(path, stdout)
    else:
        stdout.print(f"config history: off ({why}; add one with --watch DIR)", markup=False)
    flag = "" if path == Path("tradevault.toml") else f" -c {path}"
    stdout.print(f"next: tradevault{flag} run -- <your bot's command>   (e.g. freqtrade trade ...)\n"
                 f"      or run `tradevault{flag} agent` as a service: deploy/tradevault-agent.service",
                 markup=False)


@app.command("demo")
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where the demo puts its files.")] = Path("demo-out"),
    seconds: Annotated[float, typer.Option("--seconds", help="How long the agent and the bot run.")] = 30.0,
    rate: Annotated[float, typer.Option("--rate", help="Trading transactions per second.")] = 40.0,
) -> None:
    """The agent protecting a demo trading bot (live load, config edits), then restores checked."""
    from tradevault.demo import run_demo

    run_demo(directory, seconds=seconds, rate=rate)


def _register(argv: list[str] | None) -> None:
    """Mount the command groups with heavy imports (dulwich, watchdog, aiokafka) only when
    the command line may use them: every CLI start pays for what it imports."""
    from tradevault import agent_commands, recover_commands, standby_commands

    app.command("agent")(agent_commands.agent)
    app.command("recover")(recover_commands.recover)
    app.command("follow")(standby_commands.follow)
    app.command("promote")(standby_commands.promote)
    app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
        recover_commands.run
    )
    words = None if argv is None else {a for a in argv if not a.startswith("-")}
    if words is None or not words or "--help" in (argv or []) or "kafka" in words:
        from tradevault import kafka_commands

        app.add_typer(kafka_commands.app, name="kafka", help="The Kafka sink: sync, check, status.")
    if words is None or not words or "--help" in (argv or []) or "config" in words:
        from tradevault import config_commands

        app.add_typer(config_commands.app, name="config", help="Configuration history (git).")


_register(sys.argv[1:] if Path(sys.argv[0]).name in ("tradevault", "cli.py") else None)


def main() -> None:
    sys.exit(run(app))


if __name__ == "__main__":
    main()
