"""The pure Raft state machine (no I/O, no clock, no Twisted).

:class:`RaftCore` is built the way etcd-raft is: a deterministic object whose only
inputs are

* :meth:`RaftCore.tick` — one unit of logical time (the driver maps wall-clock time
  to ticks; e.g. one tick = 100 ms, ``election_ticks=10`` for a 1 s election timeout),
* :meth:`RaftCore.step` — a message from a peer,
* proposals: :meth:`propose`, :meth:`propose_batch` (group commit: everything of one
  reactor turn in one batch), :meth:`propose_conf_change`,
  :meth:`transfer_leadership`, :meth:`read_index`, :meth:`compact`,

and whose only output is a :class:`Ready` value (:meth:`ready`), acknowledged with
:meth:`advance`.  The driver handles each Ready **in this order**:

1. persist ``snapshot`` (if any: it replaces the whole log), then ``entries``
   (delete every stored entry with index ``>= entries[0].index``, then append), then
   ``hard_state`` (term, vote, commit) — in ONE atomic transaction, one fsync (a
   commit index that survived a crash without the entries that replaced a
   conflicting suffix would make the node apply entries that were never committed);
2. only then send ``messages`` (votes, acknowledgements and appends depend on 1);
3. restore the state machine from ``snapshot`` (if any), then apply
   ``committed_entries`` in order; answer ``read_states`` once applied ≥ their index;
4. call :meth:`advance` with the same Ready.

Nothing may be fed into the core between :meth:`ready` and :meth:`advance`
(a :class:`RuntimeError` says so), which makes persist-before-send structural.

What is implemented (Raft paper/thesis sections in brackets): leader election with
randomised timeouts in ``[election_ticks, 2*election_ticks)`` [§5.2], pre-vote and
check-quorum [thesis §9.6] (a leader steps down as soon as it has not heard from a
majority within the last election timeout; a follower that heard from its leader
within that time, less one tick for the phase between nodes' ticks, ignores vote
requests unless they come from a leadership transfer); so that a failover takes one
term, a pre-candidate whose round started this tick grants a pre-vote only to a
better one (more up-to-date log, or the same and a lower id), and a follower that
grants a pre-vote puts its own timeout at least two ticks off, log replication with a fast
conflict back-off hint (conflicting term and its first index) [§5.3] (a follower
that lost acknowledged entries, its data folder wiped, says so in answer to the
next heartbeat, whose commit index is then beyond its log; the leader probes it
from its real end at once instead of at the next write), flow control
(a probing follower gets one AppendEntries at a time, a replicating one at most
``max_inflight``), the commit rule of §5.4.2 (only entries of the current term are
committed by counting), a no-op entry on election, ReadIndex reads [thesis §6.4]
(served only after the leader committed an entry of its term and confirmed its
leadership by a heartbeat round), snapshots with trailing logs and chunked
InstallSnapshot that resumes after a lost chunk [§7], single-server membership
changes [thesis §4.1] (configuration takes effect when appended; at most one
uncommitted change; refused before the leader's first own-term commit; optional
compare-and-set on the configuration index; a removed leader steps down once its
removal commits and hands over with TimeoutNow), and leadership transfer
[thesis §3.10] (proposals refused meanwhile; aborted after an election timeout).

Randomness only comes from the injected ``random.Random``; the same seed and the
same inputs give the same outputs.

The driver (``node.py``) maps ``consensus.raft`` settings to the constructor:
``election_ticks = election_timeout / tick``, ``heartbeat_ticks`` from
``heartbeat_timeout / 10`` (hashicorp sends heartbeats well within the timeout),
``max_append_entries``, ``trailing_logs``; ``snapshot_threshold`` and
``snapshot_interval`` decide when the driver calls :meth:`compact`;
``leader_lease_timeout`` is not used for reads (reads always go through ReadIndex,
so clock skew cannot make them stale).
"""

from __future__ import annotations

import random
from typing import Any, Iterable, Sequence

import attrs

from ipfscluster.consensus.raft.messages import (
    ENTRY_CONFIG,
    ENTRY_NOOP,
    ENTRY_NORMAL,
    AppendEntries,
    AppendResponse,
    ConfigChange,
    Entry,
    HardState,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Snapshot,
    SnapshotMeta,
    SnapshotResponse,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
    decode_config,
    encode_config,
)
from ipfscluster.errors import (
    ConfigChangeInProgress,
    InvalidConfigChange,
    LeaderNotReady,
    LeadershipTransferInProgress,
    NotLeader,
    StaleConfiguration,
)

FOLLOWER = "follower"
PRE_CANDIDATE = "pre-candidate"
CANDIDATE = "candidate"
LEADER = "leader"

PROBE = "probe"
REPLICATE = "replicate"
SNAPSHOT = "snapshot"


@attrs.frozen
class SoftState:
    """Volatile state the driver may want to know about (not persisted)."""

    lead: str | None
    role: str
    voters: tuple[str, ...]


@attrs.frozen
class ReadState:
    """A linearizable read may be served once the state machine applied ``index``."""

    index: int
    ctx: Any


@attrs.frozen
class Ready:
    """Everything the driver must do for one batch of core activity (see module doc).

    ``hard_state`` is ``None`` when unchanged since the last Ready.  ``entries`` are
    to be persisted (replacing stored entries from ``entries[0].index`` on);
    ``snapshot`` (received from the leader) replaces the whole stored log and the
    state machine.  ``dropped_reads`` are ReadIndex contexts that will never be
    answered (leadership lost); the driver fails them so clients can retry.
    ``soft_state`` is set when leader, role or membership changed.
    """

    hard_state: HardState | None = None
    entries: tuple[Entry, ...] = ()
    snapshot: Snapshot | None = None
    messages: tuple = ()
    committed_entries: tuple[Entry, ...] = ()
    read_states: tuple[ReadState, ...] = ()
    dropped_reads: tuple = ()
    soft_state: SoftState | None = None

    def must_sync(self) -> bool:
        """True when something has to be fsynced before ``messages`` go out."""
        return bool(self.hard_state is not None or self.entries or self.snapshot is not None)


@attrs.frozen
class CompactResult:
    """What :meth:`RaftCore.compact` did: the new snapshot and the log's new start.

    The driver stores the snapshot durably first, then drops stored log entries
    with index ``< first_index`` (``log_base = (first_index - 1, base_term)``).
    """

    snapshot: SnapshotMeta
    first_index: int
    base_term: int


class _Progress:
    """The leader's view of one follower."""

    __slots__ = ("match", "next", "state", "inflight", "probe_sent", "last_active",
                 "snap", "snap_offset", "snap_wait", "stall")

    def __init__(self, next_index: int, now: int = 0):
        self.match = 0
        self.next = next_index
        self.state = PROBE
        self.inflight: list[int] = []  # last index of each unacknowledged append
        self.probe_sent = False
        self.last_active = now  # leader tick of the last answer (check-quorum)
        self.snap: Snapshot | None = None
        self.snap_offset = 0
        self.snap_wait = 0
        self.stall = 0

    def become_probe(self) -> None:
        if self.state == SNAPSHOT and self.snap is not None:
            self.next = max(self.match + 1, self.snap.meta.index + 1)
        else:
            self.next = self.match + 1
        self.state = PROBE
        self.inflight = []
        self.probe_sent = False
        self.snap = None

    def become_replicate(self) -> None:
        self.state = REPLICATE
        self.next = self.match + 1
        self.inflight = []
        self.probe_sent = False


class _PendingRead:
    __slots__ = ("seq", "index", "ctx", "acks")

    def __init__(self, seq: int, index: int, ctx: Any, me: str):
        self.seq = seq
        self.index = index
        self.ctx = ctx
        self.acks = {me}


class RaftCore:
    """One Raft node's protocol state.  See the module docstring for the contract.

    ``voters`` is the bootstrap membership, used only when neither a snapshot nor a
    configuration entry says otherwise (a joining node passes ``()`` and learns the
    membership from the leader).  ``restore`` rebuilds a restarted node: pass the
    durable :class:`HardState`, the newest :class:`Snapshot` (or ``None``), the
    stored entries and the log base ``(index, term)`` (the entry just before the
    first stored one).  The state machine is assumed to be rebuilt from that
    snapshot, so committed entries after it are delivered again.
    """

    def __init__(self, node_id: str, voters: Iterable[str] = (), *, rng: random.Random,
                 election_ticks: int = 10, heartbeat_ticks: int = 1,
                 pre_vote: bool = True, check_quorum: bool = True,
                 max_append_entries: int = 64, max_msg_bytes: int = 60_000,
                 max_inflight: int = 2, trailing_logs: int = 10240,
                 snapshot_chunk_size: int = 60_000,
                 hard_state: HardState | None = None, snapshot: Snapshot | None = None,
                 entries: Sequence[Entry] = (), log_base: tuple[int, int] | None = None):
        if heartbeat_ticks < 1 or election_ticks <= heartbeat_ticks:
            raise ValueError("need 1 <= heartbeat_ticks < election_ticks")
        self.id = node_id
        self.rng = rng
        self.election_ticks = election_ticks
        self.heartbeat_ticks = heartbeat_ticks
        self.pre_vote = pre_vote
        self.check_quorum = check_quorum
        self.max_append_entries = max(1, max_append_entries)
        self.max_msg_bytes = max_msg_bytes
        self.max_inflight = max(1, max_inflight)
        self.trailing_logs = trailing_logs
        self.snapshot_chunk_size = max(1, snapshot_chunk_size)

        hs = hard_state or HardState()
        self.term = hs.term
        self.vote = hs.vote
        self.commit = hs.commit
        # log: entries after the base (base_index, base_term)
        self._snapshot: Snapshot | None = snapshot
        meta = snapshot.meta if snapshot is not None else SnapshotMeta(voters=tuple(voters))
        self._snap_meta = meta
        if log_base is None:
            log_base = (meta.index, meta.term)
        self._base_index, self._base_term = log_base
        ents = [e for e in entries if e.index > self._base_index]
        if ents and ents[0].index != self._base_index + 1:
            raise ValueError("stored log has a gap after its base %d" % self._base_index)
        if self._base_index + len(ents) < meta.index:
            # the snapshot is newer than the whole stored log (a crash between storing
            # an installed snapshot and dropping the log): the snapshot is the base
            self._base_index, self._base_term = meta.index, meta.term
            ents = []
        self._log: list[Entry] = ents
        self._conf: list[tuple[int, tuple[str, ...]]] = []  # config entries after snapshot
        for e in ents:
            if e.kind == ENTRY_CONFIG and e.index > meta.index:
                self._conf.append((e.index, decode_config(e.data).voters))
        # a commit index persisted ahead of entries lost in a crash is clamped: the
        # cluster still has those entries and will send them again
        self.commit = max(min(self.commit, self.last_index), meta.index)
        self.applied = meta.index
        self._unstable_from = self.last_index + 1
        self._prev_hs = HardState(self.term, self.vote, self.commit)

        self.role = FOLLOWER
        self.lead: str | None = None
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_timeout = self._random_timeout()
        self._votes: dict[str, bool] = {}
        self._progress: dict[str, _Progress] = {}
        self._msgs: list = []
        self._pending_snapshot: Snapshot | None = None
        self._incoming: tuple[tuple, bytearray] | None = None  # snapshot being received
        self._reads: list[_PendingRead] = []
        self._waiting_reads: list[Any] = []
        self._read_seq = 0
        self._read_states: list[ReadState] = []
        self._dropped_reads: list[Any] = []
        self._first_own_index = 0  # index of the no-op of this leader's term
        self._leader_ticks = 0  # ticks since this node became leader
        self.transferee: str | None = None
        self._transfer_elapsed = 0
        self._prev_soft = SoftState(None, FOLLOWER, self.voters)
        self._in_ready = False

    # --- log helpers ----------------------------------------------------------------

    @property
    def first_index(self) -> int:
        """Index of the first entry held in memory (compacted entries are gone)."""
        return self._base_index + 1

    @property
    def last_index(self) -> int:
        return self._base_index + len(self._log)

    @property
    def last_term(self) -> int:
        return self._log[-1].term if self._log else self._base_term

    def term_at(self, index: int) -> int | None:
        """Term of the entry at ``index``; ``None`` if compacted or beyond the end."""
        if index == self._base_index:
            return self._base_term
        if self._base_index < index <= self._base_index + len(self._log):
            return self._log[index - self._base_index - 1].term
        if index == self._snap_meta.index:
            return self._snap_meta.term
        return None

    def entry(self, index: int) -> Entry | None:
        if self._base_index < index <= self._base_index + len(self._log):
            return self._log[index - self._base_index - 1]
        return None

    def entries(self, lo: int, hi: int) -> list[Entry]:
        """Entries with ``lo <= index < hi`` that are still in memory."""
        off = self._base_index + 1
        return self._log[max(lo, off) - off:max(hi, off) - off]

    @property
    def voters(self) -> tuple[str, ...]:
        """The configuration in effect (the newest one in the log, committed or not)."""
        return self._conf[-1][1] if self._conf else self._snap_meta.voters

    @property
    def config_index(self) -> int:
        """Index of the configuration entry in effect (0 = bootstrap configuration)."""
        return self._conf[-1][0] if self._conf else self._snap_meta.config_index

    def _config_at(self, index: int) -> tuple[tuple[str, ...], int]:
        voters, cidx = self._snap_meta.voters, self._snap_meta.config_index
        for ci, cv in self._conf:
            if ci > index:
                break
            voters, cidx = cv, ci
        return voters, cidx

    @property
    def snapshot_meta(self) -> SnapshotMeta:
        return self._snap_meta

    @property
    def hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self.commit)

    def _quorum(self) -> int:
        return len(self.voters) // 2 + 1

    def _promotable(self) -> bool:
        return self.id in self.voters

    def _random_timeout(self) -> int:
        return self.election_ticks + self.rng.randrange(self.election_ticks)

    def _up_to_date(self, last_index: int, last_term: int) -> bool:
        lt = self.last_term
        return last_term > lt or (last_term == lt and last_index >= self.last_index)

    def _append(self, entries: Sequence[Entry]) -> None:
        """Append entries, first truncating any suffix from ``entries[0].index``."""
        first = entries[0].index
        if first <= self.last_index:
            if first <= self.commit:
                raise AssertionError("would truncate committed entry %d" % first)
            del self._log[first - self._base_index - 1:]
            while self._conf and self._conf[-1][0] >= first:
                self._conf.pop()
            self._unstable_from = min(self._unstable_from, first)
        self._log.extend(entries)
        for e in entries:
            if e.kind == ENTRY_CONFIG:
                self._conf.append((e.index, decode_config(e.data).voters))
                self._config_changed()

    def _send(self, msg) -> None:
        self._msgs.append(msg)

    # --- Ready ----------------------------------------------------------------------

    def has_ready(self) -> bool:
        """True when :meth:`ready` has something for the driver."""
        if (self._msgs or self._unstable_from <= self.last_index
                or self._pending_snapshot is not None or self.applied < self.commit
                or self._read_states or self._dropped_reads):
            return True
        hs, soft = self._prev_hs, self._prev_soft
        return (hs.term != self.term or hs.vote != self.vote or hs.commit != self.commit
                or soft.lead != self.lead or soft.role != self.role
                or soft.voters != self.voters)

    def _soft_state(self) -> SoftState:
        return SoftState(self.lead, self.role, self.voters)

    def ready(self) -> Ready:
        """Collect what to persist, send and apply.  Call :meth:`advance` after it."""
        if self._in_ready:
            raise RuntimeError("ready() called twice without advance()")
        hs = HardState(self.term, self.vote, self.commit)
        soft = self._soft_state()
        lo = max(self.applied + 1, self.first_index)
        committed = tuple(self.entries(lo, self.commit + 1))
        rd = Ready(
            hard_state=hs if hs != self._prev_hs else None,
            entries=tuple(self.entries(self._unstable_from, self.last_index + 1)),
            snapshot=self._pending_snapshot,
            messages=tuple(self._msgs),
            committed_entries=committed,
            read_states=tuple(self._read_states),
            dropped_reads=tuple(self._dropped_reads),
            soft_state=soft if soft != self._prev_soft else None,
        )
        self._in_ready = True
        return rd

    def advance(self, rd: Ready) -> None:
        """Acknowledge that ``rd`` was persisted, sent and applied."""
        self._in_ready = False
        if rd.hard_state is not None:
            self._prev_hs = rd.hard_state
        if rd.soft_state is not None:
            self._prev_soft = rd.soft_state
        if rd.snapshot is not None:
            self._pending_snapshot = None
            self.applied = max(self.applied, rd.snapshot.meta.index)
        if rd.entries:
            self._unstable_from = max(self._unstable_from, rd.entries[-1].index + 1)
        elif rd.snapshot is not None:
            self._unstable_from = max(self._unstable_from, rd.snapshot.meta.index + 1)
        if rd.committed_entries:
            self.applied = max(self.applied, rd.committed_entries[-1].index)
        self._msgs = []
        self._read_states = []
        self._dropped_reads = []

    def _check_not_in_ready(self) -> None:
        if self._in_ready:
            raise RuntimeError("advance() the outstanding Ready before feeding the core")

    # --- role changes ---------------------------------------------------------------

    def _reset(self, term: int) -> None:
        if term != self.term:
            self.term = term
            self.vote = None
        self.lead = None
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_timeout = self._random_timeout()
        self._votes = {}
        self._progress = {}
        self.transferee = None
        self._drop_reads()

    def _drop_reads(self) -> None:
        self._dropped_reads.extend(r.ctx for r in self._reads)
        self._dropped_reads.extend(self._waiting_reads)
        self._reads = []
        self._waiting_reads = []

    def become_follower(self, term: int, lead: str | None) -> None:
        self._reset(term)
        self.role = FOLLOWER
        self.lead = lead

    def _become_pre_candidate(self) -> None:
        # the term and vote do not change: a pre-vote never disturbs the cluster
        self._votes = {}
        self.role = PRE_CANDIDATE
        self.lead = None
        self.election_elapsed = 0
        self.randomized_timeout = self._random_timeout()
        self._drop_reads()

    def _become_candidate(self) -> None:
        self._reset(self.term + 1)
        self.vote = self.id
        self.role = CANDIDATE

    def _become_leader(self) -> None:
        self._reset(self.term)
        self.role = LEADER
        self.lead = self.id
        nxt = self.last_index + 1
        self._leader_ticks = 0
        for peer in self.voters:
            if peer != self.id:
                self._progress[peer] = _Progress(nxt)
        noop = Entry(nxt, self.term, ENTRY_NOOP, b"")
        self._first_own_index = nxt
        self._append([noop])
        self._maybe_commit()
        self._broadcast_append()

    def _campaign(self, transfer: bool = False) -> None:
        if not self._promotable():
            return
        if not self.pre_vote or transfer:
            self._real_campaign(transfer)
            return
        self._become_pre_candidate()
        self._votes[self.id] = True
        if self._tally() >= self._quorum():
            self._real_campaign(False)
            return
        for peer in self.voters:
            if peer != self.id:
                self._send(VoteRequest(self.id, peer, self.term + 1, self.last_index,
                                       self.last_term, pre_vote=True))

    def _tally(self) -> int:
        return sum(1 for p, g in self._votes.items() if g and p in self.voters)

    # --- inputs ---------------------------------------------------------------------

    def tick(self) -> None:
        """Advance logical time by one tick."""
        self._check_not_in_ready()
        if self.role == LEADER:
            self._tick_leader()
            return
        self.election_elapsed += 1
        if self._promotable() and self.election_elapsed >= self.randomized_timeout:
            self.election_elapsed = 0
            self._campaign()

    def _tick_leader(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.transferee is not None:
            self._transfer_elapsed += 1
            if self._transfer_elapsed >= self.election_ticks:
                self.transferee = None  # abort: the target did not take over in time
        self._leader_ticks += 1
        if self.election_elapsed >= self.election_ticks:
            self.election_elapsed = 0
        if self.check_quorum and not self._quorum_active():
            # no answer from a majority within the last election timeout
            self.become_follower(self.term, None)
            return
        if self.heartbeat_elapsed >= self.heartbeat_ticks:
            self.heartbeat_elapsed = 0
            self._broadcast_heartbeat(self._reads[-1].seq if self._reads else 0)

    def _quorum_active(self) -> bool:
        active = 1 if self.id in self.voters else 0
        since = self._leader_ticks - self.election_ticks
        for peer, pr in self._progress.items():
            if pr.last_active > since and peer in self.voters:
                active += 1
        return active >= self._quorum()

    def step(self, m) -> None:
        """Process one message from a peer (stale, duplicated and reordered ones are fine)."""
        self._check_not_in_ready()
        if m.dst != self.id:
            return
        if m.term > self.term:
            if isinstance(m, VoteRequest):
                # within the shortest election timeout less one tick: a voter whose
                # ticks lag the candidate's by part of a tick has counted one less
                in_lease = (self.check_quorum and self.lead is not None
                            and self.election_elapsed < self.election_ticks - 1)
                if in_lease and not m.transfer:
                    return  # a leader is alive: ignore disruptive candidates
                if not m.pre_vote:
                    self.become_follower(m.term, None)
            elif isinstance(m, VoteResponse) and m.pre_vote and m.granted:
                pass  # a granted pre-vote carries the future term, not a real one
            elif isinstance(m, (AppendEntries, Heartbeat, InstallSnapshot)):
                self.become_follower(m.term, m.src)
            else:
                self.become_follower(m.term, None)
        elif m.term < self.term:
            if isinstance(m, (AppendEntries, Heartbeat)):
                # tell a stale leader about the newer term so it steps down
                self._send(AppendResponse(self.id, m.src, self.term, False, 0))
            elif isinstance(m, VoteRequest) and m.pre_vote:
                self._send(VoteResponse(self.id, m.src, self.term, False, pre_vote=True))
            return

        if isinstance(m, VoteRequest):
            self._handle_vote_request(m)
        elif self.role == LEADER:
            self._step_leader(m)
        elif isinstance(m, VoteResponse):
            self._handle_vote_response(m)
        elif isinstance(m, (AppendEntries, Heartbeat, InstallSnapshot)):
            if self.role != FOLLOWER:
                self.become_follower(self.term, m.src)
            self.election_elapsed = 0
            self.lead = m.src
            if isinstance(m, AppendEntries):
                self._handle_append(m)
            elif isinstance(m, Heartbeat):
                self._handle_heartbeat(m)
            else:
                self._handle_snapshot(m)
        elif isinstance(m, TimeoutNow):
            if self.role == FOLLOWER and m.src == self.lead:
                self._campaign(transfer=True)

    def _handle_vote_request(self, m: VoteRequest) -> None:
        can_vote = (self.vote == m.src or (self.vote is None and self.lead is None)
                    or (m.pre_vote and m.term > self.term))
        if can_vote and m.pre_vote and self.role == PRE_CANDIDATE and not self.election_elapsed:
            # two pre-candidates that timed out together (within a tick) would grant
            # each other and split the real vote: only the one with the better (log,
            # lower id) passes.  A pre-vote round older than a tick has failed (its
            # answers take milliseconds): its pre-candidate grants like a follower
            mine = (self.last_term, self.last_index)
            theirs = (m.last_term, m.last_index)
            can_vote = theirs > mine or (theirs == mine and m.src < self.id)
        if can_vote and self._up_to_date(m.last_index, m.last_term):
            self._send(VoteResponse(self.id, m.src, m.term, True, pre_vote=m.pre_vote))
            if not m.pre_vote:
                self.vote = m.src
                self.election_elapsed = 0
            elif self.role == FOLLOWER:
                # give the candidate we back two ticks to win before our own timeout
                # fires: its pre-vote and ours would pass both, and split the vote
                # (election_elapsed stays: it is also the leader lease's clock)
                self.randomized_timeout = max(self.randomized_timeout,
                                              self.election_elapsed + 2)
        else:
            self._send(VoteResponse(self.id, m.src, self.term, False, pre_vote=m.pre_vote))

    def _handle_vote_response(self, m: VoteResponse) -> None:
        if self.role == PRE_CANDIDATE and m.pre_vote:
            if m.granted and m.term != self.term + 1:
                return
        elif self.role == CANDIDATE and not m.pre_vote:
            if m.term != self.term:
                return
        else:
            return
        self._votes.setdefault(m.src, m.granted)
        granted = self._tally()
        rejected = sum(1 for p, g in self._votes.items() if not g and p in self.voters)
        if granted >= self._quorum():
            if self.role == PRE_CANDIDATE:
                self._real_campaign(False)
            else:
                self._become_leader()
        elif rejected > len(self.voters) - self._quorum():
            self.become_follower(self.term, None)

    def _real_campaign(self, transfer: bool) -> None:
        self._become_candidate()
        self._votes[self.id] = True
        if self._tally() >= self._quorum():
            self._become_leader()
            return
        for peer in self.voters:
            if peer != self.id:
                self._send(VoteRequest(self.id, peer, self.term, self.last_index,
                                       self.last_term, transfer=transfer))

    # --- follower side --------------------------------------------------------------

    def _handle_append(self, m: AppendEntries) -> None:
        prev, entries = m.prev_index, m.entries
        if prev < self.commit:
            # everything up to our commit matches the leader already
            skip = self.commit - prev
            if skip >= len(entries):
                self._send(AppendResponse(self.id, m.src, self.term, True, self.commit))
                return
            entries = entries[skip:]
            prev = self.commit
            prev_term = self.term_at(prev)
        else:
            prev_term = m.prev_term
        local = self.term_at(prev)
        if local != prev_term:
            if prev > self.last_index:
                hint_index, hint_term = self.last_index + 1, 0
            else:
                hint_term = local if local is not None else 0
                hint_index = prev
                while hint_index - 1 > max(self.commit, self._base_index) \
                        and self.term_at(hint_index - 1) == hint_term:
                    hint_index -= 1
            self._send(AppendResponse(self.id, m.src, self.term, False, m.prev_index,
                                      hint_index, hint_term))
            return
        last_new = prev + len(entries)
        # skip entries we already hold; truncate from the first conflict
        for i, e in enumerate(entries):
            t = self.term_at(e.index)
            if t != e.term:
                self._append(entries[i:])
                break
        new_commit = min(m.commit, last_new)
        if new_commit > self.commit:
            self.commit = new_commit
        self._send(AppendResponse(self.id, m.src, self.term, True, last_new))

    def _handle_heartbeat(self, m: Heartbeat) -> None:
        if m.commit > self.last_index:
            # a leader only announces a commit index up to what we acknowledged: our
            # log lost entries it counts on (data folder wiped or replaced).  Say where
            # it ends (a rejection with index 0, which no append gets), so the leader
            # sends them (or a snapshot) now instead of when the next entry is written
            self._send(HeartbeatResponse(self.id, m.src, self.term, m.read_seq))
            self._send(AppendResponse(self.id, m.src, self.term, False, 0,
                                      self.last_index + 1, 0))
            return
        new_commit = min(m.commit, self.last_index)
        if new_commit > self.commit:
            self.commit = new_commit
        self._send(HeartbeatResponse(self.id, m.src, self.term, m.read_seq))

    def _handle_snapshot(self, m: InstallSnapshot) -> None:
        if m.index <= self.commit:
            self._send(SnapshotResponse(self.id, m.src, self.term, m.index, m.size, True))
            return
        # a transfer resumes only with the same sender and the same snapshot; anything
        # else starts over at offset 0
        key = (m.src, m.index, m.snap_term, m.size)
        inc = self._incoming
        if inc is None or inc[0] != key:
            if m.offset != 0:
                self._send(SnapshotResponse(self.id, m.src, self.term, m.index, 0, False))
                return
            inc = (key, bytearray())
            self._incoming = inc
        buf = inc[1]
        if m.offset != len(buf):
            self._send(SnapshotResponse(self.id, m.src, self.term, m.index, len(buf), False))
            return
        buf += m.data
        if not m.done:
            self._send(SnapshotResponse(self.id, m.src, self.term, m.index, len(buf), False))
            return
        self._incoming = None
        meta = SnapshotMeta(m.index, m.snap_term, tuple(m.voters), m.config_index)
        self._install_snapshot(Snapshot(meta, bytes(buf)))
        self._send(SnapshotResponse(self.id, m.src, self.term, m.index, len(buf), True))

    def _install_snapshot(self, snap: Snapshot) -> None:
        meta = snap.meta
        if self.term_at(meta.index) == meta.term and meta.index <= self.last_index:
            # our log already holds it: only the commit moves
            self.commit = max(self.commit, meta.index)
            return
        self._snapshot = snap
        self._snap_meta = meta
        self._base_index, self._base_term = meta.index, meta.term
        self._log = []
        self._conf = []
        self.commit = meta.index
        self._pending_snapshot = snap
        self._unstable_from = meta.index + 1
        self._config_changed()

    # --- leader side ----------------------------------------------------------------

    def _step_leader(self, m) -> None:
        pr = self._progress.get(m.src)
        if pr is None:
            return
        if isinstance(m, AppendResponse):
            pr.last_active = self._leader_ticks
            self._handle_append_response(m.src, pr, m)
        elif isinstance(m, HeartbeatResponse):
            pr.last_active = self._leader_ticks
            self._handle_heartbeat_response(m.src, pr, m)
        elif isinstance(m, SnapshotResponse):
            pr.last_active = self._leader_ticks
            self._handle_snapshot_response(m.src, pr, m)

    def _handle_append_response(self, peer: str, pr: _Progress, m: AppendResponse) -> None:
        if not m.success:
            if m.index == 0:
                if m.hint_index:
                    self._handle_lost_entries(peer, pr, m.hint_index - 1)
                return  # hint_index 0: a term notification, handled by the term check
            if pr.state == REPLICATE:
                if m.index <= pr.match:
                    return  # stale
                pr.become_probe()
            elif pr.state == PROBE:
                if m.index != pr.next - 1:
                    return  # stale
            else:
                return
            if m.hint_term == 0 and m.hint_index <= pr.match:
                # the follower lost entries it had acknowledged (its disk was replaced):
                # forget what it had, or it could never catch up again
                pr.match = m.hint_index - 1
            nxt = m.hint_index
            if m.hint_term:
                j = self._last_index_of_term(m.hint_term, m.index)
                if j is not None:
                    nxt = j + 1
            pr.next = max(pr.match + 1, min(nxt, m.index))
            pr.probe_sent = False
            self._send_append(peer, pr)
            return
        updated = m.index > pr.match
        if updated:
            pr.match = m.index
            pr.stall = 0
        if pr.next <= m.index:
            pr.next = m.index + 1
        if pr.state == PROBE:
            pr.become_replicate()
        elif pr.state == REPLICATE:
            pr.inflight = [i for i in pr.inflight if i > m.index]
        elif pr.snap is not None and pr.match >= pr.snap.meta.index:
            pr.become_probe()
        if updated and self._maybe_commit():
            self._broadcast_append()
        else:
            self._send_append(peer, pr)
        if self.transferee == peer and pr.match == self.last_index:
            self._send(TimeoutNow(self.id, peer, self.term))

    def _handle_lost_entries(self, peer: str, pr: _Progress, last: int) -> None:
        """A heartbeat's answer: the follower's log ends at ``last``, below what it
        acknowledged (it lost its data).  Probe from there (a snapshot if compacted)."""
        if pr.state == SNAPSHOT or last >= pr.match:
            return  # a snapshot is on its way, or the answer is older than an ack
        pr.match = last
        pr.become_probe()
        self._send_append(peer, pr)

    def _last_index_of_term(self, term: int, upto: int) -> int | None:
        i = min(upto, self.last_index)
        while i > self._base_index:
            t = self.term_at(i)
            if t == term:
                return i
            if t < term:
                return None
            i -= 1
        return None

    def _handle_heartbeat_response(self, peer: str, pr: _Progress, m: HeartbeatResponse) -> None:
        pr.probe_sent = False
        if pr.state == REPLICATE and pr.match < self.last_index:
            pr.stall += 1
            if pr.stall >= 2:  # appends or their answers were lost: probe again
                pr.stall = 0
                pr.become_probe()
        if pr.state == SNAPSHOT:
            pr.snap_wait += 1
            if pr.snap_wait >= 2:  # a chunk or its answer was lost: resend it
                self._send_snapshot_chunk(peer, pr)
        elif pr.match < self.last_index:
            self._send_append(peer, pr)
        if m.read_seq and self._reads:
            self._ack_reads(peer, m.read_seq)

    def _handle_snapshot_response(self, peer: str, pr: _Progress, m: SnapshotResponse) -> None:
        if pr.state != SNAPSHOT or pr.snap is None or m.index != pr.snap.meta.index:
            return
        if m.done:
            pr.match = max(pr.match, m.index)
            pr.become_probe()
            self._send_append(peer, pr)
            return
        pr.snap_offset = m.next_offset
        self._send_snapshot_chunk(peer, pr)

    def _maybe_commit(self) -> bool:
        matches = [pr.match for p, pr in self._progress.items() if p in self.voters]
        if self.id in self.voters:
            matches.append(self.last_index)
        if not matches:
            return False
        matches.sort(reverse=True)
        q = len(self.voters) // 2 + 1
        if len(matches) < q:
            return False
        candidate = matches[q - 1]
        if candidate > self.commit and self.term_at(candidate) == self.term:
            self.commit = candidate
            self._on_commit()
            return True
        return False

    def _on_commit(self) -> None:
        if self._waiting_reads and self.commit >= self._first_own_index:
            waiting, self._waiting_reads = self._waiting_reads, []
            for ctx in waiting:
                self._start_read(ctx)
        if self.id not in self.voters and self.commit >= self.config_index:
            # our removal is committed: hand over to the most up-to-date voter
            best = max(((pr.match, p) for p, pr in self._progress.items() if p in self.voters),
                       default=None)
            if best is not None and best[0] == self.last_index:
                self._send(TimeoutNow(self.id, best[1], self.term))
            self.become_follower(self.term, None)

    def _broadcast_append(self) -> None:
        for peer, pr in self._progress.items():
            self._send_append(peer, pr, send_empty=True)

    def _broadcast_heartbeat(self, read_seq: int = 0) -> None:
        for peer, pr in self._progress.items():
            self._send(Heartbeat(self.id, peer, self.term, min(pr.match, self.commit), read_seq))

    def _send_append(self, peer: str, pr: _Progress, send_empty: bool = False) -> None:
        """Send what the follower's flow-control state allows: one probe, or appends
        until ``max_inflight`` are unacknowledged (``send_empty`` forces one message
        even without entries, to carry the commit index)."""
        while True:
            if pr.state == SNAPSHOT:
                return
            if pr.state == PROBE and pr.probe_sent:
                return
            if pr.state == REPLICATE and len(pr.inflight) >= self.max_inflight:
                return
            prev = pr.next - 1
            prev_term = self.term_at(prev)
            if prev_term is None or prev < self._base_index:
                self._start_snapshot(peer, pr)
                return
            ents = self._batch(pr.next)
            if not ents and not send_empty:
                return
            send_empty = False
            self._send(AppendEntries(self.id, peer, self.term, prev, prev_term, self.commit,
                                     tuple(ents)))
            if pr.state != REPLICATE:
                pr.probe_sent = True
                return
            if not ents:
                return
            pr.next = ents[-1].index + 1
            pr.inflight.append(ents[-1].index)

    def _batch(self, start: int) -> list[Entry]:
        ents = self.entries(start, start + self.max_append_entries)
        size = 0
        for i, e in enumerate(ents):
            size += len(e.data)
            if size > self.max_msg_bytes and i > 0:
                return ents[:i]
        return ents

    def _start_snapshot(self, peer: str, pr: _Progress) -> None:
        snap = self._snapshot
        if snap is None:
            return
        pr.state = SNAPSHOT
        pr.snap = snap
        pr.snap_offset = 0
        pr.inflight = []
        self._send_snapshot_chunk(peer, pr)

    def _send_snapshot_chunk(self, peer: str, pr: _Progress) -> None:
        snap = pr.snap
        data = snap.data
        off = min(pr.snap_offset, len(data))
        chunk = data[off:off + self.snapshot_chunk_size]
        done = off + len(chunk) >= len(data)
        meta = snap.meta
        pr.snap_wait = 0
        self._send(InstallSnapshot(self.id, peer, self.term, meta.index, meta.term,
                                   meta.voters, meta.config_index, off, len(data), chunk, done))

    # --- proposals ------------------------------------------------------------------

    def _check_proposable(self) -> None:
        self._check_not_in_ready()
        if self.role != LEADER:
            raise NotLeader(leader=self.lead)
        if self.transferee is not None:
            raise LeadershipTransferInProgress(target=self.transferee)

    def propose(self, data: bytes) -> tuple[int, int]:
        """Append one command; returns ``(term, index)`` of its entry.

        The command is committed when an entry with that index *and* term shows up
        in ``Ready.committed_entries``; another term at that index means it was lost.
        Raises NotLeader, LeadershipTransferInProgress.
        """
        return self.propose_batch([data])

    def propose_batch(self, datas: Sequence[bytes]) -> tuple[int, int]:
        """Append several commands at once (one fsync for all: group commit).

        Returns ``(term, first_index)``; command ``i`` gets ``first_index + i``.
        Raises NotLeader, LeadershipTransferInProgress.
        """
        self._check_proposable()
        first = self.last_index + 1
        ents = [Entry(first + i, self.term, ENTRY_NORMAL, bytes(d)) for i, d in enumerate(datas)]
        if ents:
            self._append(ents)
            self._maybe_commit()
            self._broadcast_append()
        return self.term, first

    def propose_conf_change(self, op: str, node: str,
                            expected_config_index: int | None = None) -> tuple[int, int]:
        """Add (``op="add"``) or remove (``op="remove"``) one voter.

        The new membership takes effect as soon as the entry is appended.  Returns
        ``(term, index)`` of the configuration entry.  Raises NotLeader,
        LeadershipTransferInProgress, LeaderNotReady (no own-term commit yet),
        ConfigChangeInProgress (an uncommitted change exists), StaleConfiguration
        (``expected_config_index`` given and not the current one) and
        InvalidConfigChange (unknown op, or removing the last voter).
        """
        self._check_proposable()
        if op not in ("add", "remove"):
            raise InvalidConfigChange("unknown membership operation %r; use add or remove" % op)
        if self.commit < self._first_own_index:
            raise LeaderNotReady()
        if self.config_index > self.commit:
            raise ConfigChangeInProgress()
        if expected_config_index is not None and expected_config_index != self.config_index:
            raise StaleConfiguration(current=self.config_index)
        voters = [v for v in self.voters if v != node]
        if op == "add":
            voters.append(node)
        if not voters:
            raise InvalidConfigChange("cannot remove the last voter %s" % node)
        data = encode_config(ConfigChange(op, node, tuple(sorted(voters))))
        index = self.last_index + 1
        self._append([Entry(index, self.term, ENTRY_CONFIG, data)])
        self._maybe_commit()
        self._broadcast_append()
        return self.term, index

    def _config_changed(self) -> None:
        voters = self.voters
        if self.role == LEADER:
            for peer in list(self._progress):
                if peer not in voters:
                    del self._progress[peer]
            for peer in voters:
                if peer != self.id and peer not in self._progress:
                    pr = _Progress(self.last_index + 1, self._leader_ticks)
                    self._progress[peer] = pr
            if self.transferee is not None and self.transferee not in voters:
                self.transferee = None

    def transfer_leadership(self, target: str | None = None) -> str:
        """Hand leadership to ``target`` (or to the most up-to-date voter if ``None``).

        Proposals are refused until the transfer ends; it is aborted after one
        election timeout.  Returns the target.  Raises NotLeader,
        LeadershipTransferInProgress, InvalidConfigChange (target not a voter).
        """
        self._check_proposable()
        if target is None:
            best = max(((pr.match, p) for p, pr in self._progress.items()
                        if p in self.voters), default=None)
            if best is None:
                raise InvalidConfigChange("there is no other voter to transfer leadership to")
            target = best[1]
        if target == self.id or target not in self.voters:
            raise InvalidConfigChange("%s is not another voter of this cluster" % target)
        self.transferee = target
        self._transfer_elapsed = 0
        pr = self._progress[target]
        if pr.match == self.last_index:
            self._send(TimeoutNow(self.id, target, self.term))
        else:
            self._send_append(target, pr)
        return target

    def read_index(self, ctx: Any) -> None:
        """Ask for a linearizable read point; the answer is a ReadState in a later Ready.

        Raises NotLeader.  A read made before this leader committed an entry of its
        term waits until it has.  If leadership is lost first, ``ctx`` shows up in
        ``Ready.dropped_reads``.
        """
        self._check_not_in_ready()
        if self.role != LEADER:
            raise NotLeader(leader=self.lead)
        if self.commit < self._first_own_index:
            self._waiting_reads.append(ctx)
            return
        self._start_read(ctx)

    def _start_read(self, ctx: Any) -> None:
        if len(self.voters) == 1 and self.id in self.voters:
            self._read_states.append(ReadState(self.commit, ctx))
            return
        self._read_seq += 1
        self._reads.append(_PendingRead(self._read_seq, self.commit, ctx, self.id))
        self._broadcast_heartbeat(self._read_seq)

    def _ack_reads(self, peer: str, seq: int) -> None:
        q = self._quorum()
        voters = self.voters
        release = 0
        for i, r in enumerate(self._reads):
            if r.seq > seq:
                break
            r.acks.add(peer)
            if sum(1 for a in r.acks if a in voters) >= q:
                release = i + 1
        if release:
            for r in self._reads[:release]:
                self._read_states.append(ReadState(r.index, r.ctx))
            del self._reads[:release]

    # --- snapshots ------------------------------------------------------------------

    def compact(self, index: int, data: bytes) -> CompactResult:
        """Record a state machine snapshot taken at ``index`` and trim the log.

        ``index`` must be applied already.  Entries up to ``index - trailing_logs``
        are dropped from memory; the driver persists the snapshot and then drops the
        same entries from storage (see :class:`CompactResult`).
        Raises ValueError when ``index`` is not applied or older than the current
        snapshot.
        """
        if index > self.applied or index < self._snap_meta.index or index < self._base_index:
            raise ValueError("cannot snapshot at %d (applied %d, snapshot %d)"
                             % (index, self.applied, self._snap_meta.index))
        voters, cidx = self._config_at(index)
        meta = SnapshotMeta(index, self.term_at(index), voters, cidx)
        self._snapshot = Snapshot(meta, bytes(data))
        self._snap_meta = meta
        self._conf = [c for c in self._conf if c[0] > index]
        new_base = index - self.trailing_logs
        if new_base > self._base_index:
            nt = self.term_at(new_base)
            del self._log[:new_base - self._base_index]
            self._base_index, self._base_term = new_base, nt
        return CompactResult(meta, self.first_index, self._base_term)

    @property
    def snapshot(self) -> Snapshot | None:
        """The newest snapshot known to the core (sent to followers that lag too far)."""
        return self._snapshot
