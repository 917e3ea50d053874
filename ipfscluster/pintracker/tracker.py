"""``MapPinTracker``: the local state and the pin/unpin queue of one peer.

The tracker makes this peer's IPFS daemon hold its share of the shared state.  The
consensus apply step calls :meth:`MapPinTracker.track` / :meth:`~MapPinTracker.untrack`;
operators read :meth:`~MapPinTracker.status` and ask for ``sync`` and ``recover``.
Behaviour follows reference §7 (statuses, transitions, the sync table, recover).

Goals and operations
--------------------
Each CID has a *goal* (:class:`Goal`): ``PIN`` (allocated here or everywhere),
``REMOTE`` (tracked, allocated to other peers) or ``GONE`` (untracked).  ``track``
and ``untrack`` only set the goal; :meth:`MapPinTracker._reconcile` then decides,
from the goal and the current status, what to do:

============  =====================================  ======================================
goal          status                                 action
============  =====================================  ======================================
PIN           pinned (same depth)                    none
PIN           anything else                          queue a pin (``pin_queued``)
REMOTE        pinned, pin_error, unpin_error         queue an unpin, then ``remote``
REMOTE        untracked, remote                      mark ``remote``
GONE          pinned, pin_error, unpin_error         queue an unpin (``unpin_queued``)
GONE          untracked, remote                      drop the entry (``unpinned``)
============  =====================================  ======================================

A queued operation that no longer fits the goal is **cancelled** and the CID goes
back to the status it had before it was queued, then the table applies: untracking a
CID still waiting to be pinned removes it without touching IPFS; tracking a CID
still waiting to be unpinned leaves it ``pinned``.  An operation already *running*
is never interrupted: when it ends the tracker re-applies the table, so a pin that
is untracked while in flight finishes (``pinning`` → ``pinned``) and is then queued
for unpinning (and the reverse for an unpin that is re-tracked).

A remote pin that this peer has pinned is unpinned *through the queue* (reference
0.3.0 unpinned synchronously inside ``track``, blocking the consensus apply step);
the CID shows ``unpin_queued`` / ``unpinning`` and then ``remote``.  A CID in
``pin_error`` may be (partly) pinned too, so it is unpinned the same way (unpinning
what is not pinned is a no-op for the connector).  Untracking a
``remote`` CID drops it without an unpin (this peer never pinned it).

Queue and workers
-----------------
One :class:`~ipfscluster.pintracker.queue.OperationQueue` (FIFO, one operation per
CID, ``max_pin_queue_size`` waiting at most) and up to ``concurrent_pins``
operations running (1: strictly one IPFS pin/unpin at a time).  Workers are not
long-lived loops: :meth:`~MapPinTracker._pump` starts queued operations while fewer
than ``concurrent_pins`` run, and every operation calls it again when it ends.

A pin that finds the queue full waits in the **backlog**: an ordered map of CIDs
(its entry shows ``pin_queued``; ``Entry.queued`` is :data:`BACKLOG`, no
``Operation`` is made), so after a bulk import the queue is refilled, oldest
first, each time an operation starts, without waiting for a sync pass.  The
backlog keeps one flag per CID: whether the daemon may pin it already (it was
``pinned`` or in error before), so a pin that leaves the backlog because its goal
changed (untracked, now remote) is unpinned when it has to be.  Unpins and
``recover`` retries are not held back: a full queue turns the CID into
``unpin_error`` "unpin queue is full" (or ``pin_error`` "pin queue is full" for a
``recover``) and fails the call with :class:`QueueFull`.

Timeouts: the connector bounds each IPFS call (``pin_timeout`` measured as time
without progress); the tracker's ``pinning_timeout`` / ``unpinning_timeout`` only
relabel an operation that has run that long when a sync finds it unfinished, as the
sync table says.

Sync
----
``sync(cid)`` asks ``pin_ls_cid``, ``sync_all()`` streams ``pin_ls("recursive")``
and ``pin_ls("direct")`` (indirect pins never count), marking the tracked entries seen,
then applies the table to every entry: no set of the daemon's pins is built.  For
the pin side of the table "ipfs: pinned" means a pin that covers the tracked one (a
recursive pin, or a direct one for a direct pin); for the unpin side any direct or
recursive pin (something is left to unpin).  An entry whose status changed while
the daemon was answering keeps its newer status, and entries with a queued
operation (``pin_queued``/``unpin_queued``, statuses reference 0.3.0 did not have)
are left to it.  A daemon that cannot answer puts every tracked entry in error
(pinned/pinning/pin_error → ``pin_error``, unpinning/unpin_error → ``unpin_error``,
others unchanged; an untracked CID gets no entry) and fails the call.  Repairing
an error is ``recover``'s job: a sync only relabels.

Recover
-------
``recover(cid)`` retries a ``pin_error``/``unpin_error`` CID: the retry jumps to the
front of the queue and the Deferred fires with the ``PinInfo`` once the retry ran
(synchronously from the caller's point of view, as reference 0.3.0 did, while the
number of IPFS operations in flight stays within ``concurrent_pins``).
``recover_all()`` queues every error at the front and fires at once with what it
queued.

Stopping
--------
``stopService`` refuses new calls (:class:`ShuttingDown`), drops the queued
operations (their waiters fail with ``ShuttingDown``), cancels the connector call
of each running operation and fires once every running operation has ended.  The
optional ``ipfs_sync_interval`` loop (``sync_all`` on the clock) is stopped too:
nothing is left in the reactor.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Iterable
from itertools import islice

import attrs
from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ipfscluster.cid import CID
from ipfscluster.config.pintracker import MapTrackerConfig
from ipfscluster.errors import ClusterError, QueueFull, ShuttingDown
from ipfscluster.identity import validate_peer_id
from ipfscluster.interfaces import IPinTracker
from ipfscluster.pintracker.localstate import Entry, LocalState
from ipfscluster.pintracker.queue import Operation, OperationQueue, OpKind
from ipfscluster.types import IPFSPinStatus, Pin, PinInfo, TrackerStatus, ns_from_seconds

__all__ = ["Goal", "MapPinTracker", "MSG", "STATE_SYNC_CHUNK"]

log = Logger(namespace="pintracker")

#: pins of the shared state handled per reactor turn by :meth:`MapPinTracker.state_sync`
#: (a chunk takes a few milliseconds, so the peer keeps answering meanwhile)
STATE_SYNC_CHUNK = 500
#: default and largest size of a :meth:`MapPinTracker.status_page` page
STATUS_PAGE_SIZE = 1000

S = TrackerStatus


class Goal(enum.Enum):
    """What the tracker drives a CID towards."""

    PIN = "pin"  # pinned on this peer's daemon
    REMOTE = "remote"  # tracked, allocated elsewhere: not pinned here
    GONE = "gone"  # untracked: not pinned here, entry removed


class MSG:
    """The error texts the tracker writes into ``PinInfo.error`` (reference §7)."""

    PIN_QUEUE_FULL = "pin queue is full"
    UNPIN_QUEUE_FULL = "unpin queue is full"
    UNEXPECTEDLY_UNPINNED = "the item is unexpectedly not pinned on IPFS"
    UNEXPECTEDLY_PINNED = "the item is unexpectedly pinned on IPFS"
    PINNING_TOO_LONG = "pinning operation is taking too long"
    UNPINNING_TOO_LONG = "unpinning operation is taking too long"
    CANCELLED = "operation cancelled: the peer is shutting down"


_QUEUED = {OpKind.PIN: S.PIN_QUEUED, OpKind.UNPIN: S.UNPIN_QUEUED}
_RUNNING = {OpKind.PIN: S.PINNING, OpKind.UNPIN: S.UNPINNING}
_FAILED = {OpKind.PIN: S.PIN_ERROR, OpKind.UNPIN: S.UNPIN_ERROR}
_FULL = {OpKind.PIN: MSG.PIN_QUEUE_FULL, OpKind.UNPIN: MSG.UNPIN_QUEUE_FULL}

#: reference §7.3 error mapping (statuses not listed keep their status)
_ERROR_OF = {
    S.PINNED: S.PIN_ERROR,
    S.PINNING: S.PIN_ERROR,
    S.PIN_ERROR: S.PIN_ERROR,
    S.UNPINNING: S.UNPIN_ERROR,
    S.UNPIN_ERROR: S.UNPIN_ERROR,
}


class _Backlog:
    """``Entry.queued`` of a pin waiting for room in the queue (see ``_backlog``)."""

    kind = OpKind.PIN

    def __repr__(self) -> str:
        return "BACKLOG"


BACKLOG = _Backlog()


def _shutting_down() -> ShuttingDown:
    return ShuttingDown("the pin tracker is shutting down; retry once the peer is back")


@implementer(IPinTracker)
class MapPinTracker(Service):
    """The pin tracker (``pin_tracker.maptracker``); see the module docstring.

    ``peer_id``: this cluster peer's ID (``PinInfo.peer``; decides what is
    remote); ``connector``: an ``IIPFSConnector``; ``config``: a
    ``MapTrackerConfig`` (None: defaults); ``clock``: an ``IReactorTime`` for
    timestamps and the sync loop; ``peername`` / ``ipfs_peer_id`` fill the
    ``PinInfo`` fields of those names; ``ipfs_sync_interval`` (seconds, None: no
    loop) runs ``sync_all`` periodically while the service runs.

    Besides ``IPinTracker``: :meth:`state_sync` (the cluster's StateSync),
    :meth:`running_count`, :meth:`tracked_count`.
    """

    def __init__(
        self,
        peer_id: str,
        connector,
        config: MapTrackerConfig | None = None,
        clock=None,
        *,
        peername: str = "",
        ipfs_peer_id: str = "",
        ipfs_sync_interval: float | None = None,
    ):
        if clock is None:
            raise TypeError("MapPinTracker needs a clock (the reactor or a task.Clock)")
        self.peer_id = validate_peer_id(peer_id)
        self.connector = connector
        self.config = config if config is not None else MapTrackerConfig()
        self.clock = clock
        self.peername = peername
        self.ipfs_peer_id = ipfs_peer_id
        self._pinning_timeout = self.config.pinning_timeout.seconds
        self._unpinning_timeout = self.config.unpinning_timeout.seconds
        self._workers = self.config.concurrent_pins
        self._state = LocalState()
        self._queue = OperationQueue(self.config.max_pin_queue_size)
        # pins that found the queue full, in arrival order: CID -> True when the
        # daemon may pin it already (the CID was pinned or in error before); their
        # entries show pin_queued with ``queued`` set to BACKLOG
        self._backlog: OrderedDict[CID, bool] = OrderedDict()
        self._running: dict[CID, Operation] = {}
        self._closed = False
        self._changes = 0  # bumped on every status change (Entry.changed)
        self._generation = 0  # sync_all and state_sync passes (Entry.mark, Entry.shared)
        self._sync_all_lock = defer.DeferredLock()
        self._sync_waiters: list | None = None  # callers of the sync_all pass not yet started
        self._pumping = False
        self._pump_again = False
        self._sync_interval = ipfs_sync_interval
        self._sync_loop: task.LoopingCall | None = None
        self._state_sync_lock = defer.DeferredLock()
        # binary CIDs that track/untrack changed while a state_sync pass runs (the
        # pass then leaves them alone: its snapshot of the shared state is older)
        self._sync_touched: set[bytes] | None = None
        self._full_count: int | None = None  # counts queue-full errors instead of logging each
        self._pending: defer.Deferred | None = None  # what a state_sync pass waits for

    # --- service ---------------------------------------------------------------------

    def startService(self):
        """Start running queued operations (and the sync loop if configured)."""
        super().startService()
        if self._sync_interval:
            self._sync_loop = task.LoopingCall(self._periodic_sync)
            self._sync_loop.clock = self.clock
            self._sync_loop.start(self._sync_interval, now=False)
        self._pump()

    def stopService(self):
        """Drop queued work, cancel running IPFS calls, fire once all have ended."""
        self._closed = True
        if self._sync_loop is not None and self._sync_loop.running:
            self._sync_loop.stop()
        self._sync_loop = None
        if self._pending is not None:
            self._pending.cancel()  # a state_sync pass ends with ShuttingDown
        for cid in self._backlog:
            entry = self._state.get(cid)
            if entry is not None and entry.queued is BACKLOG:
                entry.queued = None
        self._backlog.clear()
        for op in self._queue.clear():
            entry = self._state.get(op.cid)
            if entry is not None and entry.queued is op:
                entry.queued = None
            for w in op.waiters:
                w.errback(_shutting_down())
        running = list(self._running.values())
        for op in running:
            if op.call is not None:
                op.call.cancel()  # also reaches a Deferred it is chained to
        parent = super()

        def stopped(_):
            parent.stopService()

        tasks = [op.task for op in running if op.task is not None]
        return defer.DeferredList(tasks, consumeErrors=True).addCallback(stopped)

    # --- small helpers ---------------------------------------------------------------

    def _now(self) -> int:
        return ns_from_seconds(self.clock.seconds())

    def _info(self, pin: Pin, status, error: str = "", attempts: int = 0, priority=False) -> PinInfo:
        return PinInfo(
            pin.cid,
            self.peer_id,
            name=pin.name,
            allocations=pin.allocations,
            origins=pin.origins,
            created=pin.timestamp,
            metadata=pin.metadata,
            peername=self.peername,
            ipfs_peer_id=self.ipfs_peer_id,
            status=status,
            timestamp=self._now(),
            error=error,
            attempt_count=attempts,
            priority_pin=priority,
        )

    def _unpinned(self, cid: CID) -> PinInfo:
        return self._info(Pin.new(cid), S.UNPINNED)

    def _set(self, entry: Entry, status, error: str = "", attempts: int | None = None, priority=None) -> PinInfo:
        """Give ``entry`` a new status (stamped now); returns the new PinInfo."""
        old = entry.info
        if attempts is None:
            attempts = old.attempt_count if old is not None else 0
        if priority is None:
            priority = old.priority_pin if old is not None else False
        entry.info = self._info(entry.pin, status, error, attempts, priority)
        entry.described = entry.pin
        self._touch(entry)
        return entry.info

    def _touch(self, entry: Entry) -> None:
        """Record that ``entry`` changed (a sync answer from before is then stale)."""
        self._changes += 1
        entry.changed = self._changes

    def _untrack_entry(self, entry: Entry) -> None:
        """Make ``entry`` untracked (``unpinned``); drop it when idle."""
        entry.info = None
        self._touch(entry)
        self._state.discard(entry)

    def _status(self, entry: Entry | None):
        return entry.info.status if entry is not None and entry.info is not None else S.UNPINNED

    def _check_open(self):
        if self._closed:
            raise _shutting_down()

    def _goal_of(self, pin: Pin) -> Goal:
        return Goal.REMOTE if pin.is_remote_for(self.peer_id) else Goal.PIN

    # --- the decision table ------------------------------------------------------------

    def _reconcile(self, entry: Entry) -> None:
        """Move ``entry`` towards its goal (module docstring table).

        Raises :class:`QueueFull` when an operation was needed and the queue is
        full (the entry is then in error).  Never starts operations: callers run
        :meth:`_pump` once they are done changing the state.
        """
        if entry.running is not None:
            return  # decided again when the running operation ends
        op = entry.queued
        if op is None:
            self._decide(entry)
            return
        if op is BACKLOG:
            if entry.goal is Goal.PIN:
                self._describe(entry)
                return  # still waiting for room in the queue
            self._leave_backlog(entry)
            self._decide(entry)
            return
        wanted = OpKind.PIN if entry.goal is Goal.PIN else OpKind.UNPIN
        if op.kind is wanted:
            op.intent = entry.goal
            return
        self._queue.cancel(entry.cid)
        entry.queued = None
        entry.info = op.prior
        entry.described = None  # the prior info may describe an older Pin
        log.debug("cancelled queued {kind} of {cid}", kind=op.kind.value, cid=entry.cid)
        try:
            self._decide(entry)
        finally:
            for w in op.waiters:  # a recover waiting for it: tell what happens instead
                w.callback(self._current(entry))

    def _decide(self, entry: Entry) -> None:
        """The table of the module docstring, for an entry with no operation."""
        status = self._status(entry)
        if entry.goal is Goal.PIN:
            if status is S.PINNED and entry.pinned_depth == entry.pin.max_depth:
                self._describe(entry)
            else:
                self._enqueue(entry, OpKind.PIN)
        elif entry.goal is Goal.REMOTE:
            if status in (S.PINNED, S.PIN_ERROR, S.UNPIN_ERROR):
                self._enqueue(entry, OpKind.UNPIN)
            elif status is not S.REMOTE:
                self._set(entry, S.REMOTE, attempts=0, priority=False)
            else:
                self._describe(entry)
        elif status in (S.PINNED, S.PIN_ERROR, S.UNPIN_ERROR):
            self._enqueue(entry, OpKind.UNPIN)
        else:
            self._untrack_entry(entry)

    def _describe(self, entry: Entry) -> None:
        """Refresh the pin description (name, allocations …) of ``entry.info``."""
        info = entry.info
        if info is not None and entry.described is not entry.pin:
            fresh = self._info(entry.pin, info.status, info.error, info.attempt_count, info.priority_pin)
            entry.info = attrs.evolve(fresh, timestamp=info.timestamp)
            entry.described = entry.pin

    def _enqueue(self, entry: Entry, kind: OpKind, front: bool = False) -> Operation:
        """Queue ``kind`` for ``entry`` (status ``pin_queued``/``unpin_queued``).

        Raises QueueFull (entry set to pin_error/unpin_error "… queue is full").
        """
        if self._queue.full and kind is OpKind.PIN and not front:
            self._wait_for_room(entry)
            return None
        if self._queue.full:
            message = _FULL[kind]
            self._set(entry, _FAILED[kind], message)
            if self._full_count is not None:  # a state_sync pass logs one summary
                self._full_count += 1
            else:
                log.warn("{kind} of {cid} not queued: {error}", kind=kind.value, cid=entry.cid, error=message)
            raise QueueFull(
                f"{message}: {len(self._queue)} operations are waiting; wait for the queue to "
                "drain (or raise pin_tracker.maptracker.max_pin_queue_size) and retry",
                cid=entry.cid,
            )
        prior = entry.info
        same_kind_retry = prior is not None and prior.status is _FAILED[kind]
        attempts = prior.attempt_count if same_kind_retry else 0
        op = Operation(kind, entry.cid, entry.goal, prior=prior, priority=front)
        self._queue.push(op, front=front)
        entry.queued = op
        self._set(entry, _QUEUED[kind], attempts=attempts, priority=front)
        return op

    def _wait_for_room(self, entry: Entry) -> None:
        """Put ``entry`` (a pin that found the queue full) in the backlog: it shows
        ``pin_queued`` and is queued, in order, as soon as the queue has room."""
        prior = entry.info
        maybe_pinned = prior is not None and prior.status in (S.PINNED, S.PIN_ERROR, S.UNPIN_ERROR)
        attempts = prior.attempt_count if prior is not None and prior.status is S.PIN_ERROR else 0
        self._backlog[entry.cid] = maybe_pinned
        entry.queued = BACKLOG
        self._set(entry, S.PIN_QUEUED, attempts=attempts, priority=False)

    def _leave_backlog(self, entry: Entry) -> None:
        """Take ``entry`` out of the backlog, with the status it would have had if
        it had never waited (``pin_error`` when the daemon may pin it: an unpin is
        then decided)."""
        maybe_pinned = self._backlog.pop(entry.cid, False)
        entry.queued = None
        if maybe_pinned:
            self._set(entry, S.PIN_ERROR, MSG.PIN_QUEUE_FULL)
        else:
            entry.info = None
            self._touch(entry)

    def _refill(self) -> None:
        """Move backlogged pins into the queue while it has room, oldest first."""
        backlog = self._backlog
        while backlog and not self._queue.full:
            cid, maybe_pinned = backlog.popitem(last=False)
            entry = self._state.get(cid)
            if entry is None or entry.queued is not BACKLOG:
                continue
            entry.queued = None
            if maybe_pinned:  # the operation's prior: a cancel then decides an unpin
                entry.info = attrs.evolve(entry.info, status=S.PIN_ERROR, error=MSG.PIN_QUEUE_FULL)
            self._decide(entry)

    def backlog_size(self) -> int:
        """Number of pins waiting for room in the queue (shown as ``pin_queued``)."""
        return len(self._backlog)

    # --- running operations ------------------------------------------------------------

    def _pump(self) -> None:
        """Start queued operations while fewer than ``concurrent_pins`` run."""
        if self._pumping:
            self._pump_again = True
            return
        self._pumping = True
        try:
            while True:
                self._pump_again = False
                if not self._closed:
                    self._refill()
                while (
                    self.running
                    and not self._closed
                    and len(self._running) < self._workers
                    and len(self._queue)
                ):
                    op = self._queue.pop()
                    op.task = defer.Deferred.fromCoroutine(self._run(op))
                    if self._backlog:
                        self._refill()
                if not self._pump_again:
                    break
        finally:
            self._pumping = False

    async def _run(self, op: Operation) -> None:
        entry = self._state.get(op.cid)
        entry.queued = None
        entry.running = op
        self._running[op.cid] = op
        attempts = (entry.info.attempt_count if entry.info is not None else 0) + 1
        self._set(entry, _RUNNING[op.kind], attempts=attempts)
        pin = entry.pin  # a track() meanwhile may replace entry.pin
        error = await self._call(op, pin)
        del self._running[op.cid]
        entry.running = None
        try:
            self._finish(op, entry, pin, error, attempts)
        except QueueFull:
            pass  # the entry shows the error
        result = self._current(entry)
        self._state.discard(entry)
        for w in op.waiters:
            w.callback(result)
        self._pump()

    async def _call(self, op: Operation, pin: Pin) -> str:
        """Run the IPFS call of ``op`` for ``pin``; returns "" or the error text."""
        try:
            if op.kind is OpKind.PIN:
                op.call = self.connector.pin(pin)
            else:
                op.call = self.connector.unpin(op.cid)
            await op.call
        except defer.CancelledError:
            return MSG.CANCELLED
        except ClusterError as e:
            return str(e) or type(e).__name__
        except Exception as e:  # noqa: BLE001 - a connector bug must not kill the worker
            log.failure("{kind} of {cid}: unexpected connector failure", kind=op.kind.value, cid=op.cid)
            return f"{type(e).__name__}: {e}"
        finally:
            op.call = None
        return ""

    def _finish(self, op: Operation, entry: Entry, pin: Pin, error: str, attempts: int) -> None:
        if error:
            self._set(entry, _FAILED[op.kind], error, attempts)
            log.warn("{kind} of {cid} failed: {error}", kind=op.kind.value, cid=op.cid, error=error)
            if entry.goal is not op.intent and not self._closed:
                self._reconcile(entry)
            return
        if op.kind is OpKind.PIN:
            entry.pinned_depth = pin.max_depth
            self._set(entry, S.PINNED, attempts=attempts)
            log.info("pinned {cid}", cid=op.cid)
        else:
            entry.pinned_depth = None
            entry.info = None
            self._touch(entry)
            log.info("unpinned {cid}", cid=op.cid)
        if self._closed:
            return
        self._reconcile(entry)

    def _current(self, entry: Entry) -> PinInfo:
        return entry.info if entry.info is not None else self._unpinned(entry.cid)

    # --- IPinTracker ------------------------------------------------------------------

    def track(self, pin):
        """Start managing ``pin`` (see ``IPinTracker.track``).

        Fires None once queued (or marked ``remote``); fails with QueueFull or
        ShuttingDown.
        """
        if self._sync_touched is not None:
            self._sync_touched.add(pin.cid.to_bytes())
        return self._apply(self._track, pin)

    def _apply(self, change, arg):
        """Run the state change ``change(arg)``, start what it queued; a Deferred
        firing None, or failing with its ClusterError."""
        try:
            self._check_open()
            change(arg)
        except ClusterError as e:
            return defer.fail(e)
        finally:
            self._pump()
        return defer.succeed(None)

    def _track(self, pin: Pin) -> Entry:
        goal = self._goal_of(pin)
        entry = self._state.setdefault(pin.cid, pin, goal)
        entry.pin = pin
        entry.goal = goal
        self._reconcile(entry)
        return entry

    def untrack(self, cid):
        """Stop managing ``cid`` (see ``IPinTracker.untrack``).

        Fires None once the unpin is queued (or the CID dropped); unknown CIDs are
        a no-op.  Fails with QueueFull or ShuttingDown.
        """
        if self._sync_touched is not None:
            self._sync_touched.add(cid.to_bytes())
        return self._apply(self._untrack, cid)

    def _untrack(self, cid: CID) -> Entry | None:
        entry = self._state.get(cid)
        if entry is None:
            # Not tracked here, e.g. this peer restarted between the pin and the
            # unpin of ``cid``: its daemon may still pin it, so unpin anyway, as
            # upstream's tracker does (the connector's unpin is a no-op when the
            # daemon does not pin it).
            entry = self._state.setdefault(cid, Pin.new(cid), Goal.GONE)
            self._enqueue(entry, OpKind.UNPIN)
            return entry
        log.debug("untrack {cid}", cid=cid)
        entry.goal = Goal.GONE
        self._reconcile(entry)
        return entry

    def status(self, cid):
        """Fire the ``PinInfo`` of ``cid`` (a fresh ``unpinned`` one if untracked)."""
        if self._closed:
            return defer.fail(_shutting_down())
        return defer.succeed(self._current_or_unpinned(cid))

    def _current_or_unpinned(self, cid: CID) -> PinInfo:
        entry = self._state.get(cid)
        return self._current(entry) if entry is not None else self._unpinned(cid)

    def status_all(self, status_filter=None):
        """Fire a lazy iterator over the ``PinInfo`` of every tracked CID.

        The iterator walks a snapshot taken now (later changes do not disturb
        it) and yields only statuses matching ``status_filter`` (None or
        ``UNDEFINED``: all).  Fails only with ShuttingDown.
        """
        if self._closed:
            return defer.fail(_shutting_down())
        snapshot = self._state.infos()
        wanted = status_filter or S.UNDEFINED
        return defer.succeed(_filtered(snapshot, wanted))

    def status_page(self, after=None, limit: int = STATUS_PAGE_SIZE, status_filter=None):
        """Fire ``(items, cursor)``: up to ``limit`` ``PinInfo`` of tracked CIDs
        after the CID ``after`` (a CID or its text; None: from the first), in
        binary CID order (the order of the shared state's ``list()``), keeping
        only statuses matching ``status_filter`` (None or ``UNDEFINED``: all).

        ``cursor`` is the text of the last CID when more may follow (pass it as
        ``after`` for the next page), else None.  Each page costs O(log n + limit):
        nothing is copied or sorted.  Fails with InvalidCID for a bad cursor, or
        ShuttingDown.
        """
        if self._closed:
            return defer.fail(_shutting_down())
        try:
            key = None
            if after is not None and after != "":
                key = (after if isinstance(after, CID) else CID.parse(after)).to_bytes()
        except ClusterError as e:
            return defer.fail(e)
        limit = max(1, min(int(limit or STATUS_PAGE_SIZE), STATUS_PAGE_SIZE))
        items, last = self._state.page(key, limit, status_filter or None)
        cursor = str(items[-1].cid) if last is not None else None
        return defer.succeed((items, cursor))

    def pin_queue_size(self):
        """Number of operations waiting (not running) in the queue."""
        return len(self._queue)

    def running_count(self) -> int:
        """Number of IPFS pin/unpin operations running now (≤ ``concurrent_pins``)."""
        return len(self._running)

    def tracked_count(self) -> int:
        """Number of tracked CIDs (entries with a status other than ``unpinned``)."""
        return sum(1 for e in self._state.entries() if e.info is not None)

    # --- recover ----------------------------------------------------------------------

    def recover(self, cid):
        """Retry ``cid`` when it is in ``pin_error``/``unpin_error``.

        The retry jumps the queue; the Deferred fires with the ``PinInfo`` once it
        ran (its ``error`` says how it went).  Other statuses (and a CID whose
        operation is still running) fire at once with the current ``PinInfo``.
        Fails with QueueFull or ShuttingDown.
        """
        try:
            self._check_open()
            op = self._recover(cid)
        except ClusterError as e:
            return defer.fail(e)
        if op is None:
            return defer.succeed(self._current_or_unpinned(cid))
        d = defer.Deferred()
        op.waiters.append(d)
        self._pump()
        return d

    def _recover(self, cid: CID) -> Operation | None:
        entry = self._state.get(cid)
        if entry is None or not entry.idle or self._status(entry) not in (S.PIN_ERROR, S.UNPIN_ERROR):
            return None
        kind = OpKind.PIN if entry.goal is Goal.PIN else OpKind.UNPIN
        log.info("recovering {cid}: {kind} again", cid=cid, kind=kind.value)
        return self._enqueue(entry, kind, front=True)

    def recover_all(self):
        """Queue a retry (at the front) of every CID in error.

        Fires the list of ``PinInfo`` re-queued (``pin_queued``/``unpin_queued``);
        CIDs that found the queue full stay in error and are left out.  Fails with
        ShuttingDown.
        """
        if self._closed:
            return defer.fail(_shutting_down())
        failed = [e.cid for e in self._state.entries() if e.idle and e.info is not None and e.info.status.is_error]
        queued = []
        for cid in reversed(failed):  # pushed at the front: keep their order
            try:
                if self._recover(cid) is not None:
                    queued.append(self._state.get(cid).info)
            except QueueFull:
                continue
        queued.reverse()
        self._pump()
        return defer.succeed(queued)

    # --- sync against the ipfs state ----------------------------------------------------

    def sync(self, cid):
        """Check ``cid`` against the daemon (reference §7.3 sync table).

        Fires the updated ``PinInfo``.  Fails with the connector's IPFSError /
        IPFSUnreachable / OperationTimeout (the CID is then put in error), or
        ShuttingDown.
        """
        if self._closed:
            return defer.fail(_shutting_down())
        return defer.Deferred.fromCoroutine(self._sync(cid))

    async def _sync(self, cid: CID) -> PinInfo:
        entry = self._state.get(cid)
        since = self._changes
        try:
            ipfs_status = await self.connector.pin_ls_cid(cid)
        except ClusterError as e:
            entry = self._state.get(cid)
            if entry is not None and entry.changed <= since:
                self._set_error(entry, str(e))
            raise
        entry = self._state.get(cid)
        if entry is not None and entry.changed > since:
            return self._current(entry)  # changed meanwhile: the newer status wins
        present = ipfs_status in _PRESENT
        if entry is None:
            if not present:
                return self._unpinned(cid)
            entry = self._state.setdefault(cid, Pin.new(cid), Goal.GONE)
            self._set(entry, S.UNPIN_ERROR, MSG.UNEXPECTEDLY_PINNED)
            log.warn("sync: {cid} is pinned on IPFS but not tracked", cid=cid)
            return entry.info
        if self._apply_sync(entry, _satisfies(ipfs_status, entry.pin.max_depth), present):
            self._settle(entry)
            self._pump()
        return self._current(entry)

    def _set_error(self, entry: Entry, error: str) -> bool:
        """Reference §7.3 error mapping; returns True when the status changed."""
        if entry.info is None or entry.queued is not None:
            return False
        status = _ERROR_OF.get(entry.info.status)
        if status is None:
            return False
        self._set(entry, status, error)
        return True

    def _apply_sync(self, entry: Entry, satisfied: bool, present: bool) -> bool:
        """Apply the sync table to ``entry``.

        For the pin side (pinned, pinning, pin_error) "ipfs: pinned" means the
        daemon's pin covers ``entry.pin`` (``satisfied``: recursive, or direct for
        a direct pin); for the unpin side it means any direct or recursive pin
        (``present``: there is still something to unpin).  Returns True when the
        status changed.  A transition to ``unpinned`` only
        clears ``entry.info``; the caller then runs :meth:`_settle`.
        """
        if entry.info is None or entry.queued is not None:
            return False
        status = entry.info.status
        age = self.clock.seconds() - entry.info.timestamp / 1e9
        pinned = present if status in (S.UNPINNING, S.UNPIN_ERROR) else satisfied
        if status is S.PINNED:
            if not pinned:
                self._set(entry, S.PIN_ERROR, MSG.UNEXPECTEDLY_UNPINNED)
                return True
        elif status is S.PINNING:
            if pinned:
                self._set(entry, S.PINNED)
                return True
            if age > self._pinning_timeout:
                self._set(entry, S.PIN_ERROR, MSG.PINNING_TOO_LONG)
                return True
        elif status is S.PIN_ERROR:
            if pinned:
                entry.pinned_depth = entry.pin.max_depth
                self._set(entry, S.PINNED)
                return True
        elif status is S.UNPINNING:
            if not pinned:
                entry.info = None
                return True
            if age > self._unpinning_timeout:
                self._set(entry, S.UNPIN_ERROR, MSG.UNPINNING_TOO_LONG)
                return True
        elif status is S.UNPIN_ERROR:
            if not pinned:
                entry.info = None
                return True
        return False

    def _settle(self, entry: Entry) -> None:
        """After a sync transition to ``unpinned``: drop the entry or move it to its
        goal (``remote``, or a new pin if it is wanted here again)."""
        if entry.info is not None:
            return
        self._touch(entry)
        entry.pinned_depth = None
        if entry.running is None:
            try:
                self._reconcile(entry)
            except QueueFull:
                pass
        self._state.discard(entry)

    def sync_all(self):
        """Check every tracked CID against one streamed ``pin ls`` of the daemon.

        Fires the list of ``PinInfo`` whose status changed or that are in error.
        Fails with the connector's error when the daemon cannot answer (every
        tracked CID is then put in error), or ShuttingDown.  Passes never overlap:
        a call made while one runs waits for the next pass, and calls made while
        that next pass waits share it (a slow daemon never piles up passes).
        """
        if self._closed:
            return defer.fail(_shutting_down())
        d = defer.Deferred()
        if self._sync_waiters is not None:  # a pass is waiting to start: share it
            self._sync_waiters.append(d)
            return d
        waiters = self._sync_waiters = [d]

        def start():
            self._sync_waiters = None  # callers from now on need a later pass
            if self._closed:
                return defer.fail(_shutting_down())
            return defer.Deferred.fromCoroutine(self._sync_all())

        def settle(outcome):
            for w in waiters:
                if isinstance(outcome, Failure):
                    w.errback(outcome)
                else:
                    w.callback(list(outcome))

        # one pass at a time (passes share the entries' marks)
        self._sync_all_lock.run(start).addBoth(settle)
        return d

    async def _sync_all(self) -> list[PinInfo]:
        self._generation += 1
        generation = self._generation
        since = self._changes
        state = self._state

        def receive(cid, ipfs_status):
            # mark: +generation when the pin covers the entry, -generation when the
            # daemon pins it in a way that does not (a direct pin of a recursive one)
            entry = state.get(cid)
            if entry is not None and entry.mark != generation:
                covered = _satisfies(ipfs_status, entry.pin.max_depth)
                entry.mark = generation if covered else -generation

        try:
            for type_filter in ("recursive", "direct"):
                await self.connector.pin_ls(type_filter, receive)
        except ClusterError as e:
            count = sum(
                1 for entry in state.entries() if entry.changed <= since and self._set_error(entry, str(e))
            )
            log.warn("sync: the IPFS daemon could not list its pins ({error}); {count} items "
                     "put in error", error=str(e), count=count)
            raise
        result = []
        gone = []
        for entry in state.entries():
            if entry.info is None or entry.changed > since:
                continue
            if self._apply_sync(entry, entry.mark == generation, abs(entry.mark) == generation):
                if entry.info is None:
                    gone.append(entry)
                    result.append(self._unpinned(entry.cid))
                    continue
                result.append(entry.info)
            elif entry.info.status.is_error:
                result.append(entry.info)
        for entry in gone:
            self._settle(entry)
        self._pump()
        return result

    def _periodic_sync(self):
        def failed(f):
            f.trap(ClusterError)
            log.warn("periodic sync failed: {error}", error=f.getErrorMessage())

        return self.sync_all().addErrback(failed)

    # --- StateSync --------------------------------------------------------------------------

    def state_sync(self, pins: Iterable[Pin]):
        """Reconcile the local state with the shared state ``pins`` (the cluster's
        StateSync, every ``state_sync_interval`` and after consensus start/join).

        ``pins`` is a snapshot iterator of the shared state (``IState.list()``),
        consumed in chunks of :data:`STATE_SYNC_CHUNK` pins, one chunk per reactor
        turn, so a large state never blocks the peer.  A pin not tracked here is
        tracked; a tracked pin whose allocation changed (remote ↔ pinned here),
        whose mode changed or that was being untracked is tracked again; a tracked
        CID absent from ``pins`` is untracked.  A CID that ``track``/``untrack``
        changed while the pass runs is left alone (the snapshot is older).

        Before queueing the first pin this peer does not track yet, the daemon is
        asked for its pins once (``pin_ls`` recursive and direct): a pin it already
        holds is marked ``pinned`` without any IPFS call (a restarted peer does not
        pin its whole share again).  If the daemon cannot answer, such pins are
        queued as usual.

        Pins that do not fit in the queue are left in ``pin_error`` "pin queue is
        full" (a later sync/recover retries them) and counted in ONE summary log
        line, not one line per pin.  Passes never overlap (a call waits for the
        running pass).  Fires the list of ``PinInfo`` of the CIDs acted on (a
        queue-full error shows in the item, it does not fail the call).  Fails
        with ShuttingDown.
        """
        if self._closed:
            return defer.fail(_shutting_down())
        return self._state_sync_lock.run(lambda: defer.Deferred.fromCoroutine(self._state_sync(pins)))

    async def _state_sync(self, pins: Iterable[Pin]) -> list[PinInfo]:
        self._check_open()
        self._generation += 1
        generation = self._generation
        touched = self._sync_touched = set()
        pass_ = _StateSyncPass(generation, touched)
        try:
            iterator = iter(pins)
            while True:
                chunk = list(islice(iterator, STATE_SYNC_CHUNK))
                if not chunk:
                    break
                if pass_.daemon is None and any(self._is_fresh(pin) for pin in chunk):
                    pass_.daemon = await self._daemon_pins()
                    self._check_open()  # the tracker may have stopped meanwhile
                self._state_sync_chunk(chunk, pass_)
                if len(chunk) == STATE_SYNC_CHUNK:
                    await self._next_turn()
            stale = [
                e for e in self._state.entries()
                if e.shared != generation and e.goal is not Goal.GONE and e.info is not None
            ]
            for start in range(0, len(stale), STATE_SYNC_CHUNK):
                if start:
                    await self._next_turn()
                self._untrack_stale(stale[start:start + STATE_SYNC_CHUNK], pass_)
        except defer.CancelledError:
            raise _shutting_down() from None
        finally:
            if self._sync_touched is touched:
                self._sync_touched = None
            self._pump()
        pass_.log_summary(waiting=len(self._backlog))
        return [self._current(e) for e in pass_.acted]

    def _is_fresh(self, pin: Pin) -> bool:
        """True when tracking ``pin`` would queue a pin of a CID untracked here."""
        entry = self._state.get(pin.cid)
        return (entry is None or (entry.info is None and entry.idle)) and self._goal_of(pin) is Goal.PIN

    async def _daemon_pins(self):
        """``(recursive, direct)``: sets of the binary CIDs the daemon pins, or
        False when it cannot answer (logged)."""
        recursive: set[bytes] = set()
        direct: set[bytes] = set()

        def receive(cid, ipfs_status):
            if ipfs_status is IPFSPinStatus.RECURSIVE:
                recursive.add(cid.to_bytes())
            elif ipfs_status is IPFSPinStatus.DIRECT:
                direct.add(cid.to_bytes())

        try:
            for type_filter in ("recursive", "direct"):
                self._pending = defer.maybeDeferred(self.connector.pin_ls, type_filter, receive)
                try:
                    await self._pending
                finally:
                    self._pending = None
        except ClusterError as e:
            self._check_open()
            log.warn("state sync: the IPFS daemon could not list its pins ({error}); pins not "
                     "tracked yet are queued without checking it", error=str(e))
            return False
        self._check_open()
        return recursive, direct

    async def _next_turn(self) -> None:
        """Let the reactor run (other calls, I/O) before the next chunk."""
        self._pending = task.deferLater(self.clock, 0, lambda: None)
        try:
            await self._pending
        finally:
            self._pending = None
        self._check_open()

    def _state_sync_chunk(self, chunk: list[Pin], pass_: "_StateSyncPass") -> None:
        """Apply one chunk of the shared state (synchronously: one reactor turn)."""
        state = self._state
        touched = pass_.touched
        daemon = pass_.daemon
        self._full_count = 0
        try:
            for pin in chunk:
                cid = pin.cid
                if touched and cid.to_bytes() in touched:
                    continue
                entry = state.get(cid)
                if entry is None or self._needs_track(entry, pin):
                    if daemon and self._pinned_on_daemon(entry, pin, daemon):
                        entry = self._mark_pinned(entry, pin)
                        pass_.already_pinned += 1
                    else:
                        try:
                            entry = self._track(pin)
                        except QueueFull:
                            entry = state.get(cid)
                    pass_.acted.append(entry)
                entry.shared = pass_.generation
        finally:
            pass_.queue_full += self._full_count
            self._full_count = None
            self._pump()

    def _pinned_on_daemon(self, entry: Entry | None, pin: Pin, daemon) -> bool:
        """True when ``pin`` is wanted here, not tracked, and the daemon's pin covers it."""
        if entry is not None and (entry.info is not None or not entry.idle):
            return False
        if self._goal_of(pin) is not Goal.PIN:
            return False
        recursive, direct = daemon
        key = pin.cid.to_bytes()
        return key in recursive or (pin.max_depth == 0 and key in direct)

    def _mark_pinned(self, entry: Entry | None, pin: Pin) -> Entry:
        """Track ``pin`` as already ``pinned`` on the daemon (no IPFS call)."""
        if entry is None:
            entry = self._state.setdefault(pin.cid, pin, Goal.PIN)
        entry.pin = pin
        entry.goal = Goal.PIN
        entry.pinned_depth = pin.max_depth
        self._set(entry, S.PINNED, attempts=0, priority=False)
        return entry

    def _untrack_stale(self, entries: list[Entry], pass_: "_StateSyncPass") -> None:
        """Untrack the entries of one chunk that the shared state no longer has."""
        touched = pass_.touched
        self._full_count = 0
        try:
            for entry in entries:
                if (entry.shared == pass_.generation or entry.goal is Goal.GONE or entry.info is None
                        or (touched and entry.cid.to_bytes() in touched)):
                    continue  # changed since the list was made
                try:
                    self._untrack(entry.cid)
                except QueueFull:
                    pass
                pass_.acted.append(entry)
        finally:
            pass_.queue_full += self._full_count
            self._full_count = None
            self._pump()

    def _needs_track(self, entry: Entry, pin: Pin) -> bool:
        if entry.info is None and entry.idle:
            return True
        return entry.goal is not self._goal_of(pin) or entry.pin.max_depth != pin.max_depth


_PRESENT = (IPFSPinStatus.RECURSIVE, IPFSPinStatus.DIRECT)


class _StateSyncPass:
    """What one state_sync pass found and did (for its result and its summary)."""

    def __init__(self, generation: int, touched: set):
        self.generation = generation
        self.touched = touched
        self.daemon = None  # None: not asked yet; False: could not answer; else (recursive, direct)
        self.acted: list[Entry] = []
        self.already_pinned = 0
        self.queue_full = 0

    def log_summary(self, waiting: int = 0) -> None:
        if not self.acted:
            return
        log.info(
            "state sync: {count} items re-tracked or untracked ({pinned} already pinned on IPFS, "
            "{full} not queued: unpin queue is full); {waiting} pins wait for room in the pin queue "
            "(pin_queued)",
            count=len(self.acted), pinned=self.already_pinned, full=self.queue_full, waiting=waiting,
        )
        if self.queue_full:
            log.warn(
                "state sync: {full} items did not fit in the unpin queue and are in unpin_error "
                "\"unpin queue is full\"; they are retried by the next sync/recover (raise "
                "pin_tracker.maptracker.max_pin_queue_size to queue more at once)",
                full=self.queue_full,
            )


def _satisfies(ipfs_status, max_depth: int) -> bool:
    """True when the daemon's pin covers a pin of depth ``max_depth``: a recursive
    pin covers any depth (its root included); a direct one only depth 0."""
    return ipfs_status is IPFSPinStatus.RECURSIVE or (
        max_depth == 0 and ipfs_status is IPFSPinStatus.DIRECT
    )


def _filtered(infos, wanted):
    for info in infos:
        if info.status.match(wanted):
            yield info
