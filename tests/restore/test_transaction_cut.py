"""The cut at a restore's target point: whole transactions only, in bounded windows, with a
transaction larger than the window held on disk until its end is known."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from restore.planner import Target
from restore.replay import TransactionCut
from trade_stream.events import INSERT, ChangeEvent


def stream(sizes: list[int]) -> list[ChangeEvent]:
    events, seq = [], 0
    for tx, size in enumerate(sizes):
        for _ in range(size):
            seq += 1
            events.append(ChangeEvent(seq, tx, 1_000 + tx, "t", INSERT, [seq], [seq, f"row {seq}", 1.5]))
    return events


def cut(events: list[ChangeEvent], target: Target, hold: int, split: int) -> tuple[list[list[ChangeEvent]], bool]:
    c = TransactionCut(0, target, hold=hold)
    windows: list[list[ChangeEvent]] = []
    for start in range(0, len(events), split):
        windows += c.feed(events[start:start + split])
        if c.reached:
            break
    if not c.reached:
        windows += c.finish()
    return windows, c.reached


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(1, 12), min_size=1, max_size=8), hold=st.integers(1, 5),
       split=st.integers(1, 20), data=st.data())
def test_cut_keeps_whole_transactions_up_to_the_target_in_bounded_windows(sizes, hold, split, data):
    events = stream(sizes)
    target_seq = data.draw(st.integers(0, len(events) + 1))
    windows, reached = cut(events, Target(seq=target_seq), hold, split)
    kept = [e for w in windows for e in w]
    last_of = {e.tx: e.seq for e in events}
    assert kept == [e for e in events if last_of[e.tx] <= target_seq]
    assert all(0 < len(w) < 2 * hold for w in windows)
    assert reached == any(last_of[e.tx] > target_seq for e in events)


def test_a_transaction_larger_than_the_window_waits_on_disk_and_comes_back_exactly():
    events = stream([2, 30, 3])
    c = TransactionCut(0, Target(seq=32), hold=4)
    windows = list(c.feed(events[:20]))
    assert c.spill is not None and len(c.held) < 4  # the big transaction is on disk, not in memory
    windows += c.feed(events[20:])
    assert c.spill is None  # released: the next transaction began
    windows += c.finish()
    assert c.reached
    assert [e for w in windows for e in w] == events[:32]
    assert max(len(w) for w in windows) <= 4


def test_a_large_transaction_past_the_target_is_dropped_whole():
    events = stream([2, 30])
    windows, reached = cut(events, Target(seq=31), hold=4, split=7)
    assert reached and [e for w in windows for e in w] == events[:2]


def test_a_batch_known_to_fit_whole_passes_without_being_held():
    events = stream([3, 4, 2])
    c = TransactionCut(0, Target(seq=9), hold=2)
    windows = list(c.feed(events[:5]))  # the second transaction is being held, partly on disk
    assert c.spill is not None
    windows += c.whole(events[5:])  # the rest of its incremental ends before the target
    assert c.spill is None and not c.held and [e for w in windows for e in w] == events
