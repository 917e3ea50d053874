"""Fault knobs of a fake daemon: make it slow, failing or hanging from a test.

Every knob names an *endpoint* as the API path after ``/api/v0/`` (``"pin/add"``,
``"id"``...) or ``"*"`` for all of them.  The daemon checks, in this order, for each
request: down (connection dropped), latency (wait on the injected clock), hang
(wait until released), failing CID (answer the injected error).  Being *down* is
switched on the daemon itself (:meth:`FakeIPFS.go_down`) because it also stops the
listener; free space is the daemon's ``storage_max`` (:meth:`FakeIPFS.set_free_space`).
"""

from __future__ import annotations

import attrs
from twisted.internet import defer

from ipfscluster.cid import CID

__all__ = ["ALL", "InjectedError", "Hang", "Faults"]

ALL = "*"


@attrs.frozen
class InjectedError:
    """The error a failing CID answers with: kubo's ``{"Message","Code","Type"}``
    body with HTTP ``status``."""

    message: str
    code: int = 0
    status: int = 500


class Hang:
    """Requests to an endpoint wait here until :meth:`release` is called (or their
    client goes away).  ``waiting`` counts the requests held right now."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.released = False
        self._held: list[defer.Deferred] = []

    @property
    def waiting(self) -> int:
        """How many requests are held right now."""
        return len(self._held)

    def wait(self) -> defer.Deferred:
        """Return a Deferred that fires when the hang is released (at once if it
        is already); cancelling it drops the request from the hang."""
        if self.released:
            return defer.succeed(None)

        def cancel(d):
            if d in self._held:
                self._held.remove(d)

        d = defer.Deferred(cancel)
        self._held.append(d)
        return d

    def release(self) -> None:
        """Let every held request (and every later one) through."""
        self.released = True
        held, self._held = self._held, []
        for d in held:
            d.callback(None)


class Faults:
    """The fault knobs of one daemon.  All start off."""

    def __init__(self):
        self._latency: dict[str, float] = {}
        self._failing: dict[bytes, tuple[InjectedError, frozenset | None]] = {}
        self._hangs: dict[str, Hang] = {}

    # --- latency ----------------------------------------------------------------------

    def set_latency(self, seconds: float, endpoint: str = ALL) -> None:
        """Delay every request to ``endpoint`` by ``seconds`` (0 removes it)."""
        if seconds:
            self._latency[endpoint] = float(seconds)
        else:
            self._latency.pop(endpoint, None)

    def latency_for(self, endpoint: str) -> float:
        """The delay for ``endpoint`` (its own setting first, else ``"*"``)."""
        return self._latency.get(endpoint, self._latency.get(ALL, 0.0))

    # --- failing CIDs -----------------------------------------------------------------

    def fail_cid(
        self,
        cid,
        message: str = "injected failure",
        *,
        code: int = 0,
        status: int = 500,
        endpoints=None,
    ) -> None:
        """Make requests naming ``cid`` (any version) fail with ``message``.

        ``endpoints``: an iterable of endpoint names to limit the failure to (default:
        every endpoint that takes CID arguments).
        """
        cid = CID.parse(cid) if isinstance(cid, str) else cid
        scope = frozenset(endpoints) if endpoints is not None else None
        self._failing[cid.multihash] = (InjectedError(message, code, status), scope)

    def clear_cid(self, cid) -> None:
        """Stop failing ``cid``."""
        cid = CID.parse(cid) if isinstance(cid, str) else cid
        self._failing.pop(cid.multihash, None)

    def failure_for(self, endpoint: str, cids) -> InjectedError | None:
        """Return the injected error for a request to ``endpoint`` naming ``cids``,
        or None."""
        for cid in cids:
            found = self._failing.get(cid.multihash)
            if found is None:
                continue
            error, scope = found
            if scope is None or endpoint in scope:
                return error
        return None

    # --- hangs ------------------------------------------------------------------------

    def hang(self, endpoint: str = ALL) -> Hang:
        """Hold every request to ``endpoint`` until the returned Hang is released."""
        current = self._hangs.get(endpoint)
        if current is None or current.released:
            current = self._hangs[endpoint] = Hang(endpoint)
        return current

    def hang_for(self, endpoint: str) -> Hang | None:
        """The active (unreleased) hang for ``endpoint`` or ``"*"``, or None."""
        for key in (endpoint, ALL):
            hang = self._hangs.get(key)
            if hang is not None and not hang.released:
                return hang
        return None

    def release(self) -> None:
        """Release every hang."""
        hangs, self._hangs = self._hangs, {}
        for hang in hangs.values():
            hang.release()

    def clear(self) -> None:
        """Switch every knob off (and release the hangs)."""
        self._latency.clear()
        self._failing.clear()
        self.release()
