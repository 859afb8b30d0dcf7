"""Exceptions of config_vcs.

Each carries an ``exit_code`` so the CLI (which this package does not import) can map
it to the contract's exit status without knowing our classes: 2 = bad input (nothing
was changed), 3 = integrity failure, 1 = anything else.
"""

from __future__ import annotations


class ConfigVcsError(Exception):
    """Base class; an operational failure (exit 1)."""

    exit_code = 1


class BadInput(ConfigVcsError):
    """The request itself is wrong: unknown revision, bad time, escaping path..."""

    exit_code = 2


class UnknownRevision(BadInput):
    """A revision (or REV:PATH) that does not name anything in the history."""


class BadTime(BadInput):
    """A --at value that is not ISO 8601, or predates the whole history."""


class PathEscapes(BadInput):
    """A path that would leave the target directory (absolute, ``..``, ``.git``)."""


class MissingIdentity(BadInput):
    """Sealed secrets must be decrypted and the age identity to do so is not at hand."""


class NotARepository(BadInput):
    """The directory has no configuration history (yet)."""


class IntegrityFailure(ConfigVcsError):
    """The history itself is damaged (missing objects)."""

    exit_code = 3


class RepositoryBusy(ConfigVcsError):
    """Another writer (a manual ``git commit``, another tradevault) held the locks too long."""
