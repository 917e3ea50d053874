"""The cluster peer: builds every component from the configuration and runs the flows.

:class:`Cluster` is the only place that knows every component (DESIGN.md §3).  It

- **builds** them from a :class:`~ipfscluster.config.service.ServiceConfig`
  (:func:`build_cluster`), each one optionally injected (tests pass fakes);
- **starts** them in order — shared state → RPC → consensus → IPFS connector,
  tracker, monitor, informer → APIs — and **stops** them in reverse, each to
  completion (:meth:`Cluster.start`, :meth:`Cluster.stop`);
- **serves the RPC** of the other peers (it registers every handler of
  :mod:`ipfscluster.rpc.commands` it implements);
- runs the **flows** of DESIGN.md §5: pin (allocate, commit through Raft), the apply
  step (shared state → tracker), status/sync/recover fan-outs, metrics, failover;
- manages the **membership** (reference §10.2): joining through ``cluster.bootstrap``
  (a peer with an empty ``cluster.peers``: its Raft node waits with no membership
  until the cluster adds it), ``peer_add`` (broadcast the address, reach the new peer,
  send it every member's address, let a lone peer reset its own one-peer Raft log,
  AddVoter, wait until it lists our peers), ``peer_remove`` (re-allocate its pins,
  RemoveServer, tell it to shut down), leaving on shutdown (``leave_on_shutdown``:
  a leader hands leadership over first) and watching the peerset through the
  consensus' membership hook: ``cluster.peers`` in ``service.json`` is rewritten on
  every change, and a removed peer saves ``bootstrap`` := the last known peers,
  ``peers`` := [], shuts down and rotates its Raft data folder (``.old.0`` … 5 kept);
- holds the **execution lock** ``<config>/cluster.lock`` while it runs, refuses an
  out-of-date stored state, and writes a state **backup** to
  ``<config>/backups/<UTC time>`` on every clean shutdown of a ready peer
  (:mod:`ipfscluster.stateops`).

Raft allows one membership change at a time: concurrent joins queue on the leader
(``RaftConsensus`` retries a refused change until ``wait_for_leader_timeout``), and
a joiner learns the addresses of peers added at the same time from the members it
reaches (their ``ID`` lists their peers' addresses).

Departures from upstream 0.3.0, on purpose:

- Metrics are sent to **every** peer of the peerset, not to the leader only, so any
  peer can allocate with the same view and a new leader has the metrics at once
  (modern upstream's pubsub monitor does the same).
- The monitor raises an alert once per expiry (not on every check), and the leader
  re-allocates the pins of the expired peer once per alert, so one blip does not
  re-commit every pin on every check.
- A pin whose allocations and options are unchanged is not committed again.
"""

from __future__ import annotations

import os
import socket
from collections import deque
from typing import Any, AsyncIterator, Iterable

import attrs
from twisted.internet import defer, task
from twisted.logger import Logger
from zope.interface import implementer

import ipfscluster
from ipfscluster.cid import CID
from ipfscluster.errors import (
    ClusterError,
    InvalidInput,
    NotFound,
    NotReady,
    ShuttingDown,
)
from ipfscluster.interfaces import ICluster
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.rpc import commands as C
from ipfscluster.api.rest.streaming import encode_json
from ipfscluster.state.pinjson import ndjson_chunks
from ipfscluster.types import (
    ID,
    IPFSID,
    GlobalPinInfo,
    Pin,
    PinInfo,
    PinOptions,
    TrackerStatus,
    Version,
)

log = Logger(namespace="cluster")

#: how long start-up waits for consensus before giving up (reference §2.2: 30 s)
CONSENSUS_START_TIMEOUT = 30.0
_LOCAL_HOSTS = ("127.0.0.1", "::1", "0.0.0.0", "::", "localhost")
#: how often the peerset is checked (reference §10.2 watchPeers: 5 s)
WATCH_PEERS_INTERVAL = 5.0
RPC_PROTOCOL = "/ipfscluster/%s/rpc" % ipfscluster.__version__
#: size of the first page asked of each peer by ``status_all`` (small: the first
#: line goes out fast), then of the following pages
STATUS_FIRST_PAGE = 100
STATUS_PAGE = C.DEFAULT_PAGE_SIZE


def now_ns(clock) -> int:
    """The injected clock's time in unix nanoseconds."""
    return int(clock.seconds() * 1_000_000_000)


@attrs.frozen
class Components:
    """Everything a :class:`Cluster` runs, built by :func:`build_cluster`."""

    state: Any
    rpc_client: Any
    rpc_server: Any
    responders: Any
    consensus: Any
    connector: Any
    tracker: Any
    monitor: Any
    informer: Any
    allocator: Any
    apis: tuple = ()


@implementer(ICluster)
class Cluster:
    """One cluster peer (see the module docstring).

    :param config: the peer's :class:`ServiceConfig`.
    :param components: its :class:`Components`.
    :param clock: ``IReactorTime`` of every timer the cluster owns.
    """

    def __init__(self, config, components: Components, clock):
        self.config = config
        self.c = components
        self.clock = clock
        self.peer_id = config.cluster.peer_id
        self.peername = config.cluster.peername
        self._loops: list[task.LoopingCall] = []
        self._publishers: list = []
        self._calls: list = []
        self._started: list = []
        self._ready = False
        self._stopping = False
        self._unsubscribe = None
        self._ready_waiters: list[defer.Deferred] = []
        self._background: set[defer.Deferred] = set()
        self._cid_locks: dict = {}
        #: called (no arguments) after the peer shut itself down (consensus never
        #: became ready, or the peer was removed from the cluster); the process entry
        #: point stops the reactor there
        self.on_fatal = None
        self._lock = None
        self._stop_waiters: list[defer.Deferred] = []
        self._stopped = False
        #: this peer was removed from the peerset (it shuts down, data rotated)
        self.removed = False
        #: this peer left the cluster on shutdown (leave_on_shutdown)
        self.left = False
        self._was_member = False
        self._last_voters: tuple = ()
        self._filling = False
        self.watch_peers_interval = WATCH_PEERS_INTERVAL
        self._register_rpc()

    # --- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Start every component in order; readiness follows in the background.

        Raises what a component raises when it cannot start (the components started
        so far are stopped again first).
        """
        from ipfscluster.stateops import ExecutionLock, check_state_current

        c = self.c
        self._lock = ExecutionLock(self.config.folder).acquire()
        try:
            check_state_current(self.config.raft_data_folder, self.config.folder)
            await self._start_one(c.rpc_server)
            for peer in tuple(self.config.cluster.peers) + tuple(self.config.cluster.bootstrap):
                self._learn_address(peer)
            await self._start_one(c.consensus)
            self._was_member = self._is_member()
            await self._start_one(c.connector)
            await self._start_one(c.tracker)
            await self._start_one(c.monitor)
            await self._start_one(c.informer)
            for api in c.apis:
                await self._start_one(api)
            if self.joining:
                await self._bootstrap()
        except BaseException:
            await self._stop_started()
            self._lock.release()
            raise
        self._unsubscribe = c.monitor.subscribe_alerts(self._on_alert)
        self._track_background(defer.Deferred.fromCoroutine(self._become_ready()))
        log.info(
            "IPFS Cluster v{version} peer {peer_id} cluster RPC at: {addresses}",
            version=ipfscluster.__version__,
            peer_id=self.peer_id,
            addresses=", ".join(str(a) for a in self.addresses()),
        )

    async def _start_one(self, component) -> None:
        if component is None:
            return
        await defer.maybeDeferred(component.startService)
        self._started.append(component)

    async def _become_ready(self) -> None:
        # meanwhile, a peer removed while it was down finds out from the others
        self._last_voters = self._current_voters()
        watch = task.LoopingCall(self._guarded, self._watch_peers)
        watch.clock = self.clock
        watch.start(self.watch_peers_interval, now=False)
        self._loops.append(watch)
        try:
            await self._with_timeout(self.c.consensus.ready(), CONSENSUS_START_TIMEOUT)
        except defer.TimeoutError:
            log.error(
                "consensus start timed out after {seconds:g}s: no leader could be elected. "
                "Check that the peers in cluster.peers are running and share the cluster "
                "secret. If this peer was removed from the cluster while it was down, run "
                "'ipfs-cluster-service state cleanup' and start it with --bootstrap <a peer's "
                "multiaddress> to join again; shutting down",
                seconds=CONSENSUS_START_TIMEOUT,
            )
            d = defer.Deferred.fromCoroutine(self.stop())
            d.addErrback(lambda f: log.failure("shutting down failed", f))
            if self.on_fatal is not None:
                d.addBoth(lambda _: self.on_fatal())
            return
        except (ShuttingDown, defer.CancelledError):
            return
        if watch.running:
            watch.stop()
        if watch in self._loops:
            self._loops.remove(watch)
        self._ready = True
        peers = await self.c.consensus.peers()
        others = [p for p in peers if p != self.peer_id]
        for p in others:
            log.info("    - {peer}", peer=p)
        log.info("IPFS Cluster is ready; {n} other peers: {peers}", n=len(others), peers=others)
        self._start_publishers()
        self._start_loops()
        delay = self.config.ipfshttp.connect_swarms_delay.seconds
        self._calls.append(self.clock.callLater(delay, self._connect_swarms))
        waiters, self._ready_waiters = self._ready_waiters, []
        for d in waiters:
            d.callback(None)
        await self._state_sync()

    def ready(self) -> defer.Deferred:
        """A Deferred firing once consensus is ready and the loops run."""
        if self._ready:
            return defer.succeed(None)
        if self._stopping:
            return defer.fail(ShuttingDown())
        d = defer.Deferred()
        self._ready_waiters.append(d)
        return d

    @property
    def is_ready(self) -> bool:
        return self._ready

    async def stop(self) -> None:
        """Stop the peer (reference §2.2 shutdown order): leave the cluster first when
        ``leave_on_shutdown`` (a leader hands leadership over), stop the loops, then
        every component in reverse order, each to completion; write the state backup
        (a peer that was ready), rotate the Raft data (a peer that left or was
        removed), release the execution lock.

        Idempotent: a second call waits for the first one to finish.
        """
        if self._stopping:
            if not self._stopped:
                d = defer.Deferred()
                self._stop_waiters.append(d)
                await d
            return
        self._stopping = True
        was_ready = self._ready
        try:
            await self._stop(was_ready)
        finally:
            if self._lock is not None:
                self._lock.release()
            self._stopped = True
            waiters, self._stop_waiters = self._stop_waiters, []
            for d in waiters:
                d.callback(None)

    async def _stop(self, was_ready: bool) -> None:
        self._ready = False
        waiters, self._ready_waiters = self._ready_waiters, []
        for d in waiters:
            d.errback(ShuttingDown())
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops = []
        for call in self._calls:
            if call.active():
                call.cancel()
        self._calls = []
        for pub in self._publishers:
            if pub.running:
                await defer.maybeDeferred(pub.stopService)
        self._publishers = []
        if was_ready and self.config.cluster.leave_on_shutdown and not self.removed:
            await self._leave()
        # components first: their pending calls then fail (ShuttingDown), which ends
        # the background tasks without cancelling them half-way
        await self._stop_started()
        if self._background:
            await defer.DeferredList(list(self._background), consumeErrors=True)
        if was_ready:
            self._write_backup()
        if self.removed or self.left:
            self._rotate_data()

    async def _stop_started(self) -> None:
        while self._started:
            component = self._started.pop()
            try:
                await defer.maybeDeferred(component.stopService)
            except Exception:
                log.failure("stopping {component} failed", component=type(component).__name__)

    def _track_background(self, d: defer.Deferred) -> None:
        self._background.add(d)

        def done(result):
            self._background.discard(d)
            if isinstance(result, defer.Failure) and not result.check(
                defer.CancelledError, ShuttingDown
            ):
                log.failure("background task failed", result)
            return None

        d.addBoth(done)

    def _with_timeout(self, d: defer.Deferred, seconds: float) -> defer.Deferred:
        return d.addTimeout(seconds, self.clock)

    # --- periodic work --------------------------------------------------------------

    def _start_loops(self) -> None:
        cfg = self.config.cluster
        for interval, fn in (
            (cfg.state_sync_interval.seconds, self._state_sync),
            (cfg.ipfs_sync_interval.seconds, self._ipfs_sync),
            (self.watch_peers_interval, self._watch_peers),
        ):
            loop = task.LoopingCall(self._guarded, fn)
            loop.clock = self.clock
            loop.start(interval, now=False)
            self._loops.append(loop)

    async def _guarded(self, fn) -> None:
        try:
            await fn()
        except (ShuttingDown, defer.CancelledError):
            pass
        except ClusterError as err:
            log.warn("{what} failed: {error}", what=fn.__name__.strip("_"), error=str(err))

    async def _state_sync(self) -> None:
        """Shared state → tracker: track what is missing, untrack what is gone."""
        await defer.maybeDeferred(self.c.tracker.state_sync, self.c.state.list())

    async def _ipfs_sync(self) -> None:
        """Tracker ↔ IPFS daemon (reference §7.3 SyncAll), then repair: every item the
        sync left in error (for example a pin the daemon lost behind the cluster's
        back) is queued again, as modern upstream's pin recovery does, so the
        daemon converges to its allocations without an operator's ``recover``."""
        changed = await defer.maybeDeferred(self.c.tracker.sync_all)
        if any(info.status.is_error for info in changed or ()):
            requeued = await defer.maybeDeferred(self.c.tracker.recover_all)
            if requeued:
                log.info("re-queued {n} items in error after syncing with IPFS", n=len(requeued))

    def _start_publishers(self) -> None:
        from ipfscluster.monitor.publisher import MetricPublisher, ping_metric

        ping_interval = self.config.cluster.monitor_ping_interval.seconds
        informer = self.c.informer
        pubs = [
            MetricPublisher(
                self.clock,
                ping_interval,
                lambda: ping_metric(self.clock, self.peer_id, ping_interval),
                self._publish_metric_d,
                name="ping",
            )
        ]
        if informer is not None:
            pubs.append(
                MetricPublisher(
                    self.clock,
                    informer.ttl / 2.0,
                    informer.get_metric,
                    self._publish_metric_d,
                    retry_interval=0.5,
                    name=informer.name,
                )
            )
        for pub in pubs:
            pub.startService()
            self._publishers.append(pub)

    def _publish_metric_d(self, metric) -> defer.Deferred:
        return defer.Deferred.fromCoroutine(self._publish_metric(metric))

    async def _publish_metric(self, metric) -> None:
        """Store ``metric`` here and send it to every other peer of the peerset."""
        metric = attrs.evolve(metric, peer=self.peer_id)
        self.c.monitor.log_metric(metric)
        peers = [p for p in await self.c.consensus.peers() if p != self.peer_id]
        if peers:
            await self.c.rpc_client.call_all(peers, C.PeerMonitorLogMetric, {"metric": metric})

    def _connect_swarms(self) -> None:
        self._track_background(defer.Deferred.fromCoroutine(self._do_connect_swarms()))

    async def _do_connect_swarms(self) -> None:
        addresses = []
        async for ident in self.peers():
            if ident.id == self.peer_id or ident.ipfs is None:
                continue
            addresses.extend(ident.ipfs.addresses)
        for addr in addresses:
            try:
                await self.c.connector.swarm_connect(addr)
            except ClusterError as err:
                log.debug("swarm connect to {addr} failed: {error}", addr=str(addr), error=str(err))

    # --- failover -------------------------------------------------------------------

    def _on_alert(self, alert) -> None:
        if alert.name != "ping" or self._stopping or not self._ready:
            return
        self._track_background(defer.Deferred.fromCoroutine(self._repin_from(alert.peer)))

    async def _repin_from(self, peer: str) -> None:
        """Leader only: re-allocate every pin allocated to ``peer`` (blacklisted)."""
        try:
            if await self.c.consensus.leader() != self.peer_id:
                return
        except ClusterError:  # no leader (yet, or any more): the next leader acts
            return
        pins = [p for p in self.c.state.list() if peer in p.allocations]
        if pins:
            log.info("peer {peer} is down: re-allocating {n} pins", peer=peer, n=len(pins))
        for pin in pins:
            try:
                await self._allocate_and_commit(pin, blacklist=(peer,))
            except ClusterError as err:
                log.warn("re-allocating {cid} failed: {error}", cid=str(pin.cid), error=str(err))

    # --- the apply step -------------------------------------------------------------

    def on_apply(self, op: str, pin: Pin) -> None:
        """Called by consensus for every committed pin/unpin (after the state changed)."""
        tracker = self.c.tracker
        if op == "pin":
            d = defer.maybeDeferred(tracker.track, pin)
        else:
            d = defer.maybeDeferred(tracker.untrack, pin.cid)
        d.addErrback(self._apply_failed, op, pin)

    @staticmethod
    def _apply_failed(failure, op, pin):
        if failure.check(ShuttingDown, defer.CancelledError):
            return None
        log.failure("telling the tracker about {op} {cid} failed", failure, op=op, cid=str(pin.cid))
        return None

    # --- ICluster: identity and peers ----------------------------------------------

    def addresses(self) -> list[Multiaddr]:
        server = self.c.rpc_server
        listen = self.config.cluster.listen_multiaddress
        port = getattr(server, "port", None)
        if port is not None:
            host, portnum = server.address()
            if listen.host in ("0.0.0.0", "::"):
                hosts = ["127.0.0.1"]
                try:
                    hosts += [socket.gethostbyname(socket.gethostname())]
                except OSError:
                    pass
                addrs = [Multiaddr.from_host_port(h, portnum) for h in dict.fromkeys(hosts)]
            else:
                addrs = [Multiaddr.from_host_port(host, portnum)]
        else:
            addrs = [listen]
        return [a.with_peer_id(self.peer_id) for a in addrs]

    def version(self) -> Version:
        return Version(version=ipfscluster.__version__)

    async def _id(self) -> ID:
        ipfs = await self.c.connector.id()
        try:
            peers = await self.c.consensus.peers()
        except ClusterError as err:
            peers, error = [self.peer_id], str(err)
        else:
            error = ""
        others = []
        for p in peers:
            addr = self.c.rpc_client.peer_address(p) if p != self.peer_id else None
            if addr is not None:
                others.append(Multiaddr.parse(str(addr)).with_peer_id(p))
        return ID(
            id=self.peer_id,
            addresses=tuple(self.addresses()),
            cluster_peers=tuple(peers),
            cluster_peers_addresses=tuple(others),
            version=ipfscluster.__version__,
            commit="",
            rpc_protocol_version=RPC_PROTOCOL,
            error=error,
            ipfs=ipfs,
            peername=self.peername,
        )

    def id(self) -> defer.Deferred:
        return defer.Deferred.fromCoroutine(self._id())

    async def peers(self) -> AsyncIterator[ID]:
        members = await self.c.consensus.peers()
        results = await self.c.rpc_client.call_all(members, C.ClusterID)
        for peer in sorted(members):
            result = results[peer]
            if isinstance(result, defer.Failure):
                yield ID(id=peer, error=result.getErrorMessage())
            else:
                yield result["id"]

    # --- ICluster: membership (reference §10.2) ----------------------------------------

    @property
    def joining(self) -> bool:
        """True when this peer starts by joining a cluster: ``cluster.peers`` is empty
        and ``cluster.bootstrap`` (or ``--bootstrap``) names peers."""
        cfg = self.config.cluster
        return not cfg.peers and bool(cfg.bootstrap)

    def peer_add(self, peer_id_or_multiaddr) -> defer.Deferred:
        """Add a running peer to this cluster (reference §10.2 PeerAdd); fires with
        its :class:`ID` once it lists the same peers as we do.

        Fails with InvalidInput (bad address, or the peer has a state of its own),
        UnhealthyCluster (a member did not take the new address), PeerUnreachable
        (the new peer cannot be reached) or the consensus errors (NoLeader …).
        """
        return defer.Deferred.fromCoroutine(self._peer_add(peer_id_or_multiaddr))

    async def _peer_add(self, target) -> ID:
        from ipfscluster.errors import PeerUnreachable, UnhealthyCluster
        from ipfscluster.identity import validate_peer_id

        self._check_running()
        text = str(target)
        maddr = None
        if text.startswith("/"):
            maddr = Multiaddr.parse(text)
            if maddr.peer_id is None:
                raise InvalidInput(
                    f"the multiaddress {text} has no /p2p/<peer ID> part; add it", value=text
                )
            peer = maddr.peer_id
        else:
            peer = validate_peer_id(text)
        if peer == self.peer_id:
            return await self._id()
        members = list(await self.c.consensus.peers())
        if maddr is not None:
            # (1) the address we see for it, (2) every member learns it
            maddr = self._seen_address(maddr)
            results = await self.c.rpc_client.call_all(
                members, C.PeerManagerAddPeer, {"multiaddr": str(maddr)}
            )
            failed = {p: r.getErrorMessage() for p, r in results.items() if isinstance(r, defer.Failure)}
            if failed:
                raise UnhealthyCluster(
                    "error broadcasting new peer's address: all cluster members need to be "
                    "healthy for this operation to succeed. Try removing any unhealthy peers. "
                    "Check the logs for more information about the error. (%s)"
                    % "; ".join(f"{p}: {e}" for p, e in sorted(failed.items()))
                )
        elif self.c.rpc_client.peer_address(peer) is None:
            raise InvalidInput(
                f"no address is known for peer {peer}: give its full multiaddress "
                f"(/ip4/<host>/tcp/<port>/p2p/{peer})", value=text)
        if peer not in members:
            # (3) reachability (and the address it sees for us)
            try:
                await self.c.rpc_client.call_command(
                    peer, C.ClusterRemoteMultiaddrForPeer, {"peer": self.peer_id})
            except PeerUnreachable as err:
                raise PeerUnreachable(
                    f"cannot reach the new peer {peer}: {err}. Check that it runs, listens "
                    "on the address given and uses the same cluster secret") from None
            # (4) it learns every member's address
            await self.c.rpc_client.call_command(
                peer, C.PeerManagerImportAddresses, {"multiaddrs": self._member_addresses(members)})
            # a lone peer with a Raft log of its own resets it (refused if it holds pins)
            await self.c.rpc_client.call_command(peer, C.PeerManagerPrepareJoin)
            # (5) Raft AddVoter through the leader
            await self.c.consensus.add_peer(peer)
            log.info("peer {peer} added to the cluster", peer=peer)
        # (6) swarm connections (best effort)
        try:
            await self.c.rpc_client.call_command(peer, C.IPFSConnectorConnectSwarms)
        except ClusterError as err:
            log.debug("asking {peer} to connect swarms failed: {error}", peer=peer, error=str(err))
        # (7) wait until it lists our peers
        return await self._wait_peer_in_sync(peer)

    def _seen_address(self, maddr: Multiaddr) -> Multiaddr:
        """``maddr`` with its host replaced by the one our connection from that peer
        comes from, when ``maddr`` names a loopback or unspecified host (a joining
        peer listening on 0.0.0.0 cannot know which of its addresses we reach)."""
        seen = self.c.rpc_client.remote_address(maddr.peer_id)
        if seen is None or maddr.host not in _LOCAL_HOSTS or seen[0] in _LOCAL_HOSTS:
            return maddr
        return Multiaddr.from_host_port(seen[0], maddr.port).with_peer_id(maddr.peer_id)

    def _public_address(self) -> Multiaddr:
        """The address a peer elsewhere should dial: a non-loopback one if we have one."""
        addrs = self.addresses()
        return next((a for a in addrs if a.host not in _LOCAL_HOSTS), addrs[0])

    async def _wait_peer_in_sync(self, peer: str, attempts: int = 20, delay: float = 0.2) -> ID:
        ident = None
        for _ in range(attempts):
            ident = (await self.c.rpc_client.call_command(peer, C.ClusterID))["id"]
            ours = set(await self.c.consensus.peers())
            if set(ident.cluster_peers) >= ours:
                return ident
            await task.deferLater(self.clock, delay, lambda: None)
        log.warn("peer {peer} was added but does not list every peer yet", peer=peer)
        return ident

    def _member_addresses(self, members) -> list[str]:
        out = [str(a) for a in self.addresses()]
        for p in members:
            if p == self.peer_id:
                continue
            addr = self.c.rpc_client.peer_address(p)
            if addr is not None:
                out.append(str(Multiaddr.parse(str(addr)).with_peer_id(p)))
        return out

    def peer_remove(self, peer_id: str) -> defer.Deferred:
        """Remove a peer (reference §10.2 PeerRemove): its pins are re-allocated to
        other peers first, then it leaves the Raft peerset and is told to shut down.

        Fails with NotFound (not a member), InvalidInput (the last peer) or the
        consensus errors.
        """
        return defer.Deferred.fromCoroutine(self._peer_remove(peer_id))

    async def _peer_remove(self, peer_id: str) -> None:
        from ipfscluster.identity import validate_peer_id

        peer_id = validate_peer_id(peer_id)
        members = await self.c.consensus.peers()
        if peer_id not in members:
            raise NotFound(f"peer {peer_id} is not a member of this cluster")
        if list(members) == [peer_id]:
            raise InvalidInput("cannot remove ourselves from a 1-peer cluster")
        for pin in [p for p in self.c.state.list() if peer_id in p.allocations]:
            try:
                await self._allocate_and_commit(pin, blacklist=(peer_id,))
            except ClusterError as err:
                log.warn("re-allocating {cid} failed: {error}", cid=str(pin.cid), error=str(err))
        await self.c.consensus.rm_peer(peer_id)
        log.info("peer {peer} removed from the cluster", peer=peer_id)
        if peer_id == self.peer_id:
            if not self._stopping:
                self._later(self._removed_from_cluster, "this peer removed itself")
            return
        try:
            await self.c.rpc_client.call_command(peer_id, C.PeerManagerRmPeerShutdown)
        except ClusterError as err:
            log.warn("could not tell the removed peer {peer} to shut down ({error}); it "
                     "will stop when it notices", peer=peer_id, error=str(err))

    # --- joining, leaving, watching the peerset ----------------------------------------

    async def _bootstrap(self) -> None:
        """Join through the first ``cluster.bootstrap`` address that works."""
        from ipfscluster.errors import BootstrapFailed

        errors = []
        for addr in self.config.cluster.bootstrap:
            try:
                await self._join(addr)
                return
            except ClusterError as err:
                log.error("joining the cluster through {addr} failed: {error}",
                          addr=str(addr), error=str(err))
                errors.append(f"{addr}: {err}")
        raise BootstrapFailed(
            "bootstrap unsuccessful: could not join through any bootstrap address (%s). "
            "Check that the bootstrap peer runs and is reachable at that address, that "
            "both peers use the same cluster secret, and that every member of that "
            "cluster is healthy (ipfs-cluster-ctl peers ls)" % "; ".join(errors))

    def join(self, multiaddr) -> defer.Deferred:
        """Join the cluster of the peer at ``multiaddr`` (reference §10.2 Join): it
        adds us, we wait for a leader and for our log to catch up, save the peerset
        in ``cluster.peers`` and sync the tracker.  Joining ourselves does nothing."""
        return defer.Deferred.fromCoroutine(self._join(multiaddr))

    async def _join(self, multiaddr) -> None:
        maddr = Multiaddr.parse(str(multiaddr))
        if not maddr.peer_id:
            raise InvalidInput(f"the bootstrap address {multiaddr} has no /p2p/<peer ID> part")
        if maddr.peer_id == self.peer_id:
            return
        self._learn_address(maddr)
        raft = self.config.raft
        timeout = 2 * raft.wait_for_leader_timeout.seconds + 4 * raft.network_timeout.seconds + 5
        log.info("joining the cluster through {addr}", addr=str(maddr))
        await self.c.rpc_client.call_command(
            maddr.peer_id, C.ClusterPeerAdd, {"multiaddr": str(self._public_address())}, timeout=timeout)
        await self.c.consensus.wait_for_leader()
        # the leader's first message may come before the log: wait until the entry
        # that added us arrived, then until everything committed is applied
        deadline = self.clock.seconds() + raft.wait_for_leader_timeout.seconds
        while not self._is_member():
            if self.clock.seconds() > deadline:
                from ipfscluster.errors import OperationTimeout

                raise OperationTimeout(
                    "this peer was added to the cluster but the Raft log that says so did "
                    "not arrive within %gs; check that the leader reaches this peer's "
                    "listen address" % raft.wait_for_leader_timeout.seconds)
            await task.deferLater(self.clock, 0.05, lambda: None)
        await self.c.consensus.wait_for_sync()
        self._check_membership()
        if self.config.cluster.bootstrap:
            # a member restarts from cluster.peers; the bootstrap address is spent
            self._save_membership(bootstrap=())
        peers = await self.c.consensus.peers()
        log.info("joined the cluster: peers {peers}", peers=",".join(peers))
        await self._state_sync()

    async def _leave(self) -> None:
        """Leave the peerset before shutting down (``leave_on_shutdown``)."""
        try:
            voters = list(await self.c.consensus.peers())
            if voters == [self.peer_id] or self.peer_id not in voters:
                log.info("not leaving: this is the last peer of the cluster")
                return
            others = [p for p in voters if p != self.peer_id]
            bootstrap = self._addresses_of(others)
            transfer = getattr(self.c.consensus, "transfer_leadership", None)
            if transfer is not None:
                try:
                    await transfer()
                except ClusterError as err:
                    log.warn("handing the leadership over failed: {error}", error=str(err))
            await self._peer_remove(self.peer_id)
        except ClusterError as err:
            log.error("leaving the cluster failed: {error}. The other peers still count this "
                      "peer as a member: remove it with 'ipfs-cluster-ctl peers rm {peer}'",
                      error=str(err), peer=self.peer_id)
            return
        self.left = True
        log.info("left the cluster; cluster.bootstrap set to the last known peers")
        self._save_membership(peers=(), bootstrap=tuple(bootstrap))

    def _is_member(self) -> bool:
        is_member = getattr(self.c.consensus, "is_member", None)
        return bool(is_member()) if is_member is not None else True

    def _current_voters(self) -> tuple:
        node = getattr(self.c.consensus, "node", None)
        return tuple(node.voters) if node is not None else ()

    def _on_peers_changed(self, voters) -> None:
        """The consensus applied a membership change (called inside the Raft loop)."""
        if not self._stopping:
            self._later(self._check_membership)

    def _later(self, fn, *args) -> None:
        self._calls = [c for c in self._calls if c.active()]
        self._calls.append(self.clock.callLater(0, fn, *args))

    def _check_membership(self) -> None:
        """Rewrite ``cluster.peers`` when the peerset changed; shut down when this peer
        is no longer part of it (reference §10.2 watchPeers)."""
        if self._stopping:
            return
        voters = self._current_voters()
        if self.peer_id in voters:
            self._was_member = True
            self._last_voters = voters
            others = tuple(p for p in voters if p != self.peer_id)
            saved = {Multiaddr.parse(str(a)).peer_id for a in self.config.cluster.peers}
            if saved != set(others):
                addrs = self._addresses_of(others)
                if len(addrs) == len(others):
                    self._save_membership(peers=tuple(addrs))
                elif not self._filling:
                    # peers added at the same time as us: their addresses were sent to
                    # the members of that moment; ask the members we know
                    self._filling = True
                    self._track_background(defer.Deferred.fromCoroutine(self._fill_addresses()))
        elif voters and self._was_member:
            self._removed_from_cluster("the Raft peerset no longer includes this peer")

    async def _fill_addresses(self, attempts: int = 20) -> None:
        """Learn the addresses of members we have none for from the members we reach
        (their ``ID`` lists the addresses of their peers), then save the peerset."""
        try:
            for _ in range(attempts):
                voters = self._current_voters()
                missing = [p for p in voters if p != self.peer_id
                           and self.c.rpc_client.peer_address(p) is None]
                if not missing or self._stopping:
                    break
                known = [p for p in voters if p != self.peer_id and p not in missing]
                results = await self.c.rpc_client.call_all(known, C.ClusterID)
                for r in results.values():
                    if isinstance(r, dict):
                        for addr in r["id"].cluster_peers_addresses:
                            self._learn_address(addr)
                if any(self.c.rpc_client.peer_address(p) is None for p in missing):
                    await task.deferLater(self.clock, 0.5, lambda: None)
        finally:
            self._filling = False
        if not self._stopping:
            self._check_membership()

    async def _watch_peers(self) -> None:
        """Every :data:`WATCH_PEERS_INTERVAL`: check the peerset (the membership hook
        does it on every change), and when no leader has contacted us, ask the other
        peers: if every one that answers lists a peerset without us, we were removed
        while the notice could not reach us."""
        self._check_membership()
        node = getattr(self.c.consensus, "node", None)
        if node is None or node.leader_id is not None or not self._was_member or self._stopping:
            return
        others = [p for p in self._last_voters if p != self.peer_id]
        if not others:
            return
        results = await self.c.rpc_client.call_all(others, C.ConsensusPeers)
        views = [r["peers"] for r in results.values() if isinstance(r, dict) and r.get("peers")]
        if views and all(self.peer_id not in v for v in views):
            self._removed_from_cluster("the other peers no longer list this peer")

    def _removed_from_cluster(self, reason: str) -> None:
        if self.removed or self._stopping:
            return
        self.removed = True
        others = [p for p in (self._last_voters or self._current_voters()) if p != self.peer_id]
        log.warn("this peer was removed from the cluster ({reason}): shutting down. Its Raft "
                 "data folder is rotated; cluster.bootstrap now lists the last known peers, so "
                 "starting it again joins the cluster anew", reason=reason)
        self._save_membership(peers=(), bootstrap=tuple(self._addresses_of(others)))
        d = defer.Deferred.fromCoroutine(self.stop())
        d.addErrback(lambda f: log.failure("shutting down failed", f))
        d.addBoth(lambda _: self.on_fatal() if self.on_fatal is not None else None)

    def _addresses_of(self, peers) -> list[Multiaddr]:
        out = []
        for p in peers:
            addr = self.c.rpc_client.peer_address(p)
            if addr is not None:
                out.append(Multiaddr.parse(str(addr)).with_peer_id(p))
        return out

    def _save_membership(self, **changes) -> None:
        """Save ``cluster.peers``/``cluster.bootstrap`` in service.json, keeping the
        rest of the file as the operator wrote it."""
        from ipfscluster.config.service import ServiceConfig
        from ipfscluster.errors import ConfigError

        self.config = attrs.evolve(self.config, cluster=attrs.evolve(self.config.cluster, **changes))
        try:
            try:
                disk = ServiceConfig.load(self.config.folder)
            except ConfigError:
                disk = self.config
            disk = attrs.evolve(disk, cluster=attrs.evolve(disk.cluster, **changes))
            disk.save()
        except OSError as err:
            log.error("cannot save the new peerset in {folder}: {error}",
                      folder=self.config.folder, error=str(err))
            return
        log.info("configuration saved: {changes}", changes=", ".join(
            "cluster.%s=[%s]" % (k, ",".join(str(a) for a in v)) for k, v in changes.items()))

    def _write_backup(self) -> None:
        from ipfscluster.stateops import write_backup

        try:
            path = write_backup(self.config.folder, self.c.state, self.clock.seconds())
        except (OSError, ClusterError) as err:
            log.error("writing the state backup failed: {error}", error=str(err))
        else:
            log.info("state backup written to {path}", path=path)

    def _rotate_data(self) -> None:
        from ipfscluster.consensus.raft.consensus import rotate_folder

        folder = self.config.raft_data_folder
        try:
            rotate_folder(folder)
        except OSError as err:
            log.error("rotating the Raft data folder {folder} failed: {error}", folder=folder,
                      error=str(err))
        else:
            log.info("Raft data folder rotated to {folder}.old.0", folder=folder)

    # RPC handlers of the peer manager

    def _rpc_import_addresses(self, caller, multiaddrs) -> None:
        for addr in multiaddrs or ():
            self._learn_address(addr)

    async def _rpc_prepare_join(self, caller, _arg=None) -> None:
        prepare = getattr(self.c.consensus, "prepare_join", None)
        if prepare is None:
            return
        self._was_member = False
        await prepare()

    def _rpc_rm_peer_shutdown(self, caller, _arg=None) -> None:
        if caller in self._current_voters() or caller in self._last_voters:
            self._later(self._removed_from_cluster, f"removed by peer {caller}")
        else:
            log.warn("ignoring a shutdown request from {caller}: not a member", caller=caller)

    def _learn_address(self, maddr) -> None:
        maddr = Multiaddr.parse(str(maddr))
        if maddr.peer_id and maddr.peer_id != self.peer_id:
            self.c.rpc_client.add_peer_address(maddr.peer_id, maddr.without_peer_id())

    # --- ICluster: pins ----------------------------------------------------------------

    def pin(self, cid, options: PinOptions | None = None) -> defer.Deferred:
        return defer.Deferred.fromCoroutine(self._pin(CID.parse(cid), options or PinOptions()))

    async def _pin(self, cid: CID, options: PinOptions) -> Pin:
        self._check_running()
        pin = Pin.new(cid, self._with_defaults(options), timestamp=now_ns(self.clock))
        return await self._allocate_and_commit(pin)

    def _with_defaults(self, options: PinOptions) -> PinOptions:
        cfg = self.config.cluster
        rmin, rmax = options.replication_factor_min, options.replication_factor_max
        if rmin == 0:
            rmin = cfg.replication_factor_min
        if rmax == 0:
            rmax = cfg.replication_factor_max
        if rmin == -1 or rmax == -1:
            rmin = rmax = -1
        return attrs.evolve(options, replication_factor_min=rmin, replication_factor_max=rmax)

    async def _allocate_and_commit(self, pin: Pin, blacklist: Iterable[str] = ()) -> Pin:
        """Allocate ``pin`` from the current state and metrics, then commit it.

        Operations on the same CID through this peer run one after the other, so a
        re-allocation always starts from the previous one's result (two failovers
        of one CID at once would otherwise lose one of the changes).
        """
        lock = self._cid_locks.get(pin.cid)
        if lock is None:
            lock = self._cid_locks[pin.cid] = defer.DeferredLock()
        await lock.acquire()
        try:
            return await self._allocate_and_commit_locked(pin, blacklist)
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._cid_locks.pop(pin.cid, None)

    async def _allocate_and_commit_locked(self, pin: Pin, blacklist: Iterable[str],
                                          synced: bool = False) -> Pin:
        from ipfscluster.allocator import allocate

        requested = pin
        existing = self.c.state.get(pin.cid) if self.c.state.has(pin.cid) else None
        names = list(self.c.allocator.metrics()) if self.c.allocator is not None else []
        metrics = {name: self.c.monitor.latest_metrics(name) for name in names}
        allocations = allocate(
            pin.cid,
            pin.replication_factor_min,
            pin.replication_factor_max,
            existing.allocations if existing is not None else (),
            metrics,
            self.c.allocator,
            now_ns(self.clock),
            blacklist=blacklist,
            user_allocations=pin.user_allocations,
        )
        pin = attrs.evolve(pin, allocations=tuple(allocations))
        if existing is not None and _same_pin(existing, pin):
            if not synced:
                # "already pinned" may come from a lagging local state (an unpin that
                # committed but is not applied here yet); answer it without a commit
                # only from a state in sync with the leader (found by the process-level
                # fault suite: an acknowledged pin had no effect)
                await self.c.consensus.wait_for_sync()
                return await self._allocate_and_commit_locked(requested, blacklist, synced=True)
            return existing
        await self.c.consensus.log_pin(pin)
        return pin

    def pin_path(self, path, options=None) -> defer.Deferred:
        return defer.Deferred.fromCoroutine(self._pin_path(path, options or PinOptions()))

    async def _pin_path(self, path, options) -> Pin:
        cid = await self.c.connector.resolve(path)
        return await self._pin(CID.parse(cid), options)

    def unpin(self, cid) -> defer.Deferred:
        return defer.Deferred.fromCoroutine(self._unpin(CID.parse(cid)))

    async def _unpin(self, cid: CID) -> Pin:
        self._check_running()
        if not self.c.state.has(cid):
            # this peer's shared state may lag (a pin committed through another peer
            # and acknowledged, not applied here yet): say "not pinned" only from a
            # state in sync with the leader
            await self.c.consensus.wait_for_sync()
        try:
            pin = self.c.state.get(cid)
        except NotFound:
            raise NotFound(f"{cid} is not pinned in the cluster (not part of the shared state)") from None
        await self.c.consensus.log_unpin(pin)
        return pin

    def unpin_path(self, path) -> defer.Deferred:
        return defer.Deferred.fromCoroutine(self._unpin_path(path))

    async def _unpin_path(self, path) -> Pin:
        cid = await self.c.connector.resolve(path)
        return await self._unpin(CID.parse(cid))

    def pin_update(self, from_cid, to_cid, options=None) -> defer.Deferred:
        return defer.Deferred.fromCoroutine(self._pin_update(CID.parse(from_cid), CID.parse(to_cid), options))

    async def _pin_update(self, from_cid: CID, to_cid: CID, options) -> Pin:
        try:
            old = self.c.state.get(from_cid)
        except NotFound:
            raise NotFound(f"cannot update from {from_cid}: it is not pinned in the cluster") from None
        opts = old.options if options is None else options
        opts = attrs.evolve(opts, pin_update=from_cid)
        pin = Pin.new(to_cid, self._with_defaults(opts), timestamp=now_ns(self.clock))
        pin = attrs.evolve(pin, allocations=old.allocations)
        return await self._allocate_and_commit(pin)

    async def pins(self, pin_types=None) -> AsyncIterator[Pin]:
        for pin in self.c.state.list(pin_types):
            yield pin

    async def pins_ndjson(self, pin_types=None) -> AsyncIterator[bytes]:
        # the state encodes its pins in chunks of lines without making Pin values
        # (state.pinjson); a state that only lists Pins is encoded here
        list_ndjson = getattr(self.c.state, "list_ndjson", None)
        chunks = list_ndjson(pin_types) if list_ndjson is not None else ndjson_chunks(self.c.state.list(pin_types))
        for chunk in chunks:
            yield chunk

    def pin_get(self, cid) -> defer.Deferred:
        try:
            return defer.succeed(self.c.state.get(CID.parse(cid)))
        except ClusterError as err:
            return defer.fail(err)

    def _check_running(self) -> None:
        if self._stopping:
            raise ShuttingDown("the peer is shutting down")

    # --- ICluster: status, sync, recover ---------------------------------------------

    async def _members(self) -> list[str]:
        return list(await self.c.consensus.peers())

    def _error_info(self, cid, peer: str, error: str) -> PinInfo:
        return PinInfo(
            cid=cid,
            peer=peer,
            status=TrackerStatus.CLUSTER_ERROR,
            timestamp=now_ns(self.clock),
            error=error,
        )

    @staticmethod
    def _global(cid, infos: Iterable[PinInfo]) -> GlobalPinInfo:
        return GlobalPinInfo.from_pin_infos(cid, infos)

    async def _fanout_one(self, command, cid: CID, members) -> GlobalPinInfo:
        results = await self.c.rpc_client.call_all(members, command, {"cid": str(cid)})
        infos = []
        for peer in members:
            r = results[peer]
            if isinstance(r, defer.Failure):
                infos.append(self._error_info(cid, peer, r.getErrorMessage()))
            else:
                infos.append(r["info"])
        return self._global(cid, infos)

    def status(self, cid, local: bool = False) -> defer.Deferred:
        return defer.Deferred.fromCoroutine(self._status(CID.parse(cid), local))

    async def _status(self, cid: CID, local: bool) -> GlobalPinInfo:
        members = [self.peer_id] if local else await self._members()
        return await self._fanout_one(C.PinTrackerStatus, cid, members)

    def sync(self, cid, local: bool = False) -> defer.Deferred:
        return defer.Deferred.fromCoroutine(self._sync(CID.parse(cid), local))

    async def _sync(self, cid: CID, local: bool) -> GlobalPinInfo:
        members = [self.peer_id] if local else await self._members()
        return await self._fanout_one(C.ClusterSyncLocal, cid, members)

    def recover(self, cid, local: bool = False) -> defer.Deferred:
        return defer.Deferred.fromCoroutine(self._recover(CID.parse(cid), local))

    async def _recover(self, cid: CID, local: bool) -> GlobalPinInfo:
        members = [self.peer_id] if local else await self._members()
        return await self._fanout_one(C.ClusterRecoverLocal, cid, members)

    async def status_all(self, status_filter=None, local: bool = False, cids=None) -> AsyncIterator[GlobalPinInfo]:
        if cids:
            for cid in cids:
                gpi = await self._status(CID.parse(cid), local)
                if status_filter is None or gpi.match(status_filter):
                    yield gpi
            return
        members = [self.peer_id] if local else await self._members()
        merge = self._merged_pages(members, status_filter if local else None)
        try:
            while True:
                batch = await merge.next_batch()
                if batch is None:
                    return
                for cid, infos in batch:
                    if status_filter is None or _infos_match(infos, status_filter):
                        yield self._global(cid, infos)
        finally:
            merge.close()

    async def status_all_ndjson(self, status_filter=None, local: bool = False, cids=None) -> AsyncIterator[bytes]:
        if cids:
            async for gpi in self.status_all(status_filter, local, cids):
                yield encode_json(gpi.to_json())
            return
        members = [self.peer_id] if local else await self._members()
        merge = self._merged_pages(members, status_filter if local else None)
        to_json = GlobalPinInfo.json_from_pin_infos
        try:
            while True:
                batch = await merge.next_batch()
                if batch is None:
                    return
                lines = [encode_json(to_json(cid, infos)) for cid, infos in batch
                         if status_filter is None or _infos_match(infos, status_filter)]
                if lines:
                    yield b"".join(lines)
        finally:
            merge.close()

    def _merged_pages(self, members, local_filter=None) -> "_MergedPages":
        """The merge of ``members``' status pages; ``local_filter`` (``local``
        only: the answer is this peer's) lets the tracker skip the other statuses
        itself (``status --local --filter pin_error`` reads only the errors)."""
        if local_filter:
            tracker = self.c.tracker

            def fetch(cursor, limit):
                d = tracker.status_page(cursor or None, limit, local_filter)
                return d.addCallback(lambda page: {"items": page[0], "next_cursor": page[1]})

            return _MergedPages([_StatusPages(self.c.rpc_client, self.peer_id, fetch)], self._error_info)
        return _MergedPages([_StatusPages(self.c.rpc_client, peer) for peer in members], self._error_info)

    async def _fanout_all(self, command, local: bool) -> AsyncIterator[GlobalPinInfo]:
        members = [self.peer_id] if local else await self._members()
        results = await self.c.rpc_client.call_all(members, command)
        merged: dict = {}
        for peer in members:
            r = results[peer]
            if isinstance(r, defer.Failure):
                log.warn("{command} on {peer} failed: {error}", command=command.commandName.decode(),
                         peer=peer, error=r.getErrorMessage())
                continue
            for info in r["items"]:
                merged.setdefault(info.cid, []).append(info)
        for cid, infos in merged.items():
            yield self._global(cid, infos)

    def sync_all(self, local: bool = False) -> AsyncIterator[GlobalPinInfo]:
        return self._fanout_all(C.ClusterSyncAllLocal, local)

    def recover_all(self, local: bool = False) -> AsyncIterator[GlobalPinInfo]:
        return self._fanout_all(C.ClusterRecoverAllLocal, local)

    # --- ICluster: monitoring ----------------------------------------------------------

    def alerts(self) -> list:
        return list(self.c.monitor.alerts())

    def metric_names(self) -> list[str]:
        return list(self.c.monitor.metric_names())

    def latest_metrics(self, name: str) -> defer.Deferred:
        return defer.succeed(list(self.c.monitor.latest_metrics(name)))

    def connect_graph(self) -> defer.Deferred:
        return defer.Deferred.fromCoroutine(self._connect_graph())

    async def _connect_graph(self):
        from ipfscluster.types import ConnectGraph

        members = await self._members()
        ids = {}
        async for ident in self.peers():
            ids[ident.id] = ident
        cluster_links = {}
        for peer in members:
            ident = ids.get(peer)
            if ident is not None and not ident.error:
                cluster_links[peer] = tuple(p for p in ident.cluster_peers if p != peer)
        swarm = await self.c.rpc_client.call_all(members, C.IPFSConnectorSwarmPeers)
        ipfs_links = {}
        cluster_to_ipfs = {}
        for peer in members:
            ident = ids.get(peer)
            if ident is not None and ident.ipfs is not None and ident.ipfs.id:
                cluster_to_ipfs[peer] = ident.ipfs.id
                r = swarm.get(peer)
                if r is not None and not isinstance(r, defer.Failure):
                    ipfs_links[ident.ipfs.id] = tuple(r["peers"] or ())
        return ConnectGraph(
            cluster_id=self.peer_id,
            id_to_peername={p: ids[p].peername for p in ids if ids[p].peername},
            ipfs_links=ipfs_links,
            cluster_links=cluster_links,
            cluster_trust_links={p: True for p in members},
            cluster_to_ipfs=cluster_to_ipfs,
        )

    def repo_stat(self, local: bool = False) -> defer.Deferred:
        """This peer's daemon ``RepoStat`` (``local``), or the sum over the peerset's
        daemons: ``repo_size`` and ``storage_max`` (``repo_size + free_space`` of
        each) added up; a peer that does not answer is left out (logged)."""
        if local:
            return self.c.connector.repo_stat()
        return defer.Deferred.fromCoroutine(self._repo_stat_all())

    async def _repo_stat_all(self):
        from ipfscluster.types import RepoStat

        members = await self._members()
        sizes = await self.c.rpc_client.call_all(members, C.IPFSConnectorRepoSize)
        frees = await self.c.rpc_client.call_all(members, C.IPFSConnectorFreeSpace)
        total_size = total_max = 0
        for peer in members:
            size, free = sizes.get(peer), frees.get(peer)
            if not isinstance(size, dict) or not isinstance(free, dict):
                problem = size if not isinstance(size, dict) else free
                log.warn("repo stat of {peer} left out: {error}", peer=peer, error=str(getattr(problem, "value", problem)))
                continue
            total_size += size["bytes"]
            total_max += size["bytes"] + free["bytes"]
        return RepoStat(total_size, total_max)

    def ipfs_api_url(self) -> str:
        node = self.config.ipfshttp.node_multiaddress
        host = node.host
        if ":" in host:
            host = "[%s]" % host
        return "http://%s:%d" % (host, node.port)

    async def add(self, parts, params):
        """``ICluster.add``: see :mod:`ipfscluster.adder`."""
        from ipfscluster import adder

        self._check_running()
        async for out in adder.add(self, self.c.connector, parts, params, now_ns(self.clock)):
            yield out

    # --- RPC handlers -------------------------------------------------------------------

    def _register_rpc(self) -> None:
        r = self.c.responders
        rv = r.register_value
        consensus = self.c.consensus
        tracker = self.c.tracker
        connector = self.c.connector
        monitor = self.c.monitor
        for command, handler in [
            (C.RaftMessage, consensus.rpc_raft_message),
            (C.ConsensusLogPin, consensus.rpc_log_pin),
            (C.ConsensusLogUnpin, consensus.rpc_log_unpin),
            (C.ConsensusAddPeer, consensus.rpc_add_peer),
            (C.ConsensusRmPeer, consensus.rpc_rm_peer),
            (C.ConsensusPeers, consensus.rpc_peers),
            (C.ConsensusReadIndex, consensus.rpc_read_index),
        ]:
            rv(command, handler)
        if hasattr(consensus, "rpc_install_snapshot_chunk"):
            rv(C.RaftInstallSnapshotChunk, consensus.rpc_install_snapshot_chunk)

        rv(C.ClusterID, lambda caller, _: self.id())
        rv(C.ClusterVersion, lambda caller, _: self.version())
        rv(C.ClusterPin, lambda caller, pin: self._allocate_and_commit(pin))
        rv(C.ClusterUnpin, lambda caller, pin: self.unpin(pin.cid))
        rv(C.ClusterPinGet, lambda caller, cid: self.pin_get(cid))
        rv(C.ClusterStatus, lambda caller, cid: self.status(cid))
        rv(C.ClusterStatusLocal, lambda caller, cid: tracker.status(CID.parse(cid)))
        rv(C.ClusterSyncLocal, lambda caller, cid: tracker.sync(CID.parse(cid)))
        rv(C.ClusterRecoverLocal, lambda caller, cid: self._recover_local(cid))
        rv(C.ClusterSyncAllLocal, lambda caller, _: _listed(tracker.sync_all()))
        rv(C.ClusterRecoverAllLocal, lambda caller, _: _listed(tracker.recover_all()))
        rv(C.ClusterPeerRemove, lambda caller, peer: self.peer_remove(peer))
        rv(C.ClusterRemoteMultiaddrForPeer, self._remote_multiaddr_for)

        rv(C.PinTrackerTrack, lambda caller, pin: tracker.track(pin))
        rv(C.PinTrackerUntrack, lambda caller, pin: tracker.untrack(pin.cid))
        rv(C.PinTrackerStatus, lambda caller, cid: tracker.status(CID.parse(cid)))
        rv(C.PinTrackerRecover, lambda caller, cid: tracker.recover(CID.parse(cid)))
        r.register(C.PinTrackerStatusAll, self._tracker_status_page)

        rv(C.IPFSConnectorID, lambda caller, _: connector.id())
        rv(C.IPFSConnectorConnectSwarms, lambda caller, _: self._do_connect_swarms())
        rv(C.IPFSConnectorSwarmPeers, lambda caller, _: connector.swarm_peers())
        rv(C.IPFSConnectorFreeSpace, lambda caller, _: connector.free_space())
        rv(C.IPFSConnectorRepoSize, lambda caller, _: connector.repo_size())

        rv(C.PeerMonitorLogMetric, lambda caller, metric: monitor.log_metric(metric))
        rv(C.PeerMonitorLatestMetrics, lambda caller, name: list(monitor.latest_metrics(name)))
        rv(C.PeerManagerAddPeer, lambda caller, multiaddr: self._learn_address(multiaddr))
        rv(C.PeerManagerImportAddresses, self._rpc_import_addresses)
        rv(C.PeerManagerPrepareJoin, self._rpc_prepare_join)
        rv(C.PeerManagerRmPeerShutdown, self._rpc_rm_peer_shutdown)
        rv(C.ClusterPeerAdd, lambda caller, multiaddr: self.peer_add(multiaddr))
        rv(C.ClusterJoin, lambda caller, multiaddr: self.join(multiaddr))

    async def _recover_local(self, cid) -> PinInfo:
        return await self.c.tracker.recover(CID.parse(cid))

    def _remote_multiaddr_for(self, caller, peer):
        addr = self.c.rpc_client.remote_address(peer)
        if addr is None:
            from ipfscluster.errors import PeerUnreachable

            raise PeerUnreachable(f"no connections to: {peer}")
        host, port = addr
        return str(Multiaddr.from_host_port(host, port).with_peer_id(peer))

    def _tracker_status_page(self, caller, cursor=None, limit=None):
        """``PinTracker.StatusAll``: one page of the local state, in binary CID order
        (the tracker pages it itself: O(log n + page) per page)."""
        d = self.c.tracker.status_page(cursor or None, limit or C.DEFAULT_PAGE_SIZE)
        return d.addCallback(lambda page: {"items": page[0], "next_cursor": page[1]})


def _infos_match(infos, status_filter) -> bool:
    """``GlobalPinInfo.match`` of the value these infos make (one per peer)."""
    return any(info.status.match(status_filter) for info in infos)


class _MergedPages:
    """The peers' ``PinTracker.StatusAll`` pages merged in binary CID order.

    Every peer hands out its local state in pages in binary CID order; the pages
    are merged as they come (one page ahead per peer), so the first line leaves
    after the first page of each peer and memory stays bounded.
    :meth:`next_batch` hands out, at once, every CID that can be merged without
    waiting for a peer (up to a page), so the stream writes them in one go.
    """

    def __init__(self, streams: list, error_info):
        self.streams = streams
        self._error_info = error_info

    async def next_batch(self) -> list | None:
        """``[(cid, [PinInfo per peer]), ...]`` (never empty), None at the end."""
        streams = self.streams
        for stream in streams:
            while not stream.items and not stream.done:
                await stream.fill()
        batch = []
        failed = [s for s in streams if s.error is not None]
        while True:
            live = []
            for stream in streams:
                if stream.items:
                    live.append(stream)
                elif not stream.done:
                    return batch or await self.next_batch()  # that peer's next page is needed first
            if not live:
                return batch or None
            if len(live) == 1:
                key = live[0].items[0][0]
                infos = [live[0].items.popleft()[1]]
            else:
                key = min(s.items[0][0] for s in live)
                infos = [s.items.popleft()[1] for s in live if s.items[0][0] == key]
            cid = infos[0].cid
            for stream in failed:  # failed earlier: it has no items left
                infos.append(self._error_info(cid, stream.peer, stream.error))
            batch.append((cid, infos))
            if len(batch) >= STATUS_PAGE:
                return batch

    def close(self) -> None:
        for stream in self.streams:
            stream.close()


class _StatusPages:
    """One peer's ``PinTracker.StatusAll`` pages for the ``status_all`` merge.

    ``items`` holds ``(binary CID, PinInfo)`` of the pages received and not merged
    yet; the next page is asked for as soon as one arrives, so at most two pages
    per peer are in memory.  A failed page ends the stream with ``error`` set.
    """

    def __init__(self, rpc_client, peer: str, fetch=None):
        self.rpc_client = rpc_client
        self.peer = peer
        self._fetch = fetch  # (cursor, limit) -> Deferred of a page; None: PinTracker.StatusAll
        self.items: deque = deque()
        self.error: str | None = None
        self.done = False
        self._next: defer.Deferred | None = self._ask(None, STATUS_FIRST_PAGE)

    def _ask(self, cursor, limit) -> defer.Deferred:
        if self._fetch is not None:
            d = defer.maybeDeferred(self._fetch, cursor, limit)
        else:
            d = self.rpc_client.call_command(self.peer, C.PinTrackerStatusAll, {"cursor": cursor, "limit": limit})
        return d.addBoth(lambda outcome: [outcome])  # a failure is a value here, never unhandled

    async def fill(self) -> None:
        """Wait for the next page (items, or ``done``)."""
        d, self._next = self._next, None
        if d is None:
            self.done = True
            return
        (outcome,) = await d
        if isinstance(outcome, defer.Failure):
            outcome.trap(ClusterError, defer.CancelledError)
            self.error = outcome.getErrorMessage() or type(outcome.value).__name__
            self.done = True
            return
        cursor = outcome.get("next_cursor")
        if cursor is not None:
            self._next = self._ask(cursor, STATUS_PAGE)
        else:
            self.done = True
        self.items.extend((info.cid.to_bytes(), info) for info in outcome["items"])

    def close(self) -> None:
        """Stop asking (the merge ended or was abandoned)."""
        d, self._next = self._next, None
        if d is not None and not d.called:
            d.cancel()


async def _listed(d) -> list:
    result = await defer.maybeDeferred(lambda: d)
    return list(result)


def _same_pin(a: Pin, b: Pin) -> bool:
    """Equal but for the timestamp: such a pin is not committed again."""
    return attrs.evolve(a, timestamp=0) == attrs.evolve(b, timestamp=0)


# --- building from the configuration -----------------------------------------------------


def build_cluster(config, reactor, *, alloc: str = "disk-freespace", connector=None,
                  tracker=None, state=None, apis_factory=None) -> Cluster:
    """Build a :class:`Cluster` (nothing started) from ``config``.

    ``connector``, ``tracker`` and ``state`` replace the real components when given
    (tests); ``apis_factory(cluster)`` returns the API services to run.
    """
    from ipfscluster import allocator as allocators
    from ipfscluster import informer as informers
    from ipfscluster.consensus.raft.consensus import RaftConsensus
    from ipfscluster.monitor.basic import PeerMonitor
    from ipfscluster.rpc.client import RPCClient
    from ipfscluster.rpc.server import Responders, RPCServer
    from ipfscluster.rpc.tls import ClusterTLS
    from ipfscluster.state.mapstate import MapState

    cfg = config.cluster
    peer_id = cfg.peer_id
    if state is None:
        state = MapState()
    responders = Responders()
    tls = ClusterTLS(cfg.identity.private_key, cfg.secret, reactor)
    rpc_client = RPCClient(reactor, tls, responders, network_timeout=config.raft.network_timeout.seconds)
    rpc_server = RPCServer(reactor, rpc_client, cfg.listen_multiaddress)
    if connector is None:
        from ipfscluster.ipfsconn.ipfshttp import IPFSHTTPConnector

        connector = IPFSHTTPConnector(config.ipfshttp, reactor)
    if tracker is None:
        from ipfscluster.pintracker.tracker import MapPinTracker

        tracker = MapPinTracker(peer_id, connector, config.pintracker, reactor, peername=cfg.peername)
    kind, allocator_cls = allocators.strategy(alloc)
    informer_cfg = config.disk_informer if kind == "disk" else config.numpin_informer
    informer = informers.build(kind, informer_cfg, connector, reactor, peer_id)
    allocator = allocator_cls(informer.name)
    peer_ids = [Multiaddr.parse(str(p)).peer_id for p in cfg.peers]
    holder: dict = {}
    joining = not cfg.peers and bool(cfg.bootstrap)
    consensus = RaftConsensus(
        peer_id=peer_id,
        config=config.raft,
        data_folder=config.raft_data_folder,
        state=state,
        rpc=rpc_client,
        clock=reactor,
        peers=[p for p in peer_ids if p],
        on_apply=lambda op, pin: holder["cluster"].on_apply(op, pin),
        join=joining,
        on_peers_changed=lambda voters: holder["cluster"]._on_peers_changed(voters),
    )

    def current_peers():
        node = getattr(consensus, "node", None)
        return node.voters if node is not None else [peer_id]

    monitor = PeerMonitor(config.monitor, reactor, peers=current_peers)
    components = Components(
        state=state,
        rpc_client=rpc_client,
        rpc_server=rpc_server,
        responders=responders,
        consensus=consensus,
        connector=connector,
        tracker=tracker,
        monitor=monitor,
        informer=informer,
        allocator=allocator,
    )
    cluster = Cluster(config, components, reactor)
    holder["cluster"] = cluster
    if apis_factory is not None:
        cluster.c = attrs.evolve(components, apis=tuple(apis_factory(cluster)))
    os.makedirs(config.folder, exist_ok=True)
    return cluster
