"""``tradevault recover`` and ``tradevault run -- COMMAND``: recovery without a human.

``run`` is the bot's supervisor: recover what is broken, start the agent, start the bot
with its output passed through, forward SIGINT/SIGTERM to it, and when it exits stop the
agent (which seals and stores pending changes) and exit with the bot's status. The bot is
never started on a database that failed its check unless recovery succeeded.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from tradevault.cli.support import ConfigOption, JsonOption, chosen_config, print_json, settings_for, stderr, stdout


def _print_report(report: dict[str, Any]) -> None:
    from tradevault.recovery import outcome

    db = report["database"]
    stdout.print(f"database {db['database']}: {outcome(db)}", markup=False)
    for aside in db.get("kept_aside") or []:
        stdout.print(f"  broken file kept as {aside}", markup=False)
    for c in report["config"]:
        stdout.print(f"config {c['path']}: {outcome(c)}", markup=False)


def recover(
    ctx: typer.Context,
    if_missing: Annotated[bool, typer.Option("--if-missing", help="Recover a missing or empty database.")] = False,
    if_corrupt: Annotated[bool, typer.Option("--if-corrupt", help="Recover a database failing its check.")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check the database and the config directories; restore what is broken (both cases
    unless one of the flags narrows it)."""
    from tradevault.recovery import failure_code, recover_all

    settings = settings_for(ctx, config)
    both = not (if_missing or if_corrupt)
    report = recover_all(settings, if_missing=if_missing or both, if_corrupt=if_corrupt or both)
    if as_json:
        print_json(report)
    else:
        _print_report(report)
    if not report["ok"]:
        code = failure_code(report)
        if code == 2 and not as_json:
            refused = next(c for c in report["config"] if c.get("needs_identity"))
            stderr.print(f"tradevault: error: config {refused['path']}: {refused['action']}", markup=False,
                         soft_wrap=True)
        raise typer.Exit(code)


def _wait_until_protecting(agent: subprocess.Popen, state_dir: Path, timeout: float = 300.0) -> None:
    """The bot starts only once the agent captures its changes (state file written by this
    agent's loop, after any start-up full backup)."""
    from tradevault.agent_state import read_live_state

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if agent.poll() is not None:
            raise RuntimeError(f"the agent exited during start-up (status {agent.returncode}); the bot is not started")
        state = read_live_state(state_dir)
        if state and state.get("pid") == agent.pid:
            return
        time.sleep(0.1)
    agent.terminate()
    raise RuntimeError("the agent did not become ready in time; the bot is not started")


def run(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Recover, start the agent, run the bot (`tradevault run -- freqtrade trade ...`)."""
    command = list(ctx.args)
    if not command:
        raise typer.BadParameter("give the bot's command after --, e.g. tradevault run -- freqtrade trade")
    from tradevault.recovery import failure_code, recover_all

    settings = settings_for(ctx, config)
    report = recover_all(settings, if_missing=True, if_corrupt=True)
    _print_report(report)
    if not report["ok"]:
        code = failure_code(report)
        what = "error" if code == 2 else "integrity failure"
        stderr.print(f"tradevault: {what}: cannot recover; the bot is not started", markup=False)
        raise typer.Exit(code)
    config_file = chosen_config(ctx, config).absolute()
    agent = subprocess.Popen([sys.executable, "-m", "tradevault.cli", "agent", "-c", str(config_file)])
    _wait_until_protecting(agent, Path(settings.agent.state_dir))
    bot = subprocess.Popen(command)
    forwarded = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        forwarded[sig] = signal.signal(sig, lambda number, _frame: bot.send_signal(number))
    try:
        code = bot.wait()
    finally:
        for sig, handler in forwarded.items():
            signal.signal(sig, handler)
        agent.send_signal(signal.SIGTERM)  # seals and stores what the bot wrote last
        try:
            agent.wait(settings.agent.stop_timeout + 60)
        except subprocess.TimeoutExpired:
            agent.kill()
    raise typer.Exit(code if code >= 0 else 128 - code)
