"""Deterministic, seeded simulator for the Raft core (raft-test-plan §4.1 layer 3).

A :class:`Sim` runs N :class:`~ipfscluster.consensus.raft.core.RaftCore` instances on
a virtual integer clock (milliseconds) with one ``random.Random``: the same seed
replays the same run, event for event.  Its parts:

* **Message bus** — per link a base latency, per message a delay (1–10 ms, plus a
  long tail that reorders),
  drop and duplication probabilities; directed links can be blocked, which gives
  symmetric, one-way, bridge, leader-isolation and majority/minority partitions.
* **Disk model** (:class:`Disk`) — an append-only byte file of checksummed records
  with a durable prefix and an un-synced tail; each Ready is one batch record (a
  transaction, as in the SQLite storage).  A crash drops the tail; a *torn* crash
  keeps a random part of it and garbles bytes in it (the LazyFS idea).  Recovery
  reads records up to the first bad one and truncates the rest.  A compaction
  rewrites the file atomically (write temp, fsync, rename).
* **Driver** — the same order as ``node.py``: persist a Ready, fsync, *then* send
  its messages, apply committed entries, answer reads, ``advance``.  fsync latency
  is sampled (mostly instant, sometimes 1–5 ms, rarely 200–400 ms); a node is
  blocked while its fsync runs (as a reactor blocked in ``fsync`` would be).
* **Crash/restart** rebuild a node from its :class:`Disk` alone; **power loss**
  crashes every node at once; **pauses** stall a node longer than the election
  timeout; **clock skew** gives each node a tick period of 0.5–1.5× the base.
* **Clients** pin/unpin/read CIDs through the leader (ReadIndex for reads), retry
  with the same request id, and record a history for the linearizability check.
  The state machine is a pinset with a session table: a request id takes effect
  at most once.

After every event the touched node is checked by
:class:`~ipfscluster.consensus.raft.invariants.InvariantChecker`; at the end
:meth:`Sim.settle` heals everything and checks that every member converges to the
same state and that every acknowledged write is in it.

Command line: ``python -m ipfscluster.consensus.raft.sim --seeds N --events M``
runs seeds ``0..N-1`` with M random schedule steps each (a step is one client
operation or fault, then 1–60 ms of traffic; every simulated event in between is
checked), prints a summary and exits 1 on the first violation, printing the seed
and the schedule (``--seed S -v`` replays one seed with the full schedule).
``--faults none|nemesis|network|disk`` picks the fault profile, ``--nodes`` and
``--spare`` the cluster size and the extra nodes used for membership changes.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import struct
import sys
import time
import zlib
from collections import Counter, deque
from typing import Any

import attrs

from ipfscluster.consensus.raft.core import LEADER, RaftCore
from ipfscluster.consensus.raft.invariants import InvariantChecker, InvariantViolation
from ipfscluster.consensus.raft.messages import (
    ENTRY_NORMAL,
    AppendEntries,
    HardState,
    InstallSnapshot,
    Snapshot,
    SnapshotMeta,
    decode,
    encode,
)
from ipfscluster.errors import ClusterError

BASE_TICK_MS = 100


class LivenessViolation(InvariantViolation):
    """The cluster did not converge after all faults were healed."""


@attrs.frozen
class Faults:
    """Fault probabilities and switches of a simulation run."""

    drop: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0          # chance of an extra 0-reorder_ms delay
    reorder_ms: int = 100
    min_delay: int = 1
    max_delay: int = 10
    slow_fsync: float = 0.0       # chance of a 1-5 ms fsync
    fsync_outlier: float = 0.0    # chance of a 200-400 ms fsync
    torn: float = 0.0             # chance that a crash tears the un-synced tail
    skew: bool = False            # per-node tick period 0.5x-1.5x


NO_FAULTS = Faults()
NEMESIS_FAULTS = Faults(drop=0.05, dup=0.05, reorder=0.1, slow_fsync=0.05,
                        fsync_outlier=0.005, torn=0.5, skew=True)
PROFILES = {
    "none": NO_FAULTS,  # crashes, partitions and pauses only
    "nemesis": NEMESIS_FAULTS,
    "network": Faults(drop=0.1, dup=0.1, reorder=0.5, reorder_ms=300, max_delay=30),
    "disk": Faults(slow_fsync=0.3, fsync_outlier=0.05, torn=1.0),
}


# --- disk model ---------------------------------------------------------------------

_REC = struct.Struct(">IIB")  # payload length, crc32, record type
_HARD = struct.Struct(">QQ")
REC_HARD, REC_ENTRIES, REC_SNAP, REC_BASE, REC_BATCH = 1, 2, 3, 4, 5


class Disk:
    """A log file with a durable prefix (``synced`` bytes) and an un-synced tail."""

    def __init__(self):
        self.data = bytearray()
        self.synced = 0
        self.fsyncs = 0

    def write(self, rtype: int, payload: bytes) -> None:
        self.data += _REC.pack(len(payload), zlib.crc32(payload) ^ rtype, rtype)
        self.data += payload

    def fsync(self) -> None:
        self.synced = len(self.data)
        self.fsyncs += 1

    def crash(self, rng: random.Random, torn: bool) -> None:
        """Lose the un-synced tail; a torn crash keeps a random, garbled part of it."""
        if torn and len(self.data) > self.synced:
            cut = rng.randint(self.synced, len(self.data))
            del self.data[cut:]
            for _ in range(rng.randint(0, 3)):
                if cut > self.synced:
                    pos = rng.randrange(self.synced, cut)
                    self.data[pos] = rng.randrange(256)
        else:
            del self.data[self.synced:]
        self.synced = len(self.data)

    def write_batch(self, records: list[tuple[int, bytes]]) -> None:
        """Write several records as ONE checksummed record: all survive or none.

        This is what a storage transaction gives (SQLite commits a Ready's snapshot
        base, entries and hard state atomically).  Without it a torn tail could keep
        a new commit index but lose the entries that replaced a conflicting suffix,
        and the node would apply entries that were never committed.
        """
        inner = bytearray()
        for rtype, payload in records:
            inner += _REC.pack(len(payload), zlib.crc32(payload) ^ rtype, rtype)
            inner += payload
        self.write(REC_BATCH, bytes(inner))

    def rewrite(self, records: list[tuple[int, bytes]]) -> None:
        """Atomically replace the file (temp file, fsync, rename)."""
        self.data = bytearray()
        for rtype, payload in records:
            self.write(rtype, payload)
        self.fsync()

    def records(self) -> list[tuple[int, bytes]]:
        """Valid records up to the first damaged one; the damaged tail is cut off.

        A batch record is returned as the records inside it, in order.
        """
        data = self.data
        out, pos = _parse(data)
        del data[pos:]
        self.synced = min(self.synced, len(data))
        return out


def _parse(data) -> tuple[list[tuple[int, bytes]], int]:
    out, pos = [], 0
    while pos + _REC.size <= len(data):
        n, crc, rtype = _REC.unpack_from(data, pos)
        end = pos + _REC.size + n
        if end > len(data):
            break
        payload = bytes(data[pos + _REC.size:end])
        if zlib.crc32(payload) ^ rtype != crc:
            break
        if rtype == REC_BATCH:
            out.extend(_parse(payload)[0])
        else:
            out.append((rtype, payload))
        pos = end
    return out, pos


def hard_record(hs: HardState) -> tuple[int, bytes]:
    return REC_HARD, _HARD.pack(hs.term, hs.commit) + (hs.vote or "").encode()


def entries_record(entries) -> tuple[int, bytes]:
    # the message codec doubles as the entry-batch encoding of the model disk
    return REC_ENTRIES, encode(AppendEntries("", "", 0, 0, 0, 0, tuple(entries)))


def snapshot_record(snap: Snapshot) -> tuple[int, bytes]:
    m = snap.meta
    return REC_SNAP, encode(InstallSnapshot("", "", 0, m.index, m.term, m.voters,
                                            m.config_index, 0, len(snap.data), snap.data, True))


def load_disk(disk: Disk):
    """Rebuild ``(hard_state, snapshot, entries, log_base)`` from the disk's records."""
    hs, snap, entries, base = None, None, [], (0, 0)
    for rtype, payload in disk.records():
        if rtype == REC_HARD:
            term, commit = _HARD.unpack_from(payload)
            vote = payload[_HARD.size:].decode() or None
            hs = HardState(term, vote, commit)
        elif rtype == REC_ENTRIES:
            batch = decode(payload).entries
            if batch:
                first = batch[0].index
                entries = [e for e in entries if e.index < first] + list(batch)
        elif rtype == REC_SNAP:
            m = decode(payload)
            snap = Snapshot(SnapshotMeta(m.index, m.snap_term, m.voters, m.config_index), m.data)
            base = (m.index, m.snap_term)
            entries = []
        elif rtype == REC_BASE:
            base = _HARD.unpack_from(payload)
            entries = [e for e in entries if e.index > base[0]]
    return hs, snap, entries, base


# --- state machine ------------------------------------------------------------------


class PinStateMachine:
    """A pinset plus a session table: a request id takes effect at most once."""

    def __init__(self):
        self.pins: set[str] = set()
        self.sessions: dict[str, bool] = {}
        self.applied = 0
        self.effects = 0      # commands that changed the state (<= one per request id)
        self.duplicates = 0   # committed retries of a request id that already took effect

    def apply(self, entry) -> Any:
        if entry.index != self.applied + 1:
            raise InvariantViolation("applied index %d after %d: an entry applied twice or "
                                     "skipped" % (entry.index, self.applied))
        self.applied = entry.index
        if entry.kind != ENTRY_NORMAL:
            return None
        req, op, cid = entry.data.decode().split("|")
        if req in self.sessions:
            self.duplicates += 1
            return self.sessions[req]
        self.effects += 1
        if op == "pin":
            self.pins.add(cid)
        else:
            self.pins.discard(cid)
        self.sessions[req] = True
        return True

    def serialize(self) -> bytes:
        return json.dumps([sorted(self.pins), sorted(self.sessions)]).encode()

    def restore(self, data: bytes, index: int) -> None:
        pins, sessions = json.loads(data)
        self.pins = set(pins)
        self.sessions = dict.fromkeys(sessions, True)
        self.applied = index
        self.effects = len(self.sessions)

    def digest(self) -> str:
        return "%08x" % zlib.crc32(self.serialize())


# --- client history -----------------------------------------------------------------


@attrs.define
class Op:
    """One client operation.  ``ret`` None = no answer (unknown outcome)."""

    id: int
    kind: str        # pin | unpin | read
    cid: str
    req: str
    call: int
    ret: int | None = None
    value: Any = None
    ok: bool | None = None  # True acknowledged, False definitely failed, None unknown
    maybe_applied: bool = False
    attempts: int = 0


class SimNode:
    __slots__ = ("id", "core", "disk", "sm", "up", "epoch", "busy", "paused_until", "inbox",
                 "tick_ms", "proposals", "reads", "bootstrap")

    def __init__(self, node_id: str, bootstrap: tuple[str, ...], tick_ms: int):
        self.id = node_id
        self.bootstrap = bootstrap
        self.tick_ms = tick_ms
        self.disk = Disk()
        self.sm = PinStateMachine()
        self.core: RaftCore | None = None
        self.up = False
        self.epoch = 0
        self.busy = None
        self.paused_until = 0
        self.inbox: deque = deque()
        self.proposals: dict[int, tuple[int, Op]] = {}
        self.reads: dict[int, Op] = {}


class Sim:
    """N Raft cores, a virtual clock, a faulty network and model disks."""

    def __init__(self, seed: int, nodes: int = 3, spare: int = 0, faults: Faults = NO_FAULTS,
                 election_ticks: int = 10, heartbeat_ticks: int = 1,
                 snapshot_threshold: int = 40, trailing_logs: int = 8,
                 snapshot_chunk_size: int = 64, max_append_entries: int = 16,
                 max_inflight: int = 2, pre_vote: bool = True, check_quorum: bool = True,
                 client_timeout: int = 1500, check: bool = True):
        self.seed = seed
        self.rng = random.Random(seed)
        self.sent = 0      # messages handed to the bus
        self.events = 0    # simulated events processed (each one checked)
        self.counts: Counter = Counter()  # messages sent, by type
        self.drop_filter = None  # callable(message) -> True to lose it (tests)
        self.faults = faults
        self.now = 0
        self._queue: list = []
        self._seq = 0
        self.blocked: set[tuple[str, str]] = set()
        self.checker = InvariantChecker() if check else None
        self.trace: list[str] = []
        self.history: list[Op] = []
        self._op_ids = 0
        self.snapshot_threshold = snapshot_threshold
        self.client_timeout = client_timeout
        self.params = dict(election_ticks=election_ticks, heartbeat_ticks=heartbeat_ticks,
                           trailing_logs=trailing_logs, snapshot_chunk_size=snapshot_chunk_size,
                           max_append_entries=max_append_entries, max_inflight=max_inflight,
                           pre_vote=pre_vote, check_quorum=check_quorum)
        self.ids = ["n%d" % (i + 1) for i in range(nodes + spare)]
        # each directed link has its own base latency (0-3 ms) on top of the per-message one
        self.link_delay = {(a, b): self.rng.randint(0, 3) for a in self.ids for b in self.ids}
        voters = tuple(self.ids[:nodes])
        self.nodes: dict[str, SimNode] = {}
        for nid in self.ids:
            tick = BASE_TICK_MS
            if faults.skew:
                tick = int(BASE_TICK_MS * self.rng.uniform(0.5, 1.5))
            node = SimNode(nid, voters if nid in voters else (), tick)
            self.nodes[nid] = node
            self._boot(node)

    # --- plumbing ---------------------------------------------------------------

    def _boot(self, node: SimNode) -> None:
        hs, snap, entries, base = load_disk(node.disk)
        node.core = RaftCore(node.id, node.bootstrap, rng=random.Random(self.rng.random()),
                             hard_state=hs, snapshot=snap, entries=entries, log_base=base,
                             **self.params)
        node.sm = PinStateMachine()
        if snap is not None:
            node.sm.restore(snap.data, snap.meta.index)
        node.up = True
        node.epoch += 1
        node.busy = None
        node.paused_until = 0
        node.inbox.clear()
        node.proposals.clear()
        node.reads.clear()
        if self.checker is not None:
            self.checker.on_restart(node.id, node.core)
        self._schedule(self.rng.randint(1, node.tick_ms), "tick", node, node.epoch)

    def _schedule(self, delay: int, kind: str, a=None, b=None) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (self.now + max(0, int(delay)), self._seq, kind, a, b))

    def log(self, text: str) -> None:
        self.trace.append("t=%d %s" % (self.now, text))

    def run_for(self, ms: int) -> None:
        """Process every event due in the next ``ms`` virtual milliseconds."""
        end = self.now + ms
        q = self._queue
        while q and q[0][0] <= end:
            t, _, kind, a, b = heapq.heappop(q)
            self.now = t
            self._event(kind, a, b)
        self.now = end

    def _event(self, kind: str, a, b) -> None:
        self.events += 1
        if kind == "deliver":
            node = self.nodes.get(a.dst)
            if node is None or not node.up or (a.src, a.dst) in self.blocked:
                return
            if b != (self.nodes[a.src].epoch, node.epoch):
                return  # a crash or restart of either end reset the connection
            if self._blocked(node):
                node.inbox.append(a)
                return
            node.core.step(a)
            self._drive_and_check(node)
        elif kind == "tick":
            node = a
            if not node.up or node.epoch != b:
                return
            self._schedule(node.tick_ms, "tick", node, b)
            if self._blocked(node):
                return  # a blocked reactor skips the tick
            node.core.tick()
            self._drive_and_check(node)
        elif kind == "sync":
            node = a
            if not node.up or node.epoch != b:
                return
            rd, node.busy = node.busy, None
            self._finish(node, rd)
            self._drive_and_check(node)
            self._drain(node)
        elif kind == "wake":
            node = a
            if node.up and node.epoch == b:
                self._drain(node)
        elif kind == "timeout":
            self._client_timeout(a)

    def _blocked(self, node: SimNode) -> bool:
        return node.busy is not None or node.paused_until > self.now

    def _drive_and_check(self, node: SimNode) -> None:
        self._drive(node)
        if self.checker is not None:
            self._check(node)

    def _check(self, node: SimNode) -> None:
        if node.up and node.core is not None:
            self.checker.check_node(node.core, node.sm.applied)

    def _drain(self, node: SimNode) -> None:
        while node.inbox and node.up and not self._blocked(node):
            item = node.inbox.popleft()
            if isinstance(item, Op):
                self._request(node, item)
            else:
                node.core.step(item)
                self._drive_and_check(node)

    def _fsync_latency(self) -> int:
        f = self.faults
        if not (f.slow_fsync or f.fsync_outlier):
            return 0
        r = self.rng.random()
        if r < f.fsync_outlier:
            return self.rng.randint(200, 400)
        if r < f.fsync_outlier + f.slow_fsync:
            return self.rng.randint(1, 5)
        return 0

    def _drive(self, node: SimNode) -> None:
        core = node.core
        while node.busy is None and core.has_ready():
            rd = core.ready()
            records = []
            if rd.snapshot is not None:
                records.append(snapshot_record(rd.snapshot))
            if rd.entries:
                records.append(entries_record(rd.entries))
            if rd.hard_state is not None:
                records.append(hard_record(rd.hard_state))
            if records:
                node.disk.write_batch(records)  # one transaction per Ready
            if rd.must_sync():
                lat = self._fsync_latency()
                if lat:
                    node.busy = rd
                    self._schedule(lat, "sync", node, node.epoch)
                    return
            self._finish(node, rd)

    def _finish(self, node: SimNode, rd) -> None:
        core = node.core
        if rd.must_sync():
            node.disk.fsync()
        if self.checker is not None:
            self.checker.on_persist(node.id, core, rd)
        for m in rd.messages:
            if self.checker is not None:
                self.checker.on_message_sent(m)
            self._send(m)
        sm = node.sm
        if rd.snapshot is not None:
            sm.restore(rd.snapshot.data, rd.snapshot.meta.index)
        for e in rd.committed_entries:
            sm.apply(e)
            if self.checker is not None:
                self.checker.on_apply(node.id, e)
            pending = node.proposals.pop(e.index, None)
            if pending is not None and pending[0] == e.term:
                self._complete(pending[1], True)
        for rs in rd.read_states:
            op = node.reads.pop(rs.ctx, None)
            if op is not None and op.ret is None:
                op.value = op.cid in sm.pins
                self._complete(op, True)
        for ctx in rd.dropped_reads:
            node.reads.pop(ctx, None)
        core.advance(rd)
        if sm.applied - core.snapshot_meta.index >= self.snapshot_threshold:
            self._compact(node)

    def _compact(self, node: SimNode) -> None:
        core, sm = node.core, node.sm
        data = sm.serialize()
        res = core.compact(sm.applied, data)
        records = [snapshot_record(core.snapshot),
                   (REC_BASE, _HARD.pack(res.first_index - 1, res.base_term)),
                   hard_record(core.hard_state),
                   entries_record(core.entries(core.first_index, core.last_index + 1))]
        node.disk.rewrite(records)

    def _send(self, m) -> None:
        self.sent += 1
        self.counts[type(m).__name__] += 1
        f, rng = self.faults, self.rng
        if f.drop and rng.random() < f.drop:
            return
        if self.drop_filter is not None and self.drop_filter(m):
            return
        copies = 2 if f.dup and rng.random() < f.dup else 1
        dst = self.nodes.get(m.dst)
        if dst is None:
            return
        conn = (self.nodes[m.src].epoch, dst.epoch)
        for _ in range(copies):
            delay = self.link_delay[m.src, m.dst] + rng.randint(f.min_delay, f.max_delay)
            if f.reorder and rng.random() < f.reorder:
                delay += rng.randint(0, f.reorder_ms)
            self._schedule(delay, "deliver", m, conn)

    # --- clients ----------------------------------------------------------------

    def leader(self) -> SimNode | None:
        """The up node that is leader in the highest term (None if there is none)."""
        best = None
        for n in self.nodes.values():
            if n.up and n.core.role == LEADER and (best is None or n.core.term > best.core.term):
                best = n
        return best

    def _pick_target(self) -> SimNode | None:
        ld = self.leader()
        if ld is not None:
            return ld
        up = [n for n in self.nodes.values() if n.up]
        return self.rng.choice(up) if up else None

    def client_write(self, kind: str, cid: str, target: str | None = None,
                     retries: int = 0) -> Op:
        """Start a pin/unpin; it completes when the proposing node applies it."""
        self._op_ids += 1
        op = Op(self._op_ids, kind, cid, "r%d" % self._op_ids, self.now)
        op.attempts = retries
        self.history.append(op)
        self.log("client %s %s %s via %s" % (op.req, kind, cid, target or "leader"))
        self._submit(op, self.nodes[target] if target else self._pick_target())
        return op

    def _submit(self, op: Op, node: SimNode | None) -> None:
        self._schedule(self.client_timeout, "timeout", op)
        if node is None or not node.up:
            return
        if self._blocked(node):
            node.inbox.append(op)  # a blocked reactor handles the request later
            return
        self._request(node, op)

    def _request(self, node: SimNode, op: Op) -> None:
        if op.ok is not None:
            return  # the client gave up (or was answered) while the node was blocked
        try:
            if op.kind == "read":
                node.core.read_index(op.id)
                node.reads[op.id] = op
            else:
                term, index = node.core.propose(("%s|%s|%s" % (op.req, op.kind, op.cid)).encode())
                op.maybe_applied = True
                node.proposals[index] = (term, op)
        except ClusterError:
            return  # refused: no effect; the client gives up at its timeout
        self._drive_and_check(node)

    def client_read(self, cid: str, target: str | None = None) -> Op:
        """A linearizable read through ReadIndex on the leader."""
        self._op_ids += 1
        op = Op(self._op_ids, "read", cid, "q%d" % self._op_ids, self.now)
        self.history.append(op)
        self._submit(op, self.nodes[target] if target else self._pick_target())
        return op

    def _complete(self, op: Op, ok: bool) -> None:
        if op.ret is None and op.ok is None:
            op.ret = self.now
            op.ok = ok

    def _client_timeout(self, op: Op) -> None:
        if op.ok is not None:
            return
        if op.kind != "read" and op.attempts > 0:
            op.attempts -= 1
            self.log("client %s retry" % op.req)
            self._submit(op, self._pick_target())
            return
        op.ok = None if (op.kind != "read" and op.maybe_applied) else False
        if op.ok is False:
            op.ret = self.now

    def run_until(self, predicate, max_ms: int, step: int = 10) -> bool:
        """Run in ``step`` ms slices until ``predicate()`` holds; False on timeout."""
        deadline = self.now + max_ms
        while self.now < deadline:
            if predicate():
                return True
            self.run_for(step)
        return bool(predicate())

    def acked_writes(self) -> list[Op]:
        return [o for o in self.history if o.kind != "read" and o.ok]

    # --- faults -----------------------------------------------------------------

    def crash(self, nid: str, torn: bool | None = None) -> None:
        node = self.nodes[nid]
        if not node.up:
            return
        if torn is None:
            torn = self.rng.random() < self.faults.torn
        self.log("crash %s%s" % (nid, " torn" if torn else ""))
        node.disk.crash(self.rng, torn)
        node.up = False
        node.busy = None
        node.inbox.clear()
        node.epoch += 1

    def restart(self, nid: str) -> None:
        node = self.nodes[nid]
        if node.up:
            return
        self.log("restart %s" % nid)
        self._boot(node)
        if self.checker is not None:
            self._check(node)

    def power_loss(self) -> None:
        """Every node loses its un-synced data at the same instant, then restarts."""
        self.log("power loss")
        for nid in self.ids:
            self.crash(nid)
        for nid in self.ids:
            self.restart(nid)

    def pause(self, nid: str, ms: int) -> None:
        node = self.nodes[nid]
        if node.up:
            self.log("pause %s %dms" % (nid, ms))
            node.paused_until = max(node.paused_until, self.now + ms)
            self._schedule(ms, "wake", node, node.epoch)

    def partition(self, *groups) -> None:
        """Block every link between different groups (a node may be in several: a bridge)."""
        self.log("partition %s" % " | ".join(",".join(g) for g in groups))
        member = {}
        for gi, g in enumerate(groups):
            for nid in g:
                member.setdefault(nid, set()).add(gi)
        self.blocked = {(a, b) for a in self.ids for b in self.ids
                        if a != b and not (member.get(a, {-1}) & member.get(b, {-2}))}

    def block(self, src: str, dst: str) -> None:
        """Cut one direction of one link."""
        self.log("block %s->%s" % (src, dst))
        self.blocked.add((src, dst))

    def isolate(self, nid: str) -> None:
        self.log("isolate %s" % nid)
        self.blocked |= {(nid, o) for o in self.ids if o != nid}
        self.blocked |= {(o, nid) for o in self.ids if o != nid}

    def heal(self) -> None:
        self.log("heal")
        self.blocked = set()

    def wipe(self, nid: str) -> None:
        """Give a non-member a clean data folder so that it can join again."""
        node = self.nodes[nid]
        self.log("wipe %s" % nid)
        node.up = False
        node.epoch += 1
        node.disk = Disk()
        node.bootstrap = ()
        if self.checker is not None:
            self.checker.forget(nid)
        self._boot(node)

    def members(self) -> tuple[str, ...]:
        """The newest configuration any up node knows, by highest config index."""
        best = max((n for n in self.nodes.values() if n.up),
                   key=lambda n: (n.core.config_index, n.core.commit), default=None)
        return best.core.voters if best is not None else ()

    def conf_change(self, op: str, nid: str) -> bool:
        ld = self.leader()
        if ld is None or self._blocked(ld):
            return False
        try:
            ld.core.propose_conf_change(op, nid)
        except ClusterError:
            return False
        self.log("%s %s via %s" % (op, nid, ld.id))
        self._drive_and_check(ld)
        return True

    def transfer(self, nid: str | None = None) -> bool:
        ld = self.leader()
        if ld is None or self._blocked(ld):
            return False
        try:
            target = ld.core.transfer_leadership(nid)
        except ClusterError:
            return False
        self.log("transfer %s -> %s" % (ld.id, target))
        self._drive_and_check(ld)
        return True

    # --- whole runs -------------------------------------------------------------

    def nemesis_step(self) -> None:
        """One random schedule step: a client operation or a fault, then some traffic."""
        rng = self.rng
        r = rng.random()
        cid = "c%d" % rng.randrange(5)
        if r < 0.45:
            self.client_write(rng.choice(("pin", "unpin")), cid, retries=rng.randint(0, 1))
        elif r < 0.6:
            self.client_read(cid)
        elif r < 0.64:
            self.crash(rng.choice(self.ids))
        elif r < 0.70:
            down = [n for n in self.ids if not self.nodes[n].up]
            if down:
                self.restart(rng.choice(down))
        elif r < 0.73:
            self._random_partition()
        elif r < 0.77:
            self.heal()
        elif r < 0.785:
            self.pause(rng.choice(self.ids), rng.randint(1000, 3000))
        elif r < 0.79:
            self.power_loss()
        elif r < 0.80:
            self.transfer(rng.choice(self.ids))
        elif r < 0.81 and len(self.ids) > 3:
            self._random_membership()
        self.run_for(rng.randint(1, 60))

    def _random_partition(self) -> None:
        rng = self.rng
        ids = list(self.ids)
        rng.shuffle(ids)
        shape = rng.randrange(4)
        if shape == 0:
            cut = rng.randint(1, len(ids) - 1)
            self.partition(ids[:cut], ids[cut:])
        elif shape == 1:
            self.block(ids[0], ids[1])
        elif shape == 2 and len(ids) >= 3:
            cut = rng.randint(1, len(ids) - 2)
            self.partition(ids[:cut + 1], ids[cut:])  # ids[cut] bridges both halves
        else:
            ld = self.leader()
            self.isolate(ld.id if ld is not None else ids[0])

    def _random_membership(self) -> None:
        rng = self.rng
        members = self.members()
        # a node no configuration anywhere (committed or not) names may be wiped
        named = set()
        for n in self.nodes.values():
            named.update(n.core.voters)
        outsiders = [n for n in self.ids if n not in named]
        if outsiders and (len(members) <= 3 or rng.random() < 0.5):
            nid = rng.choice(outsiders)
            if self.nodes[nid].core.last_index:
                self.wipe(nid)
            self.conf_change("add", nid)
        elif len(members) > 3:
            self.conf_change("remove", rng.choice(members))

    def run_random(self, steps: int) -> None:
        for _ in range(steps):
            self.nemesis_step()

    def settle(self, max_ms: int = 60_000) -> None:
        """Heal every fault, then check convergence and that acknowledged writes survived.

        Raises LivenessViolation when the members do not converge within ``max_ms``
        virtual milliseconds, InvariantViolation when an acknowledged write is missing.
        """
        self.heal()
        for nid in self.ids:
            self.nodes[nid].paused_until = 0
            if not self.nodes[nid].up:
                self.restart(nid)
        for nid in self.ids:
            self._drain(self.nodes[nid])
        deadline = self.now + max_ms
        marker = None
        while self.now < deadline:
            self.run_for(200)
            ld = self.leader()
            if ld is None:
                continue
            members = ld.core.voters
            if marker is None or (not marker.ok
                                  and self.now - marker.call > self.client_timeout):
                # a write of the current term commits everything before it
                marker = self.client_write("pin", "settle")
                continue
            if not marker.ok:
                continue
            target = ld.core.last_index
            if ld.core.commit == target and all(
                    self.nodes[m].sm.applied == target for m in members):
                self._check_final(members)
                return
        raise LivenessViolation("members did not converge within %d ms after healing"
                                % max_ms)

    def _check_final(self, members) -> None:
        digests = {m: self.nodes[m].sm.digest() for m in members}
        if len(set(digests.values())) != 1:
            raise InvariantViolation("members' states differ after settling: %r" % digests)
        sessions = self.nodes[members[0]].sm.sessions
        for op in self.acked_writes():
            if op.req not in sessions:
                raise InvariantViolation("acknowledged write %s (%s %s) was lost"
                                         % (op.req, op.kind, op.cid))


def seed_params(seed: int) -> dict:
    """Protocol knobs varied per seed: batching, flow control, compaction, chunking."""
    r = random.Random(seed * 7919 + 17)
    return dict(max_append_entries=r.choice((1, 4, 16, 64)), max_inflight=r.choice((1, 2, 4)),
                snapshot_threshold=r.choice((10, 40, 200)), trailing_logs=r.choice((0, 8, 50)),
                snapshot_chunk_size=r.choice((16, 64, 4096)), heartbeat_ticks=r.choice((1, 2, 3)))


def run_seed(seed: int, steps: int, nodes: int = 3, spare: int = 2,
             faults: Faults = NEMESIS_FAULTS) -> Sim:
    """Run one seeded nemesis schedule and settle it; raises on any violation.

    The protocol knobs come from :func:`seed_params` (named in the schedule's
    first line), so one seed always replays the same run.
    """
    params = seed_params(seed)
    sim = Sim(seed, nodes=nodes, spare=spare, faults=faults, **params)
    sim.log("params " + " ".join("%s=%s" % kv for kv in sorted(params.items())))
    try:
        sim.run_random(steps)
        sim.settle()
    except InvariantViolation as exc:
        exc.sim = sim
        raise
    return sim


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ipfscluster.consensus.raft.sim",
        description="Seeded Raft nemesis soaks; exits 1 on the first invariant violation.")
    parser.add_argument("--seeds", type=int, default=100, help="number of seeds to run")
    parser.add_argument("--events", type=int, default=300, help="schedule steps per seed")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--seed", type=int, default=None, help="run only this seed")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--spare", type=int, default=2, help="extra nodes for joins")
    parser.add_argument("--faults", choices=sorted(PROFILES), default="nemesis",
                        help="fault profile of the network, disks and clocks")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the schedule")
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else range(args.start, args.start + args.seeds)
    started = time.monotonic()
    totals = dict(events=0, messages=0, acked=0, elections=0)
    for seed in seeds:
        try:
            sim = run_seed(seed, args.events, args.nodes, args.spare, PROFILES[args.faults])
        except InvariantViolation as exc:
            sim = exc.sim
            print("VIOLATION seed=%d: %s" % (seed, exc))
            print("schedule (replay: --seed %d -v):" % seed)
            for line in sim.trace if args.verbose else sim.trace[-40:]:
                print("  " + line)
            return 1
        if args.verbose:
            print("\n".join(sim.trace))
        totals["events"] += sim.events
        totals["messages"] += sim.sent
        totals["acked"] += len(sim.acked_writes())
        totals["elections"] += len(sim.checker.leaders)
    print("ok: %d seeds x %d steps, %d events, %d messages, %d acknowledged writes, "
          "%d leader terms, 0 violations in %.1fs"
          % (len(seeds), args.events, totals["events"], totals["messages"], totals["acked"],
             totals["elections"], time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
