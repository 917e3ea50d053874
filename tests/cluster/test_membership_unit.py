"""The peer manager's decisions without sockets: a :class:`Cluster` over fake
consensus and RPC on a ``Clock`` (the loopback suites check the same flows for real).

- the peerset hook rewrites ``cluster.peers`` only when it changed;
- a peer that is no longer in the peerset (after having been in it) shuts down,
  saving ``peers = []`` and ``bootstrap`` = the last known peers;
- a joining peer replaying the log (configurations without it) is not "removed";
- watchPeers: without a leader, the other peers' views decide;
- a shutdown notice from a non-member is ignored.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import attrs
import pytest
from twisted.internet import defer
from twisted.internet.task import Clock

from ipfscluster.cluster import Cluster, Components
from ipfscluster.config.service import ServiceConfig
from ipfscluster.identity import Identity
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.rpc import commands as C
from ipfscluster.rpc.server import Responders

OTHERS = [Identity.generate().peer_id for _ in range(3)]


class FakeConsensus:
    """Just what the peer manager reads: the node's voters and leader, peers()."""

    def __init__(self, voters, leader=None):
        self.node = SimpleNamespace(voters=tuple(voters), leader_id=leader)

    def __getattr__(self, name):  # rpc_* handlers are registered, never called here
        if name.startswith("rpc_"):
            return lambda *a, **k: None
        raise AttributeError(name)

    def peers(self):
        return defer.succeed(sorted(self.node.voters))


class FakeRPC:
    def __init__(self, views=None):
        self.addresses = {p: Multiaddr.parse(f"/ip4/10.0.0.{i + 1}/tcp/9096") for i, p in enumerate(OTHERS)}
        self.views = views or {}
        self.asked = []

    def peer_address(self, peer):
        return self.addresses.get(peer)

    def call_all(self, peers, command, arguments=None, timeout=None):
        self.asked.append((command, tuple(peers)))
        return defer.succeed({p: self.views[p] for p in peers if p in self.views})


def make(tmp_path, voters, rpc=None, leader=None):
    ident = Identity.generate()
    config = ServiceConfig.default(str(tmp_path / "peer"), identity=ident)
    os.makedirs(config.folder)
    config.save()
    consensus = FakeConsensus(list(voters) + [ident.peer_id], leader)
    dummy = SimpleNamespace()
    components = Components(state=None, rpc_client=rpc or FakeRPC(), rpc_server=None,
                            responders=Responders(), consensus=consensus, connector=dummy,
                            tracker=dummy, monitor=dummy, informer=None, allocator=None)
    clock = Clock()
    cluster = Cluster(config, components, clock)
    cluster._was_member = True
    fatal = []
    cluster.on_fatal = lambda: fatal.append(True)
    return cluster, consensus, clock, fatal


def saved(cluster) -> ServiceConfig:
    return ServiceConfig.load(cluster.config.folder)


def test_peerset_changes_are_saved_only_when_they_change(tmp_path):
    cluster, consensus, clock, _ = make(tmp_path, OTHERS[:2])
    cluster._on_peers_changed(consensus.node.voters)
    clock.advance(0)
    assert {a.peer_id for a in saved(cluster).cluster.peers} == set(OTHERS[:2])
    mtime = os.stat(cluster.config.path).st_mtime_ns
    cluster._on_peers_changed(consensus.node.voters)  # unchanged: not written again
    clock.advance(0)
    assert os.stat(cluster.config.path).st_mtime_ns == mtime
    consensus.node.voters = (cluster.peer_id, OTHERS[0])
    cluster._on_peers_changed(consensus.node.voters)
    clock.advance(0)
    assert [a.peer_id for a in saved(cluster).cluster.peers] == [OTHERS[0]]
    assert str(saved(cluster).cluster.peers[0]) == f"/ip4/10.0.0.1/tcp/9096/p2p/{OTHERS[0]}"


def test_a_peer_left_out_of_the_peerset_shuts_down(tmp_path):
    cluster, consensus, clock, fatal = make(tmp_path, OTHERS[:2])
    cluster._check_membership()
    consensus.node.voters = tuple(OTHERS[:2])
    cluster._on_peers_changed(consensus.node.voters)
    clock.advance(0)
    assert cluster.removed and fatal == [True]
    cfg = saved(cluster).cluster
    assert cfg.peers == ()
    assert {a.peer_id for a in cfg.bootstrap} == set(OTHERS[:2])


def test_a_joiner_replaying_older_configurations_is_not_removed(tmp_path):
    cluster, consensus, clock, fatal = make(tmp_path, [])
    consensus.node.voters = ()  # waiting to be added
    cluster._was_member = False
    for voters in [(OTHERS[0],), (OTHERS[0], OTHERS[1])]:  # history before our addition
        consensus.node.voters = voters
        cluster._on_peers_changed(voters)
        clock.advance(0)
    assert not cluster.removed and fatal == []
    consensus.node.voters = (OTHERS[0], OTHERS[1], cluster.peer_id)
    cluster._on_peers_changed(consensus.node.voters)
    clock.advance(0)
    assert cluster._was_member and not cluster.removed


def test_watch_peers_asks_the_others_when_no_leader_talks_to_us(tmp_path):
    views = {OTHERS[0]: {"peers": [OTHERS[0], OTHERS[1]]}, OTHERS[1]: {"peers": [OTHERS[0], OTHERS[1]]}}
    rpc = FakeRPC(views)
    cluster, consensus, clock, fatal = make(tmp_path, OTHERS[:2], rpc=rpc, leader=OTHERS[0])
    cluster._check_membership()
    defer.ensureDeferred(cluster._watch_peers())
    assert rpc.asked == [] and not cluster.removed  # a leader is known: nothing to ask
    consensus.node.leader_id = None
    views[OTHERS[1]] = {"peers": [OTHERS[0], OTHERS[1], cluster.peer_id]}  # one still lists us
    defer.ensureDeferred(cluster._watch_peers())
    assert rpc.asked[-1][0] is C.ConsensusPeers and not cluster.removed
    views[OTHERS[1]] = {"peers": [OTHERS[0], OTHERS[1]]}
    defer.ensureDeferred(cluster._watch_peers())
    clock.advance(0)
    assert cluster.removed and fatal == [True]


def test_a_shutdown_notice_from_a_stranger_is_ignored(tmp_path):
    cluster, consensus, clock, fatal = make(tmp_path, OTHERS[:1])
    cluster._check_membership()
    cluster._rpc_rm_peer_shutdown(OTHERS[2], None)
    clock.advance(0)
    assert not cluster.removed
    cluster._rpc_rm_peer_shutdown(OTHERS[0], None)
    clock.advance(0)
    assert cluster.removed and fatal == [True]


def test_joining_is_decided_by_the_configuration(tmp_path):
    cluster, *_ = make(tmp_path, [])
    assert not cluster.joining
    boot = Multiaddr.parse(f"/ip4/10.0.0.1/tcp/9096/p2p/{OTHERS[0]}")
    cluster.config = attrs.evolve(cluster.config, cluster=attrs.evolve(cluster.config.cluster, bootstrap=(boot,)))
    assert cluster.joining
    cluster.config = attrs.evolve(cluster.config, cluster=attrs.evolve(cluster.config.cluster, peers=(boot,)))
    assert not cluster.joining


@pytest.mark.allow_logged_errors
def test_a_refused_start_is_one_error_line_without_traceback(tmp_path):
    """BootstrapFailed, ConfigError (Raft data), ExecutionLockError …: reference §2.2
    "error starting cluster: …", no traceback for errors the user can fix."""
    from twisted.logger import globalLogPublisher

    from ipfscluster.errors import BootstrapFailed
    from ipfscluster.tap import PeerService

    class FakeReactor:
        stopped = 0
        running = True

        def callWhenRunning(self, f, *args):
            f(*args)

        def stop(self):
            self.stopped += 1

    class Refused(PeerService):
        async def _start_cluster(self):
            raise BootstrapFailed("bootstrap unsuccessful: could not join through any bootstrap address")

    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        config = ServiceConfig.default(str(tmp_path / "peer"))
        reactor = FakeReactor()
        peer = Refused(config, reactor)
        peer.startService()
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert reactor.stopped == 1 and peer.failure.check(BootstrapFailed)
    errors = [e for e in events if e.get("log_level") is not None and e["log_level"].name == "error"]
    assert [e.get("log_failure") for e in errors] == [None]
    assert errors[0]["log_format"].startswith("error starting cluster")
    assert "bootstrap unsuccessful" in errors[0]["error"]
    peer.stopService()
