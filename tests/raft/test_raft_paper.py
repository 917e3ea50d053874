"""Paper-sentence unit tests of the pure Raft core (plan §4.1 layer 1) and T2–T7, T19, T22.

Each test quotes (in its name and docstring) one rule of the Raft paper (§5.x) or
thesis and checks it directly against :class:`RaftCore` by stepping messages and
reading the resulting Ready.
"""

from __future__ import annotations

import pytest
from raft_core_net import Net, drain, entries_with_terms, log_of, make_core

from ipfscluster.consensus.raft.core import CANDIDATE, FOLLOWER, LEADER, PRE_CANDIDATE, PROBE, REPLICATE
from ipfscluster.consensus.raft.messages import (
    ENTRY_NOOP,
    AppendEntries,
    AppendResponse,
    Entry,
    HardState,
    Heartbeat,
    HeartbeatResponse,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)
from ipfscluster.errors import (
    ConfigChangeInProgress,
    InvalidConfigChange,
    LeaderNotReady,
    LeadershipTransferInProgress,
    NotLeader,
    StaleConfiguration,
)

ABC = ("a", "b", "c")


def elected(nid="a", voters=ABC, **kw):
    """A core that won an election in term 1 (votes stepped in by hand)."""
    core = make_core(nid, voters, pre_vote=False, **kw)
    for _ in range(core.randomized_timeout):
        core.tick()
    drain(core)
    for peer in voters:
        if peer != nid:
            core.step(VoteResponse(peer, nid, core.term, True))
    assert core.role == LEADER
    return core


def msgs(rd, cls):
    return [m for m in rd.messages if isinstance(m, cls)]


# --- §5.2 leader election -----------------------------------------------------------


def test_follower_times_out_within_randomized_window_and_becomes_candidate():
    """§5.2: a follower that hears nothing for an election timeout becomes candidate,
    increments its term, votes for itself and asks every other server for a vote."""
    core = make_core("a", ABC, pre_vote=False)
    assert 10 <= core.randomized_timeout < 20
    for _ in range(core.randomized_timeout - 1):
        core.tick()
    assert core.role == FOLLOWER
    core.tick()
    assert (core.role, core.term, core.vote) == (CANDIDATE, 1, "a")
    rd = drain(core)
    assert rd.hard_state == HardState(1, "a", 0)
    assert sorted(m.dst for m in msgs(rd, VoteRequest)) == ["b", "c"]


def test_randomized_timeouts_differ_between_seeds():
    """§5.2: election timeouts are chosen randomly from a fixed interval."""
    timeouts = {make_core("a", ABC, seed=s).randomized_timeout for s in range(50)}
    assert len(timeouts) > 5 and min(timeouts) >= 10 and max(timeouts) < 20


def test_candidate_with_majority_becomes_leader_and_appends_noop():
    """§5.2 + §8: a candidate with votes from a majority becomes leader; it appends
    a no-op of its term at once and sends it to every follower (T7)."""
    core = make_core("a", ABC, pre_vote=False)
    core.election_elapsed = core.randomized_timeout - 1
    core.tick()
    drain(core)
    core.step(VoteResponse("b", "a", 1, True))
    assert core.role == LEADER and core.lead == "a"
    assert core.entry(1).kind == ENTRY_NOOP and core.entry(1).term == 1
    rd = drain(core)
    assert rd.entries == (core.entry(1),)
    assert sorted(m.dst for m in msgs(rd, AppendEntries)) == ["b", "c"]


def test_candidate_steps_down_on_append_from_leader_of_same_term():
    """§5.2: a candidate that receives AppendEntries from a leader of its term returns
    to follower."""
    core = make_core("a", ABC, pre_vote=False)
    core.election_elapsed = core.randomized_timeout - 1
    core.tick()
    drain(core)
    core.step(AppendEntries("b", "a", 1, 0, 0, 0, ()))
    assert core.role == FOLLOWER and core.lead == "b" and core.term == 1


def test_candidate_loses_when_majority_rejects():
    core = make_core("a", ABC, pre_vote=False)
    core.election_elapsed = core.randomized_timeout - 1
    core.tick()
    drain(core)
    core.step(VoteResponse("b", "a", 1, False))
    assert core.role == CANDIDATE
    core.step(VoteResponse("c", "a", 1, False))
    assert core.role == FOLLOWER


def test_one_vote_per_term_first_come_first_served():
    """§5.2: each server votes for at most one candidate in a term, first come first served."""
    core = make_core("c", ABC)
    core.step(VoteRequest("a", "c", 1, 0, 0))
    rd = drain(core)
    assert msgs(rd, VoteResponse)[0].granted and core.vote == "a"
    core.step(VoteRequest("b", "c", 1, 0, 0))
    rd = drain(core)
    assert not msgs(rd, VoteResponse)[0].granted
    core.step(VoteRequest("a", "c", 1, 0, 0))  # a duplicate of the first request
    assert msgs(drain(core), VoteResponse)[0].granted


def test_t2_vote_persisted_before_reply_survives_crash():
    """T2: the vote and term are in the same Ready as the reply (persisted first);
    a node restarted from that hard state refuses a second candidate of the term."""
    core = make_core("c", ABC)
    core.step(VoteRequest("a", "c", 2, 0, 0))
    rd = drain(core)
    assert msgs(rd, VoteResponse)[0].granted
    assert rd.hard_state == HardState(2, "a", 0)  # persisted before the reply goes out
    # crash before the reply is delivered; restart from the persisted hard state
    again = make_core("c", ABC, seed=7, hard_state=rd.hard_state)
    again.step(VoteRequest("b", "c", 2, 0, 0))
    reply = msgs(drain(again), VoteResponse)[0]
    assert not reply.granted and again.vote == "a"


def test_t2_simulated_crash_before_reply_never_double_votes():
    """T2 at the simulator level: a voter crashes right after voting (reply lost), the
    checker sees no second vote of that voter in that term, whatever happens next."""
    from ipfscluster.consensus.raft.sim import Sim

    for seed in range(30):
        sim = Sim(seed, nodes=3)
        sim.run_for(1)
        # crash every node as soon as it has granted a vote, then restart it
        voted = set()
        for _ in range(400):
            sim.run_for(5)
            for (voter, term) in list(sim.checker.votes):
                if (voter, term) not in voted:
                    voted.add((voter, term))
                    sim.crash(voter)
                    sim.restart(voter)
        sim.settle()
        assert voted


# --- §5.1 terms ---------------------------------------------------------------------


def test_t3_lower_term_append_is_answered_with_current_term():
    """T3 / §5.1: a request with a stale term is rejected; the reply carries our term."""
    core = make_core("b", ABC, hard_state=HardState(5, None, 0))
    core.step(AppendEntries("a", "b", 3, 0, 0, 0, (Entry(1, 3),)))
    rd = drain(core)
    (reply,) = msgs(rd, AppendResponse)
    assert reply.term == 5 and not reply.success
    assert core.last_index == 0 and core.term == 5 and rd.hard_state is None


def test_t3_stale_vote_request_is_ignored():
    core = make_core("b", ABC, hard_state=HardState(5, None, 0))
    core.step(VoteRequest("a", "b", 4, 9, 9))
    assert not msgs(drain(core), VoteResponse)
    assert core.vote is None and core.term == 5


@pytest.mark.parametrize("role", [LEADER, CANDIDATE, FOLLOWER])
def test_t3_higher_term_makes_any_role_step_down_and_persist(role):
    """T3 / §5.1: a message with a higher term makes any role a follower of that term,
    and the new term is persisted."""
    if role == LEADER:
        core = elected()
    else:
        core = make_core("a", ABC, pre_vote=False)
        if role == CANDIDATE:
            core.election_elapsed = core.randomized_timeout - 1
            core.tick()
    drain(core)
    core.step(HeartbeatResponse("b", "a", 7))
    assert core.role == FOLLOWER and core.term == 7
    assert drain(core).hard_state == HardState(7, None, core.commit)


def test_stale_leader_learns_newer_term_from_rejected_heartbeat():
    """A leader cut off during an election gets the new term in the answer to its own
    heartbeat and steps down (check-quorum/pre-vote liveness rule)."""
    old = elected()
    drain(old)
    follower = make_core("b", ABC, hard_state=HardState(3, "c", 0))
    old.tick()
    hb = msgs(drain(old), Heartbeat)[0]
    follower.step(hb)
    (reply,) = msgs(drain(follower), AppendResponse)
    old.step(reply)
    assert old.role == FOLLOWER and old.term == 3


# --- §5.4.1 election restriction ----------------------------------------------------


def test_t4_voter_denies_candidate_with_less_up_to_date_log():
    """T4 / §5.4.1: a voter denies its vote if its own log is more up to date."""
    ents = entries_with_terms([1, 2])
    core = make_core("c", ABC, hard_state=HardState(2, None, 1), entries=ents)
    for last_index, last_term, granted in [(2, 1, False), (1, 1, False), (1, 2, False),
                                           (2, 2, True)]:
        voter = make_core("c", ABC, hard_state=HardState(2, None, 1), entries=ents)
        voter.step(VoteRequest("a", "c", 3, last_index, last_term))
        assert msgs(drain(voter), VoteResponse)[0].granted is granted, (last_index, last_term)
    core.step(VoteRequest("a", "c", 3, 1, 3))  # a later last term wins over length
    assert msgs(drain(core), VoteResponse)[0].granted


def test_t4_candidate_missing_committed_entry_cannot_win():
    net = Net(ABC, pre_vote=False)
    net.campaign("a")
    ld = net.leader()
    ld.propose(b"x")
    net.drive("a")
    # c misses the entry: cut a->c while replicating
    net.cut = {("a", "c")}
    net.deliver()
    assert ld.commit == 2
    net.crash("a")
    net.heal()
    net.campaign("c")  # c lacks entry 2: b denies, c cannot win
    assert net.cores["c"].role != LEADER
    for _ in range(3):  # b may first meet c's vote for itself in c's term
        net.campaign("b")
        if net.cores["b"].role == LEADER:
            break
    assert net.cores["b"].role == LEADER and net.cores["b"].term_at(2) == 1


# --- §5.3 log replication -----------------------------------------------------------


def test_append_rejected_when_prev_entry_does_not_match_with_conflict_hint():
    """§5.3: reply false if the log has no entry at prevLogIndex with prevLogTerm; the
    hint names the conflicting term and its first index (fast back-off)."""
    core = make_core("b", ABC, hard_state=HardState(3, None, 0),
                     entries=entries_with_terms([1, 2, 2, 2]))
    core.step(AppendEntries("a", "b", 3, 4, 3, 0, ()))
    (r,) = msgs(drain(core), AppendResponse)
    assert (r.success, r.index, r.hint_term, r.hint_index) == (False, 4, 2, 2)
    core.step(AppendEntries("a", "b", 3, 9, 3, 0, ()))
    (r,) = msgs(drain(core), AppendResponse)
    assert (r.success, r.hint_term, r.hint_index) == (False, 0, 5)


def test_conflicting_suffix_is_deleted_and_commit_follows_leader():
    """§5.3: if an existing entry conflicts with a new one, delete it and all that follow;
    set commitIndex = min(leaderCommit, index of last new entry)."""
    core = make_core("b", ABC, hard_state=HardState(3, None, 1),
                     entries=entries_with_terms([1, 2, 2, 2]))
    new = (Entry(3, 3, 0, b"n3"), Entry(4, 3, 0, b"n4"))
    core.step(AppendEntries("a", "b", 3, 2, 2, 10, new))
    rd = drain(core)
    assert log_of(core) == [(1, 1), (2, 2), (3, 3), (4, 3)]
    assert rd.entries == new  # storage replaces from index 3 on
    assert core.commit == 4
    assert msgs(rd, AppendResponse)[0].index == 4


def test_late_duplicate_append_never_truncates():
    """A delayed, shorter AppendEntries must not cut entries the follower already has."""
    core = make_core("b", ABC, hard_state=HardState(1, None, 0))
    long = tuple(entries_with_terms([1, 1, 1]))
    core.step(AppendEntries("a", "b", 1, 0, 0, 0, long))
    drain(core)
    core.step(AppendEntries("a", "b", 1, 0, 0, 0, long[:1]))
    rd = drain(core)
    assert core.last_index == 3 and rd.entries == ()
    assert msgs(rd, AppendResponse)[0].index == 1  # it acknowledges only what was sent


def test_append_below_commit_acknowledges_commit():
    core = make_core("b", ABC, hard_state=HardState(1, None, 3), entries=entries_with_terms([1, 1, 1]))
    core.step(AppendEntries("a", "b", 1, 1, 1, 3, tuple(entries_with_terms([1], start=2))))
    (r,) = msgs(drain(core), AppendResponse)
    assert r.success and r.index == 3


def test_t5_figure7_followers_converge_to_leader_log():
    """T5: the followers (a)–(f) of the paper's Figure 7 converge to the leader's log;
    extra entries are truncated, committed ones never."""
    leader_terms = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
    followers = {
        "fa": [1, 1, 1, 4, 4, 5, 5, 6, 6],
        "fb": [1, 1, 1, 4],
        "fc": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
        "fd": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
        "fe": [1, 1, 1, 4, 4, 4, 4],
        "ff": [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    }
    for name, terms in followers.items():
        ids = ("L", "Z", name)
        net = Net(ids, pre_vote=False)
        for nid, t in (("L", leader_terms), ("Z", leader_terms), (name, terms)):
            ents = entries_with_terms(t)
            if nid != "L" and t is not leader_terms:
                # the follower's own entries: same terms as the leader's carry the same data
                ents = [e if i < len(leader_terms) and leader_terms[i] == e.term
                        else Entry(e.index, e.term, 0, b"other") for i, e in enumerate(ents)]
            net.disk[nid] = [HardState(7, None, 3), ents]
            net.restart(nid)
        net.campaign("L")
        ld = net.cores["L"]
        assert ld.role == LEADER and ld.term == 8, name
        rejects = sum(1 for m in net.sent if isinstance(m, AppendResponse) and not m.success)
        net.tick(times=3)
        f = net.cores[name]
        assert log_of(f) == log_of(ld), name
        assert [e.data for e in f.entries(1, 12)] == [e.data for e in ld.entries(1, 12)]
        assert ld.commit == 11 and f.commit == 11
        # fast back-off: a handful of rejections, not one per missing entry
        assert rejects <= 3, (name, rejects)


def test_t6_figure8_leader_does_not_commit_old_term_entry_by_counting():
    """T6 / §5.4.2: a leader never commits an entry of an earlier term by counting
    replicas; it commits it only through an entry of its own term."""
    net = Net(ABC, pre_vote=False, max_append_entries=1)
    net.disk["a"] = [HardState(3, None, 1), entries_with_terms([1, 2])]
    net.disk["b"] = [HardState(3, None, 1), entries_with_terms([1])]
    net.disk["c"] = [HardState(3, None, 1), entries_with_terms([1])]
    for nid in ABC:
        net.restart(nid)
    # the term-4 no-op never reaches a follower that could append it; the old-term
    # entry (2, term 2) does, so every node holds it: a majority by counting
    def no_term4(m):
        return (isinstance(m, AppendEntries) and any(e.term == 4 for e in m.entries)
                and net.cores[m.dst].last_index >= 2)

    net.campaign("a", drop=no_term4)
    ld = net.cores["a"]
    assert ld.role == LEADER and ld.term == 4
    assert ld._progress["b"].match == 2 and ld._progress["c"].match == 2
    assert ld.commit == 1, "an entry of term 2 must not be committed by counting in term 4"
    # once the term-4 no-op reaches a majority, everything up to it commits
    net.tick(times=4)
    assert ld.commit == 3 and net.cores["b"].commit == 3


def test_t7_read_index_waits_for_leaders_first_commit():
    """T7: a new leader serves linearizable reads only after its no-op committed and a
    heartbeat round confirmed it is still leader."""
    net = Net(ABC, pre_vote=False)
    net.campaign("a", drop=lambda m: isinstance(m, AppendEntries))  # the no-op is lost
    ld = net.cores["a"]
    assert ld.role == LEADER and ld.commit == 0
    ld.read_index("r1")
    net.drive("a")
    assert net.reads["a"] == []
    with pytest.raises(LeaderNotReady):
        ld.propose_conf_change("add", "d")
    net.tick(times=3)  # heartbeats find the followers behind; the no-op is resent
    assert ld.commit == 1
    assert [(r.index, r.ctx) for r in net.reads["a"]] == [(1, "r1")]


def test_read_index_needs_quorum_heartbeat_acks():
    net = Net(ABC, pre_vote=False)
    net.campaign("a")
    net.tick(times=2)
    ld = net.cores["a"]
    net.cut = {("a", "b"), ("a", "c")}
    ld.read_index("r")
    net.drive("a")
    net.deliver()
    net.tick("a", times=3)
    assert net.reads["a"] == []
    net.heal()
    net.tick("a", times=1)
    assert [r.ctx for r in net.reads["a"]] == ["r"]


def test_deposed_leader_drops_pending_reads():
    core = elected()
    drain(core)
    core.step(AppendResponse("b", "a", 1, True, 1))
    drain(core)
    core.read_index("r")
    drain(core)
    core.step(HeartbeatResponse("c", "a", 9))
    rd = drain(core)
    assert rd.read_states == () and rd.dropped_reads == ("r",)


def test_single_node_cluster_elects_itself_and_commits_alone():
    core = make_core("a", ("a",))
    for _ in range(core.randomized_timeout):
        core.tick()
    assert core.role == LEADER
    term, index = core.propose(b"x")
    rd = drain(core)
    assert [e.index for e in rd.committed_entries] == [1, 2]
    core.read_index("q")
    assert drain(core).read_states[0].index == 2


# --- §5.4.2 commit rule and replication flow -----------------------------------------


def test_leader_commits_when_majority_matches_current_term_entry():
    core = elected(voters=("a", "b", "c", "d", "e"))
    drain(core)
    core.step(AppendResponse("b", "a", 1, True, 1))
    assert core.commit == 0
    core.step(AppendResponse("c", "a", 1, True, 1))
    assert core.commit == 1


def test_probe_sends_one_append_and_replicate_limits_inflight():
    """Flow control: a probing follower gets one AppendEntries at a time; a
    replicating one at most max_inflight."""
    core = elected(max_inflight=2, max_append_entries=1)
    drain(core)
    for i in range(5):
        core.propose(b"p%d" % i)
    rd = drain(core)
    assert not [m for m in msgs(rd, AppendEntries) if m.dst == "b"]  # still probing
    core.step(AppendResponse("b", "a", 1, True, 1))
    assert core._progress["b"].state == REPLICATE
    sent = [m for m in msgs(drain(core), AppendEntries) if m.dst == "b"]
    assert len(sent) == 2 and [m.entries[0].index for m in sent] == [2, 3]
    core.step(AppendResponse("b", "a", 1, True, 2))
    sent = [m for m in msgs(drain(core), AppendEntries) if m.dst == "b"]
    assert [m.entries[0].index for m in sent] == [4]


def test_rejection_moves_follower_back_to_probe_with_hint():
    core = elected()
    drain(core)
    core.step(AppendResponse("b", "a", 1, True, 1))
    drain(core)
    core.step(AppendResponse("b", "a", 1, False, 1, 1, 0))  # stale (<= match): ignored
    assert core._progress["b"].state == REPLICATE
    core.propose(b"x")
    drain(core)
    core.step(AppendResponse("b", "a", 1, False, 2, 2, 0))
    pr = core._progress["b"]
    assert pr.state == PROBE and pr.next == 2


def test_group_commit_puts_a_batch_in_one_ready():
    core = elected()
    drain(core)
    term, first = core.propose_batch([b"x", b"y", b"z"])
    rd = drain(core)
    assert (term, first) == (1, 2)
    assert [e.data for e in rd.entries] == [b"x", b"y", b"z"]


def test_proposals_on_follower_raise_not_leader_with_hint():
    core = make_core("b", ABC)
    core.step(Heartbeat("a", "b", 1, 0))
    with pytest.raises(NotLeader) as err:
        core.propose(b"x")
    assert err.value.leader == "a"
    with pytest.raises(NotLeader):
        core.read_index("x")


def test_feeding_the_core_between_ready_and_advance_is_refused():
    core = make_core("a", ABC)
    core.tick()
    core.ready()
    with pytest.raises(RuntimeError):
        core.tick()
    with pytest.raises(RuntimeError):
        core.ready()


# --- pre-vote, check-quorum (thesis §9.6) --------------------------------------------


def test_prevote_does_not_change_term_or_vote():
    core = make_core("a", ABC)
    core.election_elapsed = core.randomized_timeout - 1
    core.tick()
    assert core.role == PRE_CANDIDATE and core.term == 0 and core.vote is None
    rd = drain(core)
    reqs = msgs(rd, VoteRequest)
    assert all(r.pre_vote and r.term == 1 for r in reqs) and rd.hard_state is None
    core.step(VoteResponse("b", "a", 1, True, pre_vote=True))
    assert core.role == CANDIDATE and core.term == 1


def test_prevote_granted_without_changing_voter_state():
    voter = make_core("b", ABC)
    voter.step(VoteRequest("a", "b", 1, 0, 0, pre_vote=True))
    rd = drain(voter)
    assert msgs(rd, VoteResponse)[0].granted and voter.term == 0 and voter.vote is None
    assert rd.hard_state is None


def test_voter_in_leader_lease_ignores_higher_term_candidates():
    voter = make_core("b", ABC)
    voter.step(Heartbeat("a", "b", 1, 0))
    drain(voter)
    voter.step(VoteRequest("c", "b", 5, 10, 5))
    rd = drain(voter)
    assert voter.term == 1 and not msgs(rd, VoteResponse)
    voter.step(VoteRequest("c", "b", 5, 10, 5, transfer=True))  # TimeoutNow election
    assert msgs(drain(voter), VoteResponse)[0].granted and voter.term == 5


def test_check_quorum_leader_steps_down_without_majority_contact():
    core = elected()
    drain(core)
    ticks = 0
    while core.role == LEADER and ticks < core.election_ticks * 3:
        core.tick()
        ticks += 1
        if ticks == 5:
            core.step(HeartbeatResponse("b", "a", 1))  # b answers once, at tick 5
    # a majority (a + b) was heard within the last election timeout until tick 14
    assert core.role == FOLLOWER and core.term == 1 and ticks == 5 + core.election_ticks


# --- membership (thesis §4.1): T19, T22 ----------------------------------------------


def test_t19_config_change_refused_before_first_own_term_commit():
    core = elected()
    drain(core)
    with pytest.raises(LeaderNotReady):
        core.propose_conf_change("add", "d")
    core.step(AppendResponse("b", "a", 1, True, 1))
    assert core.commit == 1
    term, index = core.propose_conf_change("add", "d")
    assert index == 2 and core.voters == ("a", "b", "c", "d")  # in effect on append


def test_t22_second_change_and_stale_config_index_refused():
    core = elected()
    drain(core)
    core.step(AppendResponse("b", "a", 1, True, 1))
    assert core.config_index == 0
    with pytest.raises(StaleConfiguration):
        core.propose_conf_change("add", "d", expected_config_index=5)
    core.propose_conf_change("add", "d", expected_config_index=0)
    with pytest.raises(ConfigChangeInProgress):
        core.propose_conf_change("add", "e")
    core.step(AppendResponse("b", "a", 1, True, 2))
    assert core.commit == 1  # 4 voters now: a, b are not enough
    core.step(AppendResponse("c", "a", 1, True, 2))
    assert core.commit == 2
    with pytest.raises(StaleConfiguration):
        core.propose_conf_change("add", "e", expected_config_index=0)
    core.propose_conf_change("remove", "d", expected_config_index=2)
    assert core.voters == ABC


def test_removing_last_voter_and_bad_ops_are_refused():
    core = make_core("a", ("a",))
    for _ in range(core.randomized_timeout):
        core.tick()
    drain(core)
    with pytest.raises(InvalidConfigChange):
        core.propose_conf_change("remove", "a")
    with pytest.raises(InvalidConfigChange):
        core.propose_conf_change("swap", "b")


# --- leadership transfer (thesis §3.10) ---------------------------------------------


def test_transfer_to_up_to_date_follower_sends_timeout_now_and_refuses_proposals():
    core = elected()
    drain(core)
    core.step(AppendResponse("b", "a", 1, True, 1))
    drain(core)
    assert core.transfer_leadership("b") == "b"
    assert msgs(drain(core), TimeoutNow)[0].dst == "b"
    with pytest.raises(LeadershipTransferInProgress):
        core.propose(b"x")
    for _ in range(core.election_ticks):
        core.tick()
    # aborted after an election timeout (check-quorum stepped down here as well)
    assert core.transferee is None


def test_timeout_now_starts_election_without_prevote():
    f = make_core("b", ABC)
    f.step(Heartbeat("a", "b", 1, 0))
    drain(f)
    f.step(TimeoutNow("a", "b", 1))
    assert f.role == CANDIDATE and f.term == 2
    reqs = msgs(drain(f), VoteRequest)
    assert all(r.transfer and not r.pre_vote for r in reqs)


# --- restart from storage --------------------------------------------------------------


def test_restart_from_snapshot_and_trailing_log_redelivers_committed_entries():
    from ipfscluster.consensus.raft.messages import Snapshot, SnapshotMeta

    snap = Snapshot(SnapshotMeta(10, 2, ("a", "b", "c", "d"), 7), b"state@10")
    ents = entries_with_terms([1] * 4 + [2] * 8, start=6)  # 6..17
    core = make_core("a", ABC, hard_state=HardState(3, "b", 14), snapshot=snap,
                     entries=ents, log_base=(5, 1))
    assert (core.first_index, core.last_index, core.commit, core.applied) == (6, 17, 14, 10)
    assert core.voters == ("a", "b", "c", "d") and core.config_index == 7
    assert core.term_at(5) == 1 and core.term_at(10) == 2 and core.term_at(4) is None
    rd = drain(core)
    assert [e.index for e in rd.committed_entries] == [11, 12, 13, 14]
    assert rd.entries == () and rd.hard_state is None and rd.snapshot is None


def test_restart_with_snapshot_newer_than_stored_log_uses_it_as_base():
    from ipfscluster.consensus.raft.messages import Snapshot, SnapshotMeta

    snap = Snapshot(SnapshotMeta(20, 3, ABC, 0), b"s")
    core = make_core("a", ABC, hard_state=HardState(3, None, 4), snapshot=snap,
                     entries=entries_with_terms([1, 1, 1, 1]))
    assert (core.first_index, core.last_index, core.commit, core.last_term) == (21, 20, 20, 3)


def test_commit_persisted_ahead_of_lost_entries_is_clamped():
    core = make_core("a", ABC, hard_state=HardState(2, None, 9), entries=entries_with_terms([1, 1]))
    assert core.commit == 2 and core.last_index == 2


def test_compact_keeps_trailing_logs_and_records_configuration():
    core = elected(trailing_logs=3)
    drain(core)
    core.step(AppendResponse("b", "a", 1, True, 1))
    core.propose_conf_change("add", "d")
    core.step(AppendResponse("b", "a", 1, True, 2))
    core.step(AppendResponse("c", "a", 1, True, 2))
    for i in range(6):
        core.propose(b"p%d" % i)
    core.step(AppendResponse("b", "a", 1, True, 8))
    core.step(AppendResponse("c", "a", 1, True, 8))
    drain(core)
    assert core.applied == 8
    res = core.compact(7, b"snap")
    assert res.snapshot.index == 7 and res.snapshot.voters == ("a", "b", "c", "d")
    assert res.snapshot.config_index == 2
    assert res.first_index == 5 and res.base_term == 1 and core.first_index == 5
    with pytest.raises(ValueError):
        core.compact(9, b"not applied yet")
    with pytest.raises(ValueError):
        core.compact(6, b"older than the snapshot")
