"""Component contracts of an ipfscluster peer (zope.interface).

Every component of a peer (DESIGN.md §4) implements exactly one interface below and
receives everything else it needs through its constructor; ``cluster.py`` is the only
module that knows all of them and wires them.  Each interface has a fake in
``ipfscluster.testing`` that passes the same ``verifyObject`` and behaviour tests.

Conventions that hold for every interface here:

- **Deferreds at the boundary.**  A method that may wait (on the IPFS daemon, on the
  network, on Raft) returns a :class:`twisted.internet.defer.Deferred`; the docstring
  says what it fires with.  Implementations are usually ``async def`` inside and wrap
  with ``Deferred.fromCoroutine``.  Methods documented as *synchronous* return their
  value directly: they only read memory and never wait.
- **Typed errors.**  A Deferred fails (or a synchronous method raises) only with
  subclasses of :class:`ipfscluster.errors.ClusterError`, named in the docstring, so
  the REST API and the RPC layer can map them to status codes and AMP error tags.
- **Values.**  Arguments and results are the frozen values of
  :mod:`ipfscluster.types` (``Pin``, ``PinInfo``, ``Metric`` …), CIDs are
  :class:`ipfscluster.cid.CID` objects and peer IDs are validated strings
  (``12D3KooW…`` / ``Qm…``), never raw JSON.
- **Lifecycle.**  Long-lived components are Twisted services
  (:class:`twisted.application.service.IService`, see :class:`IComponent`): they
  own their timers and connections, create them in ``startService`` and release
  all of them in ``stopService``.  The cluster starts them in order and stops them
  in reverse order, each to completion.

This module imports nothing from the component packages (checked by
``tests/test_interfaces.py``), so any component can import it.
"""

from __future__ import annotations

from twisted.application.service import IService
from zope.interface import Attribute, Interface

__all__ = [
    "IComponent",
    "IState",
    "IConsensus",
    "IPinTracker",
    "IIPFSConnector",
    "IPeerMonitor",
    "IInformer",
    "IPinAllocator",
    "IAPI",
    "IRPCClient",
    "ICluster",
    "ALL_INTERFACES",
]


class IComponent(IService):
    """A long-lived part of a peer, run as a Twisted service.

    ``startService()`` may start timers and listeners and may return a Deferred
    firing once the component is started.  ``stopService()`` returns a Deferred
    (or None) that fires only after every timer, connection and listener the
    component owns has been released; afterwards nothing of it is left in the
    reactor.  Calls made after ``stopService`` fail with
    :class:`~ipfscluster.errors.ShuttingDown`.
    """


class IState(Interface):
    """The shared state: the pinset agreed through consensus (``pin ls``).

    A plain in-memory structure, so every method is **synchronous**: the Raft apply
    step mutates it in log order and readers see a consistent view.  It is written
    only by the consensus apply step (``add``/``rm``) and by ``restore``; everyone
    else reads it through ``IConsensus.state``.
    """

    version = Attribute(
        "int: format version of the snapshots this state writes "
        "(``restore`` upgrades older versions through the registered migrations)."
    )

    def add(pin):
        """Insert or replace the entry for ``pin.cid`` with the ``Pin`` value ``pin``.

        Synchronous; returns None.  Raises
        :class:`~ipfscluster.errors.InvalidInput` if ``pin`` is not a ``Pin``.
        """

    def rm(cid):
        """Remove the entry for the CID ``cid``.

        Synchronous; returns None.  Raises :class:`~ipfscluster.errors.NotFound`
        if the CID is not in the state.
        """

    def get(cid):
        """Return the ``Pin`` stored for the CID ``cid``.

        Synchronous.  Raises :class:`~ipfscluster.errors.NotFound` if absent.
        """

    def has(cid):
        """Return True if the CID ``cid`` is in the state (synchronous)."""

    def list(pin_type=None):
        """Return an iterator over the stored pins, in CID order.

        ``pin_type`` is None (every pin) or a ``PinType`` flag set to keep only
        those types (``GET /allocations?filter=``).  The iterator is lazy (it does
        not copy the pinset) and reflects the state as it was when ``list`` was
        called: later ``add``/``rm`` calls do not disturb it.  Synchronous; raises
        nothing.
        """

    def count():
        """Return the number of pins in the state (synchronous, O(1))."""

    def snapshot(fileobj):
        """Write the whole state, versioned, to the binary file object ``fileobj``.

        Synchronous; returns the number of pins written.  The format starts with
        the state ``version`` so ``restore`` can migrate it later.  I/O errors from
        ``fileobj`` propagate as ``OSError``.
        """

    def restore(fileobj):
        """Replace the whole state with a snapshot read from the binary ``fileobj``.

        Synchronous; returns the number of pins loaded.  Older versions are migrated
        on the fly.  Raises :class:`~ipfscluster.errors.StateVersionError` for a
        version this code does not know and
        :class:`~ipfscluster.errors.StateCorrupted` for undecodable content; on error
        the current state is left unchanged.
        """


class IConsensus(IComponent):
    """Agreement on the shared state and on the peerset (Raft).

    Commits go through the leader: a follower forwards ``log_pin``/``log_unpin``/
    ``add_peer``/``rm_peer`` to it over RPC.  Committed operations are applied in
    log order to ``state``; the cluster passes an ``on_apply`` callback to the
    constructor that calls the pin tracker (``track``/``untrack``).
    """

    state = Attribute(
        "IState: the shared state as applied so far on this peer.  Callers must "
        "treat it as read-only: every change goes through log_pin/log_unpin."
    )

    def ready():
        """Return a Deferred firing None once the consensus is ready.

        Ready means a leader is known and this peer has applied the log up to the
        commit index seen at start.  Every call returns a new Deferred (several
        waiters are fine); it fires at once when already ready.  Fails with
        :class:`~ipfscluster.errors.ShuttingDown` if the service stops first.
        """

    def log_pin(pin):
        """Commit "pin ``pin``" (a ``Pin`` with its allocations) to the log.

        Returns a Deferred firing None once the entry is committed (a quorum has
        it).  Fails with :class:`~ipfscluster.errors.NoLeader` when no leader
        appears within ``wait_for_leader_timeout``,
        :class:`~ipfscluster.errors.OperationTimeout` when the commit does not
        complete after ``commit_retries``, :class:`~ipfscluster.errors.PeerUnreachable`
        when the leader cannot be reached, or
        :class:`~ipfscluster.errors.ShuttingDown`.
        """

    def log_unpin(pin):
        """Commit "unpin ``pin.cid``" to the log.

        Returns a Deferred firing None once committed.  Fails like ``log_pin``, and
        with :class:`~ipfscluster.errors.NotFound` if the CID is not in the state.
        """

    def add_peer(peer_id):
        """Add the peer ``peer_id`` to the Raft peerset as a voter.

        Returns a Deferred firing None once the membership change is committed
        (no-op when already a member).  Fails like ``log_pin``, and with
        :class:`~ipfscluster.errors.InvalidPeerID` for a malformed ID.
        """

    def rm_peer(peer_id):
        """Remove the peer ``peer_id`` from the Raft peerset.

        Returns a Deferred firing None once the change is committed.  Removing the
        leader transfers leadership first.  Fails like ``log_pin``;
        :class:`~ipfscluster.errors.NotFound` when it is not a member;
        :class:`~ipfscluster.errors.InvalidInput` when it is the last member.
        """

    def peers():
        """Return a Deferred firing the sorted list of peer IDs (str) of the peerset.

        The list includes this peer.  Fails with
        :class:`~ipfscluster.errors.NotReady` before the log has been loaded.
        """

    def leader():
        """Return a Deferred firing the peer ID (str) of the current leader.

        Fails with :class:`~ipfscluster.errors.NoLeader` when none is known now
        (it does not wait; see ``wait_for_leader``).
        """

    def wait_for_leader(timeout=None):
        """Return a Deferred firing the leader's peer ID once a leader is known.

        ``timeout`` is in seconds (None: the configured
        ``wait_for_leader_timeout``).  Fails with
        :class:`~ipfscluster.errors.OperationTimeout` when it elapses, or
        :class:`~ipfscluster.errors.ShuttingDown`.
        """

    def wait_for_sync(timeout=None):
        """Return a Deferred firing None once this peer applied every committed entry.

        Waits for a leader first.  ``timeout`` in seconds (None: the configured
        ``wait_for_leader_timeout``).  Fails with
        :class:`~ipfscluster.errors.OperationTimeout` or
        :class:`~ipfscluster.errors.ShuttingDown`.
        """

    def clean():
        """Remove (rotate away) this peer's Raft data folder.

        Only valid while the service is stopped.  Returns a Deferred firing None.
        Fails with :class:`~ipfscluster.errors.InvalidInput` if the service is
        running, or :class:`~ipfscluster.errors.RaftStorageError` on I/O errors.
        """


class IPinTracker(IComponent):
    """The local state: what this peer does about each pin of the shared state.

    Keeps one ``PinInfo`` per tracked CID, queues pin/unpin operations on the IPFS
    daemon (``concurrent_pins`` workers; 1 means strictly sequential) and
    reconciles with the ipfs state.  Statuses are ``TrackerStatus`` values.
    """

    def track(pin):
        """Start managing ``pin`` (called when a pin operation is applied).

        Pins allocated here (or everywhere) are queued (``pin_queued``); others
        are marked ``remote``, unpinning first if this peer had it pinned.  Returns
        a Deferred firing None once the operation is *queued* (not done); a pin
        that finds the queue full waits as ``pin_queued`` and is queued as soon
        as there is room.  Fails with :class:`~ipfscluster.errors.QueueFull` when
        an unpin is needed and the queue is full (the item is then shown as
        ``unpin_error``), or :class:`~ipfscluster.errors.ShuttingDown`.
        """

    def untrack(cid):
        """Stop managing the CID ``cid`` (called when an unpin is applied).

        Queues the unpin (``unpin_queued``) and returns a Deferred firing None once
        queued.  Untracking an unknown CID is a no-op.  Fails with
        :class:`~ipfscluster.errors.QueueFull` or
        :class:`~ipfscluster.errors.ShuttingDown`.
        """

    def status(cid):
        """Return a Deferred firing the ``PinInfo`` of the CID ``cid`` on this peer.

        An untracked CID gives a fresh ``unpinned`` record stamped now.  Never fails
        except with :class:`~ipfscluster.errors.ShuttingDown`.
        """

    def status_all(status_filter=None):
        """Return a Deferred firing an iterable of the ``PinInfo`` of every tracked CID.

        ``status_filter`` is None (everything) or a ``TrackerStatus`` flag set; only
        items whose status matches are included.  The iterable is a consistent
        snapshot, may be a lazy generator and is meant to be consumed once.  Fails
        only with :class:`~ipfscluster.errors.ShuttingDown`.
        """

    def status_page(after=None, limit=1000, status_filter=None):
        """Return a Deferred firing ``(items, cursor)``: one page of ``status_all``.

        ``items`` are up to ``limit`` ``PinInfo`` of tracked CIDs after the CID
        ``after`` (None: from the first) in binary CID order (``cid.to_bytes()``,
        the order of ``IState.list()``), so every peer pages in the same order;
        ``cursor`` is the text of the last CID when more may follow, else None.
        Each page costs O(log n + limit).  Fails with
        :class:`~ipfscluster.errors.InvalidCID` for a bad cursor, or
        :class:`~ipfscluster.errors.ShuttingDown`.
        """

    def sync(cid):
        """Check the CID ``cid`` against the ipfs state and fix the local status.

        Returns a Deferred firing the updated ``PinInfo`` (reference §7.3 sync
        table).  Fails with :class:`~ipfscluster.errors.IPFSError` when the daemon
        cannot answer (the item is then marked in error).
        """

    def sync_all():
        """Check every tracked CID against one ``pin ls`` of the ipfs state.

        Returns a Deferred firing a list of the ``PinInfo`` whose status changed or
        that are in an error state.  Fails with
        :class:`~ipfscluster.errors.IPFSError` when the daemon cannot answer.
        """

    def recover(cid):
        """Retry the failed operation for ``cid`` (``pin_error``/``unpin_error``).

        The retry is queued ahead of other work; returns a Deferred firing the
        ``PinInfo`` after re-queueing (other statuses are returned unchanged).
        Fails with :class:`~ipfscluster.errors.QueueFull` or
        :class:`~ipfscluster.errors.ShuttingDown`.
        """

    def recover_all():
        """Retry every item in an error state.

        Returns a Deferred firing the list of ``PinInfo`` that were re-queued.
        Fails with :class:`~ipfscluster.errors.ShuttingDown`.
        """

    def pin_queue_size():
        """Return the number of operations waiting in the queue (synchronous int)."""


class IIPFSConnector(IComponent):
    """Client of the IPFS daemon's RPC API (``/api/v0``): the ipfs state.

    Every call has a timeout (``ipfs_request_timeout``; ``pin_timeout`` measured
    as *time without progress* for pins; ``unpin_timeout`` for unpins).  Non-200
    answers become :class:`~ipfscluster.errors.IPFSError` carrying the daemon's
    message and HTTP code; connection failures
    :class:`~ipfscluster.errors.IPFSUnreachable`; expired timeouts
    :class:`~ipfscluster.errors.OperationTimeout`.
    """

    def ready():
        """Return a Deferred firing None once the daemon has answered ``id`` once.

        Fires at once when already reached; fails with
        :class:`~ipfscluster.errors.ShuttingDown`.
        """

    def id():
        """Return a Deferred firing the daemon's identity as an ``IPFSID``.

        A failure is reported inside the value (``error`` set, no addresses), not
        as a failed Deferred, as the ``/id`` route expects.
        """

    def pin(pin, timeout=None):
        """Pin ``pin.cid`` on the daemon as ``pin.mode`` says (recursive/direct).

        Uses ``pin.max_depth``; swarm-connects to ``pin.origins`` first
        (best-effort) and, when ``pin.pin_update`` is set and pinned, runs
        ``pin/update`` from it instead of a fresh ``pin/add``.  No-op when already
        pinned that way.  ``timeout`` (seconds, None: ``pin_timeout``) is the
        longest time without progress.  Returns a Deferred firing None.  Fails with
        :class:`~ipfscluster.errors.IPFSError`, ``IPFSUnreachable`` or
        ``OperationTimeout``.
        """

    def unpin(cid, timeout=None):
        """Unpin the CID ``cid`` on the daemon (no-op when not pinned).

        ``timeout`` in seconds (None: ``unpin_timeout``).  Returns a Deferred
        firing None.  Fails with ``IPFSError``, ``IPFSUnreachable`` or
        ``OperationTimeout``.
        """

    def pin_update(from_cid, to_cid, unpin=False):
        """Pin ``to_cid`` by updating the existing recursive pin ``from_cid``.

        Keeps ``from_cid`` pinned unless ``unpin``.  Returns a Deferred firing None.
        Fails with ``IPFSError`` (e.g. ``from_cid`` not pinned), ``IPFSUnreachable``
        or ``OperationTimeout``.
        """

    def pin_ls(type_filter, receive):
        """Stream the daemon's pins of type ``type_filter``.

        ``type_filter`` is ``"recursive"``, ``"direct"``, ``"indirect"`` or
        ``"all"``.  ``receive(cid, ipfs_pin_status)`` is called for each pin as it
        is read from the streamed answer (a ``CID`` and an ``IPFSPinStatus``).
        Returns a Deferred firing the number of pins received.  Fails with
        ``IPFSError``, ``IPFSUnreachable`` or ``OperationTimeout``; ``receive``
        may have been called for some items before a failure.
        """

    def pin_ls_cid(cid):
        """Return a Deferred firing the ``IPFSPinStatus`` of the CID ``cid``.

        ``unpinned`` when the daemon does not pin it.  Fails with
        ``IPFSUnreachable`` or ``OperationTimeout`` (other daemon errors mean
        "not pinned").
        """

    def repo_stat():
        """Return a Deferred firing the daemon's ``RepoStat`` (size-only stat).

        Fails with ``IPFSError``, ``IPFSUnreachable`` or ``OperationTimeout``.
        """

    def free_space():
        """Return a Deferred firing ``storage_max - repo_size`` in bytes (int, ≥ 0).

        Fails like ``repo_stat``.
        """

    def repo_size():
        """Return a Deferred firing the repository size in bytes (int).

        Fails like ``repo_stat``.
        """

    def swarm_connect(multiaddr):
        """Ask the daemon to connect to the peer at ``multiaddr`` (a ``Multiaddr``).

        Returns a Deferred firing None.  Fails with ``IPFSError``,
        ``IPFSUnreachable`` or ``OperationTimeout``.
        """

    def swarm_peers():
        """Return a Deferred firing the list of peer IDs (str) the daemon is connected to.

        Fails with ``IPFSError``, ``IPFSUnreachable`` or ``OperationTimeout``.
        """

    def config_key(keypath):
        """Return a Deferred firing one value of the daemon's configuration.

        ``keypath`` is ``"Section/Key"`` (e.g. ``"Datastore/StorageMax"``); the
        value is the decoded JSON value.  Fails with
        :class:`~ipfscluster.errors.NotFound` when the key does not exist, or
        ``IPFSError``/``IPFSUnreachable``/``OperationTimeout``.
        """

    def resolve(path):
        """Resolve an ``/ipfs/…``, ``/ipns/…`` or ``/ipld/…`` path to its CID.

        Returns a Deferred firing a ``CID``.  Fails with
        :class:`~ipfscluster.errors.InvalidInput` for a malformed path, or
        ``IPFSError``/``IPFSUnreachable``/``OperationTimeout``.
        """

    def block_put(data, codec="raw", mhtype="sha2-256"):
        """Store the raw block ``data`` (bytes) on the daemon.

        Returns a Deferred firing the block's ``CID``.  Fails with ``IPFSError``,
        ``IPFSUnreachable`` or ``OperationTimeout``.
        """

    def add(body, content_type, params=()):
        """Import the multipart upload ``body`` into the daemon without pinning it.

        ``params`` are kubo ``add`` options as (key, value) pairs.  Returns a
        Deferred firing the list of kubo's answer objects (``Name``, ``Hash``,
        ``Size``).  Fails with ``IPFSError``, ``IPFSUnreachable`` or
        ``OperationTimeout``.
        """

    def block_get(cid):
        """Return a Deferred firing the bytes of the block ``cid``.

        Fails with ``IPFSError``, ``IPFSUnreachable`` or ``OperationTimeout``.
        """


class IPeerMonitor(IComponent):
    """Stores the metrics peers send and raises alerts when they expire.

    Keeps, per metric name and peer, a ring of the last metrics.  Every
    ``check_interval`` it raises an ``Alert`` for each current peer whose latest
    valid metric has expired.  Time comes from the injected clock.
    """

    def log_metric(metric):
        """Store ``metric`` (a ``Metric``), stamping ``received_at`` with the clock.

        Synchronous; returns None.  Raises
        :class:`~ipfscluster.errors.InvalidInput` for a metric without name or peer.
        """

    def publish_metric(metric):
        """Send this peer's ``metric`` to the peers that need it (and store it).

        Returns a Deferred firing None once sent.  Fails with
        :class:`~ipfscluster.errors.NoLeader` or
        :class:`~ipfscluster.errors.PeerUnreachable` when it could not be delivered.
        """

    def latest_metrics(name):
        """Return the latest non-expired, valid ``Metric`` named ``name`` of each
        current peer, as a list sorted by peer ID (synchronous)."""

    def latest_for_peer(name, peer_id):
        """Return the latest ``Metric`` named ``name`` from ``peer_id``, or None
        (synchronous; the metric may be expired or invalid)."""

    def metric_names():
        """Return the sorted list of metric names stored (synchronous)."""

    def alerts():
        """Return the alerts raised during the last ``check_interval`` as a list of
        ``Alert`` (synchronous; what ``GET /health/alerts`` shows)."""

    def subscribe_alerts(callback):
        """Call ``callback(alert)`` for every ``Alert`` raised from now on.

        Synchronous; returns a zero-argument function that cancels the
        subscription.  Exceptions from ``callback`` are logged, never propagated.
        """


class IInformer(IComponent):
    """Produces one metric about this peer for allocation (``freespace``, ``numpin`` …).

    The cluster asks for a new metric every ``ttl / 2`` seconds and publishes it
    through the monitor.
    """

    name = Attribute("str: the metric name this informer produces, e.g. 'freespace'.")
    ttl = Attribute("float: seconds a produced metric stays valid.")

    def get_metric():
        """Return a Deferred firing a fresh ``Metric`` named ``name``.

        Its ``expire`` is now + ``ttl`` (nanoseconds, from the injected clock).  It
        never fails: when the value cannot be obtained the metric has
        ``valid=False``.
        """


class IPinAllocator(Interface):
    """Orders candidate peers for a pin (pure; no I/O and no time)."""

    def metrics():
        """Return the list of metric names (str) this allocator needs, in priority order."""

    def allocate(cid, current, candidates, priority):
        """Order the peers that should hold ``cid`` (synchronous).

        ``current``, ``candidates`` and ``priority`` map a metric name to a list of
        ``Metric`` (one per peer): peers already allocated, free peers, and
        preferred peers (user allocations).  Returns the list of peer IDs (str),
        best first: priority peers, then current, then candidates by the metric
        order (e.g. descending free space).  Metrics whose value does not parse
        are skipped.  Raises nothing.
        """


class IAPI(IComponent):
    """A server for operators (REST API, IPFS proxy).

    It reaches the peer only through the cluster object's public methods, never a
    component directly.
    """

    def addresses():
        """Return the list of ``Multiaddr`` it listens on (synchronous).

        Valid after ``startService``; ports requested as 0 are reported as bound.
        """


class IRPCClient(Interface):
    """Calls ``Service.Method`` on cluster peers (in-process for this peer).

    Remote failures arrive as the same ``ClusterError`` subclass raised remotely
    (by AMP error tag); unknown remote errors as ``ClusterError``.
    """

    local_peer = Attribute("str: this peer's ID; calls to it (or to '') run in-process.")

    def call(peer_id, service, method, arg=None, timeout=None):
        """Call ``service.method(arg)`` on the peer ``peer_id``.

        ``timeout`` in seconds (None: no timeout at this layer).  Returns a
        Deferred firing the method's result.  Fails with
        :class:`~ipfscluster.errors.PeerUnreachable` when the peer cannot be
        contacted, :class:`~ipfscluster.errors.OperationTimeout` when the timeout
        elapses, or the typed error the remote method raised.
        """

    def call_multiple(peer_ids, service, method, arg=None, timeout=None):
        """Call ``service.method(arg)`` on every peer of ``peer_ids`` concurrently.

        Returns a Deferred firing a dict ``{peer_id: result}`` once every call has
        finished; a failed call's value is the ``ClusterError`` instance it failed
        with (so one slow or dead peer never hides the others' answers).  Never
        fails.
        """


class ICluster(Interface):
    """The peer as the APIs see it: every operation an operator can ask for.

    ``api/rest`` and ``api/proxy`` reach the peer only through these methods
    (DESIGN.md §3).  Collections are returned as *async iterators* so the APIs can
    stream them (NDJSON) without building them in memory; everything else returns
    a Deferred.  ``local=True`` limits an operation to this peer (the result is
    still a ``GlobalPinInfo`` holding one peer).
    """

    peer_id = Attribute("str: this peer's ID.")

    def id():
        """Return a Deferred firing this peer's ``ID`` (never fails; errors inside)."""

    def version():
        """Return the ``Version`` of this peer (synchronous)."""

    def peers():
        """Return an async iterator of the ``ID`` of every peer in the peerset.

        An unreachable peer yields an ``ID`` holding only ``id`` and ``error``.
        """

    def peer_add(peer_id_or_multiaddr):
        """Add a peer to the cluster; return a Deferred firing its ``ID``.

        Fails with ``PeerUnreachable``, ``InvalidInput`` or ``ClusterError``
        ("all cluster members need to be healthy …").
        """

    def peer_remove(peer_id):
        """Remove a peer (re-allocating its pins first); Deferred firing None.

        Fails with ``NotFound`` (not a member) or ``ClusterError``.
        """

    def pin(cid, options):
        """Allocate and commit a pin of ``cid`` with ``PinOptions``.

        Returns a Deferred firing the committed ``Pin``.  Fails with
        ``InvalidInput`` (bad options), ``AllocationError`` (not enough peers),
        ``NoLeader`` / ``OperationTimeout``.
        """

    def pin_path(path, options):
        """Resolve ``/ipfs|ipns|ipld/<path>`` through the daemon, then ``pin``."""

    def unpin(cid):
        """Commit the removal of ``cid``; Deferred firing the removed ``Pin``.

        Fails with ``NotFound`` when the CID is not in the shared state.
        """

    def unpin_path(path):
        """Resolve ``path`` through the daemon, then ``unpin``."""

    def pin_update(from_cid, to_cid, options):
        """Pin ``to_cid`` taking ``from_cid``'s options, as an update in IPFS.

        Returns a Deferred firing the new ``Pin``; ``NotFound`` when ``from_cid``
        is not pinned.
        """

    def pins(pin_types=None):
        """Return an async iterator over the shared state's ``Pin`` values."""

    def pins_ndjson(pin_types=None):
        """Return an async iterator of ``bytes``: what ``pins(pin_types)`` lists, as
        NDJSON (each pin's ``to_json()``, compact, UTF-8, one line each), one or
        more whole lines per item and never an empty one (``GET /allocations``)."""

    def pin_get(cid):
        """Return a Deferred firing the ``Pin`` of ``cid``; ``NotFound`` if absent."""

    def status_all(status_filter=None, local=False, cids=None):
        """Return an async iterator of ``GlobalPinInfo`` (fan-out to all peers).

        An unreachable peer shows ``cluster_error`` for every CID.
        """

    def status_all_ndjson(status_filter=None, local=False, cids=None):
        """Return an async iterator of ``bytes``: what ``status_all`` lists, as
        NDJSON (each value's ``to_json()``, compact, UTF-8, one line each), one or
        more whole lines per item and never an empty one (``GET /pins``)."""

    def status(cid, local=False):
        """Return a Deferred firing the ``GlobalPinInfo`` of ``cid``."""

    def sync_all(local=False):
        """Sync trackers with their daemons; async iterator of changed items."""

    def sync(cid, local=False):
        """Sync one CID; Deferred firing its ``GlobalPinInfo``."""

    def recover_all(local=False):
        """Retry every item in error; async iterator of re-queued items."""

    def recover(cid, local=False):
        """Retry ``cid`` where it is in error; Deferred firing ``GlobalPinInfo``."""

    def add(parts, params):
        """Add content through this peer's daemon and cluster-pin the roots.

        ``parts`` are the multipart parts of the upload, ``params`` the query
        (pin options and add options).  Returns an async iterator of
        ``AddedOutput``.
        """

    def connect_graph():
        """Return a Deferred firing the ``ConnectGraph`` of the cluster."""

    def alerts():
        """Return the list of recent ``Alert`` values (synchronous)."""

    def metric_names():
        """Return the list of metric names known to the monitor (synchronous)."""

    def latest_metrics(name):
        """Return a Deferred firing the latest valid ``Metric`` per peer for ``name``."""

    def repo_stat(local=False):
        """Return a Deferred firing the (aggregated) ``RepoStat`` of the daemons."""

    def ipfs_api_url():
        """Return the base URL (``http://host:port``) of this peer's daemon API."""


#: every interface declared here, for tests and documentation
ALL_INTERFACES = (
    IComponent,
    IState,
    IConsensus,
    IPinTracker,
    IIPFSConnector,
    IPeerMonitor,
    IInformer,
    IPinAllocator,
    IAPI,
    IRPCClient,
    ICluster,
)
