"""A peer whose shared state lags behind the leader never answers from it alone.

The process-level fault suite found an acknowledged pin with no effect: a follower
that had not applied an unpin yet answered "already pinned" without a commit.  Both
answers a peer gives from its own copy of the shared state ("already pinned" for a
pin, "not pinned" for an unpin) must come from a state in sync with the leader
(``IConsensus.wait_for_sync``).  Here a :class:`Cluster` runs over a fake consensus
whose ``wait_for_sync`` applies the entries the peer had not applied yet.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.task import Clock

from ipfscluster.cid import CID
from ipfscluster.cluster import Cluster, Components
from ipfscluster.config.service import ServiceConfig
from ipfscluster.errors import NotFound
from ipfscluster.identity import Identity
from ipfscluster.rpc.server import Responders
from ipfscluster.state.mapstate import MapState
from ipfscluster.types import Pin, PinOptions

CID_A = CID.parse("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o")


class LaggingConsensus:
    """Commits go to ``log``; entries committed elsewhere wait in ``unapplied``
    until ``wait_for_sync`` (a ReadIndex round) applies them to the state."""

    def __init__(self, state: MapState):
        self.state = state
        self.unapplied: list[tuple[str, Pin]] = []
        self.log: list[tuple[str, CID]] = []
        self.syncs = 0

    def __getattr__(self, name):  # rpc_* handlers are registered, never called here
        if name.startswith("rpc_"):
            return lambda *a, **k: None
        raise AttributeError(name)

    def wait_for_sync(self, timeout=None):
        self.syncs += 1
        for op, pin in self.unapplied:
            self._apply(op, pin)
        self.unapplied = []
        return defer.succeed(None)

    def _apply(self, op, pin):
        if op == "pin":
            self.state.add(pin)
        elif self.state.has(pin.cid):
            self.state.rm(pin.cid)

    def log_pin(self, pin):
        self.log.append(("pin", pin.cid))
        self._apply("pin", pin)
        return defer.succeed(None)

    def log_unpin(self, pin):
        self.log.append(("unpin", pin.cid))
        self._apply("unpin", pin)
        return defer.succeed(None)


@pytest.fixture
def peer(tmp_path):
    ident = Identity.generate()
    config = ServiceConfig.default(str(tmp_path / "peer"), identity=ident)
    os.makedirs(config.folder)
    config.save()
    state = MapState()
    consensus = LaggingConsensus(state)
    dummy = SimpleNamespace()
    components = Components(state=state, rpc_client=dummy, rpc_server=None,
                            responders=Responders(), consensus=consensus, connector=dummy,
                            tracker=dummy, monitor=dummy, informer=None, allocator=None)
    return Cluster(config, components, Clock()), consensus, state


def everywhere() -> PinOptions:
    return PinOptions(replication_factor_min=-1, replication_factor_max=-1)


@pytest_twisted.ensureDeferred
async def test_already_pinned_is_answered_only_after_a_sync(peer):
    cluster, consensus, state = peer
    pinned = await cluster.pin(CID_A, everywhere())
    assert consensus.log == [("pin", CID_A)]
    # the same pin again through a peer whose state is current: no new commit
    await cluster.pin(CID_A, everywhere())
    assert consensus.log == [("pin", CID_A)] and consensus.syncs == 1
    # an unpin committed through another peer, not applied here yet
    consensus.unapplied.append(("unpin", pinned))
    await cluster.pin(CID_A, everywhere())
    assert consensus.log == [("pin", CID_A), ("pin", CID_A)]
    assert state.has(CID_A)


@pytest_twisted.ensureDeferred
async def test_not_pinned_is_answered_only_after_a_sync(peer):
    cluster, consensus, state = peer
    # a pin committed through another peer (acknowledged there), not applied here yet
    consensus.unapplied.append(("pin", Pin.new(CID_A, everywhere())))
    await cluster.unpin(CID_A)
    assert consensus.log == [("unpin", CID_A)] and not state.has(CID_A)
    with pytest.raises(NotFound, match="not pinned in the cluster"):
        await cluster.unpin(CID_A)  # in sync and still absent: really not pinned
    assert consensus.syncs == 2
