"""``status_all`` merges the peers' status pages as they come (three peers on loopback).

Every peer pages its local state in binary CID order (``PinTracker.StatusAll``);
the answering peer merges the pages one page ahead per peer.  With tiny pages the
merge crosses many page boundaries: the result must be every CID once, in binary
CID order, with every peer's status, and a peer that cannot answer shows as
``cluster_error`` in every item.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from ipfscluster import cluster as cluster_module
from ipfscluster.api.rest.streaming import encode_json
from ipfscluster.cid import CID, sha256_multihash
from ipfscluster.testing.harness import LocalCluster, collect
from ipfscluster.types import TrackerStatus

pytestmark = pytest.mark.loopback

PINS = 23


def cid(n: int) -> CID:
    return CID.v0(sha256_multihash(b"status pages %d" % n)[2:])


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(cluster_module, "STATUS_FIRST_PAGE", 2)
    monkeypatch.setattr(cluster_module, "STATUS_PAGE", 3)


@pytest.fixture
def three_peers(tmp_path, small_pages):
    lc = LocalCluster(reactor, str(tmp_path), 3)
    yield lc
    pytest_twisted.blockon(defer.ensureDeferred(lc.stop()))


async def pinned_everywhere(lc) -> list[CID]:
    await lc.start()
    cids = [cid(n) for n in range(PINS)]
    for c in cids:
        await lc.peers[0].cluster.pin(c)

    async def settled():
        for p in lc.running_peers():
            infos = list(await p.cluster.c.tracker.status_all(TrackerStatus.PINNED))
            if len(infos) != PINS:
                return False
        return True

    await lc.poll_async(settled, seconds=30, what="every peer pinned every CID")
    return sorted(cids, key=CID.to_bytes)


@pytest_twisted.ensureDeferred
async def test_status_all_merges_pages_in_cid_order(three_peers):
    lc = three_peers
    expected = await pinned_everywhere(lc)
    for p in lc.peers:
        items = await collect(p.cluster.status_all())
        assert [g.cid for g in items] == expected
        for gpi in items:
            assert {peer: s.status for peer, s in gpi.peer_map.items()} == {
                q.peer_id: TrackerStatus.PINNED for q in lc.peers
            }
        local = await collect(p.cluster.status_all(local=True))
        assert [g.cid for g in local] == expected
        assert all(list(g.peer_map) == [p.peer_id] for g in local)
        assert await collect(p.cluster.status_all(TrackerStatus.PIN_ERROR)) == []
        # the REST stream's pre-encoded lines are those of the values
        for kwargs in ({}, {"local": True}, {"status_filter": TrackerStatus.PINNED}):
            lines = b"".join(await collect(p.cluster.status_all_ndjson(**kwargs)))
            values = await collect(p.cluster.status_all(**kwargs))
            assert lines == b"".join(encode_json(g.to_json()) for g in values)
        assert await collect(p.cluster.status_all_ndjson(TrackerStatus.PIN_ERROR)) == []
        # local with a filter: the tracker pages only the matching statuses
        assert [g.cid for g in await collect(p.cluster.status_all(TrackerStatus.PINNED, local=True))] == expected
        assert await collect(p.cluster.status_all(TrackerStatus.PIN_ERROR, local=True)) == []
        assert await collect(p.cluster.status_all_ndjson(TrackerStatus.QUEUED, local=True)) == []


@pytest_twisted.ensureDeferred
async def test_an_unreachable_peer_is_a_cluster_error_in_every_item(three_peers):
    lc = three_peers
    expected = await pinned_everywhere(lc)
    down = lc.peers[2]
    await lc.stop_peer(down)
    items = await collect(lc.peers[0].cluster.status_all())
    assert [g.cid for g in items] == expected
    for gpi in items:
        assert gpi.peer_map[down.peer_id].status == TrackerStatus.CLUSTER_ERROR
        assert gpi.peer_map[down.peer_id].error
        assert gpi.peer_map[lc.peers[1].peer_id].status == TrackerStatus.PINNED
    lines = b"".join(await collect(lc.peers[0].cluster.status_all_ndjson())).splitlines()
    assert len(lines) == len(items)
    for line, gpi in zip(lines, items):
        got, want = json.loads(line), gpi.to_json()
        for d in (got, want):  # the error's time and text are those of each call
            d["peer_map"][down.peer_id].update(timestamp=None, error=None)
        assert got == want


@pytest_twisted.ensureDeferred
async def test_leaving_the_stream_early_stops_asking(three_peers):
    lc = three_peers
    expected = await pinned_everywhere(lc)
    items = lc.peers[1].cluster.status_all()
    first = await items.__anext__()
    assert first.cid == expected[0]
    await items.aclose()  # the REST API does this when the client goes away
