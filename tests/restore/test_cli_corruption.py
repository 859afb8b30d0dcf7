"""End to end: damaged backup data is caught by ``verify`` (exit 3, problems naming the
damaged object or manifest entry) and by ``restore`` (exit 3, target never created), unless
the damaged thing is not needed by the restore plan, in which case restore succeeds and
equals the source.

The pristine store (see conftest) is: 1 full, 2 incremental, 3 full, 4 incremental,
5 incremental. Restoring the latest state needs 3, 4 and 5 and nothing else.

Random choices (bit, offset, length) come from a per-case seed; set
TRADEVAULT_CORRUPTION_SEED to explore other ones. Every assertion message shows the case.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest

from trade_stream.manifest import Head, decode_entry, encode_entry, head_of, seal
from trade_stream.object_format import ObjectReader, ObjectWriter
from trade_stream.segments import decode_chunks, encode_chunk

BASE_SEED = int(os.environ.get("TRADEVAULT_CORRUPTION_SEED", "20261126"))
NEWEST = 5

# -- damage -------------------------------------------------------------------------------


def _rng(case: str) -> random.Random:
    return random.Random(BASE_SEED ^ zlib.crc32(case.encode()))


def flip_bit(path: Path, rng: random.Random) -> str:
    data = bytearray(path.read_bytes())
    pos, bit = rng.randrange(len(data)), rng.randrange(8)
    data[pos] ^= 1 << bit
    path.write_bytes(bytes(data))
    return f"flipped bit {bit} of byte {pos}/{len(data)}"


def truncate(path: Path, rng: random.Random) -> str:
    data = path.read_bytes()
    # Cut at least one byte of content (dropping only a JSON file's final newline would
    # change no content at all).
    keep = rng.randrange(1, len(data.rstrip()) - 1)
    path.write_bytes(data[:keep])
    return f"truncated {len(data)} -> {keep} bytes"


def zero_range(path: Path, rng: random.Random) -> str:
    data = bytearray(path.read_bytes())
    while True:
        start = rng.randrange(len(data) - 1)
        length = rng.randint(1, min(256, len(data) - start))
        if any(data[start:start + length]):  # must actually change something
            break
    data[start:start + length] = bytes(length)
    path.write_bytes(bytes(data))
    return f"zeroed bytes {start}..{start + length - 1} of {len(data)}"


def delete(path: Path, rng: random.Random) -> str:
    path.unlink()
    return "deleted"


def append_garbage(path: Path, rng: random.Random) -> str:
    garbage = b"\xff" + rng.randbytes(rng.randint(1, 300))  # never only JSON whitespace
    with open(path, "ab") as handle:
        handle.write(garbage)
    return f"appended {len(garbage)} bytes"


DAMAGES = {"bitflip": flip_bit, "truncate": truncate, "zero": zero_range, "delete": delete,
           "append": append_garbage}

# -- what a damaged thing is called in verify's problems ------------------------------------


@dataclass(frozen=True)
class Thing:
    what: str  # "object" or "entry"
    n: int
    kind: str  # full / incremental (of the entry's object)

    @property
    def key(self) -> str:
        if self.what == "object":
            return f"objects/{self.n:010d}-{self.kind}.tvo"
        return f"manifest/{self.n:010d}.json"

    def path(self, setup, location: str = "local") -> Path:
        if self.what == "object":
            return setup.object_path(self.n, self.kind, location)
        return setup.entry_path(self.n, location)

    def __str__(self) -> str:
        return f"{self.what}{self.n}-{self.kind}"


KIND = {1: "full", 2: "incremental", 3: "full", 4: "incremental", 5: "incremental"}


def thing(what: str, n: int) -> Thing:
    return Thing(what, n, KIND[n])


def names(problem: dict, t: Thing) -> bool:
    """Does this verify problem point at the damaged thing?"""
    if problem["object"] == t.key or t.key in problem["problem"]:
        return True
    if t.what == "entry":  # a missing entry is reported as a gap by the entry after it
        m = re.search(r"entries (\d+)\.\.(\d+)", problem["problem"])
        if m and int(m.group(1)) <= t.n <= int(m.group(2)):
            return True
    return False


def allowed_objects(t: Thing) -> set[str]:
    """Keys verify may report for damage to ``t``: itself, and for an entry also the next
    entry (whose hash-chain link breaks) and the next incremental's entry (whose seq
    continuity breaks when an incremental's entry is lost)."""
    keys = {t.key}
    if t.what == "entry" and t.n < NEWEST:
        keys.add(f"manifest/{t.n + 1:010d}.json")
        if t.kind == "incremental":
            following = min(m for m in KIND if m > t.n and KIND[m] == "incremental")
            keys.add(f"manifest/{following:010d}.json")
    return keys


# -- checks -------------------------------------------------------------------------------


def restore_target(setup) -> tuple[Path, str]:
    directory = setup.root / "restored"
    directory.mkdir()
    path = directory / "out.sqlite"
    return path, f"sqlite:///{path}"


def check_verify(result, damaged: list[Thing], context: str, location: str | None = None) -> list[dict]:
    assert result.rc == 3, f"{context}: verify must exit 3\n{result}"
    report = result.json()
    assert report["ok"] is False, f"{context}\n{result}"
    problems = report["problems"]
    for t in damaged:
        assert any(names(p, t) for p in problems), f"{context}: no problem names {t.key}\n{result}"
    allowed = set().union(*(allowed_objects(t) for t in damaged))
    stray = [p for p in problems if p["object"] not in allowed and not any(names(p, t) for t in damaged)]
    assert not stray, f"{context}: problems about things that were not damaged: {stray}\n{result}"
    if location is not None:
        elsewhere = [p for p in problems if p["location"] != location]
        assert not elsewhere, f"{context}: problems reported for intact locations: {elsewhere}\n{result}"
    return problems


def check_restore_failed(result, target: Path, context: str) -> None:
    assert result.rc == 3, f"{context}: restore must exit 3 (integrity failure)\n{result}"
    assert not target.exists(), f"{context}: failed restore left the target behind\n{result}"
    leftovers = sorted(p.name for p in target.parent.iterdir())
    assert leftovers == [], f"{context}: failed restore left files behind: {leftovers}\n{result}"


def check_restore_ok(cli, result, target: Path, pristine, context: str) -> None:
    assert result.rc == 0, f"{context}: the damaged thing is not needed, restore must succeed\n{result}"
    info = result.json()
    assert info["last_seq"] == pristine.entries[-1]["last_seq"], f"{context}\n{result}"
    assert cli.digest_of(target) == pristine.source_digest, f"{context}: restored database differs from the source"


# -- single location: every kind of damage to every kind of stored thing ----------------------

OBJECT_DAMAGES = ["bitflip", "truncate", "zero", "delete", "append"]
ENTRY_DAMAGES = ["bitflip", "truncate", "zero", "delete"]

CASES = (
    # Needed by a restore of the latest state: the latest full and a segment after it ...
    [pytest.param(thing("object", n), d, True, id=f"needed-{thing('object', n)}-{d}")
     for n in (3, 4) for d in OBJECT_DAMAGES if (n, d) != (3, "append")]
    # ... the manifest entry of a segment after it (a hole in the middle of the chain), with
    # the copy the location's head carries gone too ...
    + [pytest.param(thing("entry", 4), d, True, id=f"needed-{thing('entry', 4)}-{d}") for d in ENTRY_DAMAGES]
    # ... and the newest entry: its file is there but unreadable, so "latest" is unknown.
    + [pytest.param(thing("entry", 5), "zero", True, id=f"needed-{thing('entry', 5)}-zero")]
    # An entry file alone: the head's copy of it is intact, and a restore reads that.
    + [pytest.param(thing("entry", n), d, False, id=f"head-copy-{thing('entry', n)}-{d}")
       for n, d in ((4, "bitflip"), (5, "delete"))]
    # History before the latest full: verify reports it, restore of the latest does not need it.
    + [pytest.param(thing("object", 1), "bitflip", False, id=f"unneeded-{thing('object', 1)}-bitflip"),
       pytest.param(thing("object", 2), "delete", False, id=f"unneeded-{thing('object', 2)}-delete"),
       pytest.param(thing("entry", 2), "truncate", False, id=f"unneeded-{thing('entry', 2)}-truncate")]
)


@pytest.mark.parametrize("target_thing,damage,needed", CASES)
def test_cli_damage_is_reported_by_verify_and_stops_restore_when_needed(
    cli, pristine, workdir: Path, target_thing: Thing, damage: str, needed: bool
) -> None:
    setup = cli.copy_setup(pristine.setup, workdir, ["local"])
    case = f"{target_thing}-{damage}"
    how = DAMAGES[damage](target_thing.path(setup), _rng(case))
    if needed and target_thing.what == "entry":
        setup.entry_path(1).parent.with_name("head.json").unlink()
        how += ", head.json deleted"
    context = f"{case} ({how}; seed {BASE_SEED})"
    target, url = restore_target(setup)

    verify, restore = setup.parallel(["verify", "--json"], ["restore", "--to", url, "--json"])

    check_verify(verify, [target_thing], context)
    if needed:
        check_restore_failed(restore, target, context)
    else:
        check_restore_ok(cli, restore, target, pristine, context)


def test_cli_swapped_incremental_objects_are_reported_and_stop_restore(cli, pristine, workdir: Path) -> None:
    setup = cli.copy_setup(pristine.setup, workdir, ["local"])
    a, b = thing("object", 4), thing("object", 5)
    pa, pb = a.path(setup), b.path(setup)
    da, db = pa.read_bytes(), pb.read_bytes()
    pa.write_bytes(db)
    pb.write_bytes(da)
    target, url = restore_target(setup)

    verify, restore = setup.parallel(["verify", "--json"], ["restore", "--to", url, "--json"])

    check_verify(verify, [a, b], "swap 4<->5")
    check_restore_failed(restore, target, "swap 4<->5")


# -- two locations ----------------------------------------------------------------------------

TWO_LOCATION_CASES = [
    ("second", thing("object", 4), "bitflip"),
    ("local", thing("entry", 4), "delete"),
]


@pytest.mark.parametrize("location,target_thing,damage", TWO_LOCATION_CASES,
                         ids=[f"{loc}-{t}-{d}" for loc, t, d in TWO_LOCATION_CASES])
def test_cli_verify_reports_only_the_location_with_the_damaged_copy(
    cli, pristine, workdir: Path, location: str, target_thing: Thing, damage: str
) -> None:
    setup = cli.copy_setup(pristine.setup, workdir)
    case = f"{location}-{target_thing}-{damage}"
    how = DAMAGES[damage](target_thing.path(setup, location), _rng(case))
    context = f"{case} ({how}; seed {BASE_SEED})"

    problems = check_verify(setup.tv("verify", "--json"), [target_thing], context, location=location)
    assert all(p["location"] == location for p in problems)


@pytest.mark.parametrize("location", ["local"])  # the first location: the one a restore reads first
@pytest.mark.parametrize("target_thing", [thing("object", 3)], ids=str)
def test_cli_restore_uses_the_intact_copy_when_one_location_is_damaged(
    cli, pristine, workdir: Path, location: str, target_thing: Thing
) -> None:
    """Every object is stored on every location: one damaged copy must not make a restore
    fail while an intact copy exists (whichever location comes first in the config)."""
    setup = cli.copy_setup(pristine.setup, workdir)
    case = f"{location}-{target_thing}-bitflip"
    how = flip_bit(target_thing.path(setup, location), _rng(case))
    context = f"{case} ({how}; seed {BASE_SEED})"
    target, url = restore_target(setup)

    check_restore_ok(cli, setup.tv("restore", "--to", url, "--json"), target, pristine, context)


# -- deep verification -------------------------------------------------------------------------


def test_cli_verify_deep_passes_on_an_intact_store(cli, pristine, workdir: Path) -> None:
    setup = cli.copy_setup(pristine.setup, workdir)
    shallow, deep = setup.parallel(["verify", "--json"], ["verify", "--deep", "--json"])
    for result in (shallow, deep):
        assert result.rc == 0, str(result)
        report = result.json()
        assert report["ok"] is True and report["problems"] == [], str(result)
        assert report["objects_checked"] == 2 * len(pristine.entries), str(result)


def _out_of_order(body: bytes) -> bytes:
    events = [e for batch in decode_chunks([body]) for e in batch]
    assert len(events) >= 2
    events[0], events[1] = events[1], events[0]
    return encode_chunk(events)


def _garbage_chunk(body: bytes) -> bytes:
    length = int.from_bytes(body[:4], "big")
    # 0xc1 is never valid msgpack: the chunk's frame is intact, its content is not.
    return body[:4] + b"\xc1" * length + body[4 + length:]


INNER = {"out_of_order": _out_of_order, "garbage_chunk": _garbage_chunk}


def forge_segment(setup, n: int, mutate, location: str) -> None:
    """Rewrite incremental ``n`` with corrupt *content* in an otherwise valid container, and
    re-seal the manifest (size, SHA-256, hash chain) and the head's copies of it so that
    every shallow check passes."""
    path = setup.object_path(n, "incremental", location)
    with open(path, "rb") as handle:
        reader = ObjectReader(handle, path.stat().st_size, path.name)
        body = b"".join(reader.body_chunks())
        reader.check_trailer()
        header = reader.header
    buffer = io.BytesIO()
    writer = ObjectWriter(buffer, header)
    writer.write(mutate(body))
    size, sha = writer.finish()
    path.write_bytes(buffer.getvalue())
    previous = decode_entry(setup.entry_path(n - 1, location).read_bytes(), "prev")
    resealed = {}
    for m in range(n, NEWEST + 1):
        entry = decode_entry(setup.entry_path(m, location).read_bytes(), str(m))
        if m == n:
            entry = msgspec.structs.replace(entry, bytes=size, sha256=sha)
        entry = seal(entry, previous)
        setup.entry_path(m, location).write_bytes(encode_entry(entry))
        resealed[m] = entry
        previous = entry
    head_path = setup.source_dir(location) / "head.json"
    head = msgspec.json.decode(head_path.read_bytes(), type=Head)
    tail = [resealed.get(e.n, e) for e in head.tail]
    head_path.write_bytes(msgspec.json.encode(head_of(tail[-1], head.checkpoint, tail)))


@pytest.mark.parametrize("mutation", list(INNER))
def test_cli_verify_deep_detects_corrupt_segment_content(cli, pristine, workdir: Path, mutation: str) -> None:
    setup = cli.copy_setup(pristine.setup, workdir, ["local"])
    forge_segment(setup, 4, INNER[mutation], "local")
    segment = thing("object", 4)
    target, url = restore_target(setup)

    # Set-up check: the forgery is consistent (sizes, checksums, hash chain all agree), so
    # only decoding the records can find the damage.
    previous = None
    for m in range(1, NEWEST + 1):
        entry = decode_entry(setup.entry_path(m).read_bytes(), str(m))
        assert entry.prev_hash == (previous.entry_hash if previous else "")
        data = setup.root.joinpath(setup.source_dir(), entry.object).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry.bytes, entry.sha256)
        previous = entry

    deep, restore = setup.parallel(["verify", "--deep", "--json"], ["restore", "--to", url, "--json"])

    check_verify(deep, [segment], f"deep verify, {mutation}")
    check_restore_failed(restore, target, f"restore, {mutation}")
