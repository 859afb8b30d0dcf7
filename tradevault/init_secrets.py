"""The age identity ``tradevault init`` sets up, so credentials in watched config files
are sealed from the first commit (secure by default).

It lives in the state directory next to the config file, ``.tradevault/config-identity.txt``
(mode 0600, the format of ``age-keygen``), and the config names it by that relative path:
like every relative path in ``tradevault.toml`` (``./config``, ``file://./...``, the
state directory itself) it is read from the working directory, and ``init`` writes a
file meant to be used from its own directory. An identity already there is reused, never
replaced: the sealed values in the history and on the remotes can only be read with it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from config_vcs.errors import BadInput

IDENTITY_PATH = ".tradevault/config-identity.txt"  # as written in tradevault.toml


@dataclass
class InitIdentity:
    """The identity for a new config file: its public key, where it is, and (when it does
    not exist yet) the secret key to save."""

    recipient: str
    setting: str  # the value of secret_identity_file
    file: Path  # where it is, seen from here
    secret: str | None = None  # None: the file exists already and is reused

    def save(self) -> None:
        """Create the identity file (0600, never over an existing one)."""
        if self.secret is None:
            os.chmod(self.file, 0o600)
            return
        self.file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        text = f"# created: {created} by tradevault init\n# public key: {self.recipient}\n{self.secret}\n"
        temp = self.file.with_name(f".{self.file.name}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.link(temp, self.file)  # atomic, and fails rather than replace a key
        finally:
            temp.unlink(missing_ok=True)

    def notice(self) -> str:
        """The one line ``init`` prints about it."""
        state = "created" if self.secret is not None else "kept"
        return (
            f"config secrets are sealed for the age identity {self.file} ({state}, mode 0600): "
            "copy it off this machine (password manager) -- without it the sealed values "
            "on the remotes cannot be read"
        )


def prepare_identity(config_file: Path) -> InitIdentity:
    """The identity for ``config_file``: the existing one next to it, or a new one (kept in
    memory until ``save``). A file there that holds no age identity is bad input."""
    from pyrage import x25519

    file = config_file.parent / IDENTITY_PATH
    if file.exists() or file.is_symlink():
        try:
            lines = [ln.strip() for ln in file.read_text(encoding="utf-8").splitlines()]
            key = next(ln for ln in lines if ln.startswith("AGE-SECRET-KEY-"))
            recipient = str(x25519.Identity.from_str(key).to_public())
        except Exception:  # noqa: BLE001 - unreadable, no key line, or pyrage's parse error
            raise BadInput(f"{file} exists but holds no valid age identity: move it away or fix it") from None
        return InitIdentity(recipient, IDENTITY_PATH, file)
    identity = x25519.Identity.generate()
    return InitIdentity(str(identity.to_public()), IDENTITY_PATH, file, str(identity))
