"""Leader failover in one election: pre-vote tie-break, backing a pre-candidate, and
the vote lease across tick phases (benchmark B7: one new term in >= 95 % of runs).

Deterministic: the small synchronous network of ``raft_core_net`` for the rules,
the seeded simulator for the whole failover.
"""

from __future__ import annotations

from raft_core_net import Net

from ipfscluster.consensus.raft.core import FOLLOWER, LEADER, PRE_CANDIDATE
from ipfscluster.consensus.raft.messages import VoteRequest
from ipfscluster.consensus.raft.sim import Faults, Sim


def _leader_down():
    net = Net(["a", "b", "c"])
    net.campaign("a")
    net.tick(times=2)
    term = net.cores["a"].term
    net.crash("a")
    return net, term


def _time_out(net, nid):
    core = net.cores[nid]
    core.election_elapsed = core.randomized_timeout - 1
    core.tick()


def test_two_pre_candidates_of_the_same_tick_make_one_term():
    """Both followers time out on the same tick: the pre-candidate with the lower id
    (equal logs) gets the other's pre-vote, the other does not: one real election."""
    net, term = _leader_down()
    _time_out(net, "b")
    _time_out(net, "c")
    assert net.cores["b"].role == net.cores["c"].role == PRE_CANDIDATE
    net.drive("b")
    net.drive("c")
    net.deliver()
    assert net.cores["b"].role == LEADER
    assert net.cores["b"].term == term + 1
    assert net.cores["c"].role == FOLLOWER and net.cores["c"].term == term + 1


def test_a_stale_pre_candidate_grants_like_a_follower():
    """A pre-vote round older than a tick failed: its pre-candidate backs the next
    one, even one it would win the tie-break against (b has the lower id)."""
    net, term = _leader_down()
    net.cut = {("b", "c")}  # b's pre-vote gets no answer
    _time_out(net, "b")
    net.drive("b")
    net.deliver()
    net.cores["b"].tick()  # one tick later, still a pre-candidate
    net.drive("b")
    assert net.cores["b"].role == PRE_CANDIDATE
    net.heal()
    _time_out(net, "c")
    net.drive("c")
    net.deliver()
    assert net.cores["c"].role == LEADER and net.cores["c"].term == term + 1


def test_a_follower_that_granted_a_pre_vote_waits_before_campaigning():
    """c backs b's pre-vote; c's own timeout, due on the next tick, is put off so
    that b's real election is not split by c's."""
    net, term = _leader_down()
    c = net.cores["c"]
    c.election_elapsed = c.randomized_timeout - 1
    c.step(VoteRequest("b", "c", term + 1, c.last_index, c.last_term, pre_vote=True))
    net.drive("c")
    net.queue.clear()
    c.tick()
    assert c.role == FOLLOWER  # before: a pre-candidate here


def test_a_voter_one_tick_behind_grants_a_pre_vote():
    """The candidate counted the shortest election timeout; the voter's ticks lag
    by part of a tick and it counted one less: not a live leader's lease."""
    net, term = _leader_down()
    c = net.cores["c"]
    c.election_elapsed = c.election_ticks - 1
    c.step(VoteRequest("b", "c", term + 1, c.last_index, c.last_term, pre_vote=True))
    out = [m for m in net.cores["c"].ready().messages]
    assert [m.granted for m in out] == [True]


def _failover(seed, faults):
    sim = Sim(seed, nodes=3, faults=faults)
    assert sim.run_until(lambda: sim.leader() is not None, 10_000)
    sim.run_for(sim.rng.randint(500, 1500))
    old = sim.leader()
    term = old.core.term
    crashed_at = sim.now
    sim.crash(old.id, torn=False)

    def new_leader_committed():
        ld = sim.leader()
        return ld is not None and ld.core.term > term and ld.core.commit == ld.core.last_index

    assert sim.run_until(new_leader_committed, 20_000, step=5), seed
    return sim.now - crashed_at, sim.leader().core.term - term


def test_sim_leader_crash_takes_one_term_and_under_two_election_timeouts():
    """300 seeded leader crashes, with and without slow links and fsyncs: every
    failover takes one new term, and the new leader's first entry commits within
    2 election timeouts (the randomised timeout is below 2 s) plus 100 ms.
    Before the tie-break and the back-off: 1-3 % of runs took two terms, the
    slowest over 3 s."""
    for faults in (Faults(), Faults(min_delay=2, max_delay=30, slow_fsync=0.3)):
        results = [_failover(seed, faults) for seed in range(300)]
        assert {terms for _, terms in results} == {1}
        assert max(ms for ms, _ in results) < 2_100
