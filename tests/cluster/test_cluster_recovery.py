"""Issue [5/10] acceptance: restart from disk, repair by the sync loop, stuck pins.

Real peers on loopback (RPC over TLS, Raft on disk), fake kubo daemons.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor

from ipfscluster.cid import CID, sha256_multihash
from ipfscluster.testing.harness import LocalCluster, collect
from ipfscluster.types import PinOptions, TrackerStatus

pytestmark = pytest.mark.loopback


def cid(n: int) -> CID:
    return CID.v0(sha256_multihash(b"recovery %d" % n)[2:])


async def tracker_status(peer, c):
    return (await peer.cluster.c.tracker.status(c)).status


@pytest_twisted.ensureDeferred
async def test_restarted_peer_has_the_same_state_and_resyncs_its_daemon(tmp_path):
    lc = LocalCluster(reactor, str(tmp_path), 3)
    try:
        await lc.start()
        cids = [cid(i) for i in range(5)]
        for c in cids:
            await lc.peers[0].cluster.pin(c, PinOptions())
        await lc.poll(lambda: all(p.kubo.pin_mode(c) == "recursive" for p in lc.peers for c in cids),
                      what="pinned everywhere")
        victim = lc.peers[2]
        await lc.stop_peer(victim)
        # while it is down: the cluster moves on, and its daemon loses pins
        await lc.peers[0].cluster.unpin(cids[0])
        await lc.peers[1].cluster.pin(cid(99), PinOptions())
        for c in cids[1:3]:
            victim.kubo.unset_pin(c)
        await lc.start_peer(victim)
        expected = sorted(str(c) for c in cids[1:] + [cid(99)])
        await lc.poll_async(
            lambda: _pins_are(victim, expected), what="the restarted peer has the cluster's shared state")
        await lc.poll(
            lambda: all(victim.kubo.pin_mode(CID.parse(c)) == "recursive" for c in expected),
            what="the restarted peer's daemon pins the shared state again")
        # Known gap: cids[0], unpinned while the peer was down, stays pinned in its
        # daemon: the restarted peer replays its whole log, the replayed pin of
        # cids[0] is cancelled by the replayed unpin before the fresh tracker learnt
        # that the daemon pins it.  Tracked in the issue notes.
    finally:
        await lc.stop()


async def _pins_are(peer, expected):
    return sorted(str(p.cid) for p in await collect(peer.cluster.pins())) == expected


@pytest_twisted.ensureDeferred
async def test_sync_loop_repairs_pins_lost_behind_the_clusters_back(tmp_path):
    lc = LocalCluster(reactor, str(tmp_path), 3, overrides={"cluster": {"ipfs_sync_interval": "1s"}})
    try:
        await lc.start()
        c = cid(1)
        await lc.peers[0].cluster.pin(c, PinOptions())
        await lc.poll(lambda: all(p.kubo.pin_mode(c) == "recursive" for p in lc.peers), what="pinned")
        lost = lc.peers[1]
        lost.kubo.unset_pin(c)  # someone ran `ipfs pin rm` on that daemon
        await lc.poll(lambda: lost.kubo.pin_mode(c) == "recursive", seconds=30,
                      what="the sync loop re-pinned the lost pin")
        await lc.poll_async(lambda: _is(lost, c, TrackerStatus.PINNED), what="tracker back to PINNED")
    finally:
        await lc.stop()


async def _is(peer, c, status):
    return await tracker_status(peer, c) == status


@pytest_twisted.ensureDeferred
async def test_pin_stuck_in_a_hanging_daemon_errors_after_pin_timeout_and_recovers(tmp_path):
    lc = LocalCluster(reactor, str(tmp_path), 3, overrides={"ipfshttp": {"pin_timeout": "1s"}})
    try:
        await lc.start()
        stuck = lc.peers[2]
        hang = stuck.kubo.faults.hang("pin/add")
        c = cid(2)
        await lc.peers[0].cluster.pin(c, PinOptions())
        await lc.poll_async(lambda: _is(stuck, c, TrackerStatus.PIN_ERROR), seconds=30,
                            what="PIN_ERROR after pin_timeout")
        info = await stuck.cluster.c.tracker.status(c)
        assert info.error
        for other in lc.peers[:2]:
            assert await tracker_status(other, c) == TrackerStatus.PINNED
        hang.release()
        gpi = await lc.peers[0].cluster.recover(c)
        assert gpi.peer_map[stuck.peer_id].status in (TrackerStatus.PINNED, TrackerStatus.PINNING,
                                                      TrackerStatus.PIN_QUEUED)
        await lc.poll_async(lambda: _is(stuck, c, TrackerStatus.PINNED), what="PINNED after recover")
        assert stuck.kubo.pin_mode(c) == "recursive"
    finally:
        await lc.stop()
