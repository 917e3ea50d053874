"""``IConsensus`` over our Raft: the shared state (pinset) and the peerset.

:class:`RaftConsensus` is the component the cluster wires in.  It owns a
:class:`~.node.RaftNode` whose state machine is the shared state (``IState``):

* log entries are JSON ``{"op": "pin"|"unpin", "pin": <Pin JSON>}``; applying one
  calls ``state.add``/``state.rm`` and then the cluster's ``on_apply(op, pin)``
  (which tells the pin tracker); an apply error is logged ("a rollback may be
  necessary", as upstream) and the log moves on;
* snapshots are ``state.snapshot``/``state.restore`` bytes.

Commits happen on the leader (reference §10.1).  ``log_pin``/``log_unpin``/
``add_peer``/``rm_peer`` run this loop up to ``commit_retries + 1`` times:

1. find the leader, waiting up to ``wait_for_leader_timeout`` (else
   :class:`~ipfscluster.errors.NoLeader`);
2. if it is us, propose and wait for the entry to be applied here (bounded by
   ``wait_for_leader_timeout``); a refusal (new leader not ready, another
   membership change in progress, entry dropped by a leader change) waits
   ``commit_retry_delay`` and retries;
3. otherwise forward the operation over RPC (``Consensus.LogPin`` …, timeout
   ``network_timeout``) to the leader, which commits it locally (never forwarding
   again).  The attempt ends as soon as this peer learns of another leader: a
   leader cut off by a partition does not hold the operation for
   ``network_timeout``.  After a failed attempt the loop waits for the leader to
   change, at most ``2 × heartbeat_timeout`` (``commit_retry_delay`` after an
   attempt here), and retries.

The last error is raised when the attempts are used up.

Exactly once: an attempt whose outcome is unknown (no answer, leader changed, entry
dropped) may still commit.  A pin or unpin is watched for in what this peer
applies (the same entry bytes); before retrying after a leader change the loop
waits until this peer has applied an entry of a newer term, from when on the old
attempt is applied here already (the operation is done: no second entry) or can
never commit.  Without a leader change (a retry to the same leader after an
unanswered call) a second entry is possible: a pin is idempotent, and an unpin
that then finds the CID absent answers success, not "not pinned".

Settings: every ``consensus.raft`` key is read; ``election_timeout`` sets the tick
(a tenth of it) and the election timeout, ``heartbeat_timeout`` the heartbeat
period (a tenth of it), ``max_append_entries``, ``trailing_logs``,
``snapshot_threshold``, ``snapshot_interval`` go to the node, the others drive the
loop above.  Two are accepted for compatibility but have nothing to tune here:
``commit_timeout`` (group commit batches each reactor turn, no timer needed) and
``leader_lease_timeout`` (reads use ReadIndex, never a clock lease).  Raft messages travel as
``Raft.Message`` RPC calls carrying the encoded message (:class:`RPCRaftTransport`);
the ``rpc_*`` methods are the handlers the cluster registers for the RPC server.
This module imports no other component: the RPC client arrives as an
``IRPCClient``.
"""

from __future__ import annotations

import io
import json
import os
import random
from typing import Any, Callable, Iterable

from twisted.application import service
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from ipfscluster.config.raft import RaftConfig
from ipfscluster.consensus.raft.node import RaftNode
from ipfscluster.errors import (
    ClusterError,
    CommitOutcomeUnknown,
    ConfigChangeInProgress,
    ConfigError,
    InvalidInput,
    LeaderNotReady,
    NoLeader,
    NotFound,
    NotLeader,
    NotReady,
    OperationTimeout,
    PeerUnreachable,
    ProposalDropped,
    ProposalRejected,
    RaftStorageError,
    ShuttingDown,
    UnknownCommand,
)
from ipfscluster.identity import validate_peer_id
from ipfscluster.interfaces import IConsensus
from ipfscluster.types import Pin

log = Logger(namespace="consensus")

PIN_OP = "pin"
UNPIN_OP = "unpin"
ROTATE_KEEP = 5


#: failures after which a commit is attempted again (the outcome may be unknown)
_RETRYABLE = (PeerUnreachable, OperationTimeout, NotLeader, ProposalRejected,
              ProposalDropped, CommitOutcomeUnknown)


def encode_op(op: str, pin: Pin) -> bytes:
    """The log entry payload of a pin/unpin operation."""
    return json.dumps({"op": op, "pin": pin.to_json()}, separators=(",", ":")).encode()


def decode_op(data: bytes) -> tuple[str, Pin]:
    """Parse :func:`encode_op` bytes; raises ValueError / InvalidInput."""
    obj = json.loads(data)
    if obj.get("op") not in (PIN_OP, UNPIN_OP):
        raise ValueError("unknown log operation %r" % (obj.get("op"),))
    return obj["op"], Pin.from_json(obj["pin"])


class PinsetStateMachine:
    """The shared state as a Raft state machine (see the module docstring)."""

    def __init__(self, state, on_apply: Callable[[str, Pin], Any] | None = None):
        self.state = state
        self.on_apply = on_apply
        #: entry bytes -> the watches of operations in flight from this peer
        self._watches: dict[bytes, list[_Watch]] = {}

    def watch(self, data: bytes) -> "_Watch":
        """Note when an entry with exactly ``data`` is applied (until :meth:`unwatch`)."""
        w = _Watch(data)
        self._watches.setdefault(data, []).append(w)
        return w

    def unwatch(self, w: "_Watch") -> None:
        watches = self._watches.get(w.data, [])
        if w in watches:
            watches.remove(w)
        if not watches:
            self._watches.pop(w.data, None)

    def apply(self, entry) -> None:
        if self._watches:
            for w in self._watches.get(entry.data, ()):
                w.applied = True
        op, pin = decode_op(entry.data)
        if op == PIN_OP:
            self.state.add(pin)
        else:
            try:
                self.state.rm(pin.cid)
            except NotFound:
                log.debug("unpin of {cid} applied at {index}: already absent",
                          cid=str(pin.cid), index=entry.index)
        if self.on_apply is not None:
            try:
                self.on_apply(op, pin)
            except Exception:
                log.failure("after applying {op} {cid}, telling the pin tracker failed",
                            op=op, cid=str(pin.cid))

    def snapshot(self) -> bytes:
        buf = io.BytesIO()
        self.state.snapshot(buf)
        return buf.getvalue()

    def snapshot_chunks(self):
        """The state's lazy consistent snapshot when it has one (MapState does)."""
        chunks = getattr(self.state, "snapshot_chunks", None)
        return chunks() if chunks is not None else iter([self.snapshot()])

    def restore(self, data: bytes) -> None:
        self.state.restore(io.BytesIO(data))


class _Watch:
    """Whether an entry with ``data`` was applied since the watch began."""

    __slots__ = ("data", "applied", "unsure")

    def __init__(self, data: bytes):
        self.data = data
        self.applied = False
        #: an attempt of unknown outcome was followed by another without proof that
        #: it can no longer commit (no leader change): a second entry is possible
        self.unsure = False


class RPCRaftTransport:
    """Sends Raft messages as ``Raft.Message`` calls; losses are Raft's business."""

    def __init__(self, rpc, timeout: float):
        self.rpc = rpc
        self.timeout = timeout

    def send(self, peer_id: str, data: bytes) -> None:
        # the RPC client's direct method skips ``call``'s command lookup by name
        # (a scan of every command: a measurable share of a commit's CPU)
        direct = getattr(self.rpc, "send_raft_message", None)
        if direct is not None:
            d = direct(peer_id, data, timeout=self.timeout)
        else:
            d = self.rpc.call(peer_id, "Raft", "Message", data, timeout=self.timeout)
        d.addErrback(self._lost, peer_id)

    @staticmethod
    def _lost(failure, peer_id):
        log.debug("raft message to {peer} lost: {error}", peer=peer_id,
                  error=failure.getErrorMessage())


@implementer(IConsensus)
class RaftConsensus(service.Service):
    """IConsensus on Raft.  Start with ``startService``; see the module docstring."""

    name = "consensus"

    def __init__(self, *, peer_id: str, config: RaftConfig, data_folder: str, state,
                 rpc, clock: IReactorTime, peers: Iterable[str] = (),
                 on_apply: Callable[[str, Pin], Any] | None = None,
                 transport=None, rng: random.Random | None = None,
                 join: bool = False,
                 on_peers_changed: Callable[[tuple[str, ...]], Any] | None = None):
        self.peer_id = peer_id
        self.config = config
        self.data_folder = data_folder
        self.state = state
        self.rpc = rpc
        self.clock = clock
        #: the membership ``cluster.peers`` (plus this peer) describes
        self.configured_peers = tuple(sorted(set(peers) | {peer_id}))
        #: ``join``: this peer waits to be added to an existing cluster (it has no
        #: bootstrap membership and never campaigns until a leader contacts it)
        self.join = join
        self.bootstrap_peers = () if join else self.configured_peers
        self.on_peers_changed = on_peers_changed
        self._membership_lock = defer.DeferredLock()
        self.machine = PinsetStateMachine(state, on_apply)
        self.transport = transport or RPCRaftTransport(rpc, config.network_timeout.seconds)
        self.rng = rng
        self.node: RaftNode | None = None
        self._ready = False
        self._ready_waiters: list[defer.Deferred] = []
        self._warned_no_read_index: set[str] = set()
        self._in_flight: set[defer.Deferred] = set()
        self._sleeps: set[defer.Deferred] = set()
        self._stopping = False
        self._readiness: defer.Deferred | None = None

    # --- service --------------------------------------------------------------------

    def startService(self):
        """Open the Raft data, start the node; readiness follows in the background.

        Raises the storage errors (StorageCorrupted, NoValidSnapshot, StorageLocked),
        or ConfigError when existing Raft data has another membership than ``peers``.
        """
        self.node = self._new_node(self.bootstrap_peers)
        self.node.start()
        problem = self._data_problem()
        if problem is not None:
            self.node.stop(final_snapshot=False)
            raise ConfigError(problem, key="cluster.peers")
        self._stopping = False
        super().startService()
        self._start_readiness()

    def _new_node(self, voters) -> RaftNode:
        cfg = self.config
        return RaftNode(
            self.peer_id, clock=self.clock, transport=self.transport,
            data_folder=self.data_folder, state_machine=self.machine,
            voters=voters, election_timeout=cfg.election_timeout.seconds,
            heartbeat_timeout=cfg.heartbeat_timeout.seconds,
            max_append_entries=cfg.max_append_entries, trailing_logs=cfg.trailing_logs,
            snapshot_threshold=cfg.snapshot_threshold,
            snapshot_interval=cfg.snapshot_interval.seconds, rng=self.rng,
            on_config=self._config_applied)

    def _start_readiness(self) -> None:
        self._ready = False
        self._readiness = defer.Deferred.fromCoroutine(self._become_ready())
        self._readiness.addErrback(lambda f: f.trap(ShuttingDown, defer.CancelledError))

    def _config_applied(self, voters: tuple[str, ...]) -> None:
        if self.on_peers_changed is not None:
            self.on_peers_changed(tuple(voters))

    def _data_problem(self) -> str | None:
        """Why the existing Raft data cannot be used with this configuration, or None."""
        if self.node.core.last_index == 0:
            return None
        voters = set(self.node.voters)
        folder = self.data_folder
        cleanup = ("run 'ipfs-cluster-service state cleanup' (it renames %s to %s.old.0; "
                   "export the pins first with 'state export' if you need them) or rename "
                   "the folder yourself" % (folder, folder))
        if self.join and self.peer_id in voters and len(voters) > 1:
            # e.g. stopped after being added but before saving cluster.peers: the data
            # says we are a member; start from it (the join that follows is a no-op
            # for a current member, and adds us back if we were removed meanwhile)
            log.info("the Raft data in {folder} shows this peer as a member of a cluster "
                     "of {n} peers: starting from it", folder=folder, n=len(voters))
            self.join = False
            return None
        if self.join:
            return ("this peer is set to join a cluster (cluster.bootstrap or --bootstrap, "
                    "with an empty cluster.peers) but its Raft data folder %s already holds "
                    "a Raft log (last index %d, peers %s). A joining peer needs clean Raft "
                    "data: %s, then start it again; or, if this peer is still a member of "
                    "that cluster, list its peers in cluster.peers instead of bootstrapping"
                    % (folder, self.node.core.last_index, ",".join(sorted(voters)) or "none",
                       cleanup))
        configured = set(self.configured_peers)
        if len(configured) > 1 and voters and voters != configured:
            only_data = sorted(voters - configured)
            only_config = sorted(configured - voters)
            return ("cluster peers do not match raft peers: the Raft data in %s was written "
                    "by a cluster of %s but cluster.peers (with this peer) lists %s "
                    "(only in the Raft data: %s; only in cluster.peers: %s). If the Raft "
                    "data is right, set cluster.peers to the multiaddresses of those peers; "
                    "if cluster.peers is right, this peer must start afresh: %s, then start "
                    "it again (with --bootstrap to join a running cluster)"
                    % (folder, ",".join(sorted(voters)), ",".join(sorted(configured)),
                       ",".join(only_data) or "none", ",".join(only_config) or "none",
                       cleanup))
        return None

    async def _become_ready(self):
        # ready once the leader's read index is applied here: the local commit index
        # is 0 on a peer whose Raft data folder was wiped, and would say "ready" with
        # an empty state
        timeout = self.config.wait_for_leader_timeout.seconds
        while True:
            try:
                await self._wait_for_sync(timeout)
                break
            except OperationTimeout as exc:
                log.warn("consensus not ready after {secs}s ({error}); still waiting",
                         secs=timeout, error=exc)
        self._ready = True
        log.info("consensus ready: leader {leader}, applied {index}",
                 leader=self.node.leader_id, index=self.node.applied)
        waiters, self._ready_waiters = self._ready_waiters, []
        for d in waiters:
            d.callback(None)

    @defer.inlineCallbacks
    def stopService(self):
        """Wait for commits in flight, then stop the node (final snapshot) and files."""
        self._stopping = True
        for d in list(self._sleeps):  # retries waiting for their next attempt give up
            d.cancel()
        if self._in_flight:  # entries proposed already: wait for their outcome
            yield defer.DeferredList(list(self._in_flight), consumeErrors=True)
        waiters, self._ready_waiters = self._ready_waiters, []
        for d in waiters:
            d.errback(ShuttingDown())
        if self.node is not None:
            self.node.stop()
        if self._readiness is not None and not self._readiness.called:
            self._readiness.cancel()
        self._ready = False
        yield super().stopService()

    # --- IConsensus -----------------------------------------------------------------

    def ready(self) -> defer.Deferred:
        if self._ready:
            return defer.succeed(None)
        if self._stopping or not self.running:
            return defer.fail(ShuttingDown())
        d = defer.Deferred()
        self._ready_waiters.append(d)
        return d

    def log_pin(self, pin: Pin) -> defer.Deferred:
        return self._track(self._commit(PIN_OP, pin))

    def log_unpin(self, pin: Pin) -> defer.Deferred:
        return self._track(self._commit(UNPIN_OP, pin))

    def add_peer(self, peer_id: str) -> defer.Deferred:
        return self._track(self._change_peers("add", peer_id))

    def rm_peer(self, peer_id: str) -> defer.Deferred:
        return self._track(self._change_peers("remove", peer_id))

    def peers(self) -> defer.Deferred:
        if self.node is None or not self.node.running:
            return defer.fail(NotReady("the consensus has not loaded the Raft log yet"))
        return defer.succeed(sorted(self.node.voters))

    def leader(self) -> defer.Deferred:
        leader = self.node.leader_id if self.node is not None and self.node.running else None
        if leader is None:
            return defer.fail(NoLeader())
        return defer.succeed(leader)

    def wait_for_leader(self, timeout: float | None = None) -> defer.Deferred:
        return defer.Deferred.fromCoroutine(self._wait_for_leader(timeout))

    def wait_for_sync(self, timeout: float | None = None) -> defer.Deferred:
        return defer.Deferred.fromCoroutine(self._wait_for_sync(timeout))

    def clean(self) -> defer.Deferred:
        """Rotate the data folder to ``<folder>.old.0`` (older ones shift, 5 kept)."""
        if self.running:
            return defer.fail(InvalidInput(
                "the Raft data folder cannot be cleaned while the peer runs; stop it first"))
        try:
            rotate_folder(self.data_folder)
        except OSError as exc:
            return defer.fail(RaftStorageError(
                "cannot rotate the Raft data folder %s: %s" % (self.data_folder, exc),
                path=self.data_folder))
        return defer.succeed(None)

    # --- RPC handlers (registered by the cluster) -----------------------------------

    def rpc_raft_message(self, caller: str, payload: bytes) -> None:
        """``Raft.Message``: hand the encoded message to the node (its claimed source
        must be the authenticated caller)."""
        if self.node is not None:
            self.node.receive(payload, sender=caller)

    def rpc_log_pin(self, caller: str, pin: Pin) -> defer.Deferred:
        """``Consensus.LogPin`` on the leader: commit here (NotLeader if we are not)."""
        return self._track(self._commit_here(encode_op(PIN_OP, pin)))

    def rpc_log_unpin(self, caller: str, pin: Pin) -> defer.Deferred:
        """``Consensus.LogUnpin`` on the leader."""
        return self._track(self._commit_unpin_here(pin))

    def rpc_add_peer(self, caller: str, peer_id: str) -> defer.Deferred:
        """``Consensus.AddPeer`` on the leader."""
        return self._track(self._membership_here("add", peer_id))

    def rpc_rm_peer(self, caller: str, peer_id: str) -> defer.Deferred:
        """``Consensus.RmPeer`` on the leader."""
        return self._track(self._membership_here("remove", peer_id))

    def rpc_peers(self, caller: str, _arg=None) -> defer.Deferred:
        """``Consensus.Peers``."""
        return self.peers()

    def rpc_read_index(self, caller: str, _arg=None) -> defer.Deferred:
        """``Consensus.ReadIndex`` on the leader: its read index (NotLeader if we are not)."""
        return self._track(self._read_index_here())

    async def _read_index_here(self) -> int:
        self._check_leader()
        return await self.node.read_barrier()

    # --- internals ------------------------------------------------------------------

    def _track(self, coro) -> defer.Deferred:
        if self._stopping or self.node is None:
            coro.close()
            return defer.fail(ShuttingDown())
        d = defer.Deferred.fromCoroutine(coro)
        self._in_flight.add(d)

        def done(result):
            self._in_flight.discard(d)
            return result

        d.addBoth(done)
        return d

    async def _sleep(self, seconds: float) -> None:
        d = task.deferLater(self.clock, seconds, lambda: None)
        self._sleeps.add(d)
        try:
            await d
        except defer.CancelledError:
            raise ShuttingDown() from None
        finally:
            self._sleeps.discard(d)

    async def _wait_for_leader(self, timeout: float | None) -> str:
        if self.node is None or not self.node.running:
            raise ShuttingDown()
        if timeout is None:
            timeout = self.config.wait_for_leader_timeout.seconds
        d = self.node.when_leader()
        d.addTimeout(timeout, self.clock)
        try:
            return await d
        except defer.TimeoutError:
            raise OperationTimeout(
                "timed out waiting for leader: no Raft leader after %gs; check that a "
                "majority of the peers run and reach each other" % timeout) from None

    async def _wait_for_sync(self, timeout: float | None) -> None:
        """Wait until everything committed before the call is applied here.

        The read point always comes from the leader's ReadIndex (asked over
        ``Consensus.ReadIndex`` by a follower): a follower's own commit index, or the
        one in the next message it gets from the leader, may predate an entry
        committed just before the call (that message may have been sent earlier),
        and an "already pinned" answered from such a state is lost (found by the
        process-level fault suite behind the chaos proxies).
        """
        if timeout is None:
            timeout = self.config.wait_for_leader_timeout.seconds
        deadline = self.clock.seconds() + timeout

        def remaining() -> float:
            return max(0.0, deadline - self.clock.seconds())

        while True:
            leader = await self._wait_for_leader(remaining())
            if leader == self.peer_id:
                d = defer.maybeDeferred(self.node.read_barrier)
            else:
                d = self.rpc.call(leader, "Consensus", "ReadIndex",
                                  timeout=min(remaining(), self.config.network_timeout.seconds))
                d.addErrback(self._older_leader, leader)
            d.addCallback(self.node.when_applied)
            d.addTimeout(remaining(), self.clock)
            try:
                await d
                return
            except defer.TimeoutError:
                raise OperationTimeout(
                    "timed out waiting for the Raft log to be applied (commit %d, applied %d)"
                    % (self.node.commit, self.node.applied)) from None
            except (NotLeader, PeerUnreachable, OperationTimeout) as exc:
                # leadership moved, or the leader we knew is gone: ask the next one
                if remaining() <= 0:
                    raise OperationTimeout(
                        "timed out waiting for the Raft log to be applied: %s" % exc) from None
                log.debug("sync point from {leader} failed: {error}; retrying",
                          leader=leader, error=exc)
                await self._sleep(min(remaining(), self.config.heartbeat_timeout.seconds / 4))

    def _older_leader(self, failure, leader: str):
        """A leader of an older release has no ``Consensus.ReadIndex`` (a rolling
        upgrade): fall back to the commit index of its next message (weaker: it may
        predate the last commit), with one warning per leader."""
        failure.trap(UnknownCommand)
        if leader not in self._warned_no_read_index:
            self._warned_no_read_index.add(leader)
            log.warn("the leader {leader} has no Consensus.ReadIndex (an older release): "
                     "reads through this peer may miss the latest commits until every "
                     "peer is upgraded", leader=leader)
        return self.node.sync_point()

    async def _commit(self, op: str, pin: Pin) -> None:
        method = "LogPin" if op == PIN_OP else "LogUnpin"
        data = encode_op(op, pin)
        if op == PIN_OP:
            async def here():
                await self._commit_here(data)
        else:
            async def here():
                await self._commit_unpin_here(pin)
        watch = self.machine.watch(data)
        try:
            await self._redirect_loop(here, method, pin, watch)
        except NotFound:
            if op != UNPIN_OP or not watch.applied and not watch.unsure:
                raise
            # an earlier attempt may have removed it (or someone else did meanwhile)
            log.debug("unpin of {cid}: already absent after a retry", cid=str(pin.cid))
        finally:
            self.machine.unwatch(watch)

    async def _change_peers(self, op: str, peer_id: str) -> None:
        peer_id = validate_peer_id(peer_id)
        voters = set(self.node.voters) if self.node is not None else set()
        if op == "add" and peer_id in voters:
            return
        if op == "remove":
            if peer_id not in voters:
                raise NotFound("%s is not a cluster peer" % peer_id)
            if voters == {peer_id}:
                raise InvalidInput("cannot remove ourselves from a 1-peer cluster")
        method = "AddPeer" if op == "add" else "RmPeer"

        async def here():
            await self._membership_here(op, peer_id)

        try:
            await self._redirect_loop(here, method, peer_id)
        except NotFound:
            if op != "remove":
                raise
            # it was a member when we asked: an attempt that timed out here went
            # through on the leader after all (or someone else removed it meanwhile)
            log.debug("{peer} already removed", peer=peer_id)

    async def _redirect_loop(self, here, method: str, arg,
                             watch: _Watch | None = None) -> None:
        """Commit through the leader (see the module docstring); ``watch`` tells
        whether an attempt of unknown outcome was applied after all."""
        cfg = self.config
        last: ClusterError | None = None
        for _attempt in range(cfg.commit_retries + 1):
            if self._stopping and last is not None:
                break
            try:
                leader = await self._wait_for_leader(None)
            except OperationTimeout as exc:
                raise NoLeader(str(exc)) from None
            term = self.node.core.term
            try:
                if leader == self.peer_id:
                    await here()
                else:
                    await self._forward(leader, method, arg)
                return
            except _RETRYABLE as exc:
                last = exc
                log.debug("commit attempt of {method} through {leader} failed: {error}; "
                          "retrying", method=method, leader=leader, error=exc)
            here_delay = cfg.commit_retry_delay.seconds
            delay = here_delay if leader == self.peer_id else 2 * cfg.heartbeat_timeout.seconds
            # refused before any entry was made (NotLeader, ProposalRejected) or
            # overwritten (ProposalDropped): nothing of it can commit later
            unknown = not isinstance(last, (NotLeader, ProposalRejected))
            if await self._after_failed_attempt(leader, term, delay, watch, unknown):
                return
        raise last

    async def _forward(self, leader: str, method: str, arg) -> None:
        """One attempt through ``leader``; it ends with CommitOutcomeUnknown as soon
        as this peer knows another leader, whatever the call does later."""
        call = self.rpc.call(leader, "Consensus", method, arg,
                             timeout=self.config.network_timeout.seconds)
        moved = self.node.when_leader_changes(leader)
        race = defer.DeferredList([call, moved], fireOnOneCallback=True,
                                  fireOnOneErrback=True, consumeErrors=True)
        try:
            _, index = await race
        except defer.FirstError as exc:
            exc.subFailure.raiseException()
        finally:
            if not moved.called:
                moved.cancel()
        if index == 1:
            raise CommitOutcomeUnknown(
                "the Raft leader changed while the operation was forwarded to %s" % leader)

    async def _after_failed_attempt(self, leader: str, term: int, delay: float,
                                    watch: _Watch | None, unknown: bool) -> bool:
        """Wait for the leader to change (at most ``delay``).  If it did, wait until an
        entry of a later term than ``term`` is applied here: the failed attempt is then
        applied already or can never commit.  Returns True when it was applied."""
        moved = await self._within(self.node.when_leader_changes(leader), delay)
        fenced = moved and await self._within(
            self.node.when_term_applied(term + 1), self.config.wait_for_leader_timeout.seconds)
        if watch is None:
            return False
        if watch.applied:
            log.debug("an attempt of unknown outcome was applied: not retrying")
            return True
        if unknown and not fenced:
            watch.unsure = True
        return False

    async def _within(self, d: defer.Deferred, seconds: float) -> bool:
        """Wait for ``d`` at most ``seconds``; whether it fired (cancelled by stop)."""
        d.addTimeout(seconds, self.clock)
        self._sleeps.add(d)
        try:
            await d
            return True
        except defer.TimeoutError:
            return False
        except defer.CancelledError:
            raise ShuttingDown() from None
        finally:
            self._sleeps.discard(d)

    async def _await_applied(self, d: defer.Deferred) -> Any:
        timeout = self.config.wait_for_leader_timeout.seconds
        d.addTimeout(timeout, self.clock)
        try:
            return await d
        except defer.TimeoutError:
            raise OperationTimeout(
                "the Raft entry was not committed within %gs; check that a majority of "
                "the peers run" % timeout) from None

    def _check_leader(self) -> None:
        if self.node is None or not self.node.running:
            raise ShuttingDown()
        if not self.node.is_leader:
            raise NotLeader(leader=self.node.leader_id)

    async def _commit_here(self, data: bytes) -> None:
        self._check_leader()
        await self._await_applied(self.node.propose(data))

    async def _commit_unpin_here(self, pin: Pin) -> None:
        self._check_leader()
        if not self.state.has(pin.cid):
            raise NotFound("%s is not pinned in the cluster" % pin.cid)
        await self._commit_here(encode_op(UNPIN_OP, pin))

    async def _membership_here(self, op: str, peer_id: str) -> None:
        """One membership change on the leader.  Raft allows one uncommitted change
        at a time: changes asked at once (several peers joining) queue here, and a
        change refused for now (the previous one is not committed yet, a new leader
        has not committed its first entry) is retried until
        ``wait_for_leader_timeout``."""
        self._check_leader()
        await self._membership_lock.acquire()
        try:
            deadline = self.clock.seconds() + self.config.wait_for_leader_timeout.seconds
            while True:
                self._check_leader()
                voters = set(self.node.voters)
                if (op == "add") == (peer_id in voters):
                    if op == "add":
                        return
                    raise NotFound("%s is not a cluster peer" % peer_id)
                try:
                    await self._await_applied(self.node.change_membership(op, peer_id))
                    return
                except (ConfigChangeInProgress, LeaderNotReady):
                    if self.clock.seconds() >= deadline:
                        raise
                    await self._sleep(self.config.commit_retry_delay.seconds)
        finally:
            self._membership_lock.release()

    # --- membership helpers for the peer manager (cluster.py) ------------------------

    def is_member(self) -> bool:
        """Whether this peer is in the newest membership its Raft log knows."""
        return self.node is not None and self.peer_id in self.node.voters

    def transfer_leadership(self, timeout: float | None = None) -> defer.Deferred:
        """If this peer leads, hand leadership to another voter and fire with the new
        leader's ID once it took over (None when we were not the leader or alone).

        Fails with OperationTimeout when no other peer took over in time."""
        return defer.Deferred.fromCoroutine(self._transfer_leadership(timeout))

    async def _transfer_leadership(self, timeout: float | None) -> str | None:
        node = self.node
        if node is None or not node.running or not node.is_leader or len(node.voters) < 2:
            return None
        if timeout is None:
            timeout = self.config.wait_for_leader_timeout.seconds
        target = node.transfer_leadership()
        log.info("handing Raft leadership over to {target}", target=target)
        deadline = self.clock.seconds() + timeout
        while node.running and (node.leader_id in (None, self.peer_id)):
            if self.clock.seconds() > deadline:
                raise OperationTimeout(
                    "no other peer took over the Raft leadership within %gs" % timeout)
            await self._sleep(self.config.heartbeat_timeout.seconds / 4)
        return node.leader_id

    def prepare_join(self) -> defer.Deferred:
        """Make this peer ready to be added to another cluster.

        A peer alone in its own cluster (started without ``cluster.peers``) holds a
        Raft log of its own; Raft cannot merge it into another cluster's log.  When
        that log carries no pins, the data folder is rotated (``.old.0``) and the
        node restarts with no membership, waiting for the new cluster's leader.
        A peer already waiting to join does nothing.

        Fails with InvalidInput when the peer has pins in its shared state or is a
        member of a cluster with other peers."""
        try:
            self._prepare_join()
        except ClusterError as exc:
            return defer.fail(exc)
        return defer.succeed(None)

    def _prepare_join(self) -> None:
        node = self.node
        if node is None or not node.running:
            raise ShuttingDown()
        voters = set(node.voters)
        if not voters:
            return  # waiting to be added already
        if voters != {self.peer_id}:
            raise InvalidInput(
                "peer %s is a member of another cluster (peers %s); remove it from that "
                "cluster first (ipfs-cluster-ctl peers rm), then add it here"
                % (self.peer_id, ",".join(sorted(voters))))
        count = self.state.count()
        if count:
            raise InvalidInput(
                "peer %s runs its own cluster with %d pins in its shared state; they "
                "would be lost by joining. Stop it, export its pins ('ipfs-cluster-service "
                "state export'), run 'ipfs-cluster-service state cleanup', start it again "
                "and add it; then pin the exported CIDs again" % (self.peer_id, count))
        log.info("leaving our one-peer cluster to join another: Raft data {folder} "
                 "rotated to {folder}.old.0", folder=self.data_folder)
        node.stop(final_snapshot=False)
        if self._readiness is not None and not self._readiness.called:
            self._readiness.cancel()
        rotate_folder(self.data_folder)
        self.join = True
        self.bootstrap_peers = ()
        self.node = self._new_node(())
        self.node.start()
        self._start_readiness()


def rotate_folder(folder: str, keep: int = ROTATE_KEEP) -> None:
    """Rename ``folder`` to ``folder.old.0``, shifting older copies up; keep ``keep``."""
    import shutil

    if not os.path.exists(folder):
        return
    oldest = "%s.old.%d" % (folder, keep - 1)
    if os.path.exists(oldest):
        shutil.rmtree(oldest)
    for i in range(keep - 2, -1, -1):
        src = "%s.old.%d" % (folder, i)
        if os.path.exists(src):
            os.rename(src, "%s.old.%d" % (folder, i + 1))
    os.rename(folder, "%s.old.0" % folder)
