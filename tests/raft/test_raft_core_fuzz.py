"""Robustness of one core against arbitrary (well-typed) peer messages.

Hypothesis throws random interleavings of every message type, ticks, proposals,
reads and membership calls at a single RaftCore.  The core must never raise
anything but its documented errors, and its local invariants must hold after every
input: term and commit never go back, ``applied <= commit <= last_index``, the
log is contiguous, entries up to the commit are never rewritten, and every
granted vote in a term goes to one candidate.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ipfscluster.consensus.raft import messages as m
from ipfscluster.consensus.raft.core import RaftCore
from ipfscluster.errors import ClusterError

PEERS = ("b", "c")
small = st.integers(0, 6)
peer = st.sampled_from(PEERS)


@st.composite
def append_entries(draw):
    prev = draw(small)
    terms = sorted(draw(st.lists(st.integers(1, 6), max_size=4)))
    ents = tuple(m.Entry(prev + 1 + i, t, 0, b"d%d" % t) for i, t in enumerate(terms))
    return m.AppendEntries(draw(peer), "a", draw(small), prev, draw(small), draw(small), ents)


message = st.one_of(
    st.builds(m.VoteRequest, peer, st.just("a"), small, small, small, st.booleans(), st.booleans()),
    st.builds(m.VoteResponse, peer, st.just("a"), small, st.booleans(), st.booleans()),
    append_entries(),
    st.builds(m.AppendResponse, peer, st.just("a"), small, st.booleans(), small, small, small),
    st.builds(m.Heartbeat, peer, st.just("a"), small, small, small),
    st.builds(m.HeartbeatResponse, peer, st.just("a"), small, small),
    st.builds(m.InstallSnapshot, peer, st.just("a"), small, small, small,
              st.just(("a", "b", "c")), st.just(0), st.integers(0, 8), st.just(8),
              st.binary(max_size=8), st.booleans()),
    st.builds(m.SnapshotResponse, peer, st.just("a"), small, small, small, st.booleans()),
    st.builds(m.TimeoutNow, peer, st.just("a"), small),
)

action = st.one_of(
    message.map(lambda msg: ("step", msg)),
    st.integers(1, 25).map(lambda n: ("tick", n)),
    st.just(("propose", None)),
    st.just(("read", None)),
    st.sampled_from([("conf", "add"), ("conf", "remove")]),
    st.just(("transfer", None)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(action, max_size=60), st.integers(0, 1000))
def test_core_survives_any_message_sequence(actions, seed):
    core = RaftCore("a", ("a", "b", "c"), rng=random.Random(seed))
    committed: dict[int, int] = {}
    votes: dict[int, str] = {}
    term = commit = 0
    for kind, arg in actions:
        try:
            if kind == "step":
                core.step(arg)
            elif kind == "tick":
                for _ in range(arg):
                    core.tick()
            elif kind == "propose":
                core.propose(b"x")
            elif kind == "read":
                core.read_index(object())
            elif kind == "conf":
                core.propose_conf_change(arg, "c")
            else:
                core.transfer_leadership()
        except ClusterError:
            pass
        rd = core.ready()
        core.advance(rd)
        for out in rd.messages:
            if isinstance(out, m.VoteResponse) and out.granted and not out.pre_vote:
                assert votes.setdefault(out.term, out.dst) == out.dst
        assert core.term >= term and core.commit >= commit
        term, commit = core.term, core.commit
        assert core.applied <= core.commit <= core.last_index
        log = core.entries(core.first_index, core.last_index + 1)
        assert [e.index for e in log] == list(range(core.first_index, core.last_index + 1))
        assert all(a.term <= b.term for a, b in zip(log, log[1:]))
        for i in range(core.first_index, core.commit + 1):
            t = core.term_at(i)
            assert committed.setdefault(i, t) == t  # committed entries never change
