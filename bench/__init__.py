"""The tradevault benchmark: ``python -m bench --rows N --out DIR`` (run from the project root).

See bench/cli.py for what is measured and how; results go to DIR/results.json and
DIR/RESULTS.md.
"""
