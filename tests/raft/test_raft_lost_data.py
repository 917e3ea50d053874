"""A follower whose Raft data folder was wiped catches up on an idle cluster.

The leader's heartbeats carry ``min(match, commit)``, so a follower that lost
entries it had acknowledged sees a commit index beyond its log: it answers with
where its log ends, and the leader sends the entries (or a snapshot) at once
instead of waiting for the next write.  The core is driven by the small
synchronous network of ``raft_core_net`` and by the seeded simulator.
"""

from __future__ import annotations

from raft_core_net import Net, drain

from ipfscluster.consensus.raft.core import LEADER
from ipfscluster.consensus.raft.messages import AppendResponse, HardState, Heartbeat
from ipfscluster.consensus.raft.sim import Disk, Sim

IDS = ["a", "b", "c"]


def _cluster_with_entries(n, **kw):
    net = Net(IDS, **kw)
    net.campaign("a")
    leader = net.cores["a"]
    assert leader.role == LEADER
    for i in range(n):
        leader.propose(b"x%d" % i)
        net.drive("a")
        net.deliver()
    net.tick(times=2)  # heartbeats carry the last commit index to the followers
    assert {c.commit for c in net.cores.values()} == {leader.last_index}
    return net, leader


def _wipe(net, nid):
    net.crash(nid)
    net.disk[nid] = [HardState(), []]
    net.applied[nid] = []
    net.restart(nid)
    assert net.cores[nid].last_index == 0


def test_wiped_follower_catches_up_by_append_without_a_new_write():
    net, leader = _cluster_with_entries(5)
    _wipe(net, "c")
    net.tick(times=2)  # no proposal: heartbeats only
    c = net.cores["c"]
    assert c.last_index == leader.last_index
    assert c.commit == leader.commit
    assert [e.index for e in net.applied["c"]] == list(range(1, leader.commit + 1))
    assert leader.last_index == 6  # the no-op and the 5 entries: nothing was written


def test_wiped_follower_catches_up_by_snapshot_when_the_log_is_compacted():
    net, leader = _cluster_with_entries(5, trailing_logs=0)
    leader.compact(leader.applied, b"state-at-%d" % leader.applied)
    assert leader.first_index > 1
    _wipe(net, "c")
    net.tick(times=3)
    c = net.cores["c"]
    assert c.snapshot_meta.index == leader.snapshot_meta.index == leader.commit
    assert c.snapshot.data == b"state-at-%d" % leader.commit
    assert c.commit == c.last_index == leader.last_index
    assert c.applied == leader.commit


def test_heartbeat_beyond_the_log_is_answered_with_where_the_log_ends():
    net, leader = _cluster_with_entries(3)
    _wipe(net, "c")
    c = net.cores["c"]
    c.step(Heartbeat("a", "c", leader.term, leader.commit, 0))
    out = drain(c).messages
    lost = [m for m in out if isinstance(m, AppendResponse)]
    assert lost == [AppendResponse("c", "a", leader.term, False, 0, 1, 0)]
    assert c.commit == 0


def test_a_stale_lost_data_answer_does_not_rewind_a_caught_up_follower():
    net, leader = _cluster_with_entries(3)
    match = leader._progress["c"].match
    leader.step(AppendResponse("c", "a", leader.term, False, 0, match + 1, 0))
    assert leader._progress["c"].match == match
    assert not [m for m in drain(leader).messages if m.dst == "c"]


def test_sim_wiped_member_catches_up_on_an_idle_cluster():
    """The simulator (every invariant checked on every event): a member loses its
    disk, restarts with its configured membership, and has the leader's whole state
    within 2 s of virtual time without any new write."""
    for seed in range(20):
        sim = Sim(seed, nodes=3, snapshot_threshold=10, trailing_logs=2)
        assert sim.run_until(lambda: sim.leader() is not None, 10_000)
        ops = [sim.client_write("pin", "c%d" % i) for i in range(25)]
        assert sim.run_until(lambda: all(o.ok for o in ops), 10_000)
        ld = sim.leader()
        victim = next(n for n in sim.ids if n != ld.id)
        sim.run_for(500)
        sim.crash(victim, torn=False)
        sim.nodes[victim].disk = Disk()
        sim.checker.forget(victim)
        sim.restart(victim)
        node = sim.nodes[victim]
        target = ld.core.commit
        assert sim.run_until(lambda: node.sm.applied >= target, 2_000), (seed, node.sm.applied)
        assert node.sm.digest() == ld.sm.digest()
        assert sim.leader() is ld and ld.core.last_index == target
