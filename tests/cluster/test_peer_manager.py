"""Peer-manager tests (reference §11.3, upstream ``peer_manager_test.go``).

Real peers on loopback (AMP over TLS, our Raft, fake kubo daemons).  Most start as
one-peer clusters (empty ``cluster.peers``, the upstream set-up) and are then added
with ``peer_add`` or join with ``cluster.bootstrap``; removal tests start from a
static cluster.  Every test checks what the reference says the peers end up with:
membership, pins, and ``service.json`` / Raft data folders on disk.
"""

from __future__ import annotations

import os
import random

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from ipfscluster.cid import CID, sha256_multihash
from ipfscluster.config.service import ServiceConfig
from ipfscluster.errors import InvalidInput, PeerUnreachable, UnhealthyCluster
from ipfscluster.testing.harness import LocalCluster, collect
from ipfscluster.types import PinOptions, TrackerStatus

pytestmark = pytest.mark.loopback

N = 5


def cid(n: int) -> CID:
    return CID.v0(sha256_multihash(b"peer manager %d" % n)[2:])


@pytest.fixture
def make_cluster(tmp_path):
    made = []

    def make(n=N, **kw):
        lc = LocalCluster(reactor, str(tmp_path / f"c{len(made)}"), n, **kw)
        made.append(lc)
        return lc

    yield make
    for lc in made:
        pytest_twisted.blockon(defer.ensureDeferred(lc.stop()))


async def members(peer) -> list[str]:
    return sorted(await peer.cluster.c.consensus.peers())


def saved_peers(peer) -> set[str]:
    cfg = ServiceConfig.load(peer.config.folder)
    return {a.peer_id for a in cfg.cluster.peers}


async def wait_members(lc, peers, expected, seconds=20.0):
    want = sorted(p.peer_id for p in expected)

    async def check():
        for p in peers:
            if await members(p) != want:
                return False
        return True

    await lc.poll_async(check, seconds=seconds, what=f"{len(peers)} peers listing {len(want)} members")


async def wait_pinned(lc, peers, c, seconds=20.0):
    async def check():
        for p in peers:
            info = await p.cluster.c.tracker.status(c)
            if info.status != TrackerStatus.PINNED:
                return False
        return True

    await lc.poll_async(check, seconds=seconds, what=f"{c} pinned on {len(peers)} peers")


# --- peers add ---------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_clusters_peer_add(make_cluster):
    lc = make_cluster(alone=True)
    await lc.start()
    first = lc.peers[0]
    for i, peer in enumerate(lc.peers[1:], start=1):
        ident = await first.cluster.peer_add(lc.multiaddr(peer))
        assert ident.id == peer.peer_id
        assert len(ident.cluster_peers) == i + 1
    await lc.peers[1].cluster.pin(cid(1))
    await wait_members(lc, lc.peers, lc.peers)
    await wait_pinned(lc, lc.peers, cid(1))
    for p in lc.peers:
        assert [pin.cid for pin in await collect(p.cluster.pins())] == [cid(1)]
        ids = await collect(p.cluster.peers())
        assert len(ids) == N and not any(i.error for i in ids)
    # every peer has the other N-1 peers saved in its service.json
    await lc.poll(lambda: all(saved_peers(p) == {q.peer_id for q in lc.peers if q is not p}
                              for p in lc.peers), what="peers saved in every service.json")
    # the added peers' own one-peer Raft logs were kept aside, not lost
    for p in lc.peers[1:]:
        assert os.path.isdir(p.config.raft_data_folder + ".old.0")


@pytest_twisted.ensureDeferred
async def test_clusters_peer_add_bad_peer(make_cluster):
    lc = make_cluster(2, alone=True)
    await lc.start()
    await lc.stop_peer(lc.peers[1])
    with pytest.raises(PeerUnreachable) as err:
        await lc.peers[0].cluster.peer_add(lc.multiaddr(lc.peers[1]))
    assert "cannot reach the new peer" in str(err.value)
    assert await members(lc.peers[0]) == [lc.peers[0].peer_id]


@pytest_twisted.ensureDeferred
async def test_clusters_peer_add_in_unhealthy_cluster(make_cluster):
    lc = make_cluster(3, alone=True)
    await lc.start()
    p0, p1, p2 = lc.peers
    await p0.cluster.peer_add(lc.multiaddr(p1))
    await lc.stop_peer(p1)
    with pytest.raises(UnhealthyCluster) as err:
        await p0.cluster.peer_add(lc.multiaddr(p2))
    assert "all cluster members need to be healthy" in str(err.value)
    assert p1.peer_id in str(err.value)
    assert await members(p0) == sorted([p0.peer_id, p1.peer_id])


@pytest_twisted.ensureDeferred
async def test_peer_add_refuses_a_peer_with_its_own_pins(make_cluster):
    lc = make_cluster(2, alone=True)
    await lc.start()
    p0, p1 = lc.peers
    await p1.cluster.pin(cid(9))
    with pytest.raises(InvalidInput) as err:
        await p0.cluster.peer_add(lc.multiaddr(p1))
    assert "1 pins" in str(err.value) and "state cleanup" in str(err.value)
    assert await members(p0) == [p0.peer_id]
    assert await members(p1) == [p1.peer_id]


# --- peers rm --------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_clusters_peer_remove(make_cluster):
    lc = make_cluster()
    await lc.start()
    p0, gone = lc.peers[0], lc.peers[1]
    await p0.cluster.peer_remove(gone.peer_id)
    await lc.poll(lambda: not gone.running, what="the removed peer shut itself down")
    assert gone.cluster.removed
    rest = [p for p in lc.peers if p is not gone]
    await wait_members(lc, rest, rest)
    # the removed peer: peers emptied, bootstrap = the others, Raft data rotated
    cfg = ServiceConfig.load(gone.config.folder)
    assert cfg.cluster.peers == ()
    assert {a.peer_id for a in cfg.cluster.bootstrap} == {p.peer_id for p in rest}
    assert not os.path.exists(gone.config.raft_data_folder)
    assert os.path.isdir(gone.config.raft_data_folder + ".old.0")
    # the survivors rewrote cluster.peers
    await lc.poll(lambda: all(gone.peer_id not in saved_peers(p) and len(saved_peers(p)) == N - 2
                              for p in rest), what="survivors saved the new peerset")


async def _remove_in_turn(lc, pick):
    while len(lc.running_peers()) > 1:
        running = lc.running_peers()
        victim = await pick(lc, running)
        await victim.cluster.peer_remove(victim.peer_id)
        await lc.poll(lambda: not victim.running, what="the removed peer shut down")
        rest = lc.running_peers()
        await wait_members(lc, rest, rest)
    last = lc.running_peers()[0]
    with pytest.raises(InvalidInput) as err:
        await last.cluster.peer_remove(last.peer_id)
    assert "cannot remove ourselves from a 1-peer cluster" in str(err.value)
    await lc.stop_peer(last)


async def _any(lc, running):
    return random.choice(running)


async def _the_leader(lc, running):
    leader = await lc.leader()
    assert leader.running
    return leader


@pytest_twisted.ensureDeferred
async def test_clusters_peer_remove_self(make_cluster):
    await _remove_in_turn(await _started(make_cluster(4)), _any)


@pytest_twisted.ensureDeferred
async def test_clusters_peer_remove_leader(make_cluster):
    await _remove_in_turn(await _started(make_cluster(4)), _the_leader)


async def _started(lc):
    await lc.start()
    return lc


@pytest_twisted.ensureDeferred
async def test_clusters_peer_remove_reallocates_pins(make_cluster):
    lc = make_cluster(overrides={"cluster": {"replication_factor_min": N - 1,
                                             "replication_factor_max": N - 1}})
    await lc.start()
    # the metrics of every peer must be known before allocating
    await lc.poll(lambda: all(len(p.cluster.c.monitor.latest_metrics("freespace")) == N
                              for p in lc.peers), what="disk metrics from every peer")
    leader = await lc.leader()
    # the leader gets the most free space, so the allocator (descending free space)
    # puts it in every allocation
    leader.kubo.storage_max *= 10

    def leader_richest():
        metrics = leader.cluster.c.monitor.latest_metrics("freespace")
        return max(metrics, key=lambda m: int(m.value)).peer == leader.peer_id

    await lc.poll(leader_richest, what="the leader's larger free space is known")
    cids = [cid(100 + i) for i in range(6)]
    for c in cids:
        await leader.cluster.pin(c)
    assert all(leader.peer_id in leader.cluster.c.state.get(c).allocations for c in cids)
    await leader.cluster.peer_remove(leader.peer_id)
    await lc.poll(lambda: not leader.running, what="the old leader shut down")
    other = lc.running_peers()[0]

    def realloc_done():
        state = other.cluster.c.state
        return all(leader.peer_id not in state.get(c).allocations
                   and len(state.get(c).allocations) == N - 1 for c in cids)

    await lc.poll(realloc_done, what="no pin allocated to the removed peer")


# --- join ------------------------------------------------------------------------------


async def _join_all(lc, seeds, joiners, at_once: bool, pick=lambda seeds: seeds[0]):
    for p in joiners:
        lc.set_membership(p, bootstrap=[pick(seeds)])
    if at_once:
        await defer.gatherResults([defer.ensureDeferred(lc.start_peer(p)) for p in joiners])
    else:
        for p in joiners:
            await lc.start_peer(p)


async def _check_joined(lc, pinned):
    await wait_members(lc, lc.peers, lc.peers)
    for c in pinned:
        await wait_pinned(lc, lc.peers, c)
    await lc.poll(lambda: all(saved_peers(p) == {q.peer_id for q in lc.peers if q is not p}
                              for p in lc.peers), what="the peerset saved everywhere")
    # the joiners restart from cluster.peers: the bootstrap address is cleared
    assert all(ServiceConfig.load(p.config.folder).cluster.bootstrap == () for p in lc.peers)


@pytest.mark.parametrize("at_once", [False, True], ids=["one_by_one", "all_at_once"])
@pytest_twisted.ensureDeferred
async def test_clusters_peer_join(make_cluster, at_once):
    """TestClustersPeerJoin and TestClustersPeerJoinAllAtOnce: the others join peer 0."""
    lc = make_cluster(alone=True)
    seed = lc.peers[0]
    await lc.start_peer(seed)
    await seed.cluster.pin(cid(1))
    await _join_all(lc, [seed], lc.peers[1:], at_once=at_once)
    await _check_joined(lc, [cid(1)])
    # a joined peer restarts from the cluster.peers it saved (no bootstrap needed)
    again = lc.peers[-1]
    await lc.stop_peer(again)
    await lc.start_peer(again)
    await wait_members(lc, [again], lc.peers)


@pytest_twisted.ensureDeferred
async def test_clusters_peer_join_all_at_once_with_random_bootstrap(make_cluster):
    lc = make_cluster(alone=True)
    seeds = lc.peers[:2]
    await lc.start_peer(seeds[0])
    await _join_all(lc, [seeds[0]], [seeds[1]], at_once=False)
    await seeds[1].cluster.pin(cid(1))
    rnd = random.Random(3)
    await _join_all(lc, seeds, lc.peers[2:], at_once=True, pick=lambda s: rnd.choice(s))
    await _check_joined(lc, [cid(1)])


@pytest_twisted.ensureDeferred
async def test_clusters_peer_rejoin(make_cluster):
    lc = make_cluster(3, alone=True)
    await lc.start()
    p0, p1, p2 = lc.peers
    await p0.cluster.pin(cid(1))
    for p in (p1, p2):
        await p0.cluster.peer_add(lc.multiaddr(p))
    await wait_members(lc, lc.peers, lc.peers)
    # p0 leaves on shutdown
    lc.set_membership(p0, peers=[p1, p2], leave_on_shutdown=True)
    p0.cluster.config = p0.config
    await lc.stop_peer(p0)
    assert p0.cluster.left
    await wait_members(lc, [p1, p2], [p1, p2])
    cfg = ServiceConfig.load(p0.config.folder)
    assert cfg.cluster.peers == ()
    assert {a.peer_id for a in cfg.cluster.bootstrap} == {p1.peer_id, p2.peer_id}
    assert os.path.isdir(p0.config.raft_data_folder + ".old.0")
    assert not os.path.exists(p0.config.raft_data_folder)
    backups = os.listdir(os.path.join(p0.config.folder, "backups"))
    assert len(backups) == 1
    await p1.cluster.pin(cid(2))
    # the same peer, same port, clean data: its saved bootstrap makes it join again
    await lc.start_peer(p0)
    await wait_members(lc, lc.peers, lc.peers)
    await wait_pinned(lc, [p0], cid(1))
    await wait_pinned(lc, [p0], cid(2))


# --- refusals that explain themselves --------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_joining_with_old_raft_data_is_refused(make_cluster):
    lc = make_cluster(2, alone=True)
    seed, joiner = lc.peers
    await lc.start_peer(seed)
    await lc.start_peer(joiner)  # a one-peer cluster of its own: Raft data written
    await lc.stop_peer(joiner)
    lc.set_membership(joiner, bootstrap=[seed])
    with pytest.raises(Exception) as err:
        await lc.start_peer(joiner)
    text = str(err.value)
    assert joiner.config.raft_data_folder in text
    assert "state cleanup" in text and "clean Raft data" in text
    assert not joiner.cluster._lock.held


@pytest_twisted.ensureDeferred
async def test_static_peers_that_differ_from_the_raft_data_are_refused(make_cluster):
    lc = make_cluster(2, alone=True)
    p0, p1 = lc.peers
    await lc.start_peer(p0)
    await lc.stop_peer(p0)
    lc.set_membership(p0, peers=[p1])
    with pytest.raises(Exception) as err:
        await lc.start_peer(p0)
    text = str(err.value)
    assert "cluster peers do not match raft peers" in text
    assert f"only in cluster.peers: {p1.peer_id}" in text
    assert "state cleanup" in text


@pytest.mark.allow_logged_errors
@pytest_twisted.ensureDeferred
async def test_bootstrap_unsuccessful(make_cluster):
    from ipfscluster.errors import BootstrapFailed

    lc = make_cluster(2, alone=True)
    seed, joiner = lc.peers  # the seed never starts
    lc.set_membership(joiner, bootstrap=[seed])
    with pytest.raises(BootstrapFailed) as err:
        await lc.start_peer(joiner)
    assert "bootstrap unsuccessful" in str(err.value)
    assert seed.peer_id in str(err.value)
    assert not joiner.cluster._lock.held


@pytest_twisted.ensureDeferred
async def test_two_peers_cannot_share_a_config_folder(make_cluster):
    from ipfscluster.cluster import build_cluster
    from ipfscluster.errors import ExecutionLockError

    lc = make_cluster(1)
    await lc.start()
    twin = build_cluster(lc.peers[0].config, reactor)
    with pytest.raises(ExecutionLockError) as err:
        await twin.start()
    assert "could not obtain execution lock" in str(err.value)
    assert lc.peers[0].config.folder in str(err.value)
    await twin.c.rpc_client.close()


@pytest_twisted.ensureDeferred
async def test_clean_shutdown_writes_a_restorable_backup(make_cluster):
    from ipfscluster.state import import_

    lc = make_cluster(1)
    await lc.start()
    p = lc.peers[0]
    await p.cluster.pin(cid(1))
    await p.cluster.pin(cid(2))
    await lc.stop_peer(p)
    folder = os.path.join(p.config.folder, "backups")
    (name,) = os.listdir(folder)
    assert len(name) == len("YYYYMMDD_HH:MM:SS") and name[8] == "_"
    with open(os.path.join(folder, name)) as f:
        state = import_(f)
    assert sorted(str(x.cid) for x in state.list()) == sorted([str(cid(1)), str(cid(2))])


@pytest_twisted.ensureDeferred
async def test_a_removed_peer_that_missed_the_notice_notices_by_itself(make_cluster, monkeypatch):
    """watchPeers: the shutdown notice is lost; the removed peer finds no leader, asks
    the others, and shuts itself down."""
    import ipfscluster.cluster as cluster_module
    from ipfscluster.rpc import commands as C

    monkeypatch.setattr(cluster_module, "WATCH_PEERS_INTERVAL", 0.3)
    lc = make_cluster(3)
    await lc.start()
    p0, victim = lc.peers[0], lc.peers[2]
    victim.cluster.c.responders.unregister(C.PeerManagerRmPeerShutdown)
    await p0.cluster.peer_remove(victim.peer_id)
    await lc.poll(lambda: not victim.running, what="the removed peer noticed and shut down")
    assert victim.cluster.removed
    assert ServiceConfig.load(victim.config.folder).cluster.peers == ()


@pytest_twisted.ensureDeferred
async def test_a_leader_leaving_on_shutdown_hands_leadership_over(make_cluster):
    import attrs

    lc = make_cluster(3)
    await lc.start()
    leader = await lc.leader()
    cfg = leader.cluster.config
    leader.cluster.config = attrs.evolve(cfg, cluster=attrs.evolve(cfg.cluster, leave_on_shutdown=True))
    consensus = leader.cluster.c.consensus
    handed = []
    original = consensus.transfer_leadership

    def spy(*args):
        return original(*args).addCallback(lambda new: handed.append(new) or new)

    consensus.transfer_leadership = spy
    await lc.stop_peer(leader)
    rest = lc.running_peers()
    assert handed and handed[0] in {p.peer_id for p in rest}
    assert leader.cluster.left
    assert await members(rest[0]) == sorted(p.peer_id for p in rest)
    await rest[0].cluster.pin(cid(50))
    await wait_pinned(lc, rest, cid(50))


def test_the_address_seen_replaces_a_loopback_one():
    """PeerAdd step (1): a joiner listening on 0.0.0.0 advertises 127.0.0.1; the adder
    uses the host its connection from the joiner comes from, with the listen port."""
    from types import SimpleNamespace

    from ipfscluster.cluster import Cluster
    from ipfscluster.identity import Identity
    from ipfscluster.multiaddr import Multiaddr

    pid = Identity.generate().peer_id
    seen = {pid: ("192.0.2.7", 51234)}
    fake = SimpleNamespace(c=SimpleNamespace(rpc_client=SimpleNamespace(remote_address=seen.get)))
    local = Multiaddr.parse(f"/ip4/127.0.0.1/tcp/9096/p2p/{pid}")
    assert str(Cluster._seen_address(fake, local)) == f"/ip4/192.0.2.7/tcp/9096/p2p/{pid}"
    public = Multiaddr.parse(f"/ip4/198.51.100.1/tcp/9096/p2p/{pid}")
    assert Cluster._seen_address(fake, public) == public
    seen[pid] = ("127.0.0.1", 5000)
    assert Cluster._seen_address(fake, local) == local


@pytest_twisted.ensureDeferred
async def test_a_member_restarted_with_bootstrap_starts_from_its_raft_data(make_cluster):
    """A peer stopped after it was added but before cluster.peers was saved (or
    started again with --bootstrap) is still a member: its data is used, not refused."""
    lc = make_cluster(2, alone=True)
    seed, joiner = lc.peers
    await lc.start_peer(seed)
    lc.set_membership(joiner, bootstrap=[seed])
    await lc.start_peer(joiner)
    await wait_members(lc, lc.peers, lc.peers)
    await seed.cluster.pin(cid(3))
    await lc.stop_peer(joiner)
    lc.set_membership(joiner, bootstrap=[seed])  # peers emptied again
    await lc.start_peer(joiner)
    await wait_members(lc, lc.peers, lc.peers)
    await wait_pinned(lc, [joiner], cid(3))
    assert not os.path.exists(joiner.config.raft_data_folder + ".old.0")


@pytest_twisted.ensureDeferred
async def test_a_peer_removed_while_down_finds_out_at_start_and_rejoins(make_cluster, monkeypatch):
    import ipfscluster.cluster as cluster_module

    monkeypatch.setattr(cluster_module, "WATCH_PEERS_INTERVAL", 0.3)
    lc = make_cluster(3)
    await lc.start()
    p0, p1, victim = lc.peers
    await lc.stop_peer(victim)
    await p0.cluster.peer_remove(victim.peer_id)  # the notice cannot reach it
    await wait_members(lc, [p0, p1], [p0, p1])
    await p0.cluster.pin(cid(4))
    await lc.start_peer(victim, wait_ready=False)
    await lc.poll(lambda: not victim.running, what="the removed peer found out and stopped")
    assert victim.cluster.removed
    assert os.path.isdir(victim.config.raft_data_folder + ".old.0")
    # its saved bootstrap makes the next start a fresh join
    await lc.start_peer(victim)
    await wait_members(lc, lc.peers, lc.peers)
    await wait_pinned(lc, [victim], cid(4))
