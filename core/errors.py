"""Error types the engine raises; each carries a one-line, user-facing message."""

from __future__ import annotations


class CTLensError(Exception):
    """Base class: ``str(err)`` is a complete one-line message for a user."""


class StudyReadError(CTLensError):
    """A path could not be read as a study (missing, unreadable, corrupt, unsupported)."""


class DatasetError(CTLensError):
    """A dataset folder does not match any layout CTLens reads."""


class Cancelled(CTLensError):
    """A long operation stopped because its ``cancel`` callback returned True."""
