"""Requests a location sends, by kind: what a backup costs a store that bills per request,
and the measure of how much catalog an operation reads.

Kinds: ``list`` (one page of a listing), ``get`` (an object read), ``head`` (a size),
``put`` (a write: for S3 each request of a multipart upload counts), ``delete``. An S3
location counts every HTTP request botocore sends, retries included; a file location counts
its operations the same way, so the two can be compared.
"""

from __future__ import annotations

import threading

KINDS = ("list", "get", "head", "put", "delete")


class RequestCounter:
    """Thread-safe: a backup writes to its locations from several threads."""

    def __init__(self) -> None:
        self._counts = dict.fromkeys(KINDS, 0)
        self._lock = threading.Lock()

    def add(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self._counts[kind] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def difference(after: dict[str, dict[str, int]], before: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Per location and kind, what ``after`` counts beyond ``before`` (snapshots of
    ``BackupStore.request_counts``): the requests of one job of a long-running agent."""
    return {name: {kind: n - before.get(name, {}).get(kind, 0) for kind, n in counts.items()}
            for name, counts in after.items()}
