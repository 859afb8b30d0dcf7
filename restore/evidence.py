"""How far the backups went, by every witness a restore can reach, against how far the
stored chain goes (pure).

A restore of "the latest point" that quietly stops at an older entry, because the newest
ones were deleted or lost in every location, looks like success and is not: the drill
passes, the bot restarts from an older state. The witnesses are each location's head
record (written after every entry: the newest entry it was given) and the source
database's change log (what it has let go of was stored). When one of them shows a point
the chain does not reach, the restore refuses (exit 3) and names the missing range;
``--seq``/``--at`` at or before the chain's end restore the older point knowingly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from trade_stream.manifest import ManifestEntry
from trade_stream.source import Source
from trade_stream.storage.store import BackupStore


@dataclass(frozen=True)
class Evidence:
    """One witness: who says it (``where``), the newest entry number it saw (None: it
    only knows a seq), the seq it reached, and when (µs, when known)."""

    where: str
    seq: int
    n: int | None = None
    ts: int | None = None


@dataclass(frozen=True)
class Shortfall:
    """The chain ends before what ``witness`` saw."""

    chain_n: int | None
    chain_seq: int | None
    witness: Evidence

    def message(self) -> str:
        seen = f"#{self.witness.n} (seq {self.witness.seq})" if self.witness.n is not None \
            else f"seq {self.witness.seq}"
        if self.chain_n is None:
            return (f"no backup is left in any location, but {self.witness.where} shows {seen}: "
                    "every entry was lost")
        first, last = self.chain_n + 1, self.witness.n
        if last is None:
            missing = f"the changes after seq {self.chain_seq} are"
        elif first == last:
            missing = f"entry #{first} is"
        else:
            missing = f"entries #{first}..#{last} are"
        return (f"the newest backups are missing: the stored chain ends at #{self.chain_n} "
                f"(seq {self.chain_seq}), but {self.witness.where} shows {seen}; {missing} in no "
                f"location. `restore --seq {self.chain_seq}` restores the older point knowingly")


def shortfall(entries: list[ManifestEntry], evidence: Iterable[Evidence],
              damaged: Iterable[int] = ()) -> Shortfall | None:
    """The strongest witness of a point beyond the stored chain, or None when the chain
    reaches everything any witness saw. ``damaged``: entry numbers that exist but cannot be
    read (they are reported as damage, not as missing)."""
    known = [e.n for e in entries] + list(damaged)
    chain_n = max(known) if known else None
    chain_seq = max((e.last_seq for e in entries), default=None)
    beyond = [w for w in evidence
              if (w.n is not None and (chain_n is None or w.n > chain_n))
              or (w.n is None and w.seq > (chain_seq if chain_seq is not None else 0))]
    if not beyond:
        return None
    strongest = max(beyond, key=lambda w: (w.n if w.n is not None else -1, w.seq))
    return Shortfall(chain_n, chain_seq, strongest)


# -- the one function here that reads --------------------------------------------------------
def witnesses(store: BackupStore, source: Source | None = None) -> list[Evidence]:
    """Every witness a restore can reach: each location's head record, and the source
    database's change log when the database is there (a lost or corrupt one says nothing)."""
    found = [Evidence(f"location {name}'s head record", seq=head.last_seq, n=head.n, ts=head.created_at)
             for name, head in store.heads().items() if head is not None]
    if source is not None:
        try:
            upto = source.stored_upto()
        except Exception:  # noqa: BLE001 - a damaged database is no witness; restoring it is the job
            upto = None
        if upto:
            found.append(Evidence("the source database's change log (already pruned up to it)", seq=upto))
    return found
