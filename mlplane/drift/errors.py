"""The one error the drift job reports: a message that says what and where, never a traceback."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


class DriftError(Exception):
    """A problem with the job's input or output; the message names the source and the cause."""


def shown(uri: str) -> str:
    """``uri`` as it may appear in a message: without user information (credentials)."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
