"""One conformance suite for every storage backend (the way restic tests its backends)."""

from __future__ import annotations

import os

import pytest

from trade_stream.errors import BadInputError
from trade_stream.storage.locations import open_location
from trade_stream.storage.requests import difference


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.xdist_group("s3"))])
def location(request, tmp_path):
    if request.param == "file":
        return open_location("conf", f"file://{tmp_path / 'store'}")
    url, options = request.getfixturevalue("s3_location_options")
    return open_location("conf", url, **options)


def test_absent_key_has_no_size_and_lists_nothing(location):
    assert location.size("src/objects/missing") is None
    assert location.list("src/objects") == []


def test_put_then_get_returns_the_same_bytes(location):
    data = os.urandom(1000) + b"\x00" * 10
    location.put_bytes("src/manifest/0000000001.json", data)
    assert location.size("src/manifest/0000000001.json") == len(data)
    with location.open("src/manifest/0000000001.json") as handle:
        assert handle.read() == data


def test_streamed_writer_is_invisible_until_commit(location):
    writer = location.writer("src/objects/big")
    writer.write(b"a" * 100_000)
    assert location.size("src/objects/big") is None
    assert location.list("src/objects") == []
    writer.write(b"b" * 100_000)
    writer.commit()
    assert location.size("src/objects/big") == 200_000
    with location.open("src/objects/big") as handle:
        assert handle.read() == b"a" * 100_000 + b"b" * 100_000


def test_aborted_writer_leaves_nothing(location):
    writer = location.writer("src/objects/aborted")
    writer.write(b"x" * 5000)
    writer.abort()
    assert location.size("src/objects/aborted") is None
    assert location.list("src/objects") == []


def test_list_is_sorted_and_one_level_deep(location):
    for name in ("b", "a", "c"):
        location.put_bytes(f"src/manifest/{name}", b"1")
    location.put_bytes("src/manifest/sub/deeper", b"1")
    location.put_bytes("other/manifest/z", b"1")
    assert location.list("src/manifest") == ["src/manifest/a", "src/manifest/b", "src/manifest/c"]


def test_list_after_a_key_skips_it_and_everything_before(location):
    for name in ("0001", "0002", "0003", "0004"):
        location.put_bytes(f"src/manifest/{name}", b"1")
    assert location.list("src/manifest", start_after="src/manifest/0002") == ["src/manifest/0003",
                                                                               "src/manifest/0004"]
    assert location.list("src/manifest", start_after="src/manifest/0002.5") == ["src/manifest/0003",
                                                                                 "src/manifest/0004"]
    assert location.list("src/manifest", start_after="src/manifest/0004") == []


def test_delete_removes_and_is_idempotent(location):
    location.put_bytes("src/objects/x", b"1")
    location.delete("src/objects/x")
    assert location.size("src/objects/x") is None
    location.delete("src/objects/x")


def test_partial_reads_stream_the_object(location):
    data = os.urandom(3 * 1024 * 1024 + 17)
    writer = location.writer("src/objects/stream")
    for i in range(0, len(data), 65536):
        writer.write(data[i : i + 65536])
    writer.commit()
    chunks = []
    with location.open("src/objects/stream") as handle:
        while chunk := handle.read(1 << 20):
            chunks.append(chunk)
    assert b"".join(chunks) == data


def test_unsupported_scheme_is_bad_input():
    with pytest.raises(BadInputError, match="unsupported URL scheme"):
        open_location("x", "ftp://host/dir")
    with pytest.raises(BadInputError, match="too short"):
        open_location("x", "s3://ab/prefix")


def test_file_location_creates_private_files_and_directories(tmp_path):
    location = open_location("conf", f"file://{tmp_path / 'store'}")
    location.put_bytes("src/objects/x", b"1")
    assert (tmp_path / "store" / "src" / "objects" / "x").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "store" / "src").stat().st_mode & 0o777 == 0o700


def test_put_new_writes_once_and_the_second_writer_loses(location):
    """Manifest entries are published with put_new: of two writers racing for one position,
    one wins and the other gets AlreadyStored (S3: If-None-Match; files: a hard link)."""
    from trade_stream.errors import AlreadyStored

    location.put_new("src/manifest/0000000007.json", b"first")
    with pytest.raises(AlreadyStored):
        location.put_new("src/manifest/0000000007.json", b"second")
    with location.open("src/manifest/0000000007.json") as handle:
        assert handle.read() == b"first"
    assert location.list("src/manifest") == ["src/manifest/0000000007.json"]  # no temporary left


def test_every_request_is_counted_by_its_kind(location):
    """What each operation costs a store that bills per request (S3: each HTTP request)."""
    before = location.requests.snapshot()
    location.put_bytes("src/manifest/0000000001.json", b"x")
    writer = location.writer("src/objects/streamed")
    writer.write(b"y" * 1000)
    writer.commit()
    with location.open("src/manifest/0000000001.json") as handle:
        handle.read()
    assert location.size("src/manifest/0000000001.json") == 1
    assert location.list("src/manifest") == ["src/manifest/0000000001.json"]
    location.delete("src/manifest/0000000001.json")
    sent = difference({"l": location.requests.snapshot()}, {"l": before})["l"]
    assert sent == {"list": 1, "get": 1, "head": 1, "put": 2, "delete": 1}
