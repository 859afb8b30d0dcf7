"""The configuration file contract of DESIGN.md: TOML + ``TRADEVAULT_*`` overrides.

Environment variables win over the file; nested keys use ``__``
(``TRADEVAULT_DATABASE__URL``, ``TRADEVAULT_SCHEDULE__INCREMENTAL``). Lists and tables
take JSON (``TRADEVAULT_DATABASE__INCLUDE='["trades"]'``).

Plain dataclasses and a small validator of our own (``_build``), not pydantic: importing
pydantic and pydantic-settings and building the models cost every command about 0.2 s of
start-up, more than a whole restore of a small database.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tomllib
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

DEFAULT_CONFIG_FILE = "tradevault.toml"


class SettingsError(ValueError):
    """Bad configuration: reported as one line, exit 2."""

    exit_code = 2


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_UNIT_BYTES = {None: 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2,
               "gb": 1000**3, "gib": 1024**3}


def parse_size(value: str | int) -> int:
    """``"1MiB"``, ``"512KiB"``, ``"2MB"`` or a number of bytes -> bytes (positive)."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r} (use e.g. 512KiB, 1MiB, 2MB or bytes)")
    if isinstance(value, (int, float)):
        size = int(value)
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ValueError(f"not a size: {value!r} (use e.g. 512KiB, 1MiB, 2MB or bytes)")
        size = int(float(match.group(1)) * _UNIT_BYTES[(match.group(2) or "").lower() or None])
    if size <= 0:
        raise ValueError(f"size must be positive: {value!r}")
    return size


def parse_duration(value: str | int | float) -> float:
    """``"30s"``, ``"500ms"``, ``"5m"``, ``"30d"`` or a number of seconds -> seconds."""
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"not a duration: {value!r} (use e.g. 500ms, 30s, 5m, 2h, 30d)")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 0:
        raise ValueError(f"duration must not be negative: {value!r}")
    return seconds


def _parsed(parse: Callable[[Any], Any]) -> dict[str, Any]:
    """Field metadata: ``parse`` reads the value before its type is checked."""
    return {"parse": parse}


@dataclass
class DatabaseSettings:
    url: str = "sqlite:///tradesv3.sqlite"
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    name: str = ""  # name of this source in the backup store; default: derived from the URL
    schema: str = ""  # PostgreSQL: the schema whose tables are backed up; empty = public
    sqlite_wal: bool = True  # switch a SQLite database to WAL so backups never block writers


@dataclass
class LocationSettings:
    name: str
    url: str
    endpoint_url: str = ""
    region: str = ""
    access_key_id: str = ""
    secret_access_key: str = ""


@dataclass
class ScheduleSettings:
    full: str = "0 3 * * *"  # cron, agent's local time (or ``timezone``)
    incremental: float = field(default=30.0, metadata=_parsed(parse_duration))  # seal at least this often
    incremental_max_events: int = 100_000  # ... or as soon as this many are pending
    quiet_hours: list[str] = field(default_factory=list)  # e.g. ["Mon-Fri 08:00-22:00"]
    timezone: str = ""  # for ``full`` and ``quiet_hours``; empty = the machine's
    verify: str = "0 4 * * 0"  # cron; "" = never
    drill: bool = True  # a restore drill after every scheduled full backup
    retention: float = field(default=3600.0, metadata=_parsed(parse_duration))  # how often retention runs
    # a full backup built from the store (not the source) once a restore of the latest
    # point would replay this many events; 0 = never
    consolidate_after_events: int = 250_000
    # compaction levels: the newest incrementals merged into one per 5 min, those into one
    # per hour, ... (trade_stream/compaction.py); [] = never
    compact: list[float] = field(default_factory=lambda: [300.0, 3600.0, 21600.0, 86400.0],
                                 metadata=_parsed(lambda v: [parse_duration(x) for x in v]))


@dataclass
class RetentionSettings:
    keep_full: int = 7
    pitr: float = field(default=7 * 86400.0, metadata=_parsed(parse_duration))
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0


@dataclass
class AgentSettings:
    state_dir: str = ".tradevault"  # agent state (status, last jobs); relative to the working directory
    log_format: str = "text"  # text | json
    # at SIGTERM: how long pending config pushes may take
    stop_timeout: float = field(default=30.0, metadata=_parsed(parse_duration))


@dataclass
class StandbySettings:
    url: str = ""  # the hot standby `tradevault follow` keeps up to date (default for --to)
    interval: float = field(default=1.0, metadata=_parsed(parse_duration))  # how often the follower looks


@dataclass
class MetricsSettings:
    listen: str = ""  # e.g. "127.0.0.1:9464"; empty = no Prometheus endpoint


@dataclass
class BackupSettings:
    min_locations: int = 0  # a backup succeeds when stored in this many locations; 0 = all
    compression_level: int = 3
    copy_in_memory: bool = True  # without a work_dir: a full backup's transient copy in /dev/shm when it fits


@dataclass
class EncryptionSettings:
    recipients: list[str] = field(default_factory=list)  # age public keys; empty = no encryption
    identity_file: str = ""  # age secret key file, needed to restore and for verify --deep


@dataclass
class KafkaSettings:
    bootstrap_servers: str = ""  # empty = Kafka sink off
    topic_prefix: str = "tradevault"
    partitions: int = 1
    replication_factor: int = 1
    compression: str = "lz4"
    linger_ms: int = 5
    batch_bytes: int = 524288
    max_request_bytes: int = 8388608
    chunk_events: int = 20000
    timeout: float = field(default=30.0, metadata=_parsed(parse_duration))
    sync_interval: float = field(default=1.0, metadata=_parsed(parse_duration))
    state_dir: str = ""  # checkpoint file; default: next to the database
    client_id: str = "tradevault"


@dataclass
class RemoteSettings:
    """The table form of a remote, for per-remote options:
    ``[config_vcs.remotes.NAME]`` with ``url = "..."`` and ``allow_plaintext_secrets``."""

    url: str
    # true: detected credentials are pushed to this remote in clear (nothing is sealed for
    # it; status shows it in yellow). False (default): sealed, or held back without recipients
    allow_plaintext_secrets: bool = False


def _remote_tables(value: Any) -> Any:
    """``name = "url"`` or a table (validated as RemoteSettings here, so a mistake in it is
    reported as itself, not as "not a string", the other form's complaint)."""
    if not isinstance(value, dict):
        raise ValueError("want a table of name = git URL")
    out: dict[str, Any] = {}
    for name, item in value.items():
        if isinstance(item, dict):
            item = _build(RemoteSettings, item, name)
        elif not isinstance(item, (str, RemoteSettings)):
            raise ValueError(f"{name}: want a git URL (name = \"url\") or a table with url = \"...\"")
        out[name] = item
    return out


@dataclass
class ConfigVcsSettings:
    paths: list[Path] = field(default_factory=lambda: [Path("./config")])
    # name = "url" (the contract), or a [config_vcs.remotes.NAME] table (RemoteSettings);
    # once loaded every value is the URL and the per-remote options are in plaintext_remotes
    remotes: dict[str, Any] = field(default_factory=dict, metadata=_parsed(_remote_tables))
    exclude: list[str] = field(default_factory=list)  # globs never versioned (win over include)
    include: list[str] = field(default_factory=list)  # globs re-admitting what a default leaves out
    quiet_period: float = field(default=0.5, metadata=_parsed(parse_duration))
    max_delay: float = field(default=5.0, metadata=_parsed(parse_duration))
    rescan_interval: float = field(default=300.0, metadata=_parsed(parse_duration))
    # larger files are skipped ("1MiB", "500KB" or bytes)
    max_file_size: int = field(default=1024 * 1024, metadata=_parsed(parse_size))
    author: str = "tradevault <tradevault@localhost>"
    committer: str = ""  # empty = the author
    host: str = ""  # the Host: trailer of commits; empty = this machine's host name
    watch: bool = True  # false: periodic rescans only (file systems without inotify)
    # push retries back off exponentially up to this
    push_retry_max: float = field(default=300.0, metadata=_parsed(parse_duration))
    # network timeout of one push (http, ssh connect)
    push_timeout: float = field(default=60.0, metadata=_parsed(parse_duration))
    ssh_command: str = "ssh"  # "-o BatchMode=yes -o ConnectTimeout=..." is always added
    repack_every: int = 100  # commits between two repacks of the history
    # age x25519 recipients (age1...): credentials in config files are encrypted before commit
    secret_recipients: list[str] = field(default_factory=list)
    secret_identity_file: str = ""  # AGE-SECRET-KEY file: decrypts for checkout/show/diff/restore
    secret_paths: list[str] = field(default_factory=lambda: [".env", "*.pem", "*.key"])  # whole files
    plaintext_remotes: tuple[str, ...] = field(default=(), init=False)  # allow_plaintext_secrets = true

    def __post_init__(self) -> None:
        for name in ("include", "exclude"):
            globs = getattr(self, name)
            if globs:  # config_vcs imports dulwich: only when there is something to check
                from config_vcs.ignore import glob_problem

                for glob in globs:
                    problem = glob_problem(glob, include=name == "include")
                    if problem:
                        raise SettingsError(f"config_vcs.{name}: {problem}")
        # ``remotes`` stays a plain name -> URL mapping for everyone who reads it
        tables = {n: r for n, r in self.remotes.items() if isinstance(r, RemoteSettings)}
        self.plaintext_remotes = tuple(n for n, r in tables.items() if r.allow_plaintext_secrets)
        self.remotes = {n: r.url if isinstance(r, RemoteSettings) else r for n, r in self.remotes.items()}


ENV_PREFIX = "TRADEVAULT_"


@dataclass
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    locations: list[LocationSettings] = field(
        default_factory=lambda: [LocationSettings(name="local", url="file://./tradevault-backups")]
    )
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    backup: BackupSettings = field(default_factory=BackupSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    agent: AgentSettings = field(default_factory=AgentSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    standby: StandbySettings = field(default_factory=StandbySettings)
    encryption: EncryptionSettings = field(default_factory=EncryptionSettings)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    config_vcs: ConfigVcsSettings = field(default_factory=ConfigVcsSettings)
    work_dir: str = ""  # scratch space for snapshots being compressed; default: memory if it fits, else system temp


# -- validation ----------------------------------------------------------------------------
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


@functools.cache
def _types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _value(kind: Any, value: Any, where: str) -> Any:
    """``value`` as a ``kind`` (a str, int, float, bool, Path, list, dict or section); a
    string from the environment is read as the number or truth value it spells."""
    origin = typing.get_origin(kind)
    if origin is list:
        if not isinstance(value, list):
            raise SettingsError(f"{where}: want a list, got {value!r}")
        (item,) = typing.get_args(kind)
        return [_value(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise SettingsError(f"{where}: want a table, got {value!r}")
        return dict(value)
    if is_dataclass(kind):
        if isinstance(value, kind):
            return value
        if not isinstance(value, dict):
            raise SettingsError(f"{where}: want a table, got {value!r}")
        return _build(kind, value, where)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise SettingsError(f"{where}: want true or false, got {value!r}")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
            return int(value)
        raise SettingsError(f"{where}: want an integer, got {value!r}")
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise SettingsError(f"{where}: want a number, got {value!r}")
    if kind is str or kind is Path:
        if isinstance(value, str):
            return kind(value)
        if kind is Path and isinstance(value, Path):
            return value
        raise SettingsError(f"{where}: want a string, got {value!r}")
    raise SettingsError(f"{where}: unsupported setting type {kind!r}")  # a programming error


def _build(cls: Any, data: Mapping[str, Any], where: str = "") -> Any:
    """An instance of the settings dataclass ``cls`` from ``data``: unknown keys, missing
    required keys and wrong types are refused, naming the key."""
    prefix = f"{where}." if where else ""
    known = {f.name: f for f in fields(cls) if f.init}
    unknown = [key for key in data if key not in known]
    if unknown:
        raise SettingsError(f"{prefix}{unknown[0]}: unknown setting")
    types = _types(cls)
    kwargs: dict[str, Any] = {}
    for name, spec in known.items():
        if name not in data:
            if spec.default is MISSING and spec.default_factory is MISSING:
                raise SettingsError(f"{prefix}{name}: required")
            continue
        value = data[name]
        parse = spec.metadata.get("parse")
        if parse is not None:
            try:
                value = parse(value)
            except ValueError as exc:
                raise SettingsError(f"{prefix}{name}: {exc}") from None
        kwargs[name] = _value(types[name], value, f"{prefix}{name}")
    return cls(**kwargs)


def _takes_json(annotation: Any) -> bool:
    """A list, table or section is given as JSON in the environment; anything else as text."""
    return typing.get_origin(annotation) in (list, dict) or is_dataclass(annotation)


def environment_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """``data`` (the TOML file) with every ``TRADEVAULT_<FIELD>[__<KEY>...]`` variable laid
    over it (names case-insensitive). Variables naming no top-level setting are not
    settings (``TRADEVAULT_CONFIG``) and are ignored; an unknown key inside a section is
    kept, for validation to refuse."""
    out = {key: dict(value) if isinstance(value, dict) else value for key, value in data.items()}
    for name, text in sorted(environ.items()):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        path = name[len(ENV_PREFIX):].lower().split("__")
        section: Any = Settings
        target = out
        for depth, key in enumerate(path):
            kind = _types(section).get(key) if section is not None else None
            if depth == 0 and kind is None:
                break
            if depth == len(path) - 1:
                try:
                    target[key] = json.loads(text) if _takes_json(kind) else text
                except json.JSONDecodeError:
                    raise SettingsError(f"{name}: not valid JSON: {text!r}") from None
                break
            child = target.get(key)
            target[key] = child = dict(child) if isinstance(child, dict) else {}
            target = child
            section = kind if is_dataclass(kind) else None
    return out


def config_path(explicit: str | None) -> Path:
    """``-c FILE``, else ``$TRADEVAULT_CONFIG``, else ``./tradevault.toml``."""
    return Path(explicit or os.environ.get("TRADEVAULT_CONFIG") or DEFAULT_CONFIG_FILE)


def load_settings(path: Path, *, must_exist: bool = False) -> Settings:
    """Read the TOML file (a missing default file means all defaults)."""
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{path}: malformed TOML: {exc}") from None
    elif must_exist:
        raise SettingsError(f"configuration file not found: {path}")
    try:
        settings: Settings = _build(Settings, environment_overrides(data, os.environ))
    except SettingsError as exc:
        raise SettingsError(f"{path}: {exc}") from None
    names = [loc.name for loc in settings.locations]
    if len(set(names)) != len(names):
        raise SettingsError(f"{path}: locations: names must be unique, got {names}")
    if not settings.locations:
        raise SettingsError(f"{path}: locations: at least one location is required")
    if not 0 <= settings.backup.min_locations <= len(settings.locations):
        raise SettingsError(
            f"{path}: backup.min_locations must be between 0 (all) and {len(settings.locations)}"
        )
    return settings
