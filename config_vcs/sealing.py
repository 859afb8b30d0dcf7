"""Encrypt credentials before they are committed; decrypt them on the way back.

With ``secret_recipients`` (age x25519 public keys) set, what goes into git -- and thus
to every remote -- never holds a credential, while the work tree keeps the file exactly
as the user wrote it:

* JSON / TOML / YAML: each value of a secret-looking key (the detection of
  ``secrets.py``) is replaced, sops-style, by the string ``"ENC[age,<base64>]"``; the
  base64 is a binary age file whose plaintext is the value's exact source text (quotes
  and escapes included), so decrypting gives back the original bytes. Keys, comments and
  every other value stay readable and diffable.
* Files matching ``secret_paths`` (default ``.env``, ``*.pem``, ``*.key``), files named
  like credentials, other formats holding secrets, and structured files whose rewrite
  cannot be proven safe are encrypted whole: the blob is the line
  ``tradevault-encrypted: age v1`` followed by the armored age file.

age is randomized, so a cache in ``.git/tradevault/secret-cache.json`` (local, never
pushed) maps a keyed hash of each plaintext to the ciphertext already committed for it:
an unchanged value keeps its marker, an unchanged file its blob, and rescans commit
nothing. With ``secret_identity_file`` the cache is also rebuilt from HEAD when lost.

Nothing here imports tradevault or the other domain packages; pyrage is used directly.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
import logging
import os
import re
import tomllib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from config_vcs.errors import BadInput, IntegrityFailure, MissingIdentity
from config_vcs.secrets import (
    _JSON_NAMES,
    _has_value,
    _secret_keys_in_tree,
    is_secret_key,
    is_secret_value,
    json_pairs,
    secret_reason,
)
from primitives import age_keys

log = logging.getLogger(__name__)

DEFAULT_SECRET_PATHS: tuple[str, ...] = (".env", "*.pem", "*.key")
#: First line of a whole-file encrypted blob; the rest is an armored age file
#: (``git show REV:PATH | tail -n +2 | age -d -i KEY`` decrypts it by hand).
FILE_HEADER = b"tradevault-encrypted: age v1\n"
MARKER_PREFIX = "ENC[age,"

_B64 = r"[A-Za-z0-9+/]+={0,2}"
_MARKER_TEXT = re.compile(r"ENC\[age," + _B64 + r"\]")
_MARKER_BYTES = re.compile(rb'"ENC\[age,(' + _B64.encode() + rb')\]"|ENC\[age,(' + _B64.encode() + rb")\]")
_CACHE_FILE = "secret-cache.json"
_CACHE_PER_PATH = 64  # plaintexts remembered per file (undo/redo keeps its ciphertext)

Span = tuple[int, int, str]  # start, end (of the value's source text), key name


# -- recognising ciphertext ------------------------------------------------------------------------


def is_sealed(data: bytes) -> bool:
    """Does this blob hold our ciphertext (a whole encrypted file or value markers)?"""
    return data.startswith(FILE_HEADER) or b"ENC[age," in data


def holds_ciphertext(data: bytes) -> bool:
    """Would this blob, written as it is, put ciphertext where plaintext belongs?"""
    return data.startswith(FILE_HEADER) or _MARKER_BYTES.search(data) is not None


def without_markers(data: bytes) -> bytes:
    """The blob with every encrypted value emptied (``""``): what is left in clear."""
    return _MARKER_BYTES.sub(lambda m: b'""' if m.group(1) is not None else b"", data)


def _is_marker_token(token: str) -> bool:
    inner = token[1:-1] if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'" else token
    return bool(_MARKER_TEXT.fullmatch(inner))


# -- where the secret values are (pure) -------------------------------------------------------------------

def json_spans(text: str) -> list[Span]:
    """Values (strings with content, numbers) of secret keys in JSON, also with comments
    and JSON5's single quotes and bare keys (``secrets.json_pairs``)."""
    return [(start, end, key) for key, start, end, value in json_pairs(text) if is_secret_value(key, value)]


_TOML_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"[^"\\\n]*"|'[^'\n]*')"""
_TOML_LINE = re.compile(
    r"^(?P<lead>[ \t]*(?P<key>" + _TOML_KEY_PART + r"(?:[ \t]*\.[ \t]*" + _TOML_KEY_PART + r")*)"
    r"[ \t]*=[ \t]*)"
    r"""(?P<value>"(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[+-]?\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?)"""
    r"(?P<tail>[ \t]*(?:#.*)?)$"
)
_TOML_PARTS = re.compile(_TOML_KEY_PART)


def toml_spans(text: str) -> list[Span]:
    """``key = "value"`` / ``key = 'value'`` / ``key = 123`` lines whose last key part is
    secret; lines inside multi-line strings are left alone."""
    spans = []
    offset = 0
    in_multiline: str | None = None
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        if in_multiline is None:
            match = _TOML_LINE.match(body)
            if match:
                key = _TOML_PARTS.findall(match.group("key"))[-1].strip("\"'")
                value = match.group("value")
                content = value[1:-1] if value[0] in "\"'" else value
                if is_secret_value(key, content):
                    spans.append((offset + match.start("value"), offset + match.end("value"), key))
            else:
                for quote in ('"""', "'''"):
                    if body.count(quote) % 2 == 1:
                        in_multiline = quote
                        break
        elif body.count(in_multiline) % 2 == 1:
            in_multiline = None
        offset += len(line)
    return spans


_YAML_LINE = re.compile(
    r"""^(?P<lead>[ \t]*(?:-[ \t]+)?(?P<key>[A-Za-z_][\w.\-]*|"[^"\\\n]+"|'[^'\n]+')[ \t]*:[ \t]+)"""
    r"""(?P<value>"(?:[^"\\\n]|\\.)*"|'(?:[^'\n]|'')*'|[^\s#'"&*!|>%@`{\[,\]}](?:[^\n#]|(?<!\s)#)*?)"""
    r"(?P<tail>[ \t]*(?:[ \t]#.*)?)$"
)
_YAML_BLOCK = re.compile(
    r"""^[ \t]*(?:-[ \t]+)?(?P<key>[A-Za-z_][\w.\-]*|"[^"\\\n]+"|'[^'\n]+')[ \t]*:[ \t]*(?P<rest>.*)$"""
)
_YAML_NOT_SECRET = {"", "~", "null", "true", "false", "yes", "no", "on", "off", '""', "''"}


class Unsafe(Exception):
    """The file cannot be rewritten value by value with confidence: encrypt it whole."""


def yaml_spans(text: str) -> list[Span]:
    """``key: value`` lines (plain, single- or double-quoted scalars) of secret keys.

    Raises Unsafe for a secret key whose value this cannot rewrite (block scalar,
    alias, flow collection, a value continued on the next lines).
    """
    spans = []
    offset = 0
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        body = line.rstrip("\r\n")
        match = _YAML_LINE.match(body)
        if match:
            key = match.group("key").strip("\"'")
            value = match.group("value")
            content = value[1:-1] if value[:1] in "\"'" else value
            if value.lower() not in _YAML_NOT_SECRET and is_secret_value(key, content):
                spans.append((offset + match.start("value"), offset + match.end("value"), key))
        else:
            block = _YAML_BLOCK.match(body)
            if block and is_secret_key(block.group("key").strip("\"'")):
                rest = block.group("rest").split(" #", 1)[0].strip()
                if rest and rest.lower() not in _YAML_NOT_SECRET:
                    raise Unsafe(f"key {block.group('key')!r} has a value this cannot rewrite")
                if not rest and _continues(lines, index):
                    raise Unsafe(f"key {block.group('key')!r} has a value on the following lines")
        offset += len(line)
    return spans


def _continues(lines: list[str], index: int) -> bool:
    """Is the next non-blank line more indented and not itself a mapping or list entry?"""
    indent = len(lines[index]) - len(lines[index].lstrip(" "))
    for line in lines[index + 1 :]:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        deeper = len(line) - len(line.lstrip(" ")) > indent
        return deeper and not _YAML_BLOCK.match(line.rstrip("\r\n")) and not line.lstrip().startswith("- ")
    return False


def spans_for(path: str, text: str) -> list[Span] | None:
    """Secret value spans of a JSON/TOML/YAML file; None for other formats."""
    name = path.rsplit("/", 1)[-1].lower()
    if name.endswith(_JSON_NAMES):
        return json_spans(text)
    if name.endswith(".toml"):
        return toml_spans(text)
    if name.endswith((".yaml", ".yml")):
        return yaml_spans(text)
    return None


# -- proving a rewrite safe (pure) ------------------------------------------------------------------------


def _parse(path: str, text: str) -> tuple[bool, Any]:
    """(parsed?, documents); not parsed: JSON with comments or JSON5, YAML without PyYAML."""
    name = path.rsplit("/", 1)[-1].lower()
    try:
        if name.endswith(_JSON_NAMES):
            return True, json.loads(text)
        if name.endswith(".toml"):
            return True, tomllib.loads(text)
        try:
            import yaml
        except ImportError:  # pragma: no cover - PyYAML is a dependency of the project
            return False, None
        return True, list(yaml.safe_load_all(text))
    except Exception:  # noqa: BLE001 - any parser error: not parsed
        return False, None


def _same_but_sealed(old: Any, new: Any, secret: bool = False) -> bool:
    """``new`` equals ``old`` except that secret values became marker strings."""
    if secret and _has_value(old) and not isinstance(old, (dict, list)):
        return isinstance(new, str) and bool(_MARKER_TEXT.fullmatch(new))
    if isinstance(old, dict):
        if not isinstance(new, dict) or list(old) != list(new):
            return False
        return all(_same_but_sealed(old[k], new[k], is_secret_value(str(k), old[k])) for k in old)
    if isinstance(old, list):
        if not isinstance(new, list) or len(old) != len(new):
            return False
        return all(_same_but_sealed(a, b) for a, b in zip(old, new))
    return type(old) is type(new) and old == new


_STRUCTURED = (*_JSON_NAMES, ".toml", ".yaml", ".yml")


def _tree_has_secret(path: str, text: str) -> bool:
    """A secret value the line rules of secrets.py miss (a YAML block scalar...)."""
    parsed, doc = _parse(path, text)
    return parsed and next(_secret_keys_in_tree(doc, ""), None) is not None


def check_rewrite(path: str, original: str, rewritten: str) -> str | None:
    """Why ``rewritten`` is not a safe sealed form of ``original`` (None: it is)."""
    parsed, old = _parse(path, original)
    if parsed:
        ok, new = _parse(path, rewritten)
        if not ok:
            return "the rewritten file no longer parses"
        if not _same_but_sealed(old, new):
            return "a secret value is not in a form that can be encrypted alone"
    left = secret_reason(path, without_markers(rewritten.encode("utf-8")))
    if left is not None:
        return f"{left} in a form that cannot be encrypted alone"
    return None


# -- age ------------------------------------------------------------------------------------------------------


def load_recipients(recipients: Iterable[str]) -> list[Any]:
    try:
        return age_keys.parse_recipients(recipients)
    except age_keys.AgeKeyError as exc:
        raise BadInput(f"config_vcs.secret_recipients: {exc}") from None


def load_identities(identity_file: str) -> list[Any]:
    try:
        return age_keys.load_identities(identity_file)
    except age_keys.AgeKeyError as exc:
        raise BadInput(f"config_vcs.secret_identity_file {exc}") from None


# -- the sealer ---------------------------------------------------------------------------------------------------


class Sealer:
    """Seal blobs for one repository (``seal``), unseal them for reading (``unseal``)."""

    def __init__(
        self,
        recipients: Sequence[str] = (),
        identity_file: str = "",
        secret_paths: Sequence[str] = DEFAULT_SECRET_PATHS,
        *,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.recipient_texts = sorted(str(r).strip() for r in recipients)
        self.recipients = load_recipients(self.recipient_texts)
        self.identity_file = identity_file
        self.secret_paths = tuple(secret_paths)
        self.warn = warn or log.warning
        self.cache_path: Path | None = None
        self._identities: list[Any] | None = None
        self._fingerprint = hashlib.sha256("\n".join(self.recipient_texts).encode()).hexdigest()
        self._salt = os.urandom(16)
        self._values: dict[str, OrderedDict[str, str]] = {}
        self._files: dict[str, OrderedDict[str, str]] = {}
        self._cache_sig: tuple[int, ...] | None = None
        self._dirty = False
        self._store: Any = None
        self._old: dict[bytes, tuple[int, bytes]] = {}
        self._learned: set[tuple[str, bytes]] = set()
        self._warned_whole: dict[str, str] = {}
        self._warned_learning = False
        #: the cache on disk was made for other recipients (one was added or removed):
        #: committed ciphertexts must not be relearned, every value is sealed anew
        self._recipients_changed = False

    @property
    def enabled(self) -> bool:
        """Sealing happens only with recipients; unsealing whenever blobs are sealed."""
        return bool(self.recipients)

    def attach(self, git_dir: Path) -> None:
        self.cache_path = Path(git_dir) / "tradevault" / _CACHE_FILE

    # -- identities ----------------------------------------------------------------------------

    def identities(self) -> list[Any] | None:
        """The identities of ``secret_identity_file``; None when it is not set."""
        if not self.identity_file:
            return None
        if self._identities is None:
            self._identities = load_identities(self.identity_file)
        return self._identities

    def require_identity(self, names: Sequence[str]) -> None:
        """``names`` hold sealed secrets and are about to be written as configuration:
        refuse (MissingIdentity, exit 2) unless the identity to decrypt them is at hand,
        so a bot never reads ``ENC[age,...]`` as its config."""
        if not names:
            return
        listed = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        if not self.identity_file:
            reason = "[config_vcs] secret_identity_file is not set"
        else:
            try:
                self.identities()
                return
            except BadInput as exc:
                reason = str(exc)
        raise MissingIdentity(
            f"cannot decrypt the sealed secrets of {listed}: {reason} (copy the age identity "
            "file to this machine and name it there); nothing was written"
        )

    def _decrypt(self, path: str, ciphertext: bytes) -> bytes:
        import pyrage

        identities = self.identities()
        assert identities is not None
        try:
            return pyrage.decrypt(ciphertext, identities)
        except Exception as exc:  # noqa: BLE001 - pyrage.DecryptError and friends
            if "no matching keys" in str(exc).lower():
                raise BadInput(
                    f"{path}: config_vcs.secret_identity_file {self.identity_file} does not hold "
                    "a key these secrets were encrypted to"
                ) from None
            raise IntegrityFailure(f"{path}: encrypted secret cannot be decrypted: {exc}") from None

    def _encrypt(self, plaintext: bytes, armored: bool = False) -> bytes:
        import pyrage

        return pyrage.encrypt(plaintext, self.recipients, armored=armored)

    # -- the cache ------------------------------------------------------------------------------------

    def prepare(self, store: Any, old: dict[bytes, tuple[int, bytes]]) -> None:
        """Before a scan: the object store and HEAD's entries (to reuse blobs and, with the
        identity, relearn a lost cache); reload the cache if another process wrote it."""
        self._store, self._old = store, old
        self._reload_if_changed()

    def _digest(self, *parts: bytes) -> str:
        return hmac.new(self._salt, b"\0".join(parts), hashlib.sha256).hexdigest()[:40]

    def _signature(self) -> tuple[int, ...] | None:
        if self.cache_path is None:
            return None
        try:
            st = os.stat(self.cache_path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _reload_if_changed(self) -> None:
        sig = self._signature()
        if sig is None or sig == self._cache_sig or self.cache_path is None:
            return
        self._cache_sig = sig
        try:
            data = json.loads(self.cache_path.read_text(encoding="utf-8"))
            if data.get("version") != 1 or data.get("recipients") != self._fingerprint:
                self._recipients_changed = data.get("recipients") != self._fingerprint
                return  # other recipients: their ciphertexts cannot be reused
            salt = bytes.fromhex(data["salt"])
            values = {p: OrderedDict(d) for p, d in data.get("values", {}).items()}
            files = {p: OrderedDict(d) for p, d in data.get("files", {}).items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            log.warning("%s is unreadable; secrets will be re-encrypted", self.cache_path)
            return
        self._salt, self._values, self._files = salt, values, files
        self._dirty = False

    def save(self, present: set[str] | None = None) -> None:
        """Write the cache if it changed (the caller holds the repository's write lock);
        with ``present``, forget files that no longer exist."""
        if present is not None:
            for table in (self._values, self._files):
                for gone in [p for p in table if p not in present]:
                    del table[gone]
                    self._dirty = True
        if not self._dirty or self.cache_path is None:
            return
        payload = {
            "version": 1,
            "recipients": self._fingerprint,
            "salt": self._salt.hex(),
            "values": self._values,
            "files": self._files,
        }
        self.cache_path.parent.mkdir(mode=0o700, exist_ok=True)
        tmp = self.cache_path.with_name(_CACHE_FILE + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle)
        os.replace(tmp, self.cache_path)
        self._cache_sig = self._signature()
        self._dirty = False

    def _remember(self, table: dict[str, OrderedDict[str, str]], path: str, digest: str, value: str) -> None:
        entries = table.setdefault(path, OrderedDict())
        if entries.get(digest) == value:
            entries.move_to_end(digest)
            return
        entries[digest] = value
        while len(entries) > _CACHE_PER_PATH:
            entries.popitem(last=False)
        self._dirty = True

    def _recall(self, table: dict[str, OrderedDict[str, str]], path: str, digest: str) -> str | None:
        entries = table.get(path)
        if entries is None or digest not in entries:
            return None
        entries.move_to_end(digest)
        return entries[digest]

    def _learn_from_head(self, path: str) -> None:
        """Cache miss with the identity at hand: learn HEAD's ciphertexts of this file."""
        if not self.identity_file or self._store is None or self._recipients_changed:
            return
        entry = self._old.get(os.fsencode(path))
        if entry is None or (path, entry[1]) in self._learned:
            return
        self._learned.add((path, entry[1]))
        try:
            data = self._store[entry[1]].as_raw_string()
            if is_sealed(data):
                self.unseal(path, data, learn=True, blob_id=entry[1])
        except Exception as exc:  # noqa: BLE001 - learning is an optimisation, never fatal
            if not self._warned_learning:
                self._warned_learning = True
                self.warn(f"cannot decrypt committed secrets to compare them ({exc}); "
                          "unchanged secrets may be re-encrypted once")

    # -- sealing ----------------------------------------------------------------------------------------

    def whole_file_path(self, path: str) -> bool:
        name = path.rsplit("/", 1)[-1]
        return any(
            fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(path, pattern)
            for pattern in self.secret_paths
        )

    def seal(self, path: str, data: bytes) -> bytes:
        """The bytes to commit for a work-tree file (``data`` itself when nothing is secret)."""
        if not self.enabled or data.startswith(FILE_HEADER):
            return data  # already ciphertext (e.g. checked out without the identity)
        if self.whole_file_path(path):
            return self._seal_file(path, data)
        reason = secret_reason(path, data)
        if reason is not None and reason.startswith("its name"):
            return self._seal_file(path, data)
        structured = path.lower().endswith(_STRUCTURED)
        if reason is None and not structured:
            return data
        try:
            text = data.decode("utf-8")
            spans = spans_for(path, text)
            if spans is None:
                raise Unsafe("not JSON, TOML or YAML")
            if reason is None and not spans and not _tree_has_secret(path, text):
                return data
            rewritten = self._seal_spans(path, text, spans)
            problem = check_rewrite(path, text, rewritten)
            if problem:
                raise Unsafe(problem)
        except UnicodeDecodeError:
            return self._seal_file(path, data, "it is not UTF-8 text")
        except Unsafe as exc:
            return self._seal_file(path, data, str(exc))
        return rewritten.encode("utf-8")

    def _seal_spans(self, path: str, text: str, spans: list[Span]) -> str:
        out = []
        last = 0
        missed = False
        for start, end, key in spans:
            token = text[start:end]
            out.append(text[last:start])
            last = end
            if _is_marker_token(token):
                out.append(token)
                continue
            digest = self._digest(path.encode(), key.encode(), token.encode())
            marker = self._recall(self._values, path, digest)
            if marker is None and not missed:
                missed = True
                self._learn_from_head(path)
                marker = self._recall(self._values, path, digest)
            if marker is None:
                ciphertext = base64.b64encode(self._encrypt(token.encode("utf-8"))).decode()
                marker = f"{MARKER_PREFIX}{ciphertext}]"
                self._remember(self._values, path, digest, marker)
            out.append(f'"{marker}"')
        out.append(text[last:])
        return "".join(out)

    def _seal_file(self, path: str, data: bytes, why: str | None = None) -> bytes:
        if why and self._warned_whole.get(path) != why:
            self._warned_whole[path] = why
            self.warn(f"{path}: encrypted as a whole file ({why}); its history is not readable "
                      "without config_vcs.secret_identity_file")
        digest = self._digest(path.encode(), b"", data)
        for attempt in range(2):
            blob_id = self._recall(self._files, path, digest)
            if blob_id is not None and self._store is not None:
                try:
                    return self._store[blob_id.encode()].as_raw_string()
                except KeyError:
                    pass  # pruned: encrypt anew
            if attempt == 0:
                self._learn_from_head(path)
        sealed = FILE_HEADER + self._encrypt(data, armored=True)
        from dulwich.objects import Blob

        self._remember(self._files, path, digest, Blob.from_string(sealed).id.decode())
        return sealed

    # -- unsealing -------------------------------------------------------------------------------------

    def unseal(
        self, path: str, data: bytes, *, learn: bool = False, blob_id: bytes | None = None
    ) -> tuple[bytes, bool]:
        """(plaintext, still_encrypted): without the identity the data comes back as is
        and ``still_encrypted`` is True. A wrong identity raises BadInput."""
        if not is_sealed(data):
            return data, False
        if self.identities() is None:
            return data, bool(data.startswith(FILE_HEADER) or _MARKER_BYTES.search(data))
        learn = learn and self.enabled and not self._recipients_changed
        if data.startswith(FILE_HEADER):
            plain = self._decrypt(path, data[len(FILE_HEADER) :])
            if learn and blob_id is not None:
                self._remember(self._files, path, self._digest(path.encode(), b"", plain), blob_id.decode())
            return plain, False
        if learn:
            self._learn_markers(path, data)

        def replace(match: re.Match[bytes]) -> bytes:
            b64 = match.group(1) if match.group(1) is not None else match.group(2)
            try:
                ciphertext = base64.b64decode(b64, validate=True)
            except ValueError:
                raise IntegrityFailure(f"{path}: damaged encrypted value") from None
            return self._decrypt(path, ciphertext)

        return _MARKER_BYTES.sub(replace, data), False

    def _learn_markers(self, path: str, data: bytes) -> None:
        try:
            text = data.decode("utf-8")
            spans = spans_for(path, text) or []
        except (UnicodeDecodeError, Unsafe):
            return
        for start, end, key in spans:
            token = text[start:end]
            if not _is_marker_token(token):
                continue
            marker = token[1:-1] if token[0] in "\"'" else token
            ciphertext = base64.b64decode(marker[len(MARKER_PREFIX) : -1])
            plain = self._decrypt(path, ciphertext)
            self._remember(self._values, path, self._digest(path.encode(), key.encode(), plain), marker)

