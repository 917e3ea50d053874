"""The Twisted driver of the pure Raft core (:mod:`.core`).

:class:`RaftNode` owns one :class:`~.core.RaftCore` and connects it to the world:

* **time**: an injected ``IReactorTime`` ticks the core every ``tick_seconds``
  (``election_timeout / 10``, so the core's ``election_ticks`` is 10 and elections
  start after 1–2 election timeouts, as in hashicorp Raft);
* **disk**: a :class:`~.storage.RaftStorage` (log, term, vote, commit) and a
  :class:`~.snapshots.SnapshotStore`;
* **network**: an :class:`IRaftTransport` with ``send(peer_id, bytes)``; incoming
  bytes are handed to :meth:`RaftNode.receive`;
* **state machine**: an :class:`IRaftStateMachine` (``apply``, ``snapshot``,
  ``restore``).

Processing: every input (a message, a proposal, a tick) is queued and one
``callLater(0)`` per reactor turn runs :meth:`RaftNode._run`, which feeds all
queued messages and *all proposals of the turn as one batch* into the core, then
handles each ``Ready`` in the order the core demands: persist (snapshot file, then
log entries + term/vote/commit in ONE SQLite transaction = one fsync for the whole
batch: group commit), then send, then restore/apply, then ``advance``.  A Ready
that only moves the commit index is saved without fsync (losing it is harmless).
Messages therefore never leave before what they depend on is durable.

Saves in a thread (when the clock is a real reactor, i.e. provides
``IReactorThreads``; on a test ``Clock`` everything stays in the reactor thread): a
Ready that needs an fsync (new entries, a new term or vote) is saved by
``callInThread`` while the reactor goes on serving sockets, and the Ready is
finished (send, apply, ``advance``) back in the reactor thread once the save
returned.  Meanwhile the core is left alone: messages, ticks and proposals that
arrive are queued and fed after the save (proposals of that time become the next
batch: group commit).  A leader's Ready whose messages are all AppendEntries /
Heartbeats and that changes no term or vote sends them *before* its save starts
(Raft thesis §10.2.1): followers persist and answer while the leader fsyncs, yet
the leader counts itself toward a commit only after its own save, because no
response is stepped into the core before that.  Followers and candidates still
persist before any reply (AppendResponse, VoteResponse).  Measured with
``benchmarks/raft_commit.py`` on a 2-core machine whose fsync took 4–8 ms: one
sequential proposer on 3 in-process nodes went from ~24 ms to ~4–9 ms p50 (the
three fsyncs no longer run one after another, and the leader's overlaps the round
trip).  Anything that must drive the core directly (:meth:`_settle`: membership
changes, leadership transfer, reads, snapshots, stop) first waits for the save in
flight and finishes its Ready.

Proposals return Deferreds that fire with the state machine's ``apply`` result
once the entry (same index *and* term) is applied locally; they fail with
:class:`~ipfscluster.errors.NotLeader` (not the leader),
:class:`~ipfscluster.errors.ProposalDropped` (a new leader overwrote the entry),
:class:`~ipfscluster.errors.CommitOutcomeUnknown` (a snapshot replaced the log
before we saw the outcome), or :class:`~ipfscluster.errors.ShuttingDown`.

Snapshots: every ``snapshot_interval`` (staggered randomly to 1–2x, like
hashicorp Raft) the node snapshots when at least ``snapshot_threshold`` entries
were applied since the last one.  The state machine's ``snapshot_chunks()`` (a
lazy, copy-on-write view of the state at the applied index) is consumed a few
chunks per reactor turn, so applies and the Raft loop keep running while a big
state is serialised; then the core records the snapshot and trims its memory to
``trailing_logs`` entries, the file is written (fsync + rename) and only then the
SQLite log is compacted.  A final snapshot is taken (in one go) on a clean stop.

Restart: the newest valid snapshot consistent with the log is restored, then the
stored term/vote/commit and entries rebuild the core, which re-delivers committed
entries after the snapshot.  A failure to persist is fatal for the node (it stops
and fails everything pending with :class:`~ipfscluster.errors.RaftNodeFailed`):
continuing would break the promises already made to peers.
"""

from __future__ import annotations

import random
import threading
from typing import Any, Callable, Iterable, Iterator

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorThreads, IReactorTime
from twisted.logger import Logger
from zope.interface import Attribute, Interface

from ipfscluster.consensus.raft import messages
from ipfscluster.consensus.raft.core import LEADER, RaftCore
from ipfscluster.consensus.raft.messages import (
    ENTRY_CONFIG,
    ENTRY_NORMAL,
    Entry,
    HardState,
    Snapshot,
    SnapshotMeta,
)
from ipfscluster.consensus.raft.snapshots import SnapshotStore
from ipfscluster.consensus.raft.storage import RaftStorage
from ipfscluster.errors import (
    ClusterError,
    CommitOutcomeUnknown,
    NotLeader,
    ProposalDropped,
    RaftCodecError,
    RaftNodeFailed,
    ShuttingDown,
)

log = Logger(namespace="consensus")

# messages only a leader sends: receiving one of the current term is "contact"
_FROM_LEADER = (messages.AppendEntries, messages.Heartbeat, messages.InstallSnapshot)

#: chunks of a background snapshot serialised per reactor turn
SNAPSHOT_CHUNKS_PER_TURN = 16

#: run durable saves in the reactor's thread pool when the clock is a real reactor
#: (``benchmarks/raft_commit.py --sync-saves`` turns it off to measure the gain)
PERSIST_IN_THREADS = True

# what a leader may send before its own entries are durable (Raft thesis 10.2.1):
# it counts itself toward a commit only once they are, and the node steps no
# response into the core before its save finished
_EARLY = (messages.AppendEntries, messages.Heartbeat)


class _Persist:
    """One durable save of a Ready running in the reactor's thread pool."""

    __slots__ = ("rd", "sent", "done", "error")

    def __init__(self, rd, sent: bool):
        self.rd = rd
        self.sent = sent
        self.done = threading.Event()
        self.error: BaseException | None = None


class IRaftTransport(Interface):
    """Carries encoded Raft messages to peers (the RPC layer implements it)."""

    def send(peer_id, data):
        """Send ``data`` (bytes) to ``peer_id``; fire and forget (losses are fine)."""


class IRaftStateMachine(Interface):
    """What Raft replicates into."""

    def apply(entry):
        """Apply a committed ``ENTRY_NORMAL`` entry (``entry.data`` bytes).

        Returns the result handed to the proposer (if this node proposed it).  Must
        be deterministic; an exception is logged and handed to the proposer.
        """

    def snapshot():
        """Return the whole state as bytes (consistent with everything applied)."""

    # optional: snapshot_chunks() -> iterator of bytes, the state *as it is at the
    # call*, produced lazily (later applies must not change it).  When present, the
    # periodic snapshot is serialised a few chunks per reactor turn, so applies are
    # never blocked for the whole serialisation.

    def restore(data):
        """Replace the whole state with ``data`` made by ``snapshot``."""


class RaftNode:
    """Drives one Raft core.  Call :meth:`start` then feed :meth:`receive`."""

    leader_id = Attribute("str | None: the leader this node knows of")

    def __init__(self, node_id: str, *, clock: IReactorTime, transport: IRaftTransport,
                 data_folder: str, state_machine: IRaftStateMachine,
                 voters: Iterable[str] = (), election_timeout: float = 1.0,
                 heartbeat_timeout: float = 1.0, max_append_entries: int = 64,
                 trailing_logs: int = 10240, snapshot_threshold: int = 8192,
                 snapshot_interval: float = 120.0, rng: random.Random | None = None,
                 on_config: Callable[[tuple[str, ...]], Any] | None = None):
        self.id = node_id
        self.clock = clock
        self.transport = transport
        self.data_folder = data_folder
        self.state_machine = state_machine
        self.bootstrap_voters = tuple(voters)
        self.tick_seconds = election_timeout / 10.0
        self.heartbeat_ticks = max(1, min(9, round(heartbeat_timeout / 10.0 / self.tick_seconds)))
        self.max_append_entries = max_append_entries
        self.trailing_logs = trailing_logs
        self.snapshot_threshold = snapshot_threshold
        self.snapshot_interval = snapshot_interval
        self.rng = rng or random.Random()
        self.on_config = on_config
        self.core: RaftCore | None = None
        self.storage: RaftStorage | None = None
        self.snapshots: SnapshotStore | None = None
        self.failed: BaseException | None = None
        self.snapshot_index = 0
        self._inbox: list = []
        self._proposals: list[tuple[bytes, defer.Deferred]] = []
        self._waiting: dict[int, tuple[int, defer.Deferred]] = {}
        self._reads: dict[int, defer.Deferred] = {}
        self._ready_reads: list[tuple[int, defer.Deferred]] = []
        self._read_seq = 0
        self._leader_waiters: list[defer.Deferred] = []
        self._apply_waiters: list[tuple[int, defer.Deferred]] = []
        self._contact_waiters: list[defer.Deferred] = []
        self._moved_waiters: list[tuple[str | None, defer.Deferred]] = []
        self._term_waiters: list[tuple[int, defer.Deferred]] = []
        self._run_call = None
        self._snapshot_call = None
        self._handling = False
        self._fire: list = []
        self._persist: _Persist | None = None
        self._ticks = 0
        # a real reactor: durable saves run in its thread pool (see the module doc)
        self._threads = clock if PERSIST_IN_THREADS and IReactorThreads.providedBy(clock) else None
        self._background = None  # (index, chunk iterator, chunks so far, start time)
        self._ticker: task.LoopingCall | None = None
        self.running = False

    # --- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        """Open storage, restore the newest snapshot and the log, start ticking.

        Raises the storage errors of :mod:`.storage` and :mod:`.snapshots`
        (``StorageCorrupted``, ``NoValidSnapshot``, ``StorageLocked`` …).
        """
        self.storage = RaftStorage.open(self.data_folder, entry_factory=Entry)
        try:
            self.snapshots = SnapshotStore.open(self.data_folder)
            self.core = self._restore()
        except BaseException:
            self.storage.close()
            raise
        self.failed = None
        self.running = True
        self._ticker = task.LoopingCall(self._tick)
        self._ticker.clock = self.clock
        self._ticker.start(self.tick_seconds, now=False)
        self._schedule_snapshot()
        self._schedule_run()
        log.info("raft node {id} started: term {term}, last index {last}, commit {commit}, "
                 "voters {voters}", id=self.id, term=self.core.term,
                 last=self.core.last_index, commit=self.core.commit,
                 voters=",".join(self.core.voters))

    def _restore(self) -> RaftCore:
        storage, snaps = self.storage, self.snapshots
        snapshot = None
        meta = snaps.select(storage)
        if meta is not None:
            data = b"".join(snaps.payload(meta))
            config = meta.configuration or {}
            snapshot = Snapshot(SnapshotMeta(meta.index, meta.term,
                                             tuple(config.get("voters", ())),
                                             int(config.get("config_index", 0))), data)
            if meta.index > storage.last_index():
                # crash between writing an installed snapshot and saving the log base
                storage.save(log_base=(meta.index, meta.term))
            self.state_machine.restore(data)
            self.snapshot_index = meta.index
        term, vote = storage.hard_state()
        entries = storage.entries(storage.first_index(), storage.last_index() + 1)
        return RaftCore(
            self.id, self.bootstrap_voters, rng=self.rng, election_ticks=10,
            heartbeat_ticks=self.heartbeat_ticks, max_append_entries=self.max_append_entries,
            trailing_logs=self.trailing_logs,
            hard_state=HardState(term, vote, storage.commit_index()),
            snapshot=snapshot, entries=entries, log_base=storage.log_base())

    def stop(self, *, final_snapshot: bool = True) -> None:
        """Stop ticking, take a final snapshot, fail everything pending, close files."""
        if not self.running:
            return
        self.running = False
        for call in (self._run_call, self._snapshot_call):
            if call is not None and call.active():
                call.cancel()
        self._run_call = self._snapshot_call = None
        self._background = None
        if self._ticker is not None and self._ticker.running:
            self._ticker.stop()
        self._drain_persist(finish=final_snapshot)
        if final_snapshot and self.failed is None:
            try:
                self.take_snapshot(force=True)
            except Exception:
                log.failure("final raft snapshot failed")
        self._fail_everything(ShuttingDown())
        self.storage.close()

    def crash(self) -> None:
        """Stop at once without any final work (tests: simulates kill -9)."""
        self.stop(final_snapshot=False)

    # --- inputs -------------------------------------------------------------------------

    def receive(self, data: bytes, sender: str | None = None) -> None:
        """Hand an encoded Raft message from a peer to the node (never raises).

        ``sender``: the authenticated peer ID of the connection it came on; a
        message claiming another source is dropped.
        """
        if not self.running:
            return
        try:
            msg = messages.decode(data)
        except RaftCodecError as exc:
            log.warn("dropping a malformed raft message: {error}", error=exc)
            return
        if sender is not None and msg.src != sender:
            log.warn("dropping a raft message from {sender} claiming to come from {src}",
                     sender=sender, src=msg.src)
            return
        self._inbox.append(msg)
        self._schedule_run()

    def propose(self, data: bytes) -> defer.Deferred:
        """Replicate ``data``; the Deferred fires with ``apply``'s result once applied here.

        Proposals made in the same reactor turn are appended and fsynced as one batch.
        Fails with NotLeader, ProposalDropped, CommitOutcomeUnknown,
        LeadershipTransferInProgress, ShuttingDown or RaftNodeFailed.
        """
        d = defer.Deferred()
        if not self.running:
            d.errback(self._not_running())
            return d
        self._proposals.append((bytes(data), d))
        self._schedule_run()
        return d

    def change_membership(self, op: str, node: str) -> defer.Deferred:
        """Add (``"add"``) or remove (``"remove"``) one voter.

        Fires with ``None`` once the configuration entry is applied here.  Fails with
        the core's errors (NotLeader, LeaderNotReady, ConfigChangeInProgress,
        InvalidConfigChange …), ProposalDropped or ShuttingDown.
        """
        return self._leader_call(lambda core: core.propose_conf_change(op, node))

    def transfer_leadership(self, target: str | None = None) -> str:
        """Start handing leadership to ``target`` (or the best voter); returns it.

        Raises NotLeader, LeadershipTransferInProgress, InvalidConfigChange.
        """
        self._check_running()
        self._settle()
        target = self.core.transfer_leadership(target)
        self._schedule_run()
        return target

    def read_barrier(self) -> defer.Deferred:
        """Fire (with the read index) once a linearizable read may be served here.

        Only on the leader (ReadIndex: commit of the leader's term + a heartbeat
        round confirming leadership).  Fails with NotLeader or ShuttingDown.
        """
        self._read_seq += 1
        seq = self._read_seq
        d = defer.Deferred()
        try:
            self._check_running()
            self._settle()
            self.core.read_index(seq)
        except ClusterError as exc:
            d.errback(exc)
            return d
        self._reads[seq] = d
        self._schedule_run()
        return d

    def _leader_call(self, propose: Callable[[RaftCore], tuple[int, int]]) -> defer.Deferred:
        d = defer.Deferred()
        try:
            self._check_running()
            self._settle()
            term, index = propose(self.core)
        except ClusterError as exc:
            d.errback(exc)
            return d
        self._waiting[index] = (term, d)
        self._schedule_run()
        return d

    def _check_running(self) -> None:
        if not self.running:
            raise self._not_running()

    def _not_running(self) -> ClusterError:
        if self.failed is not None:
            return RaftNodeFailed(
                "the Raft node stopped after a storage failure (%s); check the data "
                "folder and restart the peer" % (self.failed,))
        return ShuttingDown()

    # --- what others may ask ------------------------------------------------------------

    @property
    def leader_id(self) -> str | None:
        return self.core.lead if self.core is not None else None

    @property
    def is_leader(self) -> bool:
        return self.core is not None and self.core.role == LEADER

    @property
    def voters(self) -> tuple[str, ...]:
        return self.core.voters if self.core is not None else self.bootstrap_voters

    @property
    def applied(self) -> int:
        return self.core.applied if self.core is not None else 0

    @property
    def commit(self) -> int:
        return self.core.commit if self.core is not None else 0

    def when_leader(self) -> defer.Deferred:
        """Fire with the leader's ID once one is known (at once if known now)."""
        d = defer.Deferred(lambda d: self._forget(self._leader_waiters, d))
        if not self.running:
            d.errback(self._not_running())
        elif self.leader_id is not None:
            d.callback(self.leader_id)
        else:
            self._leader_waiters.append(d)
        return d

    def when_applied(self, index: int) -> defer.Deferred:
        """Fire with ``None`` once the state machine applied ``index``."""
        d = defer.Deferred(lambda d: self._forget(self._apply_waiters, d))
        if not self.running:
            d.errback(self._not_running())
        elif self.applied >= index:
            d.callback(None)
        else:
            self._apply_waiters.append((index, d))
        return d

    def when_leader_changes(self, leader: str | None) -> defer.Deferred:
        """Fire with the new leader once this node knows a leader other than ``leader``
        (at once if it does now).  A time without any leader (an election, or this
        node's own timeout while ``leader`` lives on) does not count."""
        d = defer.Deferred(lambda d: self._forget(self._moved_waiters, d))
        if not self.running:
            d.errback(self._not_running())
        elif self.leader_id not in (None, leader):
            d.callback(self.leader_id)
        else:
            self._moved_waiters.append((leader, d))
        return d

    def when_term_applied(self, term: int) -> defer.Deferred:
        """Fire with ``None`` once an entry of ``term`` or a later term is applied here.

        From then on an entry proposed in an earlier term is applied here already or
        will never be committed: the first leader of a later term either had it in
        its log (and committed it before its own first entry) or overwrote it.
        """
        d = defer.Deferred(lambda d: self._forget(self._term_waiters, d))
        if not self.running:
            d.errback(self._not_running())
        elif self._applied_term(self.applied) >= term:
            d.callback(None)
        else:
            self._term_waiters.append((term, d))
        return d

    def _applied_term(self, applied: int) -> int:
        return self.core.term_at(applied) or 0

    def sync_point(self) -> defer.Deferred:
        """Fire with an index at least the cluster's commit index at the call.

        On the leader this is a ReadIndex round (:meth:`read_barrier`); on a
        follower, the commit index after the next message from the leader.  Wait
        for :meth:`when_applied` of it to be in sync.  Fails with NotLeader (the
        leader changed), ShuttingDown.
        """
        if self.is_leader:
            return self.read_barrier()
        d = defer.Deferred(lambda d: self._forget(self._contact_waiters, d))
        if not self.running:
            d.errback(self._not_running())
            return d
        self._contact_waiters.append(d)
        return d.addCallback(lambda _: self.commit)

    @staticmethod
    def _forget(waiters: list, d: defer.Deferred) -> None:
        waiters[:] = [w for w in waiters if w is not d and not (isinstance(w, tuple) and w[1] is d)]

    # --- the loop -----------------------------------------------------------------------

    def _tick(self) -> None:
        if self.running:
            self._ticks += 1  # fed by _run (later, when a save is in flight)
            self._run()

    def _schedule_run(self) -> None:
        if self.running and (self._run_call is None or not self._run_call.active()):
            self._run_call = self.clock.callLater(0, self._run)

    def _run(self) -> None:
        """Feed queued inputs into the core and handle every Ready (see module doc)."""
        if self._run_call is not None and self._run_call.active():
            self._run_call.cancel()
        self._run_call = None
        if not self.running or self._persist is not None:
            return  # a save in flight: _persisted runs the loop again
        if self._handling:
            self._schedule_run()
            return
        self._handling = True
        try:
            core = self.core
            if self._ticks:
                # ticks missed during a save count once, as a LoopingCall behind
                # schedule fires once: a stalled fsync must not fire an election
                # before the leader's queued heartbeats are seen
                self._ticks = 0
                core.tick()
            inbox, self._inbox = self._inbox, []
            heard = False
            for msg in inbox:
                core.step(msg)
                heard = heard or (isinstance(msg, _FROM_LEADER) and msg.src == core.lead
                                  and msg.term == core.term)
            if heard and self._contact_waiters:
                waiters, self._contact_waiters = self._contact_waiters, []
                for d in waiters:
                    self._later(d.callback, None)
            self._propose_batch()
            while core.has_ready():
                rd = core.ready()
                if self._handle_ready(rd):
                    break  # persisting in a thread; the Ready is finished later
                core.advance(rd)
        except Exception as exc:
            self._handling = False
            self._die(exc)
            return
        self._handling = False
        # fire Deferreds only now: their callbacks may feed the core again
        fire, self._fire = self._fire, []
        for method, value in fire:
            method(value)

    def _later(self, method, value) -> None:
        self._fire.append((method, value))

    def _settle(self) -> None:
        """Handle everything queued, so the core can take a direct call (waits,
        blocking, for a save in flight: no Ready may be outstanding afterwards)."""
        if self._handling:
            raise RuntimeError("the Raft core cannot be driven from inside apply/restore")
        self._run()
        while self._persist is not None and self.running:
            self._drain_persist(finish=True)

    def _drain_persist(self, finish: bool) -> None:
        """Wait for the save in flight (if any); finish its Ready when ``finish``."""
        job = self._persist
        if job is None:
            return
        job.done.wait()
        if finish:
            self._persisted(job)
        else:
            self._persist = None

    def _save_in_thread(self, job: _Persist, kwargs: dict) -> None:
        """Runs in the thread pool: the SQLite transaction and its fsync."""
        try:
            self.storage.save(**kwargs)
        except BaseException as exc:
            job.error = exc
        job.done.set()
        self._threads.callFromThread(self._persisted, job)

    def _persisted(self, job: _Persist) -> None:
        """Back in the reactor thread: finish the Ready whose save completed."""
        if self._persist is not job:
            return  # already finished by _settle, or dropped by a crash
        self._persist = None
        if not self.running:
            return
        if job.error is not None:
            self._die(job.error)
            return
        self._handling = True
        try:
            self._after_persist(job.rd, sent=job.sent)
            self.core.advance(job.rd)
        except Exception as exc:
            self._handling = False
            self._die(exc)
            return
        self._handling = False
        self._run()

    def _propose_batch(self) -> None:
        proposals, self._proposals = self._proposals, []
        if not proposals:
            return
        try:
            term, first = self.core.propose_batch([data for data, _ in proposals])
        except ClusterError as exc:
            for _, d in proposals:
                self._later(d.errback, exc)
            return
        for offset, (_, d) in enumerate(proposals):
            self._waiting[first + offset] = (term, d)

    def _handle_ready(self, rd) -> bool:
        """Persist, send, apply one Ready.  Returns True when its durable save went
        to the thread pool: :meth:`_persisted` finishes it (sends, applies) later."""
        # 1. persist: snapshot file first, then everything else in one transaction
        snap = rd.snapshot
        if snap is not None:
            self._write_snapshot(snap.meta, snap.data)
        hs = rd.hard_state
        if snap is not None or rd.entries or hs is not None:
            vote_changed = hs is not None and (hs.term, hs.vote) != self.storage.hard_state()
            durable = snap is not None or bool(rd.entries) or vote_changed
            kwargs = dict(
                log_base=(snap.meta.index, snap.meta.term) if snap is not None else None,
                truncate_from=snap.meta.index + 1 if snap is not None else None,
                entries=rd.entries,
                hard_state=(hs.term, hs.vote) if hs is not None else None,
                commit=hs.commit if hs is not None else None,
                durable=durable)
            if durable and snap is None and self._threads is not None:
                # a leader's appends may leave before its own save (it steps no
                # response until the save is done); everything else waits for it
                early = (not vote_changed and self.core.role == LEADER
                         and all(isinstance(m, _EARLY) for m in rd.messages))
                if early:
                    self._send_all(rd)
                self._persist = job = _Persist(rd, sent=early)
                self._threads.callInThread(self._save_in_thread, job, kwargs)
                return True
            self.storage.save(**kwargs)
        self._after_persist(rd, sent=False)
        return False

    def _send_all(self, rd) -> None:
        for msg in rd.messages:
            self.transport.send(msg.dst, messages.encode(msg))

    def _after_persist(self, rd, sent: bool) -> None:
        """Steps 2 and 3 of a Ready, once what it says is durable."""
        snap = rd.snapshot
        # 2. send
        if not sent:
            self._send_all(rd)
        # 3. restore / apply
        if snap is not None:
            self.state_machine.restore(snap.data)
            self.snapshot_index = snap.meta.index
            self._resolve_snapshot_gap(snap.meta.index)
        for entry in rd.committed_entries:
            self._apply(entry)
        applied = rd.committed_entries[-1].index if rd.committed_entries else None
        if snap is not None:
            applied = max(applied or 0, snap.meta.index)
        if applied is not None:
            self._notify_applied(applied)
        for read in rd.read_states:
            self._ready_reads.append((read.index, self._reads.pop(read.ctx, None)))
        for ctx in rd.dropped_reads:
            d = self._reads.pop(ctx, None)
            if d is not None:
                self._later(d.errback, NotLeader(leader=self.core.lead))
        self._release_reads(applied if applied is not None else self.core.applied)
        if rd.soft_state is not None:
            self._soft_state_changed(rd.soft_state)

    def _apply(self, entry: Entry) -> None:
        result, error = None, None
        if entry.kind == ENTRY_NORMAL:
            try:
                result = self.state_machine.apply(entry)
            except Exception as exc:
                log.failure("applying raft entry {index} failed; a rollback may be "
                            "necessary", index=entry.index)
                error = exc
        elif entry.kind == ENTRY_CONFIG:
            voters = messages.decode_config(entry.data).voters
            log.info("raft membership committed at {index}: {voters}",
                     index=entry.index, voters=",".join(voters))
            if self.on_config is not None:
                self.on_config(tuple(voters))
        waiting = self._waiting.pop(entry.index, None)
        # every proposal below this index that is still waiting was overwritten
        for index in [i for i in self._waiting if i < entry.index]:
            self._later(self._waiting.pop(index)[1].errback, ProposalDropped())
        if waiting is None:
            return
        term, d = waiting
        if term != entry.term:
            self._later(d.errback, ProposalDropped())
        elif error is not None:
            self._later(d.errback, error)
        else:
            self._later(d.callback, result)

    def _resolve_snapshot_gap(self, index: int) -> None:
        for i in [i for i in self._waiting if i <= index]:
            self._later(self._waiting.pop(i)[1].errback, CommitOutcomeUnknown())

    def _notify_applied(self, applied: int) -> None:
        self._apply_waiters = self._release(self._apply_waiters, applied, None)
        if self._term_waiters:
            term = self._applied_term(applied)
            self._term_waiters = self._release(self._term_waiters, term, None)

    def _release(self, waiters: list, reached: int, value) -> list:
        """Fire the waiters whose level is at most ``reached``; return the others."""
        keep = []
        for level, d in waiters:
            if level <= reached:
                self._later(d.callback, value)
            else:
                keep.append((level, d))
        return keep

    def _release_reads(self, applied: int) -> None:
        keep = []
        for index, d in self._ready_reads:
            if d is None:
                continue
            if index <= applied:
                self._later(d.callback, index)
            else:
                keep.append((index, d))
        self._ready_reads = keep

    def _soft_state_changed(self, soft) -> None:
        if soft.lead is not None:
            waiters, self._leader_waiters = self._leader_waiters, []
            for d in waiters:
                self._later(d.callback, soft.lead)
        if self._moved_waiters and soft.lead is not None:
            moved = [w for w in self._moved_waiters if w[0] != soft.lead]
            self._moved_waiters = [w for w in self._moved_waiters if w[0] == soft.lead]
            for _, d in moved:
                self._later(d.callback, soft.lead)
        if soft.role != LEADER and self._waiting:
            log.debug("raft node {id} is {role}; {n} proposals wait for their outcome",
                      id=self.id, role=soft.role, n=len(self._waiting))

    def _die(self, exc: BaseException) -> None:
        log.failure("raft node {id} stops: persisting or applying failed", id=self.id)
        fire, self._fire = self._fire, []
        for method, value in fire:  # outcomes decided before the failure stand
            method(value)
        self.failed = exc
        self.running = False
        if self._ticker is not None and self._ticker.running:
            self._ticker.stop()
        for call in (self._run_call, self._snapshot_call):
            if call is not None and call.active():
                call.cancel()
        self._fail_everything(self._not_running())
        self.storage.close()

    def _fail_everything(self, error: ClusterError) -> None:
        pending = [d for _, d in self._proposals]
        pending += [d for _, d in self._waiting.values()]
        pending += list(self._reads.values()) + [d for _, d in self._ready_reads if d]
        pending += self._leader_waiters + [d for _, d in self._apply_waiters]
        pending += self._contact_waiters
        pending += [d for _, d in self._moved_waiters + self._term_waiters]
        self._contact_waiters, self._moved_waiters, self._term_waiters = [], [], []
        self._proposals, self._waiting, self._reads = [], {}, {}
        self._ready_reads, self._leader_waiters, self._apply_waiters = [], [], []
        for d in pending:
            if not d.called:
                d.errback(error)

    # --- snapshots ----------------------------------------------------------------------

    def _schedule_snapshot(self) -> None:
        delay = self.snapshot_interval * (1.0 + self.rng.random())
        self._snapshot_call = self.clock.callLater(delay, self._periodic_snapshot)

    def _periodic_snapshot(self) -> None:
        """Start a background snapshot if enough entries were applied since the last."""
        self._snapshot_call = None
        try:
            self._settle()
            index = self.core.applied
            if index - self.snapshot_index < self.snapshot_threshold:
                self._schedule_snapshot()
                return
            self._background = (index, self._chunks(), [], self.clock.seconds())
        except Exception as exc:
            self._die(exc)
            return
        self._snapshot_call = self.clock.callLater(0, self._snapshot_step)

    def _chunks(self) -> Iterator[bytes]:
        chunks = getattr(self.state_machine, "snapshot_chunks", None)
        return iter(chunks()) if chunks is not None else iter([self.state_machine.snapshot()])

    def _snapshot_step(self) -> None:
        """Serialise a few chunks per reactor turn; applies go on in between."""
        self._snapshot_call = None
        index, chunks, parts, started = self._background
        try:
            for _ in range(SNAPSHOT_CHUNKS_PER_TURN):
                chunk = next(chunks, None)
                if chunk is None:
                    self._background = None
                    self._settle()
                    self._finish_snapshot(index, b"".join(parts), started)
                    self._schedule_snapshot()
                    return
                parts.append(chunk)
        except Exception as exc:
            self._die(exc)
            return
        self._snapshot_call = self.clock.callLater(0, self._snapshot_step)

    def take_snapshot(self, force: bool = False) -> bool:
        """Snapshot now, in one go, if ``snapshot_threshold`` entries were applied
        since the last one (any number with ``force``).  Returns whether it did."""
        if self.running:
            self._settle()  # no Ready may be outstanding while the core is compacted
        elif not force:
            return False
        applied = self.core.applied
        new_entries = applied - self.snapshot_index
        if new_entries <= 0 or (not force and new_entries < self.snapshot_threshold):
            return False
        started = self.clock.seconds()
        return self._finish_snapshot(applied, b"".join(self._chunks()), started)

    def _finish_snapshot(self, index: int, data: bytes, started: float) -> bool:
        """Hand the state at ``index`` to the core, write the file, compact the log."""
        if index <= self.snapshot_index:
            return False  # a snapshot installed from the leader meanwhile is newer
        result = self.core.compact(index, data)
        self._write_snapshot(result.snapshot, data)
        self.snapshot_index = index
        base = result.first_index - 1
        if base > self.storage.log_base()[0]:
            self.storage.save(log_base=(base, result.base_term))
        log.info("raft snapshot at index {index} ({size} bytes, {secs:.3f}s); log starts "
                 "at {first}", index=index, size=len(data),
                 secs=self.clock.seconds() - started, first=result.first_index)
        return True

    def _write_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        config = {"voters": list(meta.voters), "config_index": meta.config_index}
        self.snapshots.write(meta.term, meta.index, config, [data])
