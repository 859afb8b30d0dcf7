"""Backups run below the trading bot's priority.

On a small machine a full backup's compression and reads would otherwise take the cores
and the disk queue the bot's commits need; the bench's commit-latency goals measure this.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
import threading
from typing import Any, Callable, TypeVar

BACKUP_NICE = 10
_IOPRIO_SET, _IOPRIO_WHO_PROCESS, _IOPRIO_CLASS_IDLE = 251, 1, 3  # x86-64 Linux


def yield_to_trading() -> None:
    """Run this thread (and the compression threads it starts) below the bot's priority.
    CPU: niceness 10 and, where the system has it, the SCHED_IDLE policy (a waking bot
    thread preempts it at once); disk: the idle I/O class (honoured by the bfq and
    mq-deadline schedulers, which still serve it after a few seconds of waiting). All are
    per thread, inherited by new threads, and cannot be raised back without privileges,
    so they stay for the thread's later jobs."""
    tid = threading.get_native_id()
    if os.getpriority(os.PRIO_PROCESS, tid) < BACKUP_NICE:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, BACKUP_NICE)
        except OSError:
            pass
    if hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        except OSError:
            pass
    if sys.platform == "linux" and platform.machine() == "x86_64":
        try:
            ctypes.CDLL(None, use_errno=True).syscall(_IOPRIO_SET, _IOPRIO_WHO_PROCESS, tid,
                                                      _IOPRIO_CLASS_IDLE << 13)
        except (OSError, AttributeError):
            pass


T = TypeVar("T")


def at_low_priority(work: Callable[[], T]) -> T:
    """``work`` in a thread of its own that yields CPU and disk to the bot, so the caller's
    thread (the agent's loop, sealing incrementals) keeps its normal priority."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        yield_to_trading()
        try:
            outcome["result"] = work()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="tradevault-low-priority")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


