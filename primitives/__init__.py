"""Small building blocks shared by the domain packages, which may not import each other:
``config_vcs`` and ``trade_stream`` both use these (see the import contracts in
pyproject.toml). Nothing here knows about backups or git."""
