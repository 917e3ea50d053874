"""A small real cluster in one process: 3 peers on loopback, fake kubo daemons."""

import pytest
import pytest_twisted
from twisted.internet import reactor

from ipfscluster.cid import CID, sha256_multihash
from ipfscluster.testing.harness import LocalCluster, collect
from ipfscluster.types import PinOptions, TrackerStatus


def cid(n: int) -> CID:
    return CID.v0(sha256_multihash(b"smoke %d" % n)[2:])


@pytest.mark.loopback
@pytest_twisted.ensureDeferred
async def test_three_peers_pin_and_unpin(tmp_path):
    lc = LocalCluster(reactor, str(tmp_path), 3)
    try:
        await lc.start()
        c0 = lc.peers[0].cluster
        pin = await c0.pin(cid(1), PinOptions())
        assert pin.cid == cid(1)
        await lc.poll(lambda: all(p.kubo.pin_mode(cid(1)) == "recursive" for p in lc.peers),
                      what="pinned on every daemon")
        expected = {p.peer_id: TrackerStatus.PINNED for p in lc.peers}

        async def all_pinned():
            gpi = await lc.peers[1].cluster.status(cid(1))
            return {p: s.status for p, s in gpi.peer_map.items()} == expected

        await lc.poll_async(all_pinned, what="PINNED on every tracker")
        await lc.peers[2].cluster.unpin(cid(1))
        await lc.poll(lambda: all(p.kubo.pin_mode(cid(1)) is None for p in lc.peers),
                      what="unpinned on every daemon")
        assert await collect(c0.pins()) == []
    finally:
        await lc.stop()
