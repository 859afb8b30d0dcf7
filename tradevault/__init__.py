"""tradevault composition root: CLI, settings, wiring, agent, scheduler, demo.

The domain lives in ``config_vcs``, ``trade_stream`` and ``restore``; this package only
wires them to configuration and to the command line.
"""

__version__ = "0.1.0"
