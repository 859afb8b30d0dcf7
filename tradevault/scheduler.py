"""When jobs are due: pure functions of the clock (the agent's loop asks them).

Full backups follow a cron expression in the agent's local time (croniter) and wait
while a quiet-hours window is open (``"Mon-Fri 08:00-22:00"``, in a configured time
zone): trading hours are for trading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WINDOW = re.compile(
    r"^\s*(?:(?P<d1>[A-Za-z]{3})(?:\s*-\s*(?P<d2>[A-Za-z]{3}))?\s+)?(?P<t1>\d{1,2}:\d{2})\s*-\s*(?P<t2>\d{1,2}:\d{2})\s*$"
)


class ScheduleError(ValueError):
    exit_code = 2


@dataclass(frozen=True)
class Window:
    """Days (0 = Monday) and a daily time span; a span past midnight wraps."""

    days: frozenset[int]
    start: time
    end: time

    def contains(self, moment: datetime) -> bool:
        t = moment.time()
        if self.start <= self.end:
            return moment.weekday() in self.days and self.start <= t < self.end
        if t >= self.start:
            return moment.weekday() in self.days
        return (moment.weekday() - 1) % 7 in self.days and t < self.end


def parse_window(text: str) -> Window:
    match = _WINDOW.match(text)
    if not match:
        raise ScheduleError(f"quiet_hours: cannot read {text!r} (e.g. \"Mon-Fri 08:00-22:00\")")
    d1, d2 = match.group("d1"), match.group("d2")
    try:
        first = DAYS.index(d1.lower()) if d1 else 0
        last = DAYS.index(d2.lower()) if d2 else (first if d1 else 6)
        start = time.fromisoformat(match.group("t1").zfill(5))
        end = time.fromisoformat(match.group("t2").zfill(5))
    except ValueError:
        raise ScheduleError(f"quiet_hours: cannot read {text!r} (days Mon..Sun, times HH:MM)") from None
    days = {(first + i) % 7 for i in range((last - first) % 7 + 1)}
    return Window(frozenset(days), start, end)


def zone(name: str) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r}") from None


def check_cron(expression: str) -> None:
    if not croniter.is_valid(expression):
        raise ScheduleError(f"not a cron expression: {expression!r} (e.g. \"0 3 * * *\")")


def next_cron(expression: str, after: datetime) -> datetime:
    """The first time the cron expression fires strictly after ``after`` (same tz)."""
    return croniter(expression, after).get_next(datetime)


def defer_past_quiet_hours(moment: datetime, windows: list[Window], tz: ZoneInfo | None) -> datetime:
    """``moment`` itself, or the end of the quiet window(s) it falls in."""
    local = moment.astimezone(tz) if tz else moment
    for _ in range(8 * 24 * 4):  # at most a week of 15-minute steps: windows never cover all time
        inside = [w for w in windows if w.contains(local)]
        if not inside:
            return local.astimezone(moment.tzinfo) if moment.tzinfo else local
        window = inside[0]
        end = local.replace(hour=window.end.hour, minute=window.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        local = end
    raise ScheduleError("quiet_hours cover the whole week: a full backup could never run")


def next_full(expression: str, after: datetime, windows: list[Window], tz: ZoneInfo | None) -> datetime:
    return defer_past_quiet_hours(next_cron(expression, after), windows, tz)
