"""The pure core of "no silently older restore": a witness of a point beyond the stored
chain is a shortfall; a chain that reaches every witness is not."""

from __future__ import annotations

from restore.evidence import Evidence, shortfall
from trade_stream.manifest import FULL, INCREMENTAL, ManifestEntry


def chain(*last_seqs: int) -> list[ManifestEntry]:
    """A full backup at seq 0, then one incremental per given end seq (entries #1, #2...)."""
    entries = [ManifestEntry(n=1, kind=FULL, object="o1", source="s", capture_id="c", after_seq=0, first_seq=0,
                             last_seq=0, first_ts=1, last_ts=1, count=1, bytes=1, sha256="", schema_hash="",
                             created_at=1)]
    after = 0
    for n, last in enumerate(last_seqs, start=2):
        entries.append(ManifestEntry(n=n, kind=INCREMENTAL, object=f"o{n}", source="s", capture_id="c",
                                     after_seq=after, first_seq=after + 1, last_seq=last, first_ts=n, last_ts=n,
                                     count=last - after, bytes=1, sha256="", schema_hash="", created_at=n))
        after = last
    return entries


def test_heads_at_the_chain_end_are_no_shortfall() -> None:
    entries = chain(100, 540)
    assert shortfall(entries, [Evidence("location a's head", seq=540, n=3)]) is None
    assert shortfall(entries, [Evidence("the source database's change log", seq=540)]) is None
    assert shortfall(entries, []) is None


def test_a_head_beyond_the_catalog_names_the_missing_entries() -> None:
    entries = chain(100, 540)
    found = shortfall(entries, [Evidence("location a's head", seq=540, n=3),
                                Evidence("location b's head", seq=649, n=4)])
    assert found is not None and found.witness.where == "location b's head"
    message = found.message()
    assert "ends at #3 (seq 540)" in message and "#4 (seq 649)" in message
    assert "entry #4 is in no location" in message and "restore --seq 540" in message
    found = shortfall(entries, [Evidence("location b's head", seq=700, n=6)])
    assert found is not None and "entries #4..#6 are in no location" in found.message()


def test_the_source_having_let_go_of_newer_changes_is_a_shortfall() -> None:
    found = shortfall(chain(100, 540), [Evidence("the source database's change log", seq=649)])
    assert found is not None
    assert "the changes after seq 540 are in no location" in found.message()


def test_the_strongest_witness_is_named() -> None:
    found = shortfall(chain(100), [Evidence("the source", seq=300), Evidence("location a's head", seq=200, n=5)])
    assert found is not None and found.witness.n == 5


def test_a_damaged_entry_is_not_reported_missing() -> None:
    # entry #4 exists but cannot be read: the planner reports it as damage
    assert shortfall(chain(100, 540), [Evidence("location a's head", seq=649, n=4)], damaged=[4]) is None


def test_every_entry_lost_while_a_head_remains() -> None:
    found = shortfall([], [Evidence("location a's head", seq=10, n=2)])
    assert found is not None and "no backup is left in any location" in found.message()
    assert shortfall([], [Evidence("the source", seq=0)]) is None  # capture installed, nothing stored yet
