"""Config history wired from the settings: the ``[config_vcs]`` keys as config_vcs
options (plus the protected database files, which config_vcs must never version), the
service the agent runs, and the check ``restore --config-to`` makes before writing."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config_vcs import history
from config_vcs.errors import BadInput
from config_vcs.options import Options
from config_vcs.service import ConfigHistory
from tradevault.settings import Settings


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
