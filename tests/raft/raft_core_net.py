"""A tiny synchronous network of RaftCores for paper-style unit tests.

``Net`` keeps one in-memory "disk" per node (the last persisted hard state and the
persisted entries, exactly what each Ready asked to persist), delivers messages in
FIFO order, can cut links, and can crash/restart a node from its disk.  It is much
smaller than :mod:`ipfscluster.consensus.raft.sim` so that tests read like the
paper's sentences.
"""

from __future__ import annotations

import random

from ipfscluster.consensus.raft.core import LEADER, RaftCore
from ipfscluster.consensus.raft.messages import Entry, HardState


def drain(core: RaftCore):
    """Take one Ready from ``core``, acknowledge it, return it."""
    rd = core.ready()
    core.advance(rd)
    return rd


def make_core(nid, voters, seed=0, **kw):
    kw.setdefault("election_ticks", 10)
    kw.setdefault("heartbeat_ticks", 1)
    return RaftCore(nid, voters, rng=random.Random(seed), **kw)


def log_of(core: RaftCore) -> list[tuple[int, int]]:
    return [(e.index, e.term) for e in core.entries(core.first_index, core.last_index + 1)]


def entries_with_terms(terms, start=1):
    return [Entry(start + i, t, 0, b"e%d" % (start + i)) for i, t in enumerate(terms)]


class Net:
    def __init__(self, ids, seed=0, **kw):
        self.ids = list(ids)
        self.kw = kw
        self.seed = seed
        self.cores = {nid: make_core(nid, self.ids, seed=seed * 100 + i, **kw)
                      for i, nid in enumerate(self.ids)}
        self.disk = {nid: [HardState(), []] for nid in self.ids}
        self.queue: list = []
        self.cut: set[tuple[str, str]] = set()
        self.down: set[str] = set()
        self.applied = {nid: [] for nid in self.ids}
        self.reads = {nid: [] for nid in self.ids}
        self.sent: list = []

    def drive(self, nid):
        core = self.cores[nid]
        while core.has_ready():
            rd = core.ready()
            hs, ents = self.disk[nid]
            if rd.hard_state is not None:
                self.disk[nid][0] = rd.hard_state
            if rd.entries:
                first = rd.entries[0].index
                if ents:
                    del ents[max(0, first - ents[0].index):]
                ents.extend(rd.entries)
            self.queue.extend(rd.messages)
            self.sent.extend(rd.messages)
            self.applied[nid].extend(rd.committed_entries)
            self.reads[nid].extend(rd.read_states)
            core.advance(rd)

    def deliver(self, limit=100_000, drop=None):
        """Deliver queued messages (and their consequences) until none are left."""
        n = 0
        while self.queue and n < limit:
            m = self.queue.pop(0)
            n += 1
            if m.dst in self.down or (m.src, m.dst) in self.cut:
                continue
            if drop is not None and drop(m):
                continue
            self.cores[m.dst].step(m)
            self.drive(m.dst)
        return n

    def tick(self, nid=None, times=1):
        for _ in range(times):
            for i in ([nid] if nid else self.ids):
                if i not in self.down:
                    self.cores[i].tick()
                    self.drive(i)
            self.deliver()

    def campaign(self, nid, drop=None):
        """Let ``nid`` time out now (and only it), then run to quiescence."""
        core = self.cores[nid]
        core.election_elapsed = core.randomized_timeout - 1
        core.tick()
        self.drive(nid)
        self.deliver(drop=drop)

    def leader(self):
        leads = [c for n, c in self.cores.items() if n not in self.down and c.role == LEADER]
        return max(leads, key=lambda c: c.term) if leads else None

    def isolate(self, nid):
        for o in self.ids:
            if o != nid:
                self.cut |= {(nid, o), (o, nid)}

    def heal(self):
        self.cut = set()

    def crash(self, nid):
        self.down.add(nid)
        self.queue = [m for m in self.queue if m.dst != nid and m.src != nid]

    def restart(self, nid):
        hs, ents = self.disk[nid]
        self.cores[nid] = make_core(nid, self.ids, seed=self.seed + 999, hard_state=hs,
                                    entries=list(ents), **self.kw)
        self.down.discard(nid)
        self.drive(nid)


def checker_history(sim):
    """A simulator's client history as operations of the linearizability checker.

    Definitely failed operations are left out; writes without an answer get an
    infinite return time (they may take effect any time after their call).
    """
    import math

    from ipfscluster.testing.linearizability import Operation

    ops = []
    for o in sim.history:
        if o.ok is False:
            continue
        if o.kind == "read":
            if o.ok:
                ops.append(Operation(o.id, "status", o.cid, o.call, o.ret, o.value))
        else:
            ops.append(Operation(o.id, o.kind, o.cid, o.call, o.ret if o.ok else math.inf))
    return ops
