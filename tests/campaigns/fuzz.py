"""Fuzz campaign: the decoders of stored data under hypothesis.

Targets (every malformed input must end in ``trade_stream.errors.IntegrityError`` —
never another exception, a hang, or unbounded memory):

* ``segments``: ``trade_stream.segments.decode_chunks`` — the event codec, including
  ``trade_stream.values.ext_hook`` (Decimal, datetime, date, time, timedelta, UUID, big
  integer extension types) fed through crafted msgpack;
* ``object``: ``trade_stream.object_format.ObjectReader`` (header, zstd body, trailer);
* ``manifest``: ``trade_stream.manifest.decode_entry``.

Inputs are mutations of valid encodings (bit flips, byte overwrites, truncation,
insertion, splicing), structured near-valid values (wrong arity, wrong types, crafted
extension payloads) and raw bytes. Each input runs under a wall-clock limit (hang) and
tracemalloc's peak (memory, 96 MiB: the 64 MiB header bound + slack).

    python -m tests.campaigns.fuzz --examples 20000 [--seed N]
"""

from __future__ import annotations

import io
import random
import signal
import struct
import tracemalloc
from dataclasses import dataclass, field

import msgspec
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hyp_seed
from hypothesis import strategies as st

from tests.campaigns.common import Tally
from trade_stream.errors import IntegrityError
from trade_stream.events import ChangeEvent
from trade_stream.manifest import ManifestEntry, encode_entry, seal
from trade_stream.object_format import ObjectHeader, ObjectReader, ObjectWriter
from trade_stream.segments import decode_chunks, encode_chunk

# The decoders bound what one input may make them allocate: a header decompresses to at
# most object_format.MAX_HEADER (64 MiB, allocated up front when a damaged zstd frame
# header claims that size), a chunk to segments.MAX_CHUNK. 96 MiB = that bound + slack.
MEMORY_LIMIT = 96 << 20
TIME_LIMIT = 5  # seconds per input


# -- valid encodings to mutate ------------------------------------------------------------

def _events() -> list[ChangeEvent]:
    import datetime as dt
    import decimal
    import uuid

    row = [1, 2.5, "ä€", b"\x00\xff", None, True, decimal.Decimal("1.2345"),
           dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc), dt.date(2026, 1, 2), dt.time(1, 2, 3),
           dt.timedelta(days=1, seconds=2), uuid.UUID(int=5), 2**70]
    return [ChangeEvent(1, 1, 1_700_000_000_000_000, "trades", "insert", [1], row),
            ChangeEvent(2, 2, 1_700_000_000_000_001, "trades", "update", [1], row),
            ChangeEvent(3, 3, 1_700_000_000_000_002, "trades", "delete", [1], None),
            ChangeEvent(4, 4, 1_700_000_000_000_003, "t", "schema", None, None, {"name": "t", "columns": []})]


SEGMENT = encode_chunk(_events()[:2]) + encode_chunk(_events()[2:])


def _object(body: bytes, kind: str = "incremental") -> bytes:
    out = io.BytesIO()
    writer = ObjectWriter(out, ObjectHeader(format=1, kind=kind, codec="events-msgpack", source="tradesv3",
                                            after_seq=0, last_seq=4, first_ts=1, last_ts=4, count=4,
                                            schema={"tables": {"trades": {"columns": ["id", "ä"]}}},
                                            capture_id="c1"))
    writer.write(body)
    writer.finish()
    return out.getvalue()


OBJECT = _object(SEGMENT)
HEADER_JSON = zstandard.ZstdDecompressor().decompress(OBJECT[12:12 + struct.unpack(">I", OBJECT[8:12])[0]],
                                                      max_output_size=1 << 20)


def _with_header(header_json: bytes, level: int = 3) -> bytes:
    """A whole object around a given (possibly malformed) header JSON: valid compression
    and a correct trailer, so only the header is wrong."""
    import hashlib

    header = zstandard.ZstdCompressor(level=level).compress(header_json)
    start = OBJECT.index(b"(\xb5/\xfd", 12 + struct.unpack(">I", OBJECT[8:12])[0])
    body = OBJECT[start:-40]
    data = b"TVAULT\x00\x01" + struct.pack(">I", len(header)) + header + body
    return data + b"TVEND\x00\x00\x01" + hashlib.sha256(data).digest()


def _entry() -> bytes:
    entry = ManifestEntry(n=2, kind="incremental", object="objects/0000000002-incremental.tvo", source="tradesv3",
                          capture_id="c1", after_seq=0, first_seq=1, last_seq=4, first_ts=1, last_ts=4, count=4,
                          bytes=len(OBJECT), sha256="0" * 64, schema_hash="ab", created_at=5,
                          tables={"trades": 1}, config={"/cfg": "00" * 20})
    return encode_entry(seal(entry, None))


ENTRY = _entry()

# -- strategies ---------------------------------------------------------------------------


@st.composite
def mutated(draw, base: bytes, focus: int | None = None) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["flip", "byte", "truncate", "insert", "delete", "splice", "high"]))
        limit = max(1, min(len(data), focus) if focus and draw(st.booleans()) else len(data))
        pos = draw(st.integers(0, max(0, limit - 1)))
        if how == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif how == "byte" and data:
            data[pos] = draw(st.integers(0, 255))
        elif how == "high" and data:  # invalid UTF-8 in text
            data[pos] = draw(st.integers(0x80, 0xFF))
        elif how == "truncate":
            del data[pos:]
        elif how == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif how == "delete":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif how == "splice":
            other = draw(st.integers(0, max(0, len(base) - 1)))
            data[pos:pos + 8] = base[other:other + 8]
    return bytes(data)


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(), st.text(max_size=8),
                     st.binary(max_size=8))
_ext_payload = st.one_of(
    st.binary(max_size=24),
    st.sampled_from([b"NaNx", b"1e999999999", b"--1", b"1,2", b"1,2,3,4", b"999999999999,0,0", b"0,99999999999999,0",
                     b"2026-13-01", b"25:00:00", b"not-a-uuid", b"", b"sNaN", b"Infinity"]),
    st.text(max_size=24).map(str.encode),
    st.integers(4290, 4400).map(lambda n: b"7" * n),  # int() digit limit
)
_ext = st.builds(msgspec.msgpack.Ext, st.integers(-128, 127) | st.integers(0, 10), _ext_payload)
_value = st.one_of(_scalars, _ext)
_event = st.one_of(
    st.tuples(st.integers(-(2**63), 2**63 - 1), st.integers(0, 10), st.integers(0, 2**62),
              st.text(max_size=6), st.sampled_from(["insert", "update", "delete", "snapshot", "schema", "x"]),
              st.one_of(st.none(), st.lists(_value, max_size=3)), st.one_of(st.none(), st.lists(_value, max_size=5)),
              st.one_of(st.none(), st.dictionaries(st.text(max_size=4), _scalars, max_size=2))).map(list),
    st.lists(_value, max_size=10),
    _value,
)


def _chunk(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


segment_inputs = st.one_of(
    mutated(SEGMENT),
    st.lists(_event, max_size=4).map(lambda events: _chunk(msgspec.msgpack.encode(events))),
    st.binary(max_size=200),
    st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=64)).map(lambda t: struct.pack(">I", t[0]) + t[1]),
)
object_inputs = st.one_of(
    mutated(OBJECT, focus=200),  # half of the mutations land in the magic/header
    mutated(HEADER_JSON).map(_with_header),  # the header's JSON itself damaged
    st.lists(_event, max_size=3).map(lambda events: _object(_chunk(msgspec.msgpack.encode(events)))),
    st.binary(max_size=300).map(lambda b: b"TVAULT\x00\x01" + b),
    st.binary(max_size=120).map(lambda h: b"TVAULT\x00\x01" + struct.pack(">I", len(h)) + h + bytes(50)),
)
manifest_inputs = st.one_of(
    mutated(ENTRY),
    st.binary(max_size=200),
    st.dictionaries(st.sampled_from(list(ManifestEntry.__struct_fields__)), _scalars, max_size=30).map(
        msgspec.json.encode),
)

# -- the checks ---------------------------------------------------------------------------


@dataclass
class Counter:
    inputs: int = 0
    malformed: int = 0  # inputs rejected (IntegrityError)
    accepted: int = 0
    other: dict[str, str] = field(default_factory=dict)


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


def _guard(counter: Counter, fn, data: bytes) -> None:
    """Run one decode under time and memory limits; record what happened; assert the contract."""
    counter.inputs += 1
    previous = signal.signal(signal.SIGALRM, _alarm) if _main_thread() else None
    if previous is not None:
        signal.alarm(TIME_LIMIT)
    tracemalloc.start()
    try:
        fn(data)
        counter.accepted += 1
    except IntegrityError:
        counter.malformed += 1
    except _Hang:
        raise AssertionError(f"hang (> {TIME_LIMIT} s) on input {data[:200]!r}") from None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        if previous is not None:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
    assert peak < MEMORY_LIMIT, f"peak memory {peak} bytes on input {data[:200]!r}"


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def decode_segment(data: bytes) -> None:
    cut = len(data) // 3
    for _ in decode_chunks([data[:cut], data[cut:]], "fuzz-segment"):
        pass


def read_object(data: bytes) -> None:
    reader = ObjectReader(io.BytesIO(data), len(data), "fuzz-object")
    body = b"".join(reader.body_chunks(1 << 16))
    reader.check_trailer()
    if reader.header.codec == "events-msgpack":
        for _ in decode_chunks([body], "fuzz-object"):
            pass


def decode_manifest(data: bytes) -> None:
    from trade_stream.manifest import decode_entry

    decode_entry(data, "fuzz-entry")


TARGETS = {"segments": (decode_segment, segment_inputs), "object": (read_object, object_inputs),
           "manifest": (decode_manifest, manifest_inputs)}


def fuzz(target: str, examples: int, seed: int = 0, derandomize: bool = False,
         counter: Counter | None = None) -> Counter:
    """Run ``examples`` inputs against one target; raises AssertionError (hypothesis's
    minimal failing input in the message) when the contract is broken."""
    fn, strategy = TARGETS[target]
    counter = counter if counter is not None else Counter()

    @settings(max_examples=examples, deadline=None, derandomize=derandomize, database=None,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(strategy)
    def check(data: bytes) -> None:
        try:
            _guard(counter, fn, data)
        except (AssertionError, _Hang):
            raise
        except Exception as exc:  # noqa: BLE001 - the contract: IntegrityError only
            # Recorded, not raised: the campaign goes on through every input and reports
            # each distinct exception type once (with the first input that raised it).
            counter.other.setdefault(f"{type(exc).__module__}.{type(exc).__name__}", f"{exc!s:.120} on {data[:160]!r}")

    if not derandomize:
        check = hyp_seed(seed)(check)
    check()
    if counter.other:
        raise AssertionError(f"{target}: exceptions other than IntegrityError: " + "; ".join(
            f"{name}: {example}" for name, example in counter.other.items()))
    return counter


def run(examples: int = 300, seed: int | None = None, log=print, targets=tuple(TARGETS)) -> Tally:
    seed = random.SystemRandom().randrange(2**31) if seed is None else seed
    tally = Tally("fuzz")
    tally.notes.append(f"seed {seed}, {examples} inputs per target")
    for target in targets:
        counter = Counter()
        try:
            fuzz(target, examples, seed, counter=counter)
            error = ""
        except AssertionError as exc:
            error = str(exc)
        tally.runs += 1
        tally.faults += counter.inputs
        tally.detected += counter.malformed
        line = (f"{target}: {counter.inputs} inputs, {counter.malformed} rejected with IntegrityError, "
                f"{counter.accepted} valid")
        if counter.other:
            line += f", {len(counter.other)} other exception type(s): {', '.join(counter.other)}"
        tally.notes.append(line)
        log("  " + line)
        if error:
            tally.fail(error[:1500])
    return tally


def main() -> int:
    from tests.campaigns.common import cli_args

    args = cli_args(__doc__.splitlines()[0], "examples", 20000, "inputs per target")
    tally = run(args.examples, seed=args.seed)
    print(tally.report())
    return 0 if not tally.failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
