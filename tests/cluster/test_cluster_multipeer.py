"""In-process multi-peer tests (reference §11.3, upstream ``ipfscluster_test.go``).

Six peers on loopback with real AMP/TLS between them, each with its own fake kubo
daemon; every daemon joins one fake network.  Each test builds its own cluster and
stops it (the leak checker wants every timer and socket gone after a test).
"""

from __future__ import annotations

import random

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

import ipfscluster
from ipfscluster.cid import CID, sha256_multihash
from ipfscluster.errors import NotEnoughPeers
from ipfscluster.testing.harness import LocalCluster, collect
from ipfscluster.types import PinOptions, TrackerStatus

pytestmark = pytest.mark.loopback

N_PEERS = 6


def cid(n: int) -> CID:
    return CID.v0(sha256_multihash(b"multipeer %d" % n)[2:])


ERROR_CID = cid(666)


@pytest.fixture
def make_cluster(tmp_path):
    made = []

    def make(n=N_PEERS, **kw):
        lc = LocalCluster(reactor, str(tmp_path), n, **kw)
        made.append(lc)
        return lc

    yield make
    for lc in made:
        pytest_twisted.blockon(defer.ensureDeferred(lc.stop()))


async def started(make, n=N_PEERS, **kw) -> LocalCluster:
    lc = make(n, **kw)
    await lc.start()
    return lc


def statuses(gpi) -> dict:
    return {peer: info.status for peer, info in gpi.peer_map.items()}


async def wait_status(lc, c, want, peers=None, seconds=20.0, via=None):
    """Poll ``Status(c)`` until every peer (or ``peers``) shows ``want``."""
    via = via or lc.running_peers()[0]
    expect_peers = {p.peer_id for p in (peers or lc.running_peers())}

    async def check():
        gpi = await via.cluster.status(c)
        got = statuses(gpi)
        return all(got.get(p) == want for p in expect_peers)

    await lc.poll_async(check, seconds=seconds, what=f"{c} {want.to_json()} on {len(expect_peers)} peers")


@pytest_twisted.ensureDeferred
async def test_clusters_version(make_cluster):
    lc = await started(make_cluster)
    for p in lc.peers:
        assert p.cluster.version().version == ipfscluster.__version__
        ident = await p.cluster.id()
        assert ident.version == ipfscluster.__version__


@pytest_twisted.ensureDeferred
async def test_clusters_peers(make_cluster):
    lc = await started(make_cluster)
    peer = random.choice(lc.peers)
    ids = await collect(peer.cluster.peers())
    assert sorted(i.id for i in ids) == sorted(p.peer_id for p in lc.peers)
    by_id = {i.id: i for i in ids}
    for p in lc.peers:
        own = await p.cluster.id()
        assert by_id[p.peer_id].ipfs.id == own.ipfs.id == p.kubo.peer_id, (
            by_id[p.peer_id].ipfs.error, own.ipfs.error)
        assert not by_id[p.peer_id].error
        assert len(by_id[p.peer_id].cluster_peers) == N_PEERS


@pytest_twisted.ensureDeferred
async def test_clusters_pin_and_unpin_many_through_random_peers(make_cluster):
    lc = await started(make_cluster)
    n_pins = 500
    rnd = random.Random(7)
    cids = [cid(i) for i in range(n_pins)]
    for batch in range(0, n_pins, 50):  # 50 clients at once, each pins twice
        chunk = cids[batch:batch + 50]
        for _ in range(2):  # the second pin of a CID is a no-op
            await defer.gatherResults([
                defer.ensureDeferred(rnd.choice(lc.peers).cluster.pin(c, PinOptions())) for c in chunk])
    await lc.poll(
        lambda: all(all(p.kubo.pin_mode(c) == "recursive" for c in cids) for p in lc.peers),
        seconds=180, what="500 pins on every daemon")

    async def all_trackers_pinned():
        for p in lc.peers:
            infos = list(await p.cluster.c.tracker.status_all())
            if len(infos) != n_pins or any(i.status != TrackerStatus.PINNED for i in infos):
                return False
        return True

    await lc.poll_async(all_trackers_pinned, seconds=180, what="every tracker shows 500 pinned")
    assert len(await collect(lc.peers[0].cluster.pins())) == n_pins

    for batch in range(0, n_pins, 50):
        chunk = cids[batch:batch + 50]
        await defer.gatherResults([
            defer.ensureDeferred(rnd.choice(lc.peers).cluster.unpin(c)) for c in chunk])
    for c in cids[:20]:  # unpinning again: not in the shared state any more
        with pytest.raises(ipfscluster.errors.NotFound):
            await rnd.choice(lc.peers).cluster.unpin(c)
    await lc.poll(
        lambda: all(all(p.kubo.pin_mode(c) is None for c in cids) for p in lc.peers),
        seconds=180, what="every daemon unpinned")

    async def all_trackers_empty():
        for p in lc.peers:
            if list(await p.cluster.c.tracker.status_all()):
                return False
        return True

    await lc.poll_async(all_trackers_empty, seconds=120, what="every tracker empty")


@pytest_twisted.ensureDeferred
async def test_clusters_status_all(make_cluster):
    lc = await started(make_cluster)
    await lc.peers[0].cluster.pin(cid(1))
    await wait_status(lc, cid(1), TrackerStatus.PINNED)
    for p in lc.peers:
        items = await collect(p.cluster.status_all())
        assert len(items) == 1
        assert len(items[0].peer_map) == N_PEERS
        assert items[0].peer_map[p.peer_id].status == TrackerStatus.PINNED
        one = await p.cluster.status(cid(1))
        assert statuses(one) == statuses(items[0])


@pytest_twisted.ensureDeferred
async def test_clusters_status_all_with_errors(make_cluster):
    lc = await started(make_cluster)
    await lc.peers[0].cluster.pin(cid(1))
    await wait_status(lc, cid(1), TrackerStatus.PINNED)
    down = lc.peers[1]
    await lc.stop_peer(down)
    for p in lc.running_peers():
        items = await collect(p.cluster.status_all())
        assert len(items) == 1
        gpi = items[0]
        assert len(gpi.peer_map) == N_PEERS
        assert gpi.peer_map[down.peer_id].status == TrackerStatus.CLUSTER_ERROR
        assert gpi.peer_map[down.peer_id].error
        assert gpi.cid == cid(1)
        one = await p.cluster.status(cid(1))
        assert one.peer_map[down.peer_id].status == TrackerStatus.CLUSTER_ERROR


def _fail_everywhere(lc, c):
    for p in lc.peers:
        p.kubo.faults.fail_cid(c, "expected error when using ErrorCid", endpoints={"pin/add"})


async def error_cid_cluster(make):
    """A started cluster where ERROR_CID is in PIN_ERROR and cid(2) PINNED everywhere."""
    lc = await started(make)
    _fail_everywhere(lc, ERROR_CID)
    await lc.peers[0].cluster.pin(ERROR_CID)
    await lc.peers[0].cluster.pin(cid(2))
    await wait_status(lc, cid(2), TrackerStatus.PINNED)
    await wait_status(lc, ERROR_CID, TrackerStatus.PIN_ERROR)
    return lc


@pytest_twisted.ensureDeferred
async def test_clusters_sync_all_local(make_cluster):
    lc = await error_cid_cluster(make_cluster)
    for p in lc.peers:
        items = list(await p.cluster.c.tracker.sync_all())
        assert [i.cid for i in items] == [ERROR_CID]
        assert items[0].status in (TrackerStatus.PIN_ERROR, TrackerStatus.PINNING)


@pytest_twisted.ensureDeferred
async def test_clusters_sync_local_and_sync(make_cluster):
    lc = await error_cid_cluster(make_cluster)
    for p in lc.peers:
        local = await p.cluster.sync(ERROR_CID, local=True)
        assert local.peer_map[p.peer_id].status in (TrackerStatus.PIN_ERROR, TrackerStatus.PINNING)
        ok = await p.cluster.sync(cid(2), local=True)
        assert ok.peer_map[p.peer_id].status == TrackerStatus.PINNED
    gpi = await lc.peers[3].cluster.sync(ERROR_CID)
    assert gpi.peer_map[lc.peers[3].peer_id].error
    assert all(s in (TrackerStatus.PIN_ERROR, TrackerStatus.PINNING) for s in statuses(gpi).values())
    gpi = await lc.peers[3].cluster.sync(cid(2))
    assert set(statuses(gpi).values()) == {TrackerStatus.PINNED}
    items = await collect(lc.peers[2].cluster.sync_all())
    assert [g.cid for g in items] == [ERROR_CID]
    assert len(items[0].peer_map) == N_PEERS


@pytest_twisted.ensureDeferred
async def test_clusters_recover(make_cluster):
    lc = await error_cid_cluster(make_cluster)
    p = lc.peers[1]
    local = await p.cluster.recover(ERROR_CID, local=True)
    assert local.peer_map[p.peer_id].status == TrackerStatus.PIN_ERROR
    assert local.peer_map[p.peer_id].error
    gpi = await p.cluster.recover(ERROR_CID)
    assert set(statuses(gpi).values()) == {TrackerStatus.PIN_ERROR}
    assert gpi.peer_map[p.peer_id].error
    # the daemons work again: recover now pins everywhere
    for peer in lc.peers:
        peer.kubo.faults.clear_cid(ERROR_CID)
    gpi = await p.cluster.recover(ERROR_CID)
    assert set(statuses(gpi).values()) == {TrackerStatus.PINNED}
    gpi = await p.cluster.recover(cid(2))
    assert set(statuses(gpi).values()) == {TrackerStatus.PINNED}


@pytest_twisted.ensureDeferred
async def test_clusters_shutdown_is_idempotent(make_cluster):
    lc = await started(make_cluster, 3)
    for _ in range(3):
        for p in lc.peers:
            await p.cluster.stop()
    for p in lc.peers:
        p.running = False


async def _pinned_and_remote(lc, c, pinned=5, remote=1):
    async def check():
        gpi = await lc.running_peers()[0].cluster.status(c)
        got = list(statuses(gpi).values())
        return got.count(TrackerStatus.PINNED) == pinned and got.count(TrackerStatus.REMOTE) == remote

    await lc.poll_async(check, seconds=30, what=f"{c}: {pinned} pinned, {remote} remote")


@pytest_twisted.ensureDeferred
async def test_clusters_replication(make_cluster):
    lc = await started(make_cluster)
    opts = PinOptions(replication_factor_min=5, replication_factor_max=5)
    await lc.poll(lambda: len(lc.peers[0].cluster.c.monitor.latest_metrics("freespace")) == N_PEERS,
                  what="freespace metrics of every peer")
    cids = [cid(100 + i) for i in range(6)]
    for i, c in enumerate(cids):
        pin = await lc.peers[i].cluster.pin(c, opts)
        assert len(pin.allocations) == 5
        await _pinned_and_remote(lc, c)
    for p in lc.peers:
        infos = list(await p.cluster.c.tracker.status_all())
        assert len(infos) == 6
        for info in infos:
            pin = await p.cluster.pin_get(info.cid)
            if p.peer_id in pin.allocations:
                assert info.status == TrackerStatus.PINNED
            else:
                assert info.status == TrackerStatus.REMOTE


@pytest_twisted.ensureDeferred
async def test_clusters_replication_realloc_and_not_enough_peers(make_cluster):
    lc = await started(make_cluster)
    opts = PinOptions(replication_factor_min=5, replication_factor_max=5)
    await lc.poll(lambda: len(lc.peers[0].cluster.c.monitor.latest_metrics("freespace")) == N_PEERS,
                  what="freespace metrics of every peer")
    first = await lc.peers[0].cluster.pin(cid(1), opts)
    again = await lc.peers[0].cluster.pin(cid(1), opts)
    assert again.allocations == first.allocations
    # shut down an allocated peer that is not the leader
    leader = await lc.leader()
    victim = next(p for p in lc.peers if p.peer_id in first.allocations and p is not leader)
    await lc.stop_peer(victim)
    survivor = next(p for p in lc.running_peers())
    await lc.poll(lambda: len(survivor.cluster.c.monitor.latest_metrics("freespace")) == N_PEERS - 1,
                  seconds=30, what="the stopped peer's metric expired")
    pin = await survivor.cluster.pin(cid(1), opts)
    assert victim.peer_id not in pin.allocations and len(pin.allocations) == 5
    await _pinned_and_remote(lc, cid(1), pinned=5, remote=0)
    # stop one more: only 4 peers left for a replication of 5
    other = next(p for p in lc.running_peers() if p is not leader)
    await lc.stop_peer(other)
    await lc.poll(lambda: len(leader.cluster.c.monitor.latest_metrics("freespace")) == N_PEERS - 2,
                  seconds=30, what="the second peer's metric expired")
    with pytest.raises(NotEnoughPeers, match="not enough peers to allocate"):
        await leader.cluster.pin(cid(2), opts)


@pytest_twisted.ensureDeferred
async def test_clusters_rebalance_on_peer_down(make_cluster):
    lc = await started(make_cluster)
    opts = PinOptions(replication_factor_min=5, replication_factor_max=5)
    await lc.poll(lambda: len(lc.peers[0].cluster.c.monitor.latest_metrics("freespace")) == N_PEERS,
                  what="freespace metrics of every peer")
    pin = await lc.peers[0].cluster.pin(cid(1), opts)
    await _pinned_and_remote(lc, cid(1))
    leader = await lc.leader()
    remote = next(p for p in lc.peers if p.peer_id not in pin.allocations)
    victim = next(p for p in lc.peers if p.peer_id in pin.allocations and p is not leader)
    await lc.stop_peer(victim)
    # failover: the former remote peer ends up pinning
    await lc.poll(lambda: remote.kubo.pin_mode(cid(1)) == "recursive", seconds=30,
                  what="the remote peer pins after failover")

    async def reallocated():
        new = await leader.cluster.pin_get(cid(1))
        return victim.peer_id not in new.allocations and len(new.allocations) == 5

    await lc.poll_async(reallocated, seconds=30, what="the stopped peer left the allocations")
