"""Which objects a restore needs: pure functions on manifest entries.

A restore starts from the newest full backup at or before the target and replays the
incremental chain after it, up to the target (a seq, or the last event at or before a
time). Incrementals may straddle the full backup's seq: events at or below it are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable

from restore.evidence import Evidence, shortfall
from trade_stream.errors import BadInputError, IntegrityError
from trade_stream.manifest import FULL, INCREMENTAL, ManifestEntry
from trade_stream.schema import DatabaseSchema


@dataclass
class Target:
    seq: int | None = None  # restore up to and including this seq
    ts: int | None = None  # ... or every event with ts <= this (microseconds, UTC)

    def describe(self) -> str:
        if self.seq is not None:
            return f"seq {self.seq}"
        if self.ts is not None:
            return format_ts(self.ts)
        return "latest"


@dataclass
class Plan:
    full: ManifestEntry
    incrementals: list[ManifestEntry] = field(default_factory=list)
    target: Target = field(default_factory=Target)
    stop_seq: int = 0  # the highest seq the plan can reach
    #: restore only these tables (``restore --tables``); None: every table
    tables: frozenset[str] | None = None

    def keeps(self, table: str) -> bool:
        return self.tables is None or table in self.tables

    def chosen(self, schema: DatabaseSchema) -> DatabaseSchema:
        """``schema`` with only the tables this plan restores (its other objects kept)."""
        if self.tables is None:
            return schema
        return DatabaseSchema(dialect=schema.dialect, tables=[t for t in schema.tables if t.name in self.tables],
                              objects=schema.objects)


def format_ts(ts_us: int, *, precise: bool = False) -> str:
    """``precise``: to the microsecond, as stored (a time a user may paste back as ``--at``)."""
    moment = datetime.fromtimestamp(ts_us // 1_000_000, tz=timezone.utc).replace(microsecond=ts_us % 1_000_000)
    return moment.isoformat(timespec="microseconds" if precise else "milliseconds")


def parse_time(text: str) -> int:
    """ISO 8601 -> microseconds since the epoch; a naive time is UTC (the CLI contract)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadInputError(f"not an ISO 8601 time: {text!r} (e.g. 2026-11-26T21:30:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1_000_000)


def plan_restore(entries: list[ManifestEntry], target: Target, damaged: dict[int, str] | None = None,
                 evidence: Iterable[Evidence] = ()) -> Plan:
    """``damaged``: positions whose manifest entry is unreadable everywhere; a plan that
    might need one of them is refused (exit 3) instead of silently stopping short.
    ``evidence``: witnesses of how far the backups went (``restore.evidence``); a restore
    of the latest point, or of a time past the chain's end, that they show falls short is
    refused (exit 3)."""
    damaged = damaged or {}
    found = shortfall(entries, evidence, damaged)
    if found is not None and (target.seq is None and (target.ts is None or not entries
                                                      or target.ts > (entries[-1].last_ts or 0))):
        raise IntegrityError(found.message())
    if not entries and damaged:
        raise IntegrityError(f"{damaged[min(damaged)]} (no intact copy in any location)")
    if not entries:
        raise BadInputError("no backups found: run `tradevault backup full` first")
    capture_id = entries[-1].capture_id
    fulls = [e for e in entries if e.kind == FULL]
    if target.seq is not None:
        bases = [e for e in fulls if e.last_seq <= target.seq]
    elif target.ts is not None:
        bases = [e for e in fulls if (e.last_ts or 0) <= target.ts]
    else:
        bases = [e for e in fulls if e.capture_id == capture_id] or fulls
    if not bases:
        oldest = min(fulls, key=lambda e: e.n) if fulls else None
        hint = (f"; the oldest restore point is seq {oldest.last_seq} at {format_ts(oldest.last_ts or 0)}"
                if oldest else "")
        raise BadInputError(f"no full backup at or before {target.describe()}{hint}")
    base = bases[-1]
    chain = [
        e for e in entries
        if e.kind == INCREMENTAL and e.capture_id == base.capture_id and e.last_seq > base.last_seq
    ]
    incrementals: list[ManifestEntry] = []
    position = base.last_seq
    for entry in chain:
        if target.seq is not None and position >= target.seq:
            break
        if target.ts is not None and entry.first_ts is not None and entry.first_ts > target.ts:
            break
        if entry.after_seq > position:
            hole = [n for n in damaged if n < entry.n]
            if hole:
                raise IntegrityError(f"{damaged[max(hole)]} (no intact copy in any location)")
            raise IntegrityError(
                f"{entry.object}: seq gap before it (chain is at {position}, it starts after {entry.after_seq})"
            )
        incrementals.append(entry)
        position = entry.last_seq
    later = [n for n in damaged if n > (incrementals[-1].n if incrementals else base.n)]
    reached = (target.seq is not None and position >= target.seq) or (
        target.ts is not None and chain and chain[-1] not in incrementals)
    if later and not reached:
        raise IntegrityError(f"{damaged[min(later)]} (no intact copy in any location): it may hold "
                             f"the changes up to {target.describe()}")
    if target.seq is not None and position < target.seq:
        raise BadInputError(f"seq {target.seq} is beyond the newest stored change (seq {position})")
    return Plan(full=base, incrementals=incrementals, target=target, stop_seq=position)
