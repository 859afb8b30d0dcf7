"""Tuning knobs of config history, independent of how the application configures them
(tradevault maps its ``[config_vcs]`` settings onto this)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from config_vcs.errors import BadInput
from config_vcs.ignore import StaticIgnore
from config_vcs.protected import ProtectedFiles
from config_vcs.repository import ConfigRepo, Identity
from config_vcs.sealing import DEFAULT_SECRET_PATHS, Sealer


@dataclass(frozen=True)
class Options:
    quiet_period: float = 0.5  # a burst is committed once quiet this long...
    max_delay: float = 5.0  # ...or once its first event is this old
    rescan_interval: float = 300.0  # safety net against lost events
    #: larger files are not configuration (skipped with one warning each, listed by status)
    max_file_size: int = 1024 * 1024
    #: globs (gitignore syntax) never versioned; they win over include
    exclude: tuple[str, ...] = ()
    #: globs that re-admit what a default rule leaves out (never the protected database)
    include: tuple[str, ...] = ()
    #: absolute paths of the databases being protected: never versioned, nor their
    #: -wal/-shm/-journal, wherever they are (the application passes them in)
    protected_files: tuple[str, ...] = ()
    author: str = "tradevault <tradevault@localhost>"
    committer: str = ""  # empty = the author
    host: str = ""  # empty = this machine's host name
    watch: bool = True  # False: rescans only (e.g. network file systems without inotify)
    push_backoff_initial: float = 1.0
    push_backoff_max: float = 300.0
    push_timeout: float = 60.0  # network timeout of one push (http, ssh connect)
    ssh_command: str = "ssh"  # BatchMode=yes and ConnectTimeout are always added
    repack_every: int = 100  # commits between two repacks
    busy_timeout: float = 10.0  # how long to wait for git's locks before retrying later
    flush_timeout: float = 30.0  # stop(flush=True): how long to wait for pushes
    #: age x25519 recipients (age1...): credentials are encrypted before they are committed
    secret_recipients: tuple[str, ...] = ()
    #: age identity file (AGE-SECRET-KEY-...): decrypts them for checkout/show/diff/export
    secret_identity_file: str = ""
    #: globs (base name or relative path) of files always encrypted whole
    secret_paths: tuple[str, ...] = DEFAULT_SECRET_PATHS
    #: remotes that may receive detected credentials in clear (allow_plaintext_secrets);
    #: every other remote never receives a commit range holding one
    plaintext_remotes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_file_size <= 0:
            raise BadInput(f"config_vcs.max_file_size must be positive, got {self.max_file_size}")

    def identity(self) -> Identity:
        return Identity.from_strings(self.author, self.committer, self.host)

    def sealer(self, warn: Callable[[str], None] | None = None) -> Sealer:
        """Encryption of secrets for one repository (bad recipients: BadInput now)."""
        return Sealer(
            self.secret_recipients, self.secret_identity_file, self.secret_paths, warn=warn
        )

    def static_ignore(self) -> StaticIgnore:
        """The rules by name (bad globs: BadInput now)."""
        return StaticIgnore(self.exclude, self.include)

    def protected(self) -> ProtectedFiles:
        return ProtectedFiles(self.protected_files)

    def repo(
        self, root: Path, *, create: bool, warn: Callable[[str], None] | None = None
    ) -> ConfigRepo:
        """Open (or with ``create`` adopt/initialise) the repository of one directory."""
        opener = ConfigRepo.open_or_init if create else ConfigRepo.open_existing
        return opener(
            root,
            identity=self.identity(),
            static_ignore=self.static_ignore(),
            max_file_size=self.max_file_size,
            warn=warn,
            busy_timeout=self.busy_timeout,
            sealer=self.sealer(warn),
            protected=self.protected(),
        )
