"""Golden interaction transcripts (plan §4.1 layer 2).

Each scenario runs cores on the synchronous test network and renders every message
as one line; the transcript must equal the reviewed golden text below.  A change in
protocol behaviour (an extra round trip, a message too many, another order) shows
up as a readable diff.
"""

from __future__ import annotations

from raft_core_net import Net, entries_with_terms

from ipfscluster.consensus.raft.messages import (
    AppendEntries,
    AppendResponse,
    HardState,
    Heartbeat,
    HeartbeatResponse,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)


def render(m) -> str:
    head = "%s->%s t%d " % (m.src, m.dst, m.term)
    if isinstance(m, VoteRequest):
        kind = "PreVote" if m.pre_vote else "Vote"
        return head + "%s last=%d/%d%s" % (kind, m.last_index, m.last_term,
                                           " transfer" if m.transfer else "")
    if isinstance(m, VoteResponse):
        return head + "%sResp %s" % ("PreVote" if m.pre_vote else "Vote",
                                      "granted" if m.granted else "rejected")
    if isinstance(m, AppendEntries):
        ents = " ".join("%d/%d" % (e.index, e.term) for e in m.entries)
        return head + "App prev=%d/%d commit=%d [%s]" % (m.prev_index, m.prev_term, m.commit, ents)
    if isinstance(m, AppendResponse):
        if m.success:
            return head + "AppResp ok %d" % m.index
        return head + "AppResp reject %d hint=%d/%d" % (m.index, m.hint_index, m.hint_term)
    if isinstance(m, Heartbeat):
        return head + "HB commit=%d" % m.commit + (" read=%d" % m.read_seq if m.read_seq else "")
    if isinstance(m, HeartbeatResponse):
        return head + "HBResp" + (" read=%d" % m.read_seq if m.read_seq else "")
    if isinstance(m, TimeoutNow):
        return head + "TimeoutNow"
    return head + type(m).__name__


def transcript(net: Net) -> str:
    return "\n".join(render(m) for m in net.sent)


def golden(text: str) -> str:
    return "\n".join(line.strip() for line in text.strip().splitlines())


def test_election_and_first_commit():
    net = Net(("a", "b", "c"))
    net.campaign("a")
    net.cores["a"].propose(b"x")
    net.drive("a")
    net.deliver()
    net.tick("a")
    assert transcript(net) == golden("""
        a->b t1 PreVote last=0/0
        a->c t1 PreVote last=0/0
        b->a t1 PreVoteResp granted
        c->a t1 PreVoteResp granted
        a->b t1 Vote last=0/0
        a->c t1 Vote last=0/0
        b->a t1 VoteResp granted
        c->a t1 VoteResp granted
        a->b t1 App prev=0/0 commit=0 [1/1]
        a->c t1 App prev=0/0 commit=0 [1/1]
        b->a t1 AppResp ok 1
        c->a t1 AppResp ok 1
        a->b t1 App prev=1/1 commit=1 []
        b->a t1 AppResp ok 1
        a->b t1 App prev=1/1 commit=1 [2/1]
        a->c t1 App prev=1/1 commit=1 [2/1]
        b->a t1 AppResp ok 2
        c->a t1 AppResp ok 2
        a->b t1 App prev=2/1 commit=2 []
        a->c t1 App prev=2/1 commit=2 []
        b->a t1 AppResp ok 2
        c->a t1 AppResp ok 2
        a->b t1 HB commit=2
        a->c t1 HB commit=2
        b->a t1 HBResp
        c->a t1 HBResp
    """)


def test_conflicting_follower_converges_in_one_hinted_round_trip():
    """F holds five term-2 entries where the leader has 3/3: one rejection with the
    hint (first index 3 of term 2) lets the leader resend from its last term-2 entry."""
    net = Net(("L", "Z", "F"), pre_vote=False)
    net.disk["L"] = [HardState(3, None, 2), entries_with_terms([1, 1, 2, 2, 3])]
    net.disk["Z"] = [HardState(3, None, 2), entries_with_terms([1, 1, 2, 2, 3])]
    net.disk["F"] = [HardState(3, None, 2), entries_with_terms([1, 1, 2, 2, 2, 2, 2])]
    for nid in "LZF":
        net.restart(nid)
    net.cut = {("L", "F"), ("F", "L")}
    net.campaign("L")
    net.sent.clear()
    net.heal()
    net.tick("L")
    assert transcript(net) == golden("""
        L->Z t4 HB commit=6
        L->F t4 HB commit=0
        Z->L t4 HBResp
        F->L t4 HBResp
        L->F t4 App prev=5/3 commit=6 [6/4]
        F->L t4 AppResp reject 5 hint=3/2
        L->F t4 App prev=4/2 commit=6 [5/3 6/4]
        F->L t4 AppResp ok 6
    """)


def test_leadership_transfer_to_up_to_date_follower():
    """TimeoutNow makes the target campaign at once; its transfer-flagged vote request
    is granted inside the leader lease; the old leader steps down by term."""
    net = Net(("a", "b", "c"))
    net.campaign("a")
    net.tick("a")
    net.sent.clear()
    net.cores["a"].transfer_leadership("b")
    net.drive("a")
    net.deliver()
    net.tick("b")
    assert transcript(net) == golden("""
        a->b t1 TimeoutNow
        b->a t2 Vote last=1/1 transfer
        b->c t2 Vote last=1/1 transfer
        a->b t2 VoteResp granted
        c->b t2 VoteResp granted
        b->a t2 App prev=1/1 commit=1 [2/2]
        b->c t2 App prev=1/1 commit=1 [2/2]
        a->b t2 AppResp ok 2
        c->b t2 AppResp ok 2
        b->a t2 App prev=2/2 commit=2 []
        a->b t2 AppResp ok 2
        b->a t2 HB commit=2
        b->c t2 HB commit=2
        a->b t2 HBResp
        c->b t2 HBResp
    """)
