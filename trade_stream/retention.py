"""Which backups to keep: a pure function of the catalog, in the style of borg's ``prune``.

Restore points are the full backups plus every instant of the point-in-time window. The
*anchor* is the newest full backup taken at or before the window's start (or the oldest
full when none is that old): it and everything after it are kept, so every instant of the
window stays restorable. Before the anchor, only full backups chosen by ``keep_full``
(newest N) and the grandfather-father-son counts survive, each as a restore point of its
own; every incremental before the anchor goes. The newest full backup is always kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from trade_stream.manifest import FULL, ManifestEntry


@dataclass(frozen=True)
class RetentionPolicy:
    keep_full: int = 7  # newest N full backups
    pitr_seconds: float = 7 * 86400  # every instant of this window stays restorable
    keep_daily: int = 0  # newest full of each of the last N days that have one
    keep_weekly: int = 0
    keep_monthly: int = 0


@dataclass
class RetentionPlan:
    keep: list[int] = field(default_factory=list)
    delete: list[int] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)  # why each kept entry is kept


def _bucket(ts_us: int, period: str) -> str:
    moment = datetime.fromtimestamp(ts_us / 1e6, tz=timezone.utc)
    if period == "daily":
        return moment.strftime("%Y-%m-%d")
    if period == "weekly":
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    return moment.strftime("%Y-%m")


def plan_retention(entries: list[ManifestEntry], policy: RetentionPolicy, now_us: int) -> RetentionPlan:
    """``entries`` sorted by n (one capture chain or several: only the latest matters for
    the window). Nothing is deleted while there is no full backup."""
    plan = RetentionPlan()
    fulls = [e for e in entries if e.kind == FULL]
    if not fulls:
        plan.keep = [e.n for e in entries]
        plan.reasons = {e.n: "no full backup yet" for e in entries}
        return plan
    window_start = now_us - int(policy.pitr_seconds * 1_000_000)
    old_enough = [f for f in fulls if (f.last_ts or 0) <= window_start]
    anchor = old_enough[-1] if old_enough else fulls[0]
    reasons: dict[int, str] = {}
    for entry in entries:
        if entry.n >= anchor.n:
            reasons[entry.n] = "point-in-time window"
    for full in fulls[::-1][: policy.keep_full]:
        reasons.setdefault(full.n, f"newest {policy.keep_full} full")
    for period, count in (("daily", policy.keep_daily), ("weekly", policy.keep_weekly),
                          ("monthly", policy.keep_monthly)):
        seen: set[str] = set()
        for full in fulls[::-1]:
            if len(seen) >= count:
                break
            bucket = _bucket(full.last_ts or 0, period)
            if bucket not in seen:
                seen.add(bucket)
                reasons.setdefault(full.n, f"{period} {bucket}")
    reasons.setdefault(fulls[-1].n, "newest full")
    plan.reasons = reasons
    plan.keep = [e.n for e in entries if e.n in reasons]
    plan.delete = [e.n for e in entries if e.n not in reasons]
    return plan


def restorable_points(entries: list[ManifestEntry]) -> set[int]:
    """Seqs a restore can reach exactly with these entries (used by the property test):
    each full's seq, and every incremental end reachable through a gap-free chain."""
    points: set[int] = set()
    covered: int | None = None
    for entry in entries:
        if entry.kind == FULL:
            points.add(entry.last_seq)
            covered = entry.last_seq if covered is None else max(covered, entry.last_seq)
        elif covered is not None and entry.after_seq <= covered:
            points.add(entry.last_seq)
            covered = entry.last_seq
        else:
            covered = None
    return points
