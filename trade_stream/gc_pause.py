"""Pausing Python's cyclic garbage collector around bulk event work.

Decoding or building hundreds of thousands of events allocates millions of lists and
structs; every 700 allocations the cyclic collector walks the young ones, and its full
passes walk everything alive (measured: a large share of a big restore's time). Events,
rows and batches never form reference cycles, so reference counting frees them anyway.
"""

from __future__ import annotations

import contextlib
import gc
from typing import Iterator


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Re-entrant: only the outermost block turns the collector back on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
