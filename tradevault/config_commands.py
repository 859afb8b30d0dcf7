"""``tradevault config ...``: configuration history (a thin layer over config_vcs)."""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from config_vcs import history
from config_vcs.errors import BadInput
from config_vcs.options import Options
from config_vcs.repository import ConfigRepo
from config_vcs.service import ConfigHistory, offline_status
from tradevault.cli_support import ConfigOption, JsonOption, print_json, settings_for, stderr
from tradevault.protection_record import note_config
from tradevault.settings import Settings
from tradevault.stop_signals import StopSignals

app = typer.Typer(no_args_is_help=True, help="Configuration history (git).")

RepoOption = Annotated[
    Optional[str],
    typer.Option("--path", help="Which watched directory (default: the first in config_vcs.paths)."),
]


def protected_files(settings: Settings) -> tuple[str, ...]:
    """The SQLite files of ``[database] url`` (and of ``[standby] url``): config history
    never versions them, wherever they are. PostgreSQL has no file to protect; a URL that
    does not parse protects nothing here (the database commands report it)."""
    from trade_stream.errors import BadInputError
    from trade_stream.source import open_source

    files = []
    for url in (settings.database.url, settings.standby.url):
        if not url:
            continue
        try:
            database_file = open_source(url).database_file
        except BadInputError:
            continue
        if database_file is not None:
            files.append(os.path.abspath(database_file))
    return tuple(files)


def options_from(settings: Settings) -> Options:
    """The [config_vcs] settings as config_vcs options."""
    s = settings.config_vcs
    return Options(
        quiet_period=s.quiet_period,
        max_delay=s.max_delay,
        rescan_interval=s.rescan_interval,
        max_file_size=s.max_file_size,
        exclude=tuple(s.exclude),
        include=tuple(s.include),
        protected_files=protected_files(settings),
        author=s.author,
        committer=s.committer,
        host=s.host,
        watch=s.watch,
        push_backoff_max=s.push_retry_max,
        push_timeout=s.push_timeout,
        ssh_command=s.ssh_command,
        repack_every=s.repack_every,
        secret_recipients=tuple(s.secret_recipients),
        secret_identity_file=s.secret_identity_file,
        secret_paths=tuple(s.secret_paths),
        plaintext_remotes=s.plaintext_remotes,
    )


def require_restorable_config(settings: Settings, entries: list[Any], target_ts: int | None) -> None:
    """``restore --config-to``: before the database is written, the configuration of the
    instant being restored (``target_ts``, else somewhere in the time span of the backup
    ``entries`` replayed) must be writable in clear here -- its sealed secrets
    decryptable -- or the restore is refused (exit 2) and nothing is written."""
    stamps = [ts for e in entries for ts in (e.first_ts, e.last_ts) if ts]
    if target_ts is not None:
        stamps = [target_ts]
    now = datetime.now(UTC)
    earliest = datetime.fromtimestamp(min(stamps) / 1e6, UTC) if stamps else now
    latest = datetime.fromtimestamp(max(stamps) / 1e6, UTC) if stamps else now
    history.require_readable_config(
        settings.config_vcs.paths, earliest, latest, options_from(settings), settings.config_vcs.remotes
    )


def history_service(settings: Settings) -> ConfigHistory:
    """What the agent runs for the configuration part."""
    s = settings.config_vcs
    return ConfigHistory(s.paths, s.remotes, options_from(settings))


def chosen_dir(settings: Settings, path: str | None) -> Path:
    """``--path`` (a configured directory, or its base name), else the first one."""
    paths = [Path(os.path.abspath(p)) for p in settings.config_vcs.paths]
    if not paths:
        raise BadInput("config_vcs.paths is empty")
    if path is None:
        return paths[0]
    wanted = Path(os.path.abspath(path))
    for candidate in paths:
        if candidate == wanted or candidate.name == path:
            return candidate
    raise BadInput(f"{path} is not one of the watched directories: {', '.join(map(str, paths))}")


def _repo(ctx: typer.Context, config: str | None, path: str | None) -> ConfigRepo:
    settings = settings_for(ctx, config)
    return options_from(settings).repo(chosen_dir(settings, path), create=False, warn=_warn)


def _warn(message: str) -> None:
    stderr.print(f"tradevault: warning: {message}", markup=False, soft_wrap=True)


@app.command("log")
def log_cmd(
    ctx: typer.Context,
    path: Annotated[Optional[str], typer.Argument(help="Only commits touching this file or directory.")] = None,
    limit: Annotated[Optional[int], typer.Option("-n", "--limit", help="At most this many commits.")] = None,
    repo_path: RepoOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """History of the watched configuration, newest first."""
    entries = history.log(_repo(ctx, config, repo_path), path, limit=limit)
    if as_json:
        print_json([e.as_dict() for e in entries])
        return
    for entry in entries:
        stamp = entry.time.strftime("%Y-%m-%d %H:%M:%SZ")
        typer.echo(f"{entry.commit[:10]}  {stamp}  {entry.summary}")
        for change in entry.changes:
            d = change.as_dict()
            name = f"{d['from']} -> {d['path']}" if "from" in d else d["path"]
            typer.echo(f"    {change.kind:<9} {name}")


@app.command("diff")
def diff_cmd(
    ctx: typer.Context,
    rev: Annotated[str, typer.Argument(help="From this revision...")],
    rev2: Annotated[Optional[str], typer.Argument(help="...to this one (default: the directory now).")] = None,
    repo_path: RepoOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Unified diff between two revisions, or a revision and the directory now."""
    patch, changes = history.diff(_repo(ctx, config, repo_path), rev, rev2)
    if as_json:
        print_json({"from": rev, "to": rev2, "files": [c.as_dict() for c in changes],
                    "patch": patch.decode("utf-8", errors="replace")})
        return
    sys.stdout.buffer.write(patch)
    sys.stdout.flush()


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    spec: Annotated[str, typer.Argument(metavar="REV[:PATH]", help="A commit, or a file as it was in it.")],
    repo_path: RepoOption = None,
    config: ConfigOption = None,
) -> None:
    """A file as it was at a revision (its exact bytes), or a commit with its patch."""
    data = history.show(_repo(ctx, config, repo_path), spec)
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


@app.command("checkout")
def checkout_cmd(
    ctx: typer.Context,
    paths: Annotated[Optional[list[str]], typer.Argument(help="Only these files or directories.")] = None,
    rev: Annotated[Optional[str], typer.Option("--rev", help="Revision to bring back.")] = None,
    at: Annotated[Optional[str], typer.Option("--at", help="ISO 8601 time (naive = UTC): the last commit at or before it.")] = None,
    to: Annotated[Optional[Path], typer.Option("--to", help="Write into DIR instead of the watched directory.")] = None,
    repo_path: RepoOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Bring files back as they were; without --to the result is committed."""
    if (rev is None) == (at is None):
        raise BadInput("give exactly one of --rev REV or --at TIME")
    when = history.parse_time(at) if at is not None else None
    result = history.checkout(_repo(ctx, config, repo_path), rev=rev, at=when, to=to, paths=paths or [])
    if as_json:
        print_json(result.as_dict())
        return
    typer.echo(
        f"{len(result.written)} file(s) written, {len(result.deleted)} removed in {result.target} "
        f"(from {result.source[:10]})"
        + (f"; committed {result.commit[:10]}" if result.commit else "")
        + (f"; {len(result.skipped)} not written (not configuration)" if result.skipped else "")
    )


@app.command("status")
def status_cmd(ctx: typer.Context, as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Head of each watched directory and, per remote, unpushed commits and last error."""
    settings = settings_for(ctx, config)
    s = settings.config_vcs
    report = offline_status(s.paths, s.remotes, options_from(settings))
    if as_json:
        print_json(report)
        return
    for repo in report:
        head = (repo.get("head") or "-")[:10]
        typer.echo(f"{repo['path']}: {head}" + (f"  ({repo['error']})" if repo.get("error") else ""))
        skipped = repo.get("skipped") or []
        if skipped:
            typer.echo(f"    not versioned ({repo.get('skipped_total', len(skipped))}):")
            for item in skipped[:20]:
                typer.echo(f"      {item['path']}  ({item['reason']})")
            if repo.get("skipped_total", 0) > 20:
                typer.echo(f"      ... and {repo['skipped_total'] - 20} more (--json lists {len(skipped)})")
        for name, remote in repo["remotes"].items():
            flag = "  DIVERGED" if remote["diverged"] else ""
            if remote.get("held"):
                flag += f"  HELD (credentials in clear: {', '.join(remote['held'])})"
            if remote.get("allow_plaintext_secrets"):
                flag += "  allow_plaintext_secrets"
            error = f"  last error: {remote['last_error']}" if remote["last_error"] else ""
            typer.echo(f"    {name}: {remote['unpushed']} unpushed{flag}{error}")


@app.command("watch")
def watch_cmd(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Watch, commit and push in the foreground until SIGINT/SIGTERM (then flush)."""
    settings = settings_for(ctx, config)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
        )
    service = history_service(settings)
    with StopSignals() as stop:
        try:
            service.start()
            note_config(Path(settings.agent.state_dir), [Path(p) for p in history.heads(service.roots)])
            names = ", ".join(settings.config_vcs.remotes) or "no remotes"
            stderr.print(
                f"watching {', '.join(str(r) for r in service.roots)} ({names}); Ctrl-C to stop",
                markup=False,
            )
            while not stop.wait(1.0):
                pass
            stderr.print("stopping: committing and pushing what is pending", markup=False)
        finally:
            service.stop(flush=True)
