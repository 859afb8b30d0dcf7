"""``tradevault config ...``: configuration history (a thin layer over config_vcs)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from tradevault.cli.support import ConfigOption, JsonOption, print_json, settings_for, stderr

if TYPE_CHECKING:
    from config_vcs.repository import ConfigRepo

app = typer.Typer(no_args_is_help=True, help="Configuration history (git).")

RepoOption = Annotated[
    Optional[str],
    typer.Option("--path", help="Which watched directory (default: the first in config_vcs.paths)."),
]


def _repo(ctx: typer.Context, config: str | None, path: str | None) -> ConfigRepo:
    from tradevault.config_history import chosen_dir, options_from

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
    from config_vcs import history

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
    from config_vcs import history

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
    from config_vcs import history

    data = history.show(_repo(ctx, config, repo_path), spec)
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


@app.command("checkout")
def checkout_cmd(
    ctx: typer.Context,
    paths: Annotated[Optional[list[str]], typer.Argument(help="Only these files or directories.")] = None,
    rev: Annotated[Optional[str], typer.Option("--rev", help="Revision to bring back.")] = None,
    at: Annotated[Optional[str], typer.Option(
        "--at", metavar="TIME", help="ISO 8601 time (naive = UTC): the last commit at or before it.")] = None,
    to: Annotated[Optional[Path], typer.Option(
        "--to", metavar="DIR", help="Write into DIR instead of the watched directory.")] = None,
    repo_path: RepoOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Bring files back as they were; without --to the result is committed."""
    from config_vcs import history
    from config_vcs.errors import BadInput

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
    from config_vcs.service import offline_status
    from tradevault.config_history import options_from

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
    from config_vcs import history
    from tradevault.config_history import history_service
    from tradevault.protection_record import note_config
    from tradevault.stop_signals import StopSignals

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
