"""Retention is a pure function of the catalog: property tests over generated catalogs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trade_stream.manifest import FULL, INCREMENTAL, ManifestEntry, chain_problems, seal
from trade_stream.retention import RetentionPolicy, plan_retention, restorable_points

HOUR = 3600 * 1_000_000


@st.composite
def catalogs(draw):
    """A chain as the agent writes it: incrementals every step, fulls now and then."""
    entries, previous, seq, ts, covered = [], None, 0, 1_700_000_000 * 1_000_000, 0
    for n in range(1, draw(st.integers(1, 60)) + 1):
        ts += draw(st.integers(1, 30)) * HOUR
        kind = FULL if n == 1 or draw(st.integers(0, 5)) == 0 else INCREMENTAL
        if kind == FULL:
            entry = ManifestEntry(n=n, kind=FULL, object=f"o{n}", source="s", capture_id="c", after_seq=seq,
                                  first_seq=seq, last_seq=seq, first_ts=ts, last_ts=ts, count=1, bytes=1,
                                  sha256="", schema_hash="", created_at=ts)
        else:
            grow = draw(st.integers(1, 50))
            entry = ManifestEntry(n=n, kind=INCREMENTAL, object=f"o{n}", source="s", capture_id="c",
                                  after_seq=covered, first_seq=covered + 1, last_seq=seq + grow,
                                  first_ts=ts - HOUR, last_ts=ts, count=grow, bytes=1, sha256="",
                                  schema_hash="", created_at=ts)
            seq += grow
            covered = seq
        entry = seal(entry, previous)
        if kind == FULL and covered == 0:
            covered = seq
        entries.append(entry)
        previous = entry
    return entries


policies = st.builds(
    RetentionPolicy,
    keep_full=st.integers(0, 5),
    pitr_seconds=st.integers(0, 200).map(lambda h: h * 3600.0),
    keep_daily=st.integers(0, 4),
    keep_weekly=st.integers(0, 3),
    keep_monthly=st.integers(0, 2),
)


@settings(max_examples=300)
@given(catalogs(), policies, st.integers(0, 400))
def test_no_kept_restore_point_loses_an_object_it_needs(entries, policy, hours_later):
    now = entries[-1].last_ts + hours_later * HOUR
    plan = plan_retention(entries, policy, now)
    assert sorted(plan.keep + plan.delete) == [e.n for e in entries]
    kept = [e for e in entries if e.n in plan.keep]
    reachable_before = restorable_points(entries)
    reachable_after = restorable_points(kept)
    # every instant of the window: the newest full at or before it and the chain after it
    window_start = now - int(policy.pitr_seconds * 1_000_000)
    for entry in entries:
        if entry.last_seq in reachable_before and (entry.last_ts or 0) >= window_start:
            assert entry.last_seq in reachable_after, f"window point seq {entry.last_seq} lost"
    for n, reason in plan.reasons.items():
        entry = next(e for e in entries if e.n == n)
        if entry.kind == FULL:
            assert entry.last_seq in reachable_after, f"kept full {n} ({reason}) not restorable"
    newest_full = [e for e in entries if e.kind == FULL][-1]
    assert newest_full.n in plan.keep
    assert entries[-1].n in plan.keep  # the latest state is always restorable


@given(catalogs(), policies)
def test_what_retention_keeps_still_verifies_as_a_chain(entries, policy):
    from trade_stream.manifest import Pruned, PrunedRecord

    plan = plan_retention(entries, policy, entries[-1].last_ts)
    pruned = Pruned(records={e.n: PrunedRecord(e.n, e.entry_hash, e.object, 0) for e in entries if e.n in plan.delete})
    kept = [e for e in entries if e.n in plan.keep]
    assert chain_problems(kept, pruned) == []
    folded = Pruned(pruned.folded(entries[-1].n))  # as a checkpoint keeps them: runs, no records
    assert chain_problems(kept, folded) == []
    assert list(folded.positions()) == sorted(plan.delete)


def test_keep_full_counts_the_newest_fulls():
    entries = []
    previous = None
    for n in range(1, 6):
        entry = seal(ManifestEntry(n=n, kind=FULL, object=f"o{n}", source="s", capture_id="c", after_seq=n,
                                   first_seq=n, last_seq=n, first_ts=n * HOUR, last_ts=n * HOUR, count=1,
                                   bytes=1, sha256="", schema_hash="", created_at=0), previous)
        entries.append(entry)
        previous = entry
    plan = plan_retention(entries, RetentionPolicy(keep_full=2, pitr_seconds=0), 10 * HOUR)
    assert plan.keep == [4, 5] and plan.delete == [1, 2, 3]
