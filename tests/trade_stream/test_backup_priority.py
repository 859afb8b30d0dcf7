"""Full backups and consolidations yield CPU and disk to the bot: their work runs in a
thread at niceness 10 and in the idle I/O class, while the calling thread (the agent's
loop, which seals incrementals) keeps its own priority."""

from __future__ import annotations

import ctypes
import os
import platform
import sys
import threading

import pytest

from trade_stream.backup import BACKUP_NICE, at_low_priority

IOPRIO_GET, IOPRIO_WHO_PROCESS = 252, 1


def _priorities() -> tuple[int, int | None]:
    tid = threading.get_native_id()
    io_class = None
    if sys.platform == "linux" and platform.machine() == "x86_64":
        io_class = ctypes.CDLL(None, use_errno=True).syscall(IOPRIO_GET, IOPRIO_WHO_PROCESS, tid) >> 13
    return os.getpriority(os.PRIO_PROCESS, tid), io_class


def test_low_priority_work_is_niced_and_idle_io_and_the_caller_keeps_its_priority():
    before = _priorities()
    nice, io_class = at_low_priority(_priorities)
    assert nice >= BACKUP_NICE
    if io_class is not None:
        assert io_class == 3  # IOPRIO_CLASS_IDLE
    assert _priorities() == before


def test_errors_of_low_priority_work_reach_the_caller():
    def fail() -> None:
        raise ValueError("disk full")

    with pytest.raises(ValueError, match="disk full"):
        at_low_priority(fail)
