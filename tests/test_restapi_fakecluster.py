"""The FakeCluster other tests stand on: its ICluster behaviour and its knobs."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.task import Clock

from ipfscluster.errors import ClusterError, InvalidInput, IPFSError, NotFound
from ipfscluster.testing.fakecluster import FakeCluster, fake_peer_id, synthetic_cid
from ipfscluster.types import PinOptions, PinType, TrackerStatus

CID = synthetic_cid(1)


async def listed(iterator):
    return [item async for item in iterator]


@pytest.fixture
def cluster():
    return FakeCluster(Clock(), peers=3)


@pytest_twisted.ensureDeferred
async def test_pin_allocates_and_status_follows(cluster):
    cluster.clock.advance(5)
    peers = cluster.peer_ids
    options = PinOptions(replication_factor_min=1, replication_factor_max=2, user_allocations=(peers[2],))
    pin = await cluster.pin(CID, options)
    assert pin.allocations == (peers[2], peers[0]) and pin.timestamp == 5_000_000_000
    statuses = {p: s.status for p, s in (await cluster.status(CID)).peer_map.items()}
    assert statuses == {peers[0]: TrackerStatus.PINNED, peers[1]: TrackerStatus.REMOTE,
                        peers[2]: TrackerStatus.PINNED}
    everywhere = await cluster.pin(synthetic_cid(2), PinOptions(replication_factor_min=-1,
                                                                replication_factor_max=-1))
    assert everywhere.allocations == ()
    assert [p.cid for p in await listed(cluster.pins(PinType.DATA))] == sorted([CID, synthetic_cid(2)])
    assert (await cluster.unpin(CID)).cid == CID
    with pytest.raises(NotFound):
        await cluster.unpin(CID)
    local = await cluster.status(CID, local=True)
    assert list(local.peer_map) == [peers[0]] and local.peer_map[peers[0]].status == TrackerStatus.UNPINNED


@pytest_twisted.ensureDeferred
async def test_paths_peers_and_update(cluster):
    assert (await cluster.pin_path(f"/ipfs/{CID}")).cid == CID
    with pytest.raises(IPFSError):
        await cluster.pin_path("/ipns/example.org")
    with pytest.raises(InvalidInput):
        await cluster.pin_path("/nothing")
    updated = await cluster.pin_update(CID, synthetic_cid(3))
    assert updated.pin_update == CID
    with pytest.raises(NotFound):
        await cluster.pin_update(synthetic_cid(9), synthetic_cid(3))
    new = fake_peer_id(40)
    assert (await cluster.peer_add(f"/ip4/1.2.3.4/tcp/1/p2p/{new}")).id == new
    with pytest.raises(InvalidInput):
        await cluster.peer_add("/ip4/1.2.3.4/tcp/1")
    await cluster.peer_remove(new)
    with pytest.raises(NotFound):
        await cluster.peer_remove(new)
    assert [i.id for i in await listed(cluster.peers())] == sorted(cluster.peer_ids)


@pytest_twisted.ensureDeferred
async def test_errors_recover_and_knobs(cluster):
    await cluster.pin(CID)
    cluster.set_status(CID, cluster.peer_ids[1], TrackerStatus.PIN_ERROR, "boom")
    assert [g.cid for g in await listed(cluster.status_all(TrackerStatus.ERROR))] == [CID]
    assert [g.cid for g in await listed(cluster.sync_all())] == [CID]
    recovered = await listed(cluster.recover_all())
    assert recovered[0].peer_map[cluster.peer_ids[1]].status == TrackerStatus.PIN_QUEUED
    assert await listed(cluster.recover_all()) == []

    cluster.failures["status"] = ClusterError("down")
    with pytest.raises(ClusterError, match="down"):
        await cluster.status(CID)
    cluster.failures["peers"] = ClusterError("no peers")
    peers = cluster.peers()
    assert cluster.calls[-1] == ("peers", ())
    with pytest.raises(ClusterError, match="no peers"):
        await peers.__anext__()
    cluster.fail_after["pins"] = (1, ClusterError("half way"))
    items = cluster.pins()
    assert (await items.__anext__()).cid == CID
    with pytest.raises(ClusterError, match="half way"):
        await items.__anext__()
    assert cluster.open_streams == 0


@pytest_twisted.ensureDeferred
async def test_synthetic_items_are_made_on_demand_behind_the_gate(cluster):
    gates = []
    cluster.synthetic = 1_000_000
    cluster.gate = (100, lambda: gates.append(defer.Deferred()) or gates[-1])
    items = cluster.status_all()
    first = defer.ensureDeferred(items.__anext__())
    assert not first.called and cluster.produced == 0 and cluster.open_streams == 1
    gates[0].callback(None)
    assert len((await first).peer_map) == 3
    for _ in range(99):
        await items.__anext__()
    assert cluster.produced == 100 and len(gates) == 1
    await items.aclose()
    assert cluster.open_streams == 0
