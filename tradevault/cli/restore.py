"""``tradevault restore``: replay backups into a fresh database (from the locations or
from Kafka), with the configuration of the same instant."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from tradevault.cli.backup import short_time
from tradevault.cli.support import ConfigOption, JsonOption, print_json, progress_display, settings_for, stdout

if TYPE_CHECKING:
    from restore.planner import Target


def restore(
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", metavar="URL", help="Target database URL (must be empty).")],
    at: Annotated[Optional[str], typer.Option("--at", metavar="TIME", help="ISO 8601 time (naive = UTC).")] = None,
    seq: Annotated[Optional[int], typer.Option("--seq", help="Restore up to this seq.")] = None,
    from_: Annotated[Optional[str], typer.Option(
        "--from", metavar="LOCATION", help="Read from this location only.")] = None,
    config_to: Annotated[Optional[Path], typer.Option("--config-to", help="Also write the config as it was.")] = None,
    tables: Annotated[Optional[str], typer.Option(
        "--tables", metavar="NAME[,NAME...]", help="Restore only these tables.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan, change nothing.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty target.")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replay backups into a fresh database, at the latest point or any point in time."""
    from restore.dispatch import choose_tables, mapping_of, open_target, restore_to
    from restore.planner import Target, parse_time, plan_restore
    from trade_stream.errors import BadInputError
    from trade_stream.manifest import summary
    from tradevault import wiring

    settings = settings_for(ctx, config)
    if at is not None and seq is not None:
        raise BadInputError("give either --at or --seq, not both")
    target = Target(seq=seq, ts=parse_time(at) if at is not None else None)
    table_names = None if tables is None else [name.strip() for name in tables.split(",") if name.strip()]
    if table_names is not None and not table_names:
        raise BadInputError("--tables: name at least one table")
    target_db = open_target(to)  # validates the URL before anything else
    source = wiring.source(settings)
    store = wiring.store(settings, source)
    if from_ == "kafka":
        if table_names is not None:
            raise BadInputError("--from kafka restores every table (no --tables)")
        if not target_db.accepts_kafka:
            raise BadInputError(f"--from kafka cannot restore into a {target_db.dialect} database")
        _restore_from_kafka(settings, store, target_db.db, target, to, dry_run, force, as_json)
        return
    if from_ is not None:
        chosen = [loc for loc in store.locations if loc.name == from_]
        if not chosen:
            raise BadInputError(f"--from {from_}: no such location "
                                f"(have: {', '.join(loc.name for loc in store.locations)})")
        store.locations = chosen
    if config_to is not None and not settings.config_vcs.paths:
        raise BadInputError("--config-to: no [config_vcs] paths are configured")
    entries, damaged = store.entries_and_damage()
    plan = plan_restore(entries, target, damaged, wiring.evidence(settings, store, source))
    if table_names is not None:
        choose_tables(store, plan, table_names)
    if dry_run:
        rows = plan.full.count if plan.tables is None else \
            sum(n for t, n in (plan.full.tables or {}).items() if t in plan.tables)
        info = {
            "dry_run": True, "target": to, "at": target.describe(), "full": summary(plan.full),
            "incrementals": [summary(e) for e in plan.incrementals], "first_seq": plan.full.last_seq,
            "last_seq": plan.stop_seq, "rows": rows,
            "events": sum(e.count for e in plan.incrementals),
            "bytes": plan.full.bytes + sum(e.bytes for e in plan.incrementals), "seconds": 0.0,
            "tables": None if plan.tables is None else sorted(plan.tables),
            "notes": mapping_of(store, plan, to),
        }
        if as_json:
            print_json(info)
        else:
            only = "" if plan.tables is None else f" (tables {', '.join(sorted(plan.tables))})"
            stdout.print(f"would restore {plan.full.object} (seq {plan.full.last_seq}) + "
                         f"{len(plan.incrementals)} incremental(s) up to {target.describe()} into {to}{only}")
            _print_notes(info["notes"], "would map to the other dialect")
        return
    if config_to is not None:  # sealed config secrets without the key: refused before any write
        from tradevault.config_history import require_restorable_config

        require_restorable_config(settings, [plan.full, *plan.incrementals], target.ts)
    with progress_display(not as_json) as progress:
        result = restore_to(store, plan, to, force=force, progress=progress)
    if config_to is not None:
        from config_vcs.history import export_config_at
        from tradevault.config_history import options_from

        moment = datetime.fromtimestamp((target.ts or result.last_ts or time.time_ns() // 1000) / 1e6, tz=timezone.utc)
        exported = export_config_at(settings.config_vcs.paths, moment, config_to, options_from(settings),
                                    settings.config_vcs.remotes)
        result.config = [{"path": str(e.watched), "to": str(e.target), "commit": e.commit, "files": e.files}
                         for e in exported]
    if as_json:
        print_json(result.to_json())
    else:
        point = "" if target.seq is None and target.ts is None else \
            f", the last committed point at or before {target.describe()}"
        only = "" if plan.tables is None else f" (tables {', '.join(sorted(plan.tables))})"
        stdout.print(
            f"restored {result.target}: seq {result.last_seq} ({short_time(result.last_ts)}{point}), "
            f"{result.rows:,} rows{only}, {result.events:,} events replayed from {1 + len(result.incrementals)} "
            f"object(s), {result.seconds:.2f} s"
        )
        for item in result.config:
            where = f"commit {item['commit'][:10]}" if item["commit"] else "no history at that time"
            stdout.print(f"config {item['path']} -> {item['to']}: {where}, {item['files']} files")
        across = source.dialect != target_db.dialect
        _print_notes(result.notes, "mapped or left out" if plan.tables is not None else
                     "mapped to the other dialect" if across else "left out or changed")


def _print_notes(notes: list[str], heading: str) -> None:
    """A restore into another dialect: every type it changed and everything it left out;
    a restore of some tables: what leaving the others out left out or unchecked; any
    restore: what it could not give back as it was (a table left out of the backups, a
    function of a schema not backed up...)."""
    if notes:
        stdout.print(f"[yellow]{heading} ({len(notes)} decision(s)):[/yellow]")
        for note in notes:
            stdout.print(f"  {note}", markup=False, highlight=False)


def _restore_from_kafka(settings, store, target_db: Any, target: Target, to: str,
                        dry_run: bool, force: bool, as_json: bool) -> None:
    from restore.kafka_replay import restore_from_kafka
    from trade_stream.errors import BadInputError
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
