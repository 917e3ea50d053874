"""Errors of the fake kubo daemon, each carrying how kubo's HTTP layer sends it.

- :class:`KuboCommandError`: a command failed.  kubo answers HTTP 500 (400 when
  ``code`` is 1, kubo's "client error") with ``{"Message","Code","Type":"error"}``.
- :class:`KuboRequestError`: the request itself is wrong (unknown option value,
  missing argument, missing file): kubo answers 400 with the message as
  ``text/plain`` (Go's ``http.Error``), not JSON.
- :class:`KuboNotFound`: no such command: 404 ``404 page not found``.
"""

from __future__ import annotations

from ipfscluster.errors import ClusterError

__all__ = [
    "ERR_NORMAL",
    "ERR_CLIENT",
    "KuboCommandError",
    "KuboRequestError",
    "KuboNotFound",
    "DEADLINE_EXCEEDED",
]

ERR_NORMAL = 0
ERR_CLIENT = 1

DEADLINE_EXCEEDED = "context deadline exceeded"


class KuboCommandError(ClusterError):
    """A kubo command failed; ``code`` is kubo's error code (0 normal, 1 client)."""

    def __init__(self, message: str, code: int = ERR_NORMAL, status: int | None = None):
        super().__init__(message, code=code)
        self.http_status = status if status is not None else (400 if code == ERR_CLIENT else 500)

    def body(self) -> dict:
        """The JSON error object kubo sends."""
        return {"Message": self.message, "Code": self.code, "Type": "error"}


class KuboRequestError(ClusterError):
    """The request cannot be parsed (kubo answers 400 text/plain)."""

    http_status = 400


class KuboNotFound(ClusterError):
    """There is no such command (kubo answers 404 text/plain)."""

    http_status = 404

    def __init__(self, message: str = "404 page not found"):
        super().__init__(message)
