"""Reliability campaigns (issue 8): crash, corruption, faults, fuzz.

Each module is a script (``python -m tests.campaigns.crash --runs 50``) and exposes a
``run(...)`` function that the pytest wrappers in ``test_campaigns.py`` call with small
sizes. See RELIABILITY.md.
"""
