"""Typed errors of ipfscluster.

Every error a user or a peer can cause is a subclass of :class:`ClusterError`.  Each
class carries the HTTP status the REST API answers with (``http_status``) and the tag
AMP uses for it on the wire (``amp_tag``, the class name as bytes).  Messages say what
went wrong *and* what to do about it; they are shown to operators without a traceback.

Conventions for adding errors (several components add theirs here):
- one class per distinct failure a caller may want to tell apart;
- put it in the section of its component below, keep sections append-only;
- ``message`` is the full human sentence; extra fields are keyword attributes.
"""

from __future__ import annotations


class ClusterError(Exception):
    """Base of every ipfscluster error.

    ``str(err)`` is the message shown to users.
    """

    http_status = 500

    def __init__(self, message: str = "", **fields):
        super().__init__(message or self.__class__.__doc__.strip().splitlines()[0])
        self.message = self.args[0]
        for name, value in fields.items():
            setattr(self, name, value)

    @classmethod
    def amp_tag(cls) -> bytes:
        return cls.__name__.encode("ascii")

    def __str__(self) -> str:
        return self.message


def all_error_classes() -> list[type[ClusterError]]:
    """Every ClusterError subclass defined so far (for AMP error tables)."""
    seen: list[type[ClusterError]] = []
    stack = [ClusterError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen


# --- values: CIDs, multiaddrs, peer IDs, keys ---------------------------------------


class InvalidInput(ClusterError):
    """The input is not valid."""

    http_status = 400


class InvalidCID(InvalidInput):
    """The text is not a valid CID."""


class InvalidMultiaddr(InvalidInput):
    """The text is not a valid multiaddress."""


class InvalidPeerID(InvalidInput):
    """The text is not a valid peer ID."""


class InvalidKey(InvalidInput):
    """The private key cannot be decoded."""


# --- configuration ------------------------------------------------------------------


class ConfigError(ClusterError):
    """The configuration is not valid.

    ``key`` is the dotted ``section.key`` at fault (or "" for the whole file) and
    ``value`` the offending value, when there is one.
    """

    http_status = 400


class IdentityMismatch(ConfigError):
    """The configured peer ID does not belong to the configured private key."""


# --- shared state / cluster operations ----------------------------------------------


class NotFound(ClusterError):
    """The item is not part of the shared state."""

    http_status = 404
