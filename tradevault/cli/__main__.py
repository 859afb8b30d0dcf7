"""``python -m tradevault.cli``: the same command as ``tradevault``."""

from tradevault.cli import main

main()
