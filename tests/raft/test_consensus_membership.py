"""Membership operations of RaftConsensus on a Clock (no sockets): join mode,
queued concurrent membership changes, prepare_join, leadership transfer."""

from __future__ import annotations

import os

import pytest
from twisted.internet import defer

from ipfscluster.errors import InvalidInput
from tests.raft.test_raft_consensus import PEERS, Peers, cid, pin


class JoinPeers(Peers):
    def start(self, peer_id, peers=None, join=False):
        if not join:
            return super().start(peer_id, peers)
        from ipfscluster.consensus.raft.consensus import RaftConsensus
        from tests.raft.test_raft_consensus import DictState

        c = RaftConsensus(peer_id=peer_id, config=self.config,
                          data_folder=str(self.tmp_path / peer_id[-6:]), state=DictState(),
                          rpc=self.net.client(peer_id), clock=self.clock, peers=(), join=True)
        c.startService()
        self.services[peer_id] = c
        self.net.peers[peer_id] = c
        return c


@pytest.fixture
def cluster(tmp_path):
    p = JoinPeers(tmp_path)
    yield p
    p.stop()


def test_a_joining_node_waits_without_campaigning(cluster):
    joiner = cluster.start(PEERS[3], join=True)
    cluster.clock.advance(5)
    for _ in range(100):
        cluster.clock.advance(0.05)
    assert joiner.node.leader_id is None
    assert cluster.run(joiner.peers()) == []


def test_concurrent_adds_queue_on_the_leader(cluster):
    leader = cluster.leader()
    follower = next(p for p in cluster.ids if p != leader)
    joiners = [cluster.start(p, join=True) for p in PEERS[3:5]]
    adds = [cluster.services[leader].add_peer(PEERS[3]),
            cluster.services[follower].add_peer(PEERS[4])]
    cluster.run(defer.gatherResults(adds))
    everyone = sorted(cluster.ids + PEERS[3:5])
    cluster.settle(lambda: all(sorted(c.node.voters) == everyone for c in cluster.services.values()))
    cluster.run(cluster.services[leader].log_pin(pin(1)))
    cluster.settle(lambda: all(j.state.has(cid(1)) for j in joiners))


def test_prepare_join_resets_a_lone_peer_without_pins(cluster):
    lone = cluster.start(PEERS[3], peers=())
    cluster.run(lone.ready())
    assert lone.node.voters == (PEERS[3],)
    cluster.run(lone.prepare_join())
    assert os.path.isdir(lone.data_folder + ".old.0")
    assert lone.node.voters == () and lone.join
    cluster.run(cluster.services[cluster.leader()].add_peer(PEERS[3]))
    everyone = sorted(cluster.ids + [PEERS[3]])
    cluster.settle(lambda: sorted(lone.node.voters) == everyone)
    cluster.run(cluster.services[cluster.leader()].log_pin(pin(2)))
    cluster.settle(lambda: lone.state.has(cid(2)))


def test_prepare_join_refuses_a_lone_peer_with_pins_or_a_member(cluster):
    lone = cluster.start(PEERS[3], peers=())
    cluster.run(lone.ready())
    cluster.run(lone.log_pin(pin(7)))
    with pytest.raises(InvalidInput, match="1 pins"):
        cluster.run(lone.prepare_join())
    assert lone.node.voters == (PEERS[3],)
    member = cluster.services[cluster.ids[0]]
    with pytest.raises(InvalidInput, match="member of another cluster"):
        cluster.run(member.prepare_join())


def test_transfer_leadership_hands_over_and_followers_do_nothing(cluster):
    old = cluster.leader()
    follower = next(p for p in cluster.ids if p != old)
    assert cluster.run(cluster.services[follower].transfer_leadership()) is None
    new = cluster.run(cluster.services[old].transfer_leadership())
    assert new in cluster.ids and new != old
    cluster.settle(lambda: all(c.node.leader_id == new for c in cluster.services.values()))
