"""The network that fake daemons share, standing in for libp2p and bitswap.

Every :class:`~ipfscluster.testing.fakeipfs.daemon.FakeIPFS` belongs to one
:class:`FakeNetwork` (its own private one unless given).  Through it a daemon:

- fetches a block it lacks from any other *online* member that has it (bitswap);
- waits for a block nobody has yet: :meth:`FakeNetwork.wait_for` returns a
  Deferred that fires when any member stores the block or comes back online with
  it; cancelling the Deferred (request cancelled, timeout) forgets the waiter;
- finds other members by peer ID for ``swarm/connect`` and ``swarm/peers``.

Named networks (:func:`named_network`) let tests in one process put daemons on the
same network by name.  :class:`SharedDirectoryNetwork` also publishes blocks and
peers in a folder, so daemons of *several processes* (the standalone command's
``--network NAME``) share content: a block nobody in this process has is read
from the folder, and waiting fetches poll the folder on the clock.
"""

from __future__ import annotations

import json
import os

import attrs
from twisted.internet import defer, task

from ipfscluster.cid import CID

__all__ = [
    "FakeNetwork",
    "SharedDirectoryNetwork",
    "RemotePeer",
    "named_network",
    "forget_named_networks",
]


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

    def announce(self, multihash: bytes, data: bytes | None = None) -> None:
        """Wake everyone waiting for the block with this multihash (a member just
        stored it; ``data`` is its content, for networks that publish blocks)."""
        waiters = self._waiters.pop(multihash, [])
        for d in waiters:
            d.callback(None)

    def announce_all(self, daemon) -> None:
        """Wake the waiters of every block ``daemon`` holds (it came back online)."""
        for key in list(self._waiters):
            data = daemon.blockstore.get_by_multihash(key)
            if data is not None:
                self.announce(key, data)

    @property
    def waiting(self) -> int:
        """How many fetches are waiting for a block (for tests to poll)."""
        return sum(len(w) for w in self._waiters.values())


@attrs.frozen
class RemotePeer:
    """A daemon of another process on a shared network, as ``id`` shows it."""

    peer_id: str
    public_key_b64: str
    swarm_addresses: tuple
    version: str
    online: bool = True
    connected: dict = attrs.field(factory=dict, eq=False)


class SharedDirectoryNetwork(FakeNetwork):
    """A FakeNetwork whose blocks and peers are also kept in ``folder``, shared by
    every process using the same folder.  ``clock`` drives the polling of waiting
    fetches (every ``poll_interval`` seconds while any fetch waits)."""

    def __init__(self, name: str, folder: str, clock, poll_interval: float = 0.1):
        super().__init__(name)
        self.folder = folder
        self.clock = clock
        self.poll_interval = poll_interval
        self._poller = None
        os.makedirs(os.path.join(folder, "blocks"), exist_ok=True)
        os.makedirs(os.path.join(folder, "peers"), exist_ok=True)

    def _path(self, kind: str, key: str) -> str:
        return os.path.join(self.folder, kind, key)

    def _write(self, path: str, data: bytes) -> None:
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "wb") as f:
            f.write(data)
        os.replace(temporary, path)

    def join(self, daemon) -> None:
        super().join(daemon)
        record = {
            "ID": daemon.peer_id,
            "PublicKey": daemon.public_key_b64,
            "Addresses": list(daemon.swarm_addresses),
            "Version": daemon.version,
        }
        self._write(self._path("peers", daemon.peer_id), json.dumps(record).encode())

    def leave(self, daemon) -> None:
        super().leave(daemon)
        try:
            os.remove(self._path("peers", daemon.peer_id))
        except FileNotFoundError:
            pass

    def peer(self, peer_id: str):
        found = super().peer(peer_id)
        if found is not None:
            return found
        try:
            with open(self._path("peers", peer_id), "rb") as f:
                record = json.loads(f.read())
        except (OSError, ValueError):
            return None
        return RemotePeer(
            record["ID"], record["PublicKey"], tuple(record["Addresses"]), record["Version"]
        )

    def announce(self, multihash: bytes, data: bytes | None = None) -> None:
        if data is not None:
            path = self._path("blocks", multihash.hex())
            if not os.path.exists(path):
                self._write(path, data)
        super().announce(multihash, data)

    def find(self, cid: CID, requester=None) -> bytes | None:
        found = super().find(cid, requester)
        if found is not None:
            return found
        try:
            with open(self._path("blocks", cid.multihash.hex()), "rb") as f:
                return f.read()
        except OSError:
            return None

    def wait_for(self, cid: CID) -> defer.Deferred:
        d = super().wait_for(cid)
        if self._poller is None:
            self._poller = task.LoopingCall(self._poll)
            self._poller.clock = self.clock
            self._poller.start(self.poll_interval, now=False)
        return d

    def _poll(self) -> None:
        for key in list(self._waiters):
            path = self._path("blocks", key.hex())
            if os.path.exists(path):
                super().announce(key)
        if not self._waiters and self._poller is not None:
            poller, self._poller = self._poller, None
            poller.stop()


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
