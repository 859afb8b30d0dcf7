"""Coverage-guided fuzzing of the same decoders with atheris (libFuzzer), when installed.

atheris is not a project dependency: ``.venv/bin/pip install atheris`` (a manylinux
wheel, no compiler needed), then e.g.

    python -m tests.campaigns.fuzz_atheris segments -runs=200000 -max_len=4096
    python -m tests.campaigns.fuzz_atheris object -max_total_time=120

Targets: segments | object | manifest (see tests/campaigns/fuzz.py). Seeds: the valid
encodings of fuzz.py. Any exception other than IntegrityError stops the run with the
crashing input written by libFuzzer (crash-<sha1>); exit status 0 means none was found.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path


def main() -> int:
    try:
        import atheris
    except ImportError:
        print("atheris is not installed (.venv/bin/pip install atheris)", file=sys.stderr)
        return 2
    with atheris.instrument_imports():
        from trade_stream import manifest, object_format, segments, values  # noqa: F401
    from tests.campaigns import fuzz
    from trade_stream.errors import IntegrityError

    if len(sys.argv) < 2 or sys.argv[1] not in fuzz.TARGETS:
        print(__doc__, file=sys.stderr)
        return 2
    target = sys.argv[1]
    fn = fuzz.TARGETS[target][0]
    corpus = Path(tempfile.mkdtemp(prefix=f"tradevault-atheris-{target}-"))
    seed = {"segments": fuzz.SEGMENT, "object": fuzz.OBJECT, "manifest": fuzz.ENTRY}[target]
    (corpus / "seed").write_bytes(seed)

    def one_input(data: bytes) -> None:
        try:
            fn(data)
        except IntegrityError:
            pass

    args = sys.argv[2:]
    if not any(a.startswith("-artifact_prefix=") for a in args):
        args.append(f"-artifact_prefix={corpus}/")  # crash files there, not in the working directory
    print(f"atheris: corpus and crash files in {corpus}", file=sys.stderr)
    atheris.Setup([sys.argv[0], *args, str(corpus)], one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
