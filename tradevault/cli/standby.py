"""``tradevault follow`` and ``tradevault promote``: a hot standby database."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Annotated, Optional

import typer

from tradevault.cli.support import ConfigOption, JsonOption, print_json, settings_for, stdout

ToOption = Annotated[Optional[str], typer.Option("--to", metavar="URL",
                                                  help="Standby database URL (default [standby] url).")]


def follow(
    ctx: typer.Context,
    to: ToOption = None,
    once: Annotated[bool, typer.Option("--once", help="Catch up once, then exit.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty target that is not a standby.")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Keep a standby database up to date from the stored backups until SIGTERM/SIGINT."""
    from restore.standby import Follower
    from tradevault import wiring
    from tradevault.standby_state import standby_target, state_path, write_state
    from tradevault.stop_signals import StopSignals

    settings = settings_for(ctx, config)
    target = standby_target(settings, to)
    follower = Follower(wiring.store(settings), target, force=force)
    state_file = state_path(target)
    with StopSignals() as stop:
        while True:
            result = follower.sync_once()
            lag = round(time.time() - result.last_ts / 1e6, 3) if result.last_ts else None
            state = {"pid": os.getpid(), "updated": time.time(), "lag_seconds": lag, **result.to_json(),
                     "following": not once and not stop.is_set()}
            write_state(state_file, state)
            if result.applied or result.rebuilt or once:
                if as_json:
                    print_json(state)
                else:
                    stdout.print(f"standby {target.path}: seq {result.seq}, {result.applied:,} events applied"
                                 f"{' (rebuilt from a full backup)' if result.rebuilt else ''}, lag {lag} s")
            if once or stop.wait(settings.standby.interval):
                break
    state["following"] = False
    write_state(state_file, state)


def promote(ctx: typer.Context, to: ToOption = None, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Stop following and leave a database the bot can use at once."""
    from restore.standby import promote as promote_standby
    from tradevault import wiring
    from tradevault.standby_state import standby_target, state_path

    settings = settings_for(ctx, config)
    target = standby_target(settings, to)
    state_file = state_path(target)
    if state_file.exists():
        state = json.loads(state_file.read_text())
        pid = int(state.get("pid", 0))
        if state.get("following") and pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            else:  # the follower finishes its round and says so in its state file
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and json.loads(state_file.read_text()).get("following"):
                    time.sleep(0.1)
    capture_id, seq = promote_standby(target)
    state_file.unlink(missing_ok=True)
    store = wiring.store(settings)  # the old primary may not append to it again
    promotion, fenced_in = store.record_promotion(capture_id, seq, str(target.path), time.time_ns() // 1000)
    epoch = promotion.epoch
    if as_json:
        print_json({"promoted": str(target.path), "seq": seq, "epoch": epoch, "fenced": capture_id,
                    "recorded_in": fenced_in})
    else:
        stdout.print(f"promoted {target.path} at seq {seq}: point the bot at it. Epoch {epoch}: the old "
                     f"primary can no longer back up into this store (recorded in {', '.join(fenced_in)}); "
                     "the promoted database's first `backup full` starts the next chain")
