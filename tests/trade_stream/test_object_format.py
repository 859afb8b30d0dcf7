"""The "sized-frames" body of full snapshots: independent frames a restore decompresses in
several threads, still one valid zstd stream for any other reader."""

from __future__ import annotations

import io
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from trade_stream import object_format
from trade_stream.errors import IntegrityError
from trade_stream.object_format import (
    BODY_SIZED_FRAMES,
    BODY_STREAM,
    TRAILER_SIZE,
    ObjectHeader,
    ObjectReader,
    ObjectWriter,
)

FRAME = 64 << 10


@pytest.fixture(autouse=True)
def small_frames(monkeypatch) -> None:
    monkeypatch.setattr(object_format, "FRAME_SIZE", FRAME)


def _header(body: str) -> ObjectHeader:
    return ObjectHeader(format=1, kind="full", codec="sqlite-file", source="db", after_seq=0, last_seq=0,
                        first_ts=None, last_ts=None, count=0, schema={}, body=body)


def _plain(size: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    words = [rng.randbytes(rng.randint(1, 12)) for _ in range(200)]  # compressible, not trivial
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words)
    return bytes(out[:size])


def _object(plain: bytes, body: str = BODY_SIZED_FRAMES, threads: int = 0, pieces: int = 5000) -> bytes:
    buffer = io.BytesIO()
    writer = ObjectWriter(buffer, _header(body), threads=threads)
    for start in range(0, len(plain), pieces):  # writes that do not line up with frames
        writer.write(plain[start:start + pieces])
    writer.finish()
    return buffer.getvalue()


def _reader(data: bytes) -> ObjectReader:
    return ObjectReader(io.BytesIO(data), len(data), "obj")


def _decompress(reader: ObjectReader, frame: bytes, plain: int) -> bytes:
    """One frame's bytes, through a buffer smaller than the frame (as restore reads them)."""
    buffer = memoryview(bytearray(10_000))
    return b"".join(bytes(chunk) for chunk in reader.frame_chunks(frame, plain, buffer))


def _from_frames(data: bytes) -> bytes:
    reader = _reader(data)
    out = bytearray()
    for offset, frame, plain in reader.frames():
        assert offset == len(out)
        out += _decompress(reader, frame, plain)
    reader.check_trailer()
    return bytes(out)


@pytest.mark.parametrize("size", [0, 1, FRAME - 1, FRAME, 3 * FRAME + 12345])
def test_frames_reassemble_the_plain_bytes_at_every_size(size: int) -> None:
    plain = _plain(size)
    data = _object(plain)
    assert _from_frames(data) == plain
    frames = list(_reader(data).frames())
    assert len(frames) == max(1, -(-size // FRAME))
    assert all(length == FRAME for _, _, length in frames[:-1])


def test_a_framed_body_is_still_one_stream_for_stream_readers_and_zstd_cli(tmp_path: Path) -> None:
    plain = _plain(4 * FRAME + 999)
    data = _object(plain)
    reader = _reader(data)
    assert b"".join(bytes(c) for c in reader.body_chunks(10_000)) == plain
    reader.check_trailer()

    zstd = shutil.which("zstd")
    if zstd is None:
        pytest.skip("the zstd command is not installed")
    header_len = struct.unpack(">I", data[8:12])[0]
    body = tmp_path / "body.zst"
    body.write_bytes(data[12 + header_len:-TRAILER_SIZE])
    out = subprocess.run([zstd, "-d", "-q", "-c", str(body)], capture_output=True, check=True).stdout
    assert out == plain


def test_parallel_compression_writes_the_same_object_as_one_thread() -> None:
    plain = _plain(6 * FRAME + 5)
    assert _object(plain, threads=3) == _object(plain, threads=0) == _object(plain, threads=-1)


def test_stream_bodies_written_before_frames_existed_still_read() -> None:
    plain = _plain(2 * FRAME + 7)
    reader = _reader(_object(plain, body=BODY_STREAM))
    assert not reader.framed
    assert b"".join(bytes(c) for c in reader.body_chunks()) == plain
    reader.check_trailer()
    with pytest.raises(IntegrityError, match="not in sized frames"):
        next(_reader(_object(plain, body=BODY_STREAM)).frames())


def _body_start(data: bytes) -> int:
    return 12 + struct.unpack(">I", data[8:12])[0]


def test_a_damaged_announcement_is_an_integrity_error() -> None:
    data = bytearray(_object(_plain(3 * FRAME)))
    data[_body_start(bytes(data))] ^= 0x01  # the first announcement's magic
    with pytest.raises(IntegrityError, match="corrupt frame announcement"):
        list(_reader(bytes(data)).frames())


def test_an_announcement_longer_than_the_body_is_an_integrity_error() -> None:
    data = bytearray(_object(_plain(3 * FRAME)))
    start = _body_start(bytes(data))
    data[start + 8:start + 16] = struct.pack("<Q", len(data))  # compressed length
    with pytest.raises(IntegrityError, match="corrupt frame announcement"):
        list(_reader(bytes(data)).frames())


def test_a_plain_length_that_lies_is_an_integrity_error() -> None:
    data = bytearray(_object(_plain(3 * FRAME)))
    start = _body_start(bytes(data))
    data[start + 16:start + 24] = struct.pack("<Q", FRAME - 1)
    reader = _reader(bytes(data))
    _, frame, plain = next(reader.frames())
    with pytest.raises(IntegrityError, match="obj: "):
        _decompress(reader, frame, plain)


def test_damaged_frame_bytes_fail_decompression_or_the_trailer() -> None:
    original = _object(_plain(3 * FRAME))
    start = _body_start(original)
    for position in range(start + 40, len(original) - TRAILER_SIZE, 997):
        data = bytearray(original)
        data[position] ^= 0x40
        reader = _reader(bytes(data))
        with pytest.raises(IntegrityError):
            for _, frame, plain in reader.frames():
                _decompress(reader, frame, plain)
            reader.check_trailer()


def test_a_truncated_framed_object_is_an_integrity_error() -> None:
    data = _object(_plain(3 * FRAME))
    cut = data[:len(data) - TRAILER_SIZE - 100] + data[-TRAILER_SIZE:]
    with pytest.raises(IntegrityError):
        reader = _reader(cut)
        for _, frame, plain in reader.frames():
            _decompress(reader, frame, plain)
        reader.check_trailer()


def test_an_unknown_body_layout_is_refused_when_writing() -> None:
    with pytest.raises(ValueError, match="unknown body layout"):
        ObjectWriter(io.BytesIO(), _header("zip"))



def test_a_body_compressed_ahead_makes_the_same_object() -> None:
    """An incremental compresses its body while decoding, before its header is known."""
    plain = _plain(5 * FRAME + 77)
    spool = io.BytesIO()
    body = object_format.framed_body(spool, 3, 2)
    for start in range(0, len(plain), 3000):
        body.write(plain[start:start + 3000])
    body.close()
    buffer = io.BytesIO()
    writer = ObjectWriter(buffer, _header(BODY_SIZED_FRAMES), threads=1)
    data = spool.getvalue()
    for start in range(0, len(data), 7000):
        writer.write_framed(data[start:start + 7000])
    writer.finish()
    assert buffer.getvalue() == _object(plain)
    with pytest.raises(ValueError, match="compressed ahead"):
        writer.write(b"more")
    with pytest.raises(ValueError, match="sized-frames"):
        ObjectWriter(io.BytesIO(), _header(BODY_STREAM)).write_framed(data)
