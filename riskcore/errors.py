"""Exceptions raised by riskcore. Every message names what is wrong and where."""
from __future__ import annotations


class RiskcoreError(Exception):
    """Base class of riskcore's own errors."""


class BracketError(RiskcoreError, ValueError):
    """A maintenance-margin bracket table is malformed; the message names the tier."""


class Refused(RiskcoreError):
    """The book refused an action; nothing was changed.

    ``code`` is a short machine-readable reason (the reference engine records it
    on a ``refused`` event); ``blocker`` names what stood in the way, when a
    position or order did.
    """

    def __init__(self, message: str, code: str, blocker: str | None = None):
        super().__init__(message)
        self.code = code
        self.blocker = blocker
