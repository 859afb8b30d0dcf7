"""``tradevault status`` and ``tradevault uninstall``."""

from __future__ import annotations

from pathlib import Path

import typer

from tradevault.cli.support import ConfigOption, JsonOption, chosen_config, print_json, settings_for, stdout


def status(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Capture lag, last backups and jobs, unpushed config commits, locations health."""
    from restore.evidence import shortfall
    from trade_stream.status import source_status
    from tradevault import wiring
    from tradevault.agent_state import read_live_state
    from tradevault.status_view import render_status

    settings = settings_for(ctx, config)
    source = wiring.source(settings)
    store = wiring.store(settings, source)
    catalogs = store.catalogs()
    info = source_status(source, store, catalogs)
    found = shortfall(store.merged(catalogs), wiring.evidence(settings, store, source))
    info["backups_missing"] = found.message() if found else None
    info["history"]["pitr_seconds"] = settings.retention.pitr
    info["agent"] = read_live_state(Path(settings.agent.state_dir))
    if info["agent"] is None and settings.config_vcs.paths:
        from config_vcs.service import offline_status
        from tradevault.config_history import options_from

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
        from tradevault.standby_state import standby_state

        info["standby"] = standby_state(settings.standby.url)
    if as_json:
        print_json(info)
        return
    stdout.print(render_status(info))


def uninstall(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Remove change capture from the database (PostgreSQL: drop the replication slot so the
    server stops retaining WAL; SQLite: drop the triggers and change log). Backups stay."""
    from tradevault import wiring

    settings = settings_for(ctx, config)
    source = wiring.source(settings)
    info = source.uninstall(wiring.source_name(settings, source))
    if as_json:
        print_json(info)
    else:
        stdout.print(", ".join(f"{k}: {v}" for k, v in info.items()), markup=False)
