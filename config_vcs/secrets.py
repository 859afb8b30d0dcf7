"""Does a configuration file look like it holds credentials?

Config history is pushed to every remote, so a credential committed in clear would be
copied to each of them: what this module flags is sealed before it is committed
(sealing.py) or, without recipients, held back from the remotes (push_queue.py).
Detection is pure (path + bytes in, reason out) so it is easy to test and to tune; a
reason never contains the value. A miss is a leak, so three rules add up:

* the key: its last word is a credential word (``key``, ``api_key``, ``apiSecret``,
  ``telegram.token``, ``db_password``) and it has a value;
* the value: it has the shape of a well-known token (an AWS access key id, a Telegram
  bot token, an age secret key, a webhook URL with its token...), under any key;
* both: a key that only hints at a credential (``access_key_id``, ``auth``,
  ``private``, ``session``) holding a value that looks generated (long, no spaces,
  mixed character classes) -- not a word, a name, a path, a boolean or a number.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
import tomllib
from collections import Counter
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

#: A key holding one of these words anywhere hints at a credential: its value is
#: flagged when it looks generated (``access_key_id``, ``auth_header``, ``session_id``).
CREDENTIAL_HINT_WORDS = frozenset(
    {"key", "keys", "apikey", "secret", "secrets", "token", "tokens", "pass", "password",
     "passwd", "passphrase", "pwd", "auth", "authorization", "credential", "credentials",
     "private", "privkey", "signature", "signing", "cookie", "session", "bearer", "jwt",
     "otp", "totp", "twofa", "mnemonic", "seed", "webhook", "dsn", "hmac", "salt", "access"}
)

#: Well-known credential shapes, flagged whatever the key (description, pattern).
TOKEN_FORMATS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an AWS access key id", re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])")),
    ("a Telegram bot token", re.compile(r"(?<![\w:])\d{8,12}:[A-Za-z0-9_-]{34,}")),
    ("a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_\w{30,})")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a webhook URL with its token", re.compile(
        r"https://(?:hooks\.slack\.com/services|(?:canary\.|ptb\.)?discord(?:app)?\.com/api/webhooks)/[\w/-]{16,}"
    )),
    ("an age secret key", re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]{50,}")),
)

_MAX_SCAN = 1024 * 1024
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_LINE = re.compile(
    r"""^\s*(?:export\s+)?["']?(?P<key>[A-Za-z_][\w.\-]*)["']?\s*(?:=|:(?!:))\s*(?P<value>.*?)\s*$"""
)
_EMPTY_VALUES = {"", '""', "''", "null", "~", "none", "{", "[", "|", ">", "{}", "[]"}
_PLACEHOLDERS = {"none", "null", "~", "nil"}  # a string that says "no value"
_ALNUM_RUN = re.compile(r"[A-Za-z0-9]{8,}")
_JSON_NAMES = (".json", ".json5", ".jsonc")


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
    if key:
        return f"key {key!r} has a value"
    shape = token_format(text)
    return f"it holds what looks like {shape}" if shape else None


def is_secret_key(name: str) -> bool:
    """``api_key``, ``apiSecret``, ``password``, ``token`` -> True; ``keyboard``,
    ``token_count``, ``key_file`` -> False."""
    words = [w.lower() for w in _WORDS.findall(name)]
    if not words:
        return False
    return words[-1] in SECRET_KEY_WORDS or "".join(words[-2:]) in SECRET_KEY_WORDS


def hints_at_credential(name: str) -> bool:
    """``access_key_id``, ``auth``, ``sessionCookie``, ``private_key_path`` -> True."""
    words = [w.lower() for w in _WORDS.findall(name)]
    pairs = ("".join(words[i : i + 2]) for i in range(len(words) - 1))
    return any(w in CREDENTIAL_HINT_WORDS for w in words) or any(p in SECRET_KEY_WORDS for p in pairs)


def token_format(text: str) -> str | None:
    """The description of the first well-known credential shape found in ``text``."""
    for description, pattern in TOKEN_FORMATS:
        if pattern.search(text):
            return description
    return None


def looks_generated(value: str) -> bool:
    """A machine-made credential rather than a word, a name, a path, a date or a number:
    at least 16 characters without spaces, with a run of 8+ letters/digits mixing
    character classes and not repetitive."""
    text = value.strip()
    if len(text) < 16 or any(c.isspace() for c in text) or "ENC[age," in text:
        return False
    for run in _ALNUM_RUN.findall(text):
        classes = (any(c.islower() for c in run), any(c.isupper() for c in run), any(c.isdigit() for c in run))
        if sum(classes) >= 2 and _entropy(run) >= 3.0:
            return True
    return False


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def is_secret_value(key: str, value: Any) -> bool:
    """Is ``value`` (a parsed scalar) under ``key`` a credential? The one predicate of
    detection and sealing, so what is flagged is exactly what gets encrypted."""
    if is_secret_key(key):
        return _has_value(value)
    if not isinstance(value, str) or not value.strip():
        return False
    return token_format(value) is not None or (hints_at_credential(key) and looks_generated(value))


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
    if name.endswith(_JSON_NAMES):
        for key, _start, _end, value in json_pairs(text):
            if is_secret_value(key, value):
                return key
    return next(_secret_keys_in_lines(text), None)


def _secret_keys_in_tree(value: Any, where: str) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{where}.{key}" if where else str(key)
            if not isinstance(item, (dict, list)) and is_secret_value(str(key), item):
                yield here
            yield from _secret_keys_in_tree(item, here)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _secret_keys_in_tree(item, f"{where}[{index}]")


def _has_value(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip()) and value.strip().lower() not in _PLACEHOLDERS
    return isinstance(value, (int, float))


def _secret_keys_in_lines(text: str) -> Iterator[str]:
    """YAML, INI, .properties, .env, JSON5: ``key: value`` / ``key = value``."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;/":
            continue
        match = _LINE.match(line)
        if not match:
            continue
        value = match.group("value").split(" #", 1)[0].strip().rstrip(",").strip()
        if value.lower() in _EMPTY_VALUES:
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if is_secret_value(match.group("key"), value):
            yield match.group("key")


# -- JSON with comments, JSON5 (pure) -----------------------------------------------------------

_JSONISH_TOKEN = re.compile(
    r'"(?:[^"\\\n]|\\.)*"'
    r"|'(?:[^'\\\n]|\\.)*'"
    r"|//[^\n]*|/\*.*?\*/"
    r"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?"
    r"|[A-Za-z_$][\w$]*"
    r"|\s+|.",
    re.DOTALL,
)


def json_pairs(text: str) -> Iterator[tuple[str, int, int, Any]]:
    """``(key, value start, value end, value)`` of every ``key: scalar`` pair of a JSON
    document, also with comments, trailing commas, single quotes and bare keys (JSON5,
    freqtrade's commented config.json). ``value`` is the decoded string or number;
    values that are objects, arrays, booleans or null are not listed."""
    tokens = [
        (m.start(), m.end(), m.group())
        for m in _JSONISH_TOKEN.finditer(text)
        if not m.group().isspace() and not m.group().startswith(("//", "/*"))
    ]
    for i in range(len(tokens) - 2):
        key_token = tokens[i][2]
        if tokens[i + 1][2] != ":" or not (key_token[0] in "\"'" or key_token[0].isalpha() or key_token[0] in "_$"):
            continue
        key = _decode_string(key_token) if key_token[0] in "\"'" else key_token
        if key is None:
            continue
        start, end, value_token = tokens[i + 2]
        if value_token[0] in "\"'":
            value = _decode_string(value_token)
            if value is None:
                continue
        elif value_token[0].isdigit() or value_token[0] == "-":
            try:
                value = json.loads(value_token)
            except ValueError:
                continue
        else:
            continue
        yield key, start, end, value


def _decode_string(token: str) -> str | None:
    if token[0] == '"':
        try:
            decoded = json.loads(token)
        except ValueError:
            return None
        return decoded if isinstance(decoded, str) else None
    body = token[1:-1]
    return re.sub(r"\\(.)", lambda m: m.group(1), body)  # JSON5 single quotes: close enough to judge
