"""Progress reporting for long work, independent of how it is shown (rich in the CLI)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, phase: str, done: int, total: int | None) -> None: ...


def no_progress(phase: str, done: int, total: int | None) -> None:
    """The default: report nothing."""
