"""The configuration file contract of DESIGN.md: TOML + ``TRADEVAULT_*`` overrides.

Environment variables win over the file; nested keys use ``__``
(``TRADEVAULT_DATABASE__URL``, ``TRADEVAULT_SCHEDULE__INCREMENTAL``). Lists and tables
take JSON (``TRADEVAULT_DATABASE__INCLUDE='["trades"]'``).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

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


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(_Section):
    url: str = "sqlite:///tradesv3.sqlite"
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    name: str = ""  # name of this source in the backup store; default: derived from the URL
    sqlite_wal: bool = True  # switch a SQLite database to WAL so backups never block writers


class LocationSettings(_Section):
    name: str
    url: str
    endpoint_url: str = ""
    region: str = ""
    access_key_id: str = ""
    secret_access_key: str = ""


class ScheduleSettings(_Section):
    full: str = "0 3 * * *"  # cron, agent's local time (or ``timezone``)
    incremental: float = 30.0  # seal captured changes at least this often
    incremental_max_events: int = 100_000  # ... or as soon as this many are pending
    quiet_hours: list[str] = Field(default_factory=list)  # e.g. ["Mon-Fri 08:00-22:00"]
    timezone: str = ""  # for ``full`` and ``quiet_hours``; empty = the machine's
    verify: str = "0 4 * * 0"  # cron; "" = never
    drill: bool = True  # a restore drill after every scheduled full backup
    retention: float = 3600.0  # how often retention runs
    # a full backup built from the store (not the source) once a restore of the latest
    # point would replay this many events; 0 = never
    consolidate_after_events: int = 250_000

    _durations = field_validator("incremental", "retention", mode="before")(parse_duration)


class RetentionSettings(_Section):
    keep_full: int = 7
    pitr: float = 7 * 86400.0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0

    _pitr = field_validator("pitr", mode="before")(parse_duration)


class AgentSettings(_Section):
    state_dir: str = ".tradevault"  # agent state (status, last jobs); relative to the working directory
    log_format: str = "text"  # text | json
    stop_timeout: float = 30.0  # at SIGTERM: how long pending config pushes may take

    _stop = field_validator("stop_timeout", mode="before")(parse_duration)


class StandbySettings(_Section):
    url: str = ""  # the hot standby `tradevault follow` keeps up to date (default for --to)
    interval: float = 1.0  # how often the follower looks for new backups

    _interval = field_validator("interval", mode="before")(parse_duration)


class MetricsSettings(_Section):
    listen: str = ""  # e.g. "127.0.0.1:9464"; empty = no Prometheus endpoint


class BackupSettings(_Section):
    min_locations: int = 0  # a backup succeeds when stored in this many locations; 0 = all
    compression_level: int = 3
    copy_in_memory: bool = True  # without a work_dir: a full backup's transient copy in /dev/shm when it fits


class EncryptionSettings(_Section):
    recipients: list[str] = Field(default_factory=list)  # age public keys; empty = no encryption
    identity_file: str = ""  # age secret key file, needed to restore and for verify --deep


class KafkaSettings(_Section):
    bootstrap_servers: str = ""  # empty = Kafka sink off
    topic_prefix: str = "tradevault"
    partitions: int = 1
    replication_factor: int = 1
    compression: str = "lz4"
    linger_ms: int = 5
    batch_bytes: int = 524288
    max_request_bytes: int = 8388608
    chunk_events: int = 20000
    timeout: float = 30.0
    sync_interval: float = 1.0
    state_dir: str = ""  # checkpoint file; default: next to the database
    client_id: str = "tradevault"

    _durations = field_validator("timeout", "sync_interval", mode="before")(parse_duration)


class RemoteSettings(_Section):
    """The table form of a remote, for per-remote options:
    ``[config_vcs.remotes.NAME]`` with ``url = "..."`` and ``allow_plaintext_secrets``."""

    url: str
    # true: detected credentials are pushed to this remote in clear (nothing is sealed for
    # it; status shows it in yellow). False (default): sealed, or held back without recipients
    allow_plaintext_secrets: bool = False


class ConfigVcsSettings(_Section):
    paths: list[Path] = Field(default_factory=lambda: [Path("./config")])
    # name = "url" (the contract), or a [config_vcs.remotes.NAME] table (RemoteSettings);
    # once loaded every value is the URL and the per-remote options are below
    remotes: dict[str, str | RemoteSettings] = Field(default_factory=dict)
    exclude: list[str] = Field(default_factory=list)  # globs never versioned (win over include)
    include: list[str] = Field(default_factory=list)  # globs re-admitting what a default leaves out
    quiet_period: float = 0.5
    max_delay: float = 5.0
    rescan_interval: float = 300.0
    max_file_size: int = 1024 * 1024  # larger files are skipped ("1MiB", "500KB" or bytes)
    author: str = "tradevault <tradevault@localhost>"
    committer: str = ""  # empty = the author
    host: str = ""  # the Host: trailer of commits; empty = this machine's host name
    watch: bool = True  # false: periodic rescans only (file systems without inotify)
    push_retry_max: float = 300.0  # push retries back off exponentially up to this
    push_timeout: float = 60.0  # network timeout of one push (http, ssh connect)
    ssh_command: str = "ssh"  # "-o BatchMode=yes -o ConnectTimeout=..." is always added
    repack_every: int = 100  # commits between two repacks of the history
    # age x25519 recipients (age1...): credentials in config files are encrypted before commit
    secret_recipients: list[str] = Field(default_factory=list)
    secret_identity_file: str = ""  # AGE-SECRET-KEY file: decrypts for checkout/show/diff/restore
    secret_paths: list[str] = Field(default_factory=lambda: [".env", "*.pem", "*.key"])  # whole files

    _durations = field_validator("quiet_period", "max_delay", "rescan_interval", mode="before")(
        parse_duration
    )
    _push_durations = field_validator("push_retry_max", "push_timeout", mode="before")(parse_duration)
    _size = field_validator("max_file_size", mode="before")(parse_size)

    @field_validator("include", "exclude")
    @classmethod
    def _globs(cls, globs: list[str], info: ValidationInfo) -> list[str]:
        if globs:  # config_vcs imports dulwich: only when there is something to check
            from config_vcs.ignore import glob_problem

            for glob in globs:
                problem = glob_problem(glob, include=info.field_name == "include")
                if problem:
                    raise ValueError(problem)
        return globs
    _plaintext: tuple[str, ...] = PrivateAttr(default=())

    @field_validator("remotes", mode="before")
    @classmethod
    def _remote_tables(cls, value: Any) -> Any:
        """A table is validated as RemoteSettings here, so a mistake in it is reported as
        itself (not as "not a string", the other form's complaint)."""
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for name, item in value.items():
            if isinstance(item, dict):
                try:
                    item = RemoteSettings(**item)
                except ValidationError as exc:
                    first = exc.errors()[0]
                    where = ".".join(str(p) for p in first["loc"])
                    raise ValueError(f"{name}.{where}: {first['msg']}") from None
            elif not isinstance(item, (str, RemoteSettings)):
                raise ValueError(
                    f"{name}: want a git URL (name = \"url\") or a table with url = \"...\""
                )
            out[name] = item
        return out

    @model_validator(mode="after")
    def _flatten_remotes(self) -> ConfigVcsSettings:
        """Keep ``remotes`` a plain name -> URL mapping for everyone who reads it; the
        table form's options are kept aside (``plaintext_remotes``)."""
        tables = {n: r for n, r in self.remotes.items() if isinstance(r, RemoteSettings)}
        self._plaintext = tuple(n for n, r in tables.items() if r.allow_plaintext_secrets)
        self.remotes = {n: r.url if isinstance(r, RemoteSettings) else r for n, r in self.remotes.items()}
        return self

    @property
    def plaintext_remotes(self) -> tuple[str, ...]:
        """Remotes with ``allow_plaintext_secrets = true``."""
        return self._plaintext


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TRADEVAULT_", env_nested_delimiter="__", extra="forbid"
    )

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    locations: list[LocationSettings] = Field(
        default_factory=lambda: [LocationSettings(name="local", url="file://./tradevault-backups")]
    )
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    standby: StandbySettings = Field(default_factory=StandbySettings)
    encryption: EncryptionSettings = Field(default_factory=EncryptionSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    config_vcs: ConfigVcsSettings = Field(default_factory=ConfigVcsSettings)
    work_dir: str = ""  # scratch space for snapshots being compressed; default: memory if it fits, else system temp

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init kwargs; the environment must override it.
        return (env_settings, init_settings)


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
        settings = Settings(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise SettingsError(f"{path}: {where}: {first['msg']}") from None
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
