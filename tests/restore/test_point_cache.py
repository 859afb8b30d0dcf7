"""How many past states the point cache keeps (restore/point_cache.py): at most four, and
fewer when the copies would crowd the disk. The disk's free space is the one thing faked
here (a test cannot fill a real disk); the files are real."""

from __future__ import annotations

import os
from collections import namedtuple
from pathlib import Path

import pytest

from restore import point_cache
from restore.point_cache import PointCache

Usage = namedtuple("Usage", "total used free")
SIZE = 64 * 1024


def _points(directory: Path, count: int) -> list[Path]:
    """``count`` cached points, the last one the newest."""
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(count):
        path = directory / f"capture-{i}.sqlite"
        path.write_bytes(b"\0" * SIZE)
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
        files.append(path)
    return files


def _evict(directory: Path, free: int, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setattr(point_cache.shutil, "disk_usage", lambda _: Usage(10 * free, 9 * free, free))
    files = sorted(directory.glob("*.sqlite"))
    PointCache(store=None, directory=directory)._evict(keep=files[-1])  # type: ignore[arg-type]
    return sorted(p.name for p in directory.glob("*.sqlite"))


def test_at_most_four_points_are_kept_the_least_recently_used_going_first(tmp_path, monkeypatch) -> None:
    _points(tmp_path, 6)
    assert _evict(tmp_path, free=10**12, monkeypatch=monkeypatch) == [f"capture-{i}.sqlite" for i in (2, 3, 4, 5)]


def test_older_points_give_way_when_they_would_take_over_half_the_free_disk(tmp_path, monkeypatch) -> None:
    _points(tmp_path, 4)
    # free space for three more copies: two older ones fit in half of (free + themselves)
    assert _evict(tmp_path, free=3 * SIZE, monkeypatch=monkeypatch) == [f"capture-{i}.sqlite" for i in (1, 2, 3)]


def test_a_nearly_full_disk_keeps_only_the_point_just_made(tmp_path, monkeypatch) -> None:
    _points(tmp_path, 3)
    assert _evict(tmp_path, free=SIZE // 2, monkeypatch=monkeypatch) == ["capture-2.sqlite"]
