"""Files that hold credentials are private (0600): written so, and checked by ``status``.

``tradevault.toml`` can hold S3 keys and a database URL with its password; an age
identity file decrypts every sealed secret and backup. Both are written owner-only
whatever the umask, and ``status`` warns when one is readable by group or others.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path


def write_private(path: Path, text: str, *, check: Callable[[Path], object] | None = None,
                  before_replace: Callable[[], object] | None = None) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600 (any umask). ``check`` reads
    the temporary file first (an exception leaves nothing behind); ``before_replace``
    runs just before the file appears (e.g. writing a key the file names)."""
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a temp file left by an older run may have had other bits
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if check is not None:
            check(temp)
        if before_replace is not None:
            before_replace()
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    os.replace(temp, path)


def open_to_others(path: Path) -> str | None:
    """``"mode 0644: readable by group and others"`` for a file others can read or write;
    None when it is private or missing."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
    if not mode & 0o077:
        return None
    who = " and ".join(w for w, bits in (("group", 0o070), ("others", 0o007)) if mode & bits)
    return f"mode {mode:04o}: readable by {who}" if mode & 0o044 else f"mode {mode:04o}: writable by {who}"


def private_file_problems(config_file: Path, identity_files: dict[str, str]) -> list[dict[str, str]]:
    """What ``status`` warns about: the config file or an identity file (``{setting:
    path}``) open to others, or an identity file that is named but missing."""
    problems = []
    for what, path in (("config file", str(config_file)), *identity_files.items()):
        if not path:
            continue
        file = Path(path).expanduser()
        if what != "config file" and not file.exists():
            problems.append({"what": what, "file": path, "problem": "missing: what it decrypts cannot be read here"})
            continue
        loose = open_to_others(file)
        if loose:
            problems.append({"what": what, "file": path, "problem": f"{loose} (chmod 600 {path})"})
    return problems
