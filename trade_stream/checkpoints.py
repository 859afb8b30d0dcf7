"""Catalog checkpoints: everything up to a position of the chain, in one object.

Reading the catalog used to mean one GET per manifest entry and per pruned record ever
written. A checkpoint holds copies of every entry still kept up to position ``n`` and the
positions retention removed, folded into runs; the location's head names its newest
checkpoint and carries the few entries written since. So a reader needs a constant number
of requests whatever the chain's length, and the manifest entries stay the primary record
(``verify`` walks them all and compares). A checkpoint is hash-linked: ``last_hash`` is
the hash of entry ``n``, which every kept entry's chain leads to, and the object carries
the hash of its own content. Its bytes depend only on the chain, so every location stores the same ones.
The functions here are pure.
"""

from __future__ import annotations

import hashlib

import msgspec
import zstandard

from trade_stream.errors import IntegrityError
from trade_stream.manifest import ManifestEntry, Pruned, PrunedRun

CHECKPOINT_EVERY = 32  # entries a head carries before the next checkpoint folds them in
MAX_CHECKPOINT_BYTES = 1 << 30  # a decompressed checkpoint larger than this is damage


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    format: int = 1
    n: int  # covers positions 1..n
    last_hash: str  # entry hash of position n (kept or pruned)
    entries: list[ManifestEntry]  # every entry kept at positions <= n, ascending
    pruned: list[PrunedRun]  # every position removed at or before n, as disjoint runs


def checkpoint_key(n: int) -> str:
    return f"checkpoints/{n:010d}.json.zst"


def checkpoint_number(key: str) -> int | None:
    name = key.rsplit("/", 1)[-1].removesuffix(".json.zst")
    return int(name) if name.isdigit() and key.endswith(".json.zst") else None


def build_checkpoint(entries: list[ManifestEntry], pruned: Pruned, n: int) -> Checkpoint | None:
    """The checkpoint at ``n`` of a chain whose every position up to ``n`` is either a kept
    entry or pruned; None when one is neither (a location still missing an entry) or the
    hash of position ``n`` is unknown."""
    kept = [e for e in entries if e.n <= n and e.n not in pruned]
    runs = pruned.folded(n)
    covered = len(kept) + sum(r.last - r.first + 1 for r in runs)
    if covered != n:
        return None
    last_hash = kept[-1].entry_hash if kept and kept[-1].n == n else pruned.link(n)
    if last_hash is None:
        return None
    return Checkpoint(n=n, last_hash=last_hash, entries=kept, pruned=runs)


def encode_checkpoint(checkpoint: Checkpoint) -> bytes:
    """One zstd frame: the SHA-256 (hex) of the JSON, a newline, the JSON."""
    body = msgspec.json.encode(checkpoint)
    return zstandard.ZstdCompressor(level=3).compress(hashlib.sha256(body).hexdigest().encode() + b"\n" + body)


def decode_checkpoint(data: bytes, name: str) -> Checkpoint:
    """A checkpoint proven intact by its hash, which covers every entry it copies (so the
    entries are not hashed one by one: this runs at the start of every backup)."""
    try:
        size = zstandard.frame_content_size(data)
        if size < 0 or size > MAX_CHECKPOINT_BYTES:
            raise IntegrityError(f"{name}: corrupt checkpoint: frame size {size}")
        digest, _, body = zstandard.ZstdDecompressor().decompress(data).partition(b"\n")
        if hashlib.sha256(body).hexdigest().encode() != digest:
            raise IntegrityError(f"{name}: checkpoint hash mismatch (checkpoint was altered)")
        checkpoint = msgspec.json.decode(body, type=Checkpoint)
    except (zstandard.ZstdError, msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"{name}: corrupt checkpoint: {exc}") from None
    positions = [e.n for e in checkpoint.entries]
    if positions != sorted(set(positions)) or (positions and positions[-1] > checkpoint.n):
        raise IntegrityError(f"{name}: checkpoint entries out of order")
    return checkpoint
