"""Schedules: cron via croniter, full backups wait out quiet hours."""

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from tradevault.scheduler import ScheduleError, check_cron, next_full, parse_window


def test_daily_cron_fires_at_three():
    after = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
    assert next_full("0 3 * * *", after, [], None) == datetime(2026, 11, 27, 3, 0, tzinfo=timezone.utc)


def test_full_backup_due_in_trading_hours_waits_for_the_window_to_end():
    windows = [parse_window("Mon-Fri 08:00-22:00")]
    tz = ZoneInfo("Europe/Berlin")
    after = datetime(2026, 11, 26, 8, 30, tzinfo=tz)  # a Thursday
    assert next_full("0 9 * * *", after, windows, tz) == datetime(2026, 11, 26, 22, 0, tzinfo=tz)
    saturday = datetime(2026, 11, 28, 8, 30, tzinfo=tz)
    assert next_full("0 9 * * *", saturday, windows, tz) == datetime(2026, 11, 28, 9, 0, tzinfo=tz)


def test_window_past_midnight_wraps():
    window = parse_window("22:00-02:00")
    assert window.contains(datetime(2026, 11, 26, 23, 0))
    assert window.contains(datetime(2026, 11, 27, 1, 0))
    assert not window.contains(datetime(2026, 11, 27, 3, 0))


def test_bad_schedules_are_bad_input():
    with pytest.raises(ScheduleError):
        check_cron("every day")
    with pytest.raises(ScheduleError):
        parse_window("weekdays 9-5")
    with pytest.raises(ScheduleError):
        next_full("0 3 * * *", datetime(2026, 1, 1),
                  [parse_window("Mon-Sun 00:00-23:59"), parse_window("23:59-00:00")], None)
