"""The large-transaction scenario of the PostgreSQL bench, end to end at a tiny size: it
runs the real commands, checks its restores, and its goals read what it measured."""

from __future__ import annotations

import pytest

from bench import pg_large_tx

pytestmark = pytest.mark.xdist_group("postgres")


def test_the_large_transaction_scenario_measures_and_checks_its_restores():
    m = pg_large_tx.run([2_000])
    (size,) = m["sizes"]
    assert size["incremental"]["events"] == 2_000 and size["floor"]["seconds"] > 0
    assert size["restore_postgres"]["equals_source"] and size["restore_sqlite"]["rows_equal"]
    names = {g["name"]: g for g in pg_large_tx.goals(m)}
    memory = names["PostgreSQL large transactions: peak memory of backup incremental, any size (MB)"]
    assert memory["value"] == round(size["incremental"]["peak_mb"], 4) and 0 < memory["value"]
    assert pg_large_tx.parse_sizes("1_000,10") == [10, 1000]
