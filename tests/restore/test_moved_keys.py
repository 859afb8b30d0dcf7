"""Runs of updates that move keys (restore/moved_keys.py): where a run is cut. Pure."""

from __future__ import annotations

from restore.moved_keys import cut, moves_keys, stretches


def _update(old: int, new: int) -> tuple:
    return (new, f"row {old}", old)  # new row (id, v), then the old key


def test_a_shift_by_one_statement_is_one_stretch():
    shift = [_update(k, k + 1) for k in (1, 2, 3)]
    assert moves_keys(shift, [0], 1)
    assert stretches(shift, 1) == [shift]


def test_a_key_updated_again_starts_a_new_stretch():
    run = [_update(1, 2), _update(2, 3), _update(2, 1)]  # the third: the row now at 2, again
    assert stretches(run, 1) == [run[:2], run[2:]]


def test_a_row_moved_twice_is_cut_before_its_second_move():
    chain = [_update(1, 2), _update(2, 3)]  # if 2 was not there before, the same row moved twice
    assert cut(chain, [0], 1) == 1
    assert cut([_update(1, 2), _update(5, 6)], [0], 1) is None  # nothing to cut: a divergence


def test_updates_that_keep_their_keys_move_nothing():
    assert not moves_keys([(1, "a", 1), (2, "b", 2)], [0], 1)
