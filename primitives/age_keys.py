"""Reading age keys (x25519): the public recipients that encrypt, and the identity file
(``AGE-SECRET-KEY-...`` lines, as ``age-keygen`` writes) that decrypts. Used by the
storage encryption of backups and by the sealing of config secrets."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any


class AgeKeyError(ValueError):
    """A key that cannot be used; the caller names the setting it came from."""


def parse_recipients(texts: Iterable[str]) -> list[Any]:
    from pyrage import x25519

    parsed = []
    for text in texts:
        try:
            parsed.append(x25519.Recipient.from_str(str(text).strip()))
        except Exception:  # noqa: BLE001 - pyrage raises its own error types
            raise AgeKeyError(f"not an age recipient (age1...): {str(text)[:12]}...") from None
    return parsed


def load_identities(identity_file: str) -> list[Any]:
    from pyrage import x25519

    path = Path(identity_file).expanduser()
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise AgeKeyError(f"{path}: {exc.strerror}") from None
    identities = []
    for line in lines:
        line = line.strip()
        if line.startswith("AGE-SECRET-KEY-"):
            try:
                identities.append(x25519.Identity.from_str(line))
            except Exception:  # noqa: BLE001 - pyrage raises its own error types
                raise AgeKeyError(f"{path}: malformed key") from None
    if not identities:
        raise AgeKeyError(f"{path}: no AGE-SECRET-KEY line")
    return identities
