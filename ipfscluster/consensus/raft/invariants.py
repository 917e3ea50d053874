"""Raft safety invariants, checked incrementally after every simulated event.

:class:`InvariantChecker` watches a set of :class:`~ipfscluster.consensus.raft.core.RaftCore`
instances (through hooks the simulator calls) and raises :class:`InvariantViolation`
as soon as one of these breaks (raft-test-plan §4.1 item 4):

* **Election Safety** — at most one leader per term, over the whole history;
* **Leader Append-Only** — a leader never shortens or rewrites its log in its term;
* **Log Matching** — two logs holding an entry with the same (index, term) hold the
  same command there and the same term just before it (by induction: identical
  prefixes); checked on every entry any node persists;
* **Leader Completeness** — every committed (index, term) is in the log (or snapshot)
  of every leader of a later term; checked when a leader appears, against every
  entry committed while all terms were lower than the new leader's (the term in
  which an entry was committed is bounded by the highest term seen at that time);
* **State Machine Safety** — no two nodes apply different entries at one index;
* term and commit are monotonic per node, also across restarts (compared with what
  was durable); at most one granted vote per (node, term), also across restarts;
  ``applied <= commit <= last_index``; a leader holds at most one configuration
  entry beyond the committed prefix; every write acknowledged to a client is
  applied identically by every node that reaches it (checked by the simulator at
  the end of a run).

The checks are incremental (dictionaries keyed by index/term) so that they cost
O(1) amortised per event; this is what lets CI run hundreds of seeds.
"""

from __future__ import annotations

from typing import Any


class InvariantViolation(AssertionError):
    """A Raft safety property does not hold; the message names it and the nodes."""


class InvariantChecker:
    """Incremental checker; the simulator calls the ``on_*`` hooks and :meth:`check_node`."""

    def __init__(self):
        self.leaders: dict[int, str] = {}            # term -> leader id (whole history)
        self.votes: dict[tuple[str, int], str] = {}  # (voter, term) -> candidate
        self.entries: dict[tuple[int, int], tuple[bytes, int, int]] = {}  # (i,t)->(data,kind,prev term)
        self.committed: dict[int, tuple[int, int]] = {}  # index -> (term, max term then)
        self.max_commit = 0
        self.max_term = 0
        self.applied: dict[int, tuple[int, bytes]] = {}  # index -> (term, data)
        self.durable: dict[str, tuple[int, Any, int]] = {}  # node -> (term, vote, commit)
        self._seen_commit: dict[str, int] = {}
        self._last_term: dict[str, int] = {}
        self._last_commit: dict[str, int] = {}
        self._leader_log: dict[str, tuple[int, int, int]] = {}  # node -> (term, last idx, last term)
        self.events = 0

    # --- hooks ------------------------------------------------------------------

    def on_persist(self, node: str, core, rd) -> None:
        """A Ready was made durable (fsync done): record hard state, votes, entries."""
        hs = rd.hard_state
        if hs is not None:
            old = self.durable.get(node)
            if old is not None:
                if hs.term < old[0]:
                    self._fail("durable term of %s went back from %d to %d" % (node, old[0], hs.term))
                if hs.term == old[0] and old[1] is not None and hs.vote != old[1]:
                    self._fail("%s changed its durable vote in term %d from %s to %s"
                               % (node, hs.term, old[1], hs.vote))
            self.durable[node] = (hs.term, hs.vote, hs.commit)
        if rd.entries:
            prev_term = None
            for e in rd.entries:
                if prev_term is None:
                    prev_term = core.term_at(e.index - 1)
                key = (e.index, e.term)
                val = (e.data, e.kind, prev_term)
                seen = self.entries.get(key)
                if seen is None:
                    self.entries[key] = val
                elif seen[0] != val[0] or seen[1] != val[1] or (
                        seen[2] is not None and val[2] is not None and seen[2] != val[2]):
                    self._fail("Log Matching: %s holds a different entry at index %d term %d"
                               % (node, e.index, e.term))
                prev_term = e.term

    def on_message_sent(self, msg) -> None:
        """Record granted (real) votes: one per (voter, term), forever."""
        if type(msg).__name__ == "VoteResponse" and msg.granted and not msg.pre_vote:
            key = (msg.src, msg.term)
            prior = self.votes.get(key)
            if prior is not None and prior != msg.dst:
                self._fail("%s voted twice in term %d: for %s and for %s"
                           % (msg.src, msg.term, prior, msg.dst))
            self.votes[key] = msg.dst

    def on_apply(self, node: str, entry) -> None:
        """State Machine Safety: one command per index across all nodes."""
        seen = self.applied.get(entry.index)
        if seen is None:
            self.applied[entry.index] = (entry.term, entry.data)
        elif seen != (entry.term, entry.data):
            self._fail("State Machine Safety: %s applied a different entry at index %d "
                       "(term %d, earlier term %d)" % (node, entry.index, entry.term, seen[0]))

    def on_restart(self, node: str, core) -> None:
        """A node came back from its disk: nothing durable may have been forgotten."""
        d = self.durable.get(node)
        if d is not None:
            if core.term < d[0]:
                self._fail("%s restarted with term %d below its durable term %d"
                           % (node, core.term, d[0]))
            if core.term == d[0] and d[1] is not None and core.vote != d[1]:
                self._fail("%s forgot its vote for %s in term %d" % (node, d[1], d[0]))
            if core.commit < d[2]:
                self._fail("%s restarted with commit %d below durable %d"
                           % (node, core.commit, d[2]))
        self._last_term[node] = core.term
        self._last_commit[node] = core.commit
        self._seen_commit[node] = min(self._seen_commit.get(node, 0), core.commit)
        self._leader_log.pop(node, None)

    def forget(self, node: str) -> None:
        """A node's data folder was wiped (it rejoins as a new member)."""
        self.durable.pop(node, None)
        self._last_term.pop(node, None)
        self._last_commit.pop(node, None)
        self._seen_commit.pop(node, None)
        self._leader_log.pop(node, None)

    # --- per-event check --------------------------------------------------------

    def check_node(self, core, applied: int) -> None:
        """Check one node after an event that touched it.

        ``applied`` is the state machine's last applied index.  Raises
        InvariantViolation.
        """
        self.events += 1
        node = core.id
        term, commit, last = core.term, core.commit, core.last_index
        if term < self._last_term.get(node, 0):
            self._fail("term of %s went back to %d" % (node, term))
        self._last_term[node] = term
        if term > self.max_term:
            self.max_term = term
        if commit < self._last_commit.get(node, 0):
            self._fail("commit of %s went back to %d" % (node, commit))
        self._last_commit[node] = commit
        if not applied <= commit <= last:
            self._fail("%s breaks applied <= commit <= last: %d, %d, %d"
                       % (node, applied, commit, last))
        seen = self._seen_commit.get(node, 0)
        if commit > seen:
            self._record_commits(core, seen, commit)
            self._seen_commit[node] = commit
        if core.role == "leader":
            self._check_leader(core)

    def _record_commits(self, core, lo: int, hi: int) -> None:
        committed = self.committed
        for i in range(max(lo, core.first_index - 1) + 1, hi + 1):
            t = core.term_at(i)
            if t is None:
                continue
            prior = committed.get(i)
            if prior is None:
                # committed in some term <= max_term: leaders of later terms must hold it
                committed[i] = (t, self.max_term)
            elif prior[0] != t:
                self._fail("%s committed term %d at index %d, but term %d was committed there"
                           % (core.id, t, i, prior[0]))
        if hi > self.max_commit:
            self.max_commit = hi

    def _check_leader(self, core) -> None:
        node, term = core.id, core.term
        other = self.leaders.get(term)
        if other is None:
            self.leaders[term] = node
            self._check_completeness(core)
        elif other != node:
            self._fail("Election Safety: %s and %s are both leaders of term %d" % (other, node, term))
        prev = self._leader_log.get(node)
        last = core.last_index
        if prev is not None and prev[0] == term:
            if last < prev[1]:
                self._fail("Leader Append-Only: leader %s log shrank from %d to %d"
                           % (node, prev[1], last))
            t = core.term_at(prev[1])
            if t is not None and t != prev[2]:
                self._fail("Leader Append-Only: leader %s rewrote entry %d" % (node, prev[1]))
        self._leader_log[node] = (term, last, core.last_term)
        pending = sum(1 for idx, _ in core._conf if idx > self.max_commit)
        if pending > 1:
            self._fail("leader %s holds %d uncommitted configuration entries" % (node, pending))

    def _check_completeness(self, core) -> None:
        base = core.first_index - 1
        term = core.term
        for i, (t, bound) in self.committed.items():
            if i <= base or term <= bound:
                continue
            if core.term_at(i) != t:
                self._fail("Leader Completeness: new leader %s (term %d) lacks committed "
                           "entry %d of term %d" % (core.id, core.term, i, t))

    def _fail(self, text: str) -> None:
        raise InvariantViolation(text)
