"""Configuration history: watch directories, commit changes with dulwich, push to remotes.

Public API (what tradevault's agent, CLI and restore compose):

* ``config_vcs.service.ConfigHistory(paths, remotes, options)`` -- ``start()``,
  ``flush()``, ``stop(flush=True)``, ``status()``, ``wait_pushed(timeout)``;
  ``config_vcs.service.offline_status(paths, remotes, options)``.
* ``config_vcs.options.Options`` -- the tuning knobs; ``Options.repo(path, create=...)``.
* ``config_vcs.history`` -- ``log``, ``diff``, ``show``, ``checkout``, ``commit_at``,
  ``parse_time``, ``write_config_at(repos, when, dest)`` and, by directory names,
  ``export_config_at(paths, when, dest, options)`` (restore's ``--config-to``).
* ``config_vcs.scope.scope_report(path, options)`` -- what a commit would version and
  what it leaves out, by reason (``reasons.py``), writing nothing.
* ``config_vcs.errors`` -- exceptions with ``exit_code`` (2 bad input, 3 integrity).

This package imports neither ``tradevault`` nor the other domain packages.
"""
