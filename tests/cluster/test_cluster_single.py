"""Single-peer tests of reference §11.3 (upstream ``cluster_test.go``): one real peer
(Raft on disk, RPC listening), a fake kubo daemon."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor

import ipfscluster
from ipfscluster.cid import CID, sha256_multihash
from ipfscluster.errors import ClusterError, NotFound
from ipfscluster.testing.harness import LocalCluster, collect
from ipfscluster.types import PinOptions, TrackerStatus

pytestmark = pytest.mark.loopback


def cid(n: int) -> CID:
    return CID.v0(sha256_multihash(b"single %d" % n)[2:])


@pytest_twisted.async_yield_fixture
async def one(tmp_path):
    lc = LocalCluster(reactor, str(tmp_path), 1)
    await lc.start()
    yield lc.peers[0]
    await lc.stop()


@pytest_twisted.ensureDeferred
async def test_cluster_id_and_version(one):
    ident = await one.cluster.id()
    assert ident.id == one.peer_id and ident.addresses
    assert all(a.peer_id == one.peer_id for a in ident.addresses)
    assert ident.version == ipfscluster.__version__ == one.cluster.version().version
    assert ident.ipfs.id == one.kubo.peer_id and not ident.error
    assert list(ident.cluster_peers) == [one.peer_id]


@pytest_twisted.ensureDeferred
async def test_cluster_peers_is_self(one):
    peers = await collect(one.cluster.peers())
    assert [p.id for p in peers] == [one.peer_id]


@pytest_twisted.ensureDeferred
async def test_cluster_pin_pins_get_and_unpin(one):
    c = cid(1)
    pin = await one.cluster.pin(c, PinOptions())
    assert pin.replication_factor_min == -1 and pin.allocations == ()  # everywhere by default
    assert [p.cid for p in await collect(one.cluster.pins())] == [c]
    assert (await one.cluster.pin_get(c)).cid == c
    with pytest.raises(NotFound):
        await one.cluster.pin_get(cid(2))
    await one.cluster.unpin(c)
    assert await collect(one.cluster.pins()) == []
    with pytest.raises(NotFound):  # unpinning what is not in the shared state
        await one.cluster.unpin(cid(2))


@pytest_twisted.ensureDeferred
async def test_cluster_state_sync_tracks_what_the_state_holds(one):
    c = cid(3)
    await one.cluster.pin(c, PinOptions())
    await one.cluster._state_sync()  # works after a pin
    info = await one.cluster.c.tracker.status(c)
    assert info.status in (TrackerStatus.PINNED, TrackerStatus.PINNING, TrackerStatus.PIN_QUEUED)
    # the tracker loses the item behind the cluster's back: state sync puts it back
    await one.cluster.c.tracker.untrack(c)
    await one.cluster._state_sync()
    info = await one.cluster.c.tracker.status(c)
    assert info.status is not TrackerStatus.UNPINNED


@pytest_twisted.ensureDeferred
async def test_cluster_pin_and_unpin_fail_once_stopped(one):
    await one.cluster.stop()
    one.running = False
    with pytest.raises(ClusterError):
        await one.cluster.pin(cid(4), PinOptions())
    with pytest.raises(ClusterError):
        await one.cluster.unpin(cid(4))
