"""``python -m bench --rows N --out DIR``: the benchmark (see bench/cli.py)."""

from bench.cli import main

raise SystemExit(main())
