"""The campaigns' small default runs (the large runs: ``python -m tests.campaigns.<name>``,
see RELIABILITY.md). Each prints its tally (``pytest -s`` shows it); a failure message
holds the seed and everything needed to replay it.

TRADEVAULT_CAMPAIGN_SEED overrides the fixed seeds below.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.campaigns import corruption, crash, faults, fuzz
from tests.campaigns.common import private_root

SEED = os.environ.get("TRADEVAULT_CAMPAIGN_SEED")


def _seed(default: int) -> int:
    return int(SEED) if SEED else default


def _run(name: str, fn, **kwargs):
    root = private_root(name)
    tally = fn(root=root, **kwargs)
    print(tally.report())
    tally.assert_clean()
    shutil.rmtree(root, ignore_errors=True)
    return tally


def test_crash_campaign_small():
    """4 SIGKILLs (agent, backup full, backup incremental, restore) under load + 1 of
    config watch during a commit/push burst."""
    tally = _run("crash", crash.run, runs=4, config_runs=1, seed=_seed(20261126))
    assert tally.runs == 5


def test_corruption_campaign_small():
    """Every kind of stored object damaged once (+ a config pack file)."""
    tally = _run("corruption", corruption.run, cases=len(corruption.LABELS) + 1, seed=_seed(11))
    assert tally.detected == tally.faults == len(corruption.LABELS) + 1


def test_fault_campaign_small_local_faults():
    """Read-only location mid-upload, disk full, a long writer lock."""
    _run("faults", faults.run, rounds=1, seed=_seed(3), scenarios=faults.SCENARIOS)


def test_fault_campaign_small_two_primaries_after_a_promote():
    tally = _run("faults-twoprimaries", faults.run, rounds=1, seed=_seed(3), scenarios=("twoprimaries",))
    assert tally.runs == 1 and tally.detected == 1


def test_fault_campaign_small_postgres_slot_lost_while_the_agent_runs():
    tally = _run("faults-pgslot", faults.run, rounds=1, seed=_seed(3), scenarios=("pgslot",))
    assert tally.runs == 1 and tally.detected == 1, tally.notes  # not skipped: PostgreSQL ran


def test_fault_campaign_small_git_remote_that_never_answers():
    _run("faults-git", faults.run, rounds=1, seed=_seed(3), scenarios=("githang",))


@pytest.mark.xdist_group("s3")
def test_fault_campaign_small_s3_stopped():
    _run("faults-s3", faults.run, rounds=1, seed=_seed(3), scenarios=("s3down",))


def test_fuzz_manifest_decoder():
    counter = fuzz.fuzz("manifest", 800, derandomize=True)
    assert counter.malformed > 700


def test_fuzz_segment_and_event_codec():
    fuzz.fuzz("segments", 800, derandomize=True)


def test_fuzz_object_reader():
    fuzz.fuzz("object", 800, derandomize=True)
