"""The network that fake daemons share, standing in for libp2p and bitswap.

Every :class:`~ipfscluster.testing.fakeipfs.daemon.FakeIPFS` belongs to one
:class:`FakeNetwork` (its own private one unless given).  Through it a daemon:

- fetches a block it lacks from any other *online* member that has it (bitswap);
- waits for a block nobody has yet: :meth:`FakeNetwork.wait_for` returns a
  Deferred that fires when any member stores the block or comes back online with
  it; cancelling the Deferred (request cancelled, timeout) forgets the waiter;
- finds other members by peer ID for ``swarm/connect`` and ``swarm/peers``.

Named networks (:func:`named_network`) let the standalone command and tests in one
process put daemons on the same network by name.
"""

from __future__ import annotations

from twisted.internet import defer

from ipfscluster.cid import CID

__all__ = ["FakeNetwork", "named_network", "forget_named_networks"]


class FakeNetwork:
    """A set of fake daemons that can fetch blocks from each other."""

    def __init__(self, name: str = ""):
        self.name = name
        self.members: list = []
        self._waiters: dict[bytes, list[defer.Deferred]] = {}

    # --- membership -----------------------------------------------------------------

    def join(self, daemon) -> None:
        """Add ``daemon`` to the network (idempotent)."""
        if daemon not in self.members:
            self.members.append(daemon)

    def leave(self, daemon) -> None:
        """Remove ``daemon`` from the network."""
        if daemon in self.members:
            self.members.remove(daemon)

    def peer(self, peer_id: str):
        """Return the online member with this peer ID, or None."""
        for daemon in self.members:
            if daemon.peer_id == peer_id and daemon.online:
                return daemon
        return None

    # --- blocks ---------------------------------------------------------------------

    def find(self, cid: CID, requester=None) -> bytes | None:
        """Return the block ``cid`` from an online member other than ``requester``,
        or None when no online member has it."""
        for daemon in self.members:
            if daemon is requester or not daemon.online:
                continue
            data = daemon.blockstore.get(cid)
            if data is not None:
                return data
        return None

    def wait_for(self, cid: CID) -> defer.Deferred:
        """Return a Deferred that fires (with None) once some member announces the
        block ``cid``.  Cancelling it removes the waiter."""
        key = cid.multihash
        waiters = self._waiters.setdefault(key, [])

        def cancel(d):
            if d in waiters:
                waiters.remove(d)
            if not waiters:
                self._waiters.pop(key, None)

        d = defer.Deferred(cancel)
        waiters.append(d)
        return d

    def announce(self, multihash: bytes) -> None:
        """Wake everyone waiting for the block with this multihash."""
        waiters = self._waiters.pop(multihash, [])
        for d in waiters:
            d.callback(None)

    def announce_all(self, daemon) -> None:
        """Wake the waiters of every block ``daemon`` holds (it came back online)."""
        for key in list(self._waiters):
            if daemon.blockstore.get_by_multihash(key) is not None:
                self.announce(key)

    @property
    def waiting(self) -> int:
        """How many fetches are waiting for a block (for tests to poll)."""
        return sum(len(w) for w in self._waiters.values())


_NAMED: dict[str, FakeNetwork] = {}


def named_network(name: str) -> FakeNetwork:
    """Return the process-wide network called ``name``, creating it if needed."""
    network = _NAMED.get(name)
    if network is None:
        network = _NAMED[name] = FakeNetwork(name)
    return network


def forget_named_networks() -> None:
    """Drop every named network (tests call this in teardown)."""
    _NAMED.clear()
