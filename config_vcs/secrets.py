"""Does a configuration file look like it holds credentials?

Config history is pushed to every remote, so a committed API key is copied to each of
them. We still commit it (the history must be complete) but say so, once per file,
naming the remotes. Detection is deliberately simple and pure (path + bytes in,
reason out) so it is easy to test and to tune: a reason never contains the value.
"""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from collections.abc import Iterator
from typing import Any

SECRET_FILE_NAMES: tuple[str, ...] = (
    ".env",
    ".env.*",
    "*.env",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    ".netrc",
    ".pgpass",
)

#: A key is secret-like when its last word is one of these
#: (``key``, ``api_key``, ``apiSecret``, ``telegram.token``, ``db_password``...).
SECRET_KEY_WORDS = frozenset(
    {"key", "apikey", "secret", "password", "passwd", "pwd", "passphrase", "token",
     "credential", "credentials", "privatekey", "secretkey", "accesskey"}
)

_MAX_SCAN = 1024 * 1024
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_LINE = re.compile(
    r"""^\s*(?:export\s+)?["']?(?P<key>[A-Za-z_][\w.\-]*)["']?\s*(?:=|:(?!:))\s*(?P<value>.*?)\s*$"""
)
_QUOTED_PAIR = re.compile(r'"([^"\\\n]+)"\s*:\s*"((?:[^"\\\n]|\\.)*)"')
_EMPTY_VALUES = {"", '""', "''", "null", "~", "none", "{", "[", "|", ">", "{}", "[]"}


def secret_reason(path: str, content: bytes) -> str | None:
    """Why ``path`` (relative, ``/``-separated) with ``content`` looks like credentials,
    or None. The reason names the rule or the key, never the value."""
    name = path.rsplit("/", 1)[-1]
    for pattern in SECRET_FILE_NAMES:
        if fnmatch.fnmatchcase(name.lower(), pattern):
            return f"its name matches {pattern}"
    head = content[:_MAX_SCAN]
    if b"-----BEGIN" in head and b"PRIVATE KEY-----" in head:
        return "it contains a private key block"
    if b"\0" in head:
        return None  # binary: nothing more we can judge
    text = head.decode("utf-8", errors="replace")
    key = _secret_key_in(name.lower(), text)
    return f"key {key!r} has a value" if key else None


def is_secret_key(name: str) -> bool:
    """``api_key``, ``apiSecret``, ``password``, ``token`` -> True; ``keyboard``,
    ``token_count``, ``key_file`` -> False."""
    words = [w.lower() for w in _WORDS.findall(name)]
    if not words:
        return False
    return words[-1] in SECRET_KEY_WORDS or "".join(words[-2:]) in SECRET_KEY_WORDS


def _secret_key_in(name: str, text: str) -> str | None:
    parsed: Any = None
    try:
        if name.endswith(".json"):
            parsed = json.loads(text)
        elif name.endswith(".toml"):
            parsed = tomllib.loads(text)
    except ValueError:
        parsed = None  # JSON with comments (freqtrade allows them), broken TOML: lines
    if parsed is not None:
        return next(_secret_keys_in_tree(parsed, ""), None)
    if name.endswith(".json"):
        for match in _QUOTED_PAIR.finditer(text):
            if is_secret_key(match.group(1)) and match.group(2).strip():
                return match.group(1)
    return next(_secret_keys_in_lines(text), None)


def _secret_keys_in_tree(value: Any, where: str) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{where}.{key}" if where else str(key)
            if is_secret_key(str(key)) and _has_value(item):
                yield here
            yield from _secret_keys_in_tree(item, here)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _secret_keys_in_tree(item, f"{where}[{index}]")


def _has_value(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, (int, float))


def _secret_keys_in_lines(text: str) -> Iterator[str]:
    """YAML, INI, .properties, JSON-with-comments: ``key: value`` / ``key = value``."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;/":
            continue
        match = _LINE.match(line)
        if not match or not is_secret_key(match.group("key")):
            continue
        value = match.group("value").split(" #", 1)[0].strip().rstrip(",").strip()
        if value.lower() not in _EMPTY_VALUES:
            yield match.group("key")
