"""The chain-scale bench end to end at a tiny size: it builds a real chain, measures the
``tradevault`` command on file and on S3, and its goals read what it measured."""

from __future__ import annotations

import json

import pytest

from bench import chain_bench

pytestmark = pytest.mark.xdist_group("s3")


def test_the_chain_bench_measures_both_backends_at_both_lengths_and_compacts(tmp_path):
    assert chain_bench.main(["--entries", "60", "--rows", "500", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "chain-results.json").read_text())
    for point in ("50", "60"):
        for backend in ("file", "s3"):
            figures = results["measured"][point][backend]
            assert len(figures["incremental_seconds"]) == chain_bench.ROUNDS
            assert all(0 < r for r in figures["requests"])
            assert figures["positions"] > figures["entries"]  # merged entries took positions too
    figures = results["measured"]["60"]["file"]
    # 60 incrementals at fan-in 10 make six of level 1; the three measured ones stay level 0
    assert figures["restore_objects"] == 1 + 6 + 3, figures
    assert figures["restore_objects_middle"] == 1 + 3, figures  # the 30th: the first three merged
    built = results["build_requests_per_incremental"]
    assert built["incremental"] > 0 and built["compaction"] > 0, built
    goals = {g["name"]: g for g in results["goals"]}
    requests = goals["s3: requests per incremental (max)"]
    assert requests["value"] == max(max(results["measured"][p]["s3"]["requests"]) for p in ("50", "60"))
