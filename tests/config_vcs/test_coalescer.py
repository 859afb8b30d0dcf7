"""Coalescer timing: one commit per burst, bounded by the maximum delay (no sleeping)."""

from config_vcs.coalescer import Coalescer


def test_nothing_pending_is_never_due():
    c = Coalescer(0.5, 5.0)
    assert not c.pending and c.deadline() is None and not c.due(1e9)


def test_burst_is_due_after_quiet_period_from_last_event():
    c = Coalescer(0.5, 5.0)
    for t in (10.0, 10.1, 10.2, 10.3):
        c.add(t)
    assert not c.due(10.79)
    assert c.due(10.8)
    assert c.take() == 4
    assert not c.pending


def test_continuous_events_are_due_at_max_delay_after_first_event():
    c = Coalescer(0.5, 2.0)
    t = 100.0
    while t < 103.0:
        c.add(t)
        t += 0.1
    assert c.deadline() == 102.0
    assert c.due(102.0)


def test_take_starts_a_new_burst():
    c = Coalescer(0.5, 2.0)
    c.add(1.0)
    c.take()
    c.add(50.0)
    assert c.deadline() == 50.5


def test_max_delay_never_shorter_than_quiet_period():
    c = Coalescer(3.0, 1.0)
    c.add(0.0)
    assert c.deadline() == 3.0
