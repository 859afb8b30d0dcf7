"""The chain-scale bench end to end at a tiny size: it builds a real chain, measures the
``tradevault`` command on file and on S3, and its goals read what it measured."""

from __future__ import annotations

import json

import pytest

from bench import chain_bench

pytestmark = pytest.mark.xdist_group("s3")


def test_the_chain_bench_measures_both_backends_at_both_lengths(tmp_path):
    assert chain_bench.main(["--entries", "60", "--rows", "500", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "chain-results.json").read_text())
    for point, length in (("50", 50), ("60", 60)):
        for backend in ("file", "s3"):
            figures = results["measured"][point][backend]
            # the chain as built, plus the three measured incrementals on this copy
            assert figures["entries"] == length + chain_bench.ROUNDS, (point, backend)
            assert figures["restore_objects"] == length + chain_bench.ROUNDS
            assert len(figures["incremental_seconds"]) == chain_bench.ROUNDS
            assert all(0 < r for r in figures["requests"])
    goals = {g["name"]: g for g in results["goals"]}
    requests = goals["s3: requests per incremental (max)"]
    assert requests["value"] == max(max(results["measured"][p]["s3"]["requests"]) for p in ("50", "60"))
