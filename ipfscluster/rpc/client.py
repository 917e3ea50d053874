"""The calling side of the cluster RPC; owner of every peer connection.

:class:`RPCClient` implements :class:`ipfscluster.interfaces.IRPCClient`:

- **Address book**: ``add_peer_address(peer_id, multiaddr)`` records where a peer
  listens (fed by the configuration and the peer manager).
- **One connection per peer pair**, dialled on first use and reused for every
  call (RPC and Raft) in both directions; accepted connections are used for
  calls too.  When both peers dial at once, both keep the connection dialled by
  the lower peer ID and retire the other (see :mod:`ipfscluster.rpc.protocol`).
- **Reconnection with back-off**: a lost connection is dialled again by the next
  call; after a failed dial the next attempt waits ``backoff_initial`` doubling
  up to ``backoff_max`` (calls made meanwhile wait for that attempt, within their
  own timeout).  Dialling on demand, rather than ``ClientService``'s permanent
  reconnection, means a removed or dead peer costs nothing until someone needs it;
  Raft's heartbeats keep the connections to live members up.
- **Timeouts**: every remote call (connecting included) fails with
  :class:`~ipfscluster.errors.RPCTimeout` after ``network_timeout`` seconds
  (``consensus.raft.network_timeout``) unless given another timeout.  A call that
  times out on a connection from which nothing at all was received meanwhile
  drops that connection as dead, so the next call dials afresh.
- **Local calls** (to our own peer ID or ``""``) run the handler in-process through
  :meth:`ipfscluster.rpc.server.Responders.dispatch_local`; no socket, no timeout.
- **Fan-out**: :meth:`call_all` / :meth:`call_multiple` call many peers at once and
  return every peer's result or error; each call has its own timeout, so a dead
  peer never holds up the answer for longer than ``network_timeout``.

Two calling styles: the command level (:meth:`call_command`, :meth:`call_all`,
:meth:`iter_pages`: arguments and results are the commands' dicts) and the
interface level (:meth:`call`, :meth:`call_multiple`: ``service``, ``method``,
one argument, one result value).  The Raft layer sends opaque bytes with
:meth:`send_raft_message` and :meth:`send_snapshot_chunk`, or through
:class:`RaftTransport` (``send(peer_id, bytes)``, fire and forget).
"""

from __future__ import annotations

from collections import deque

from twisted.internet.defer import CancelledError, Deferred, DeferredList, TimeoutError, fail, succeed
from twisted.internet.endpoints import clientFromString
from twisted.internet.error import ConnectError, ConnectionClosed
from twisted.logger import Logger
from twisted.protocols import amp
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from zope.interface import implementer

from ipfscluster.errors import (
    ClusterError,
    NoPeerAddress,
    PeerConnectionLost,
    PeerUnreachable,
    RemoteError,
    RPCTimeout,
    ShuttingDown,
    UnknownCommand,
)
from ipfscluster.interfaces import IRPCClient
from ipfscluster.rpc import commands
from ipfscluster.rpc.protocol import PeerFactory

log = Logger(namespace="rpc")

DEFAULT_NETWORK_TIMEOUT = 10.0


def _name(command) -> str:
    return command.commandName.decode("ascii")


class _Link:
    """What the client knows about one remote peer."""

    def __init__(self, peer_id: str):
        self.peer_id = peer_id
        self.conn = None  # the PeerProtocol in use (ready), or None
        self.dialling: Deferred | None = None
        self.scheduled = None  # IDelayedCall of a dial waiting for its back-off
        self.waiters: list[Deferred] = []
        self.failures = 0
        self.next_dial = 0.0


class _Call:
    """One remote call in flight (what its deadline and error messages need)."""

    __slots__ = ("peer_id", "command", "deadline", "timeout", "conn", "sent", "deferred", "timed_out")

    def __init__(self, peer_id, command, timeout: float, now: float):
        self.peer_id = peer_id
        self.command = command
        self.timeout = timeout
        self.deadline = now + timeout
        self.conn = None
        self.sent = None  # conn.receptions when the call was sent
        self.deferred = None
        self.timed_out = False


class _Deadlines:
    """Timeouts of all calls with one timer instead of a delayed call per call.

    Calls with the same timeout expire in the order they were made, so each timeout
    value keeps a FIFO queue and only the earliest deadline needs a timer.  A call
    that ends is forgotten lazily (when it reaches the head of its queue); the
    timer is cancelled as soon as no call is pending.
    """

    def __init__(self, clock, on_expiry):
        self._clock = clock
        self._on_expiry = on_expiry
        self._queues: dict[float, deque] = {}
        self._timer = None

    def add(self, call: _Call) -> None:
        self._queues.setdefault(call.timeout, deque()).append(call)
        if self._timer is None or call.deadline < self._timer.getTime():
            self._schedule()

    def ended(self, call: _Call) -> None:
        queue = self._queues.get(call.timeout)
        if queue and queue[0] is call:
            while queue and queue[0].deferred is None:
                queue.popleft()
            if not queue:
                del self._queues[call.timeout]
                self._schedule()

    def _schedule(self) -> None:
        heads = [queue[0].deadline for queue in self._queues.values() if queue]
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if heads:
            delay = max(0.0, min(heads) - self._clock.seconds())
            self._timer = self._clock.callLater(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = self._clock.seconds()
        for timeout, queue in list(self._queues.items()):
            while queue and (queue[0].deferred is None or queue[0].deadline <= now):
                call = queue.popleft()
                if call.deferred is not None:
                    self._on_expiry(call)
            if not queue:
                self._queues.pop(timeout, None)
        self._schedule()

    def cancel(self) -> None:
        """Stop the timer (the pending calls are failed by their connections)."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


@implementer(IRPCClient)
class RPCClient:
    """Calls commands on cluster peers over AMP/TLS (see the module docstring).

    :param reactor: ``IReactorTCP`` + ``IReactorTime`` (a ``MemoryReactorClock`` in
        tests); its ``seconds()`` is the clock of timeouts and certificates.
    :param tls: this peer's :class:`ipfscluster.rpc.tls.ClusterTLS`.
    :param responders: the :class:`ipfscluster.rpc.server.Responders` serving
        calls from other peers and in-process calls.
    :param network_timeout: time allowed for a remote call, connecting included
        (seconds, or the ``Duration`` of ``consensus.raft.network_timeout``).
    :param backoff_initial: wait before re-dialling after one failed dial.
    :param backoff_max: longest wait between dial attempts.
    """

    def __init__(
        self,
        reactor,
        tls,
        responders,
        *,
        network_timeout: float = DEFAULT_NETWORK_TIMEOUT,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
    ):
        self._reactor = reactor
        self.clock = reactor
        self.tls = tls
        self.responders = responders
        self.peer_id = tls.peer_id
        # a config Duration (``consensus.raft.network_timeout``) or seconds
        self.network_timeout = float(getattr(network_timeout, "seconds", network_timeout))
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._addresses: dict[str, object] = {}
        self._links: dict[str, _Link] = {}
        self._protocols: set = set()
        self._closing = False
        self._closed_waiters: list[Deferred] = []
        self._deadlines = _Deadlines(reactor, self._expired)

    @property
    def local_peer(self) -> str:
        """This peer's ID (``IRPCClient.local_peer``)."""
        return self.peer_id

    # --- address book -------------------------------------------------------------------

    def add_peer_address(self, peer_id: str, multiaddr) -> None:
        """Record that ``peer_id`` listens on ``multiaddr`` (text or ``Multiaddr``).

        :raises ipfscluster.errors.InvalidMultiaddr: the text does not parse.
        :raises ipfscluster.errors.InvalidInput: it ends in another peer's ID.
        """
        from ipfscluster.errors import InvalidInput
        from ipfscluster.multiaddr import Multiaddr

        maddr = Multiaddr.parse(multiaddr) if isinstance(multiaddr, str) else multiaddr
        if maddr.peer_id is not None and maddr.peer_id != peer_id:
            raise InvalidInput(f"the multiaddress {maddr} belongs to peer {maddr.peer_id}, not to {peer_id}")
        self._addresses[peer_id] = maddr

    def remove_peer_address(self, peer_id: str) -> None:
        """Forget the address of ``peer_id`` (its open connection stays until it ends)."""
        self._addresses.pop(peer_id, None)

    def peer_address(self, peer_id: str):
        """The recorded ``Multiaddr`` of ``peer_id``, or None."""
        return self._addresses.get(peer_id)

    def remote_address(self, peer_id: str) -> tuple[str, int] | None:
        """``(host, port)`` of the open connection to ``peer_id`` as seen here, or None."""
        link = self._links.get(peer_id)
        if link is None or link.conn is None or link.conn.transport is None:
            return None
        peer = link.conn.transport.getPeer()
        host, port = getattr(peer, "host", None), getattr(peer, "port", None)
        return (host, port) if host is not None else None

    def connected_peers(self) -> set[str]:
        """Peer IDs with a usable connection right now."""
        return {pid for pid, link in self._links.items() if link.conn is not None and link.conn.usable}

    # --- factories ----------------------------------------------------------------------

    def server_factory(self) -> TLSMemoryBIOFactory:
        """Factory for accepted connections (listening socket)."""
        factory = TLSMemoryBIOFactory(
            self.tls.server_creator(), False, PeerFactory(self, dialled=False), clock=self.clock
        )
        factory.noisy = False
        return factory

    def client_factory(self, expected_peer: str) -> TLSMemoryBIOFactory:
        """Factory for a connection dialled to ``expected_peer``."""
        factory = TLSMemoryBIOFactory(
            self.tls.client_creator(expected_peer), True, PeerFactory(self, True, expected_peer), clock=self.clock
        )
        factory.noisy = False
        return factory

    # --- connection events (called by PeerProtocol) -------------------------------------

    def protocol_started(self, proto) -> None:
        self._protocols.add(proto)
        if self._closing:
            proto.transport.abortConnection()

    def protocol_lost(self, proto, reason) -> None:
        self._protocols.discard(proto)
        watch, proto.silence_watch = proto.silence_watch, None
        if watch is not None:  # nothing left to watch: forget its deadline
            watch.deferred = None
            self._deadlines.ended(watch)
        link = self._links.get(proto.peer_id) if proto.peer_id else None
        if link is not None and link.conn is proto:
            link.conn = None
            if not self._closing:
                log.info(
                    "connection to peer {peer} at {address} closed; the next call re-dials it",
                    peer=proto.peer_id,
                    address=proto.address,
                )
        if self._closing and not self._protocols:
            waiters, self._closed_waiters = self._closed_waiters, []
            _release(waiters, None)

    def connection_ready(self, proto) -> None:
        """Register a connection that finished the version exchange (either side)."""
        peer = proto.peer_id
        if peer == self.peer_id:
            log.warn(
                "a connection at {address} authenticated with our own peer ID {peer}: another "
                "process uses this peer's identity, or a peer address points back to this peer",
                address=proto.address,
                peer=peer,
            )
            proto.abort()
            return
        link = self._link(peer)
        current = link.conn
        if current is None or not current.usable:
            link.conn = proto
        elif current is not proto:
            keep = self._preferred(current, proto)
            drop = proto if keep is current else current
            link.conn = keep
            log.debug(
                "two connections with peer {peer}: keeping the one dialled by {dialler}",
                peer=peer,
                dialler=self._dialler(keep),
            )
            drop.retire()
        if link.failures:
            log.info(
                "peer {peer} is reachable again at {address}",
                peer=peer,
                address=proto.address,
            )
        link.failures = 0
        link.next_dial = 0.0
        self._wake(link)

    def connection_retired(self, proto) -> None:
        """Stop using ``proto`` (retired by the other side, or dropped as dead)."""
        link = self._links.get(proto.peer_id)
        if link is not None and link.conn is proto:
            link.conn = None
            for other in self._protocols:
                if other is not proto and other.peer_id == proto.peer_id and other.usable:
                    link.conn = other
                    break

    def _dialler(self, proto) -> str:
        return self.peer_id if proto.dialled else proto.peer_id

    def _preferred(self, a, b):
        """Of two connections with the same peer, the one both sides keep."""
        lower = min(self.peer_id, a.peer_id)
        a_lower, b_lower = self._dialler(a) == lower, self._dialler(b) == lower
        if a_lower != b_lower:
            return a if a_lower else b
        return b  # same dialler: the newer one (the older is being replaced)

    def _link(self, peer_id: str) -> _Link:
        link = self._links.get(peer_id)
        if link is None:
            link = self._links[peer_id] = _Link(peer_id)
        return link

    def _wake(self, link: _Link) -> None:
        waiters, link.waiters = link.waiters, []
        _release(waiters, link.conn)

    # --- dialling -----------------------------------------------------------------------

    def _connection(self, peer_id: str) -> Deferred:
        """A Deferred firing with a usable connection to ``peer_id`` (dialled if needed)."""
        if self._closing:
            return _failed(ShuttingDown("the cluster RPC client is shutting down"))
        link = self._link(peer_id)
        if link.conn is not None and link.conn.usable:
            return succeed(link.conn)

        def cancel(d):
            if d in link.waiters:
                link.waiters.remove(d)

        waiter = Deferred(canceller=cancel)
        link.waiters.append(waiter)
        if link.dialling is None and link.scheduled is None:
            delay = link.next_dial - self.clock.seconds()
            if delay > 0:
                link.scheduled = self.clock.callLater(delay, self._dial, link)
            else:
                self._dial(link)
        return waiter

    def _dial(self, link: _Link) -> None:
        link.scheduled = None
        maddr = self._addresses.get(link.peer_id)
        if maddr is None:
            self._dial_failed(
                Failure(
                    NoPeerAddress(
                        f"no address is known for peer {link.peer_id}: add its multiaddress "
                        "to cluster.peers (or join it to the cluster)"
                    )
                ),
                link,
                None,
            )
            return
        try:
            endpoint = clientFromString(self._reactor, maddr.client_endpoint_string())
        except Exception as err:  # a multiaddress we cannot dial (e.g. /dns with no resolver)
            self._dial_failed(Failure(PeerUnreachable(f"cannot dial {maddr}: {err}")), link, maddr)
            return
        d = endpoint.connect(self.client_factory(link.peer_id))
        d.addCallback(lambda tls_protocol: tls_protocol.wrappedProtocol.when_ready())
        d.addTimeout(self.network_timeout, self.clock)
        link.dialling = d
        d.addCallbacks(self._dial_done, self._dial_failed, callbackArgs=(link,), errbackArgs=(link, maddr))

    def _dial_done(self, proto, link: _Link) -> None:
        link.dialling = None
        # connection_ready() registered the connection and woke the waiters; wake any
        # that arrived since with whatever connection is in use now.
        if link.conn is not None and link.conn.usable:
            self._wake(link)
        else:
            error = PeerConnectionLost(f"the new connection to peer {link.peer_id} closed at once")
            waiters, link.waiters = link.waiters, []
            _release(waiters, error=error)

    def _dial_failed(self, failure: Failure, link: _Link, maddr) -> None:
        link.dialling = None
        link.failures += 1
        delay = min(self._backoff_max, self._backoff_initial * 2 ** (link.failures - 1))
        link.next_dial = self.clock.seconds() + delay
        if failure.check(ClusterError):
            error = failure.value
        elif failure.check(TimeoutError, CancelledError):
            error = PeerUnreachable(
                f"could not connect to peer {link.peer_id} at {maddr} within "
                f"{self.network_timeout:g}s (consensus.raft.network_timeout)"
            )
        elif failure.check(ConnectError, ConnectionClosed):
            error = PeerUnreachable(f"cannot connect to peer {link.peer_id} at {maddr}: {failure.value}")
        else:
            error = PeerUnreachable(f"dialling peer {link.peer_id} at {maddr} failed: {failure.value!r}")
        if not self._closing and not failure.check(ClusterError):
            log_at = log.warn if link.failures == 1 else log.debug
            log_at(
                "{message}; retrying on the next call (back-off {delay:g}s)",
                message=str(error),
                delay=delay,
                peer=link.peer_id,
            )
        waiters, link.waiters = link.waiters, []
        _release(waiters, error=error)

    # --- calls --------------------------------------------------------------------------

    def call_command(self, peer_id: str, command, arguments: dict | None = None, *, timeout=None) -> Deferred:
        """Call ``command`` on ``peer_id``; a Deferred firing the response dict.

        ``arguments`` maps the command's argument names to values.  ``timeout``
        (seconds) defaults to ``network_timeout``; it does not apply to in-process
        calls (``peer_id`` is ours or "").

        Fails with :class:`PeerUnreachable` (its subclasses: no address, connection
        lost, authentication, version), :class:`RPCTimeout`, or the
        :class:`ClusterError` raised by the remote handler.
        """
        arguments = arguments or {}
        if not peer_id or peer_id == self.peer_id:
            return self.responders.dispatch_local(command, self.peer_id, arguments)
        if self._closing:
            return _failed(ShuttingDown("the cluster RPC client is shutting down"))
        timeout = self.network_timeout if timeout is None else float(timeout)
        call = _Call(peer_id, command, timeout, self.clock.seconds())
        link = self._links.get(peer_id)
        conn = link.conn if link is not None else None
        if conn is not None and conn.usable:
            # fast path: no coroutine, no extra Deferred (pipelined calls are cheap)
            call.conn, call.sent = conn, conn.receptions
            try:
                d = conn.callRemote(command, **arguments)
            except Exception:  # bad arguments (InvalidSignature, TooLong …): fail like the slow path
                d = fail()
        else:
            d = Deferred.fromCoroutine(self._connect_then_call(call, arguments))
        call.deferred = d
        self._deadlines.add(call)
        d.addBoth(self._call_ended, call)
        return d

    async def _connect_then_call(self, call, arguments):
        conn = await self._connection(call.peer_id)
        call.conn, call.sent = conn, conn.receptions
        return await conn.callRemote(call.command, **arguments)

    def _call_ended(self, result, call):
        """Last callback of every remote call: translate its failure; forget its deadline."""
        call.deferred = None
        self._deadlines.ended(call)
        if not isinstance(result, Failure):
            return result
        peer_id, name, conn = call.peer_id, _name(call.command), call.conn
        if call.timed_out and result.check(CancelledError):
            return Failure(
                RPCTimeout(
                    f"peer {peer_id} did not answer {name} within {call.timeout:g}s "
                    "(consensus.raft.network_timeout); check that it runs and is reachable",
                    peer_id=peer_id,
                )
            )
        if result.check(ConnectionClosed, amp.ProtocolSwitched):
            return Failure(
                PeerConnectionLost(
                    f"the connection to peer {peer_id} at {conn.address} was lost before it "
                    f"answered {name} ({type(result.value).__name__}); the next call re-dials it",
                    peer_id=peer_id,
                )
            )
        if result.check(amp.UnhandledCommand):
            return Failure(UnknownCommand(f"peer {peer_id} does not handle {name}"))
        if result.check(amp.UnknownRemoteError, amp.RemoteAmpError):
            return Failure(RemoteError(f"peer {peer_id} failed handling {name}: {result.value}"))
        return result

    def _expired(self, call) -> None:
        """``call`` reached its deadline: cancel it; drop its connection if it went silent."""
        conn = call.conn
        if conn is not None and conn.silence_watch is call:
            conn.silence_watch = None
        if conn is not None and not conn.closed and conn.receptions == call.sent:
            log.warn(
                "nothing received from peer {peer} at {address} for {seconds:g}s: "
                "dropping the connection as dead",
                peer=call.peer_id,
                address=conn.address,
                seconds=call.timeout,
            )
            conn.abort()
        if call.deferred is not None:
            call.timed_out = True
            call.deferred.cancel()

    def call_all(self, peer_ids, command, arguments: dict | None = None, *, timeout=None) -> Deferred:
        """Call ``command`` on every peer of ``peer_ids`` at once.

        A Deferred firing ``{peer_id: response dict or Failure}`` once every call
        ended (each within its timeout); it never fails.
        """
        peers = list(dict.fromkeys(peer_ids))
        calls = [self.call_command(p, command, arguments, timeout=timeout) for p in peers]
        gathered = DeferredList(calls, consumeErrors=True)
        return gathered.addCallback(lambda results: {p: r for p, (_, r) in zip(peers, results)})

    async def iter_pages(self, peer_id: str, command, arguments: dict | None = None, *, page_size=None, timeout=None):
        """Async iterator over the items of a paged listing, one page at a time.

        Yields lists of items; each page is one call (with its own timeout).
        """
        arguments = dict(arguments or {})
        arguments["limit"] = page_size or commands.DEFAULT_PAGE_SIZE
        arguments["cursor"] = None
        while True:
            page = await self.call_command(peer_id, command, arguments, timeout=timeout)
            yield page["items"]
            if page.get("next_cursor") is None:
                return
            arguments["cursor"] = page["next_cursor"]

    # --- the IRPCClient form -------------------------------------------------------------

    def call(self, peer_id, service, method, arg=None, timeout=None) -> Deferred:
        """``IRPCClient.call``: call ``Service.Method`` with one argument; fire its result.

        ``arg`` is the command's only argument (a dict of arguments when it has
        several); the result is the command's only response field (None when it has
        none, the whole dict when it has several).  ``timeout`` None means
        ``network_timeout``: no remote call waits forever.
        """
        form = _call_form(service, method)
        if form is None:
            return _failed(UnknownCommand(f"there is no RPC command {service}.{method}"))
        command, names, out = form
        if arg is None:
            arguments = {}
        elif len(names) == 1:
            arguments = {names[0]: arg}
        else:
            arguments = dict(arg)
        d = self.call_command(peer_id, command, arguments, timeout=timeout)
        if len(out) <= 1:
            d.addCallback(lambda result: result.get(out[0]) if out else None)
        return d

    def call_multiple(self, peer_ids, service, method, arg=None, timeout=None) -> Deferred:
        """``IRPCClient.call_multiple``: ``{peer_id: result or ClusterError}``; never fails."""
        peers = list(dict.fromkeys(peer_ids))
        calls = [self.call(p, service, method, arg, timeout) for p in peers]

        def value(outcome):
            ok, result = outcome
            if ok:
                return result
            if isinstance(result.value, ClusterError):
                return result.value
            return RemoteError(f"{service}.{method} failed: {result.value!r}")

        gathered = DeferredList(calls, consumeErrors=True)
        return gathered.addCallback(lambda results: {p: value(r) for p, r in zip(peers, results)})

    # --- Raft transport -----------------------------------------------------------------

    def send_raft_message(self, peer_id: str, payload: bytes, *, timeout=None) -> Deferred:
        """Send one encoded Raft message; fires None once it is sent.

        Over a ready connection the message goes one-way (no AMP answer: Raft's
        responses are messages of their own), which halves the boxes, TLS records
        and callbacks of Raft traffic.  A connection that carried one-way messages
        and from which nothing at all arrived within ``timeout`` is dropped as
        dead, as an unanswered call's would be (:meth:`_watch_silence`), so the
        next message re-dials.  Without a ready connection the message is an
        ordinary call that dials first (and fails like one).
        """
        link = self._links.get(peer_id)
        conn = link.conn if link is not None else None
        if conn is not None and conn.usable and not self._closing:
            try:
                conn.send_one_way(commands.RaftMessage, {"payload": payload})
            except Exception:
                return fail()
            if conn.silence_watch is None:
                self._watch_silence(conn, peer_id, self.network_timeout if timeout is None else float(timeout))
            return succeed(None)
        d = self.call_command(peer_id, commands.RaftMessage, {"payload": payload}, timeout=timeout)
        return d.addCallback(lambda _: None)

    def _watch_silence(self, conn, peer_id: str, timeout: float) -> None:
        """Check in ``timeout`` seconds that ``conn`` received something since now.

        One check per connection at a time (not one per message): on expiry
        :meth:`_expired` drops the connection if it stayed silent and clears the
        watch, so the next one-way send starts another.
        """
        watch = _Call(peer_id, commands.RaftMessage, timeout, self.clock.seconds())
        watch.conn, watch.sent = conn, conn.receptions
        watch.deferred = Deferred()
        watch.deferred.addErrback(lambda _: None)  # cancelled on expiry; nobody waits
        conn.silence_watch = watch
        self._deadlines.add(watch)

    def send_snapshot_chunk(self, peer_id: str, payload: bytes, *, timeout=None) -> Deferred:
        """Send one encoded snapshot chunk; fires None when the peer stored it."""
        d = self.call_command(peer_id, commands.RaftInstallSnapshotChunk, {"payload": payload}, timeout=timeout)
        return d.addCallback(lambda _: None)

    # --- shutdown -----------------------------------------------------------------------

    def close(self) -> Deferred:
        """Close every connection and stop dialling; fires when all are closed.

        Pending and later calls fail with :class:`ShuttingDown`.
        """
        self._closing = True
        for link in self._links.values():
            if link.scheduled is not None:
                link.scheduled.cancel()
                link.scheduled = None
            if link.dialling is not None:
                link.dialling.cancel()
            waiters, link.waiters = link.waiters, []
            _release(waiters, error=ShuttingDown("the cluster RPC client is shutting down"))
            link.conn = None
        if not self._protocols:
            return succeed(None)
        d = Deferred()
        self._closed_waiters.append(d)
        for proto in list(self._protocols):
            if proto.transport is not None:
                proto.transport.abortConnection()
        return d


#: (service, method) -> (command, argument names, response names), filled on use
_CALL_FORMS: dict[tuple[str, str], tuple] = {}


def _call_form(service: str, method: str):
    """The command ``Service.Method`` and its Python argument and response names
    (looked up once per name: ``all_commands`` walks the whole command module,
    which showed in the profile of forwarded pins); None when there is none."""
    form = _CALL_FORMS.get((service, method))
    if form is None:
        command = commands.all_commands().get(f"{service}.{method}".encode("ascii"))
        if command is None:
            return None
        form = _CALL_FORMS[(service, method)] = (
            command,
            [name.decode("ascii").replace("-", "_") for name, _ in command.arguments],
            [name.decode("ascii").replace("-", "_") for name, _ in command.response],
        )
    return form


def _release(waiters, value=None, *, error: Exception | None = None) -> None:
    """Fire every waiter with ``value`` (or fail it with ``error``).

    A waiter's callbacks may cancel later waiters (a fan-out giving up, a caller's
    timeout); those have fired already and are skipped.
    """
    for waiter in waiters:
        if waiter.called:
            continue
        if error is not None:
            waiter.errback(Failure(error))
        else:
            waiter.callback(value)


def _failed(error) -> Deferred:
    d = Deferred()
    d.errback(Failure(error))
    return d


class RaftTransport:
    """The Raft layer's network over the cluster RPC.

    Provides ``send(peer_id, data)`` (the ``IRaftTransport`` of
    :mod:`ipfscluster.consensus.raft.node`, duck-typed so that this component does
    not import another): fire and forget, one ``Raft.Message`` per message (one-way
    over a ready connection: :meth:`RPCClient.send_raft_message`), in
    order over the peer's connection; a message that cannot be delivered within
    ``network_timeout`` is dropped (Raft retries by itself), logged at debug level
    only (the client already warns when a peer becomes unreachable).

    :meth:`serve` registers the receiving side: every ``Raft.Message`` is handed to
    ``receive(data, sender)`` with the authenticated peer ID of the sender
    (``RaftNode.receive``).
    """

    def __init__(self, client: RPCClient):
        self._client = client

    def send(self, peer_id: str, data: bytes) -> None:
        """Send one encoded Raft message; never raises, never reports failures."""
        d = self._client.send_raft_message(peer_id, data)
        d.addErrback(self._dropped, peer_id)

    @staticmethod
    def _dropped(failure, peer_id):
        log.debug(
            "raft message to {peer} dropped: {error}", peer=peer_id, error=failure.getErrorMessage()
        )

    @staticmethod
    def serve(responders, receive) -> None:
        """Deliver incoming ``Raft.Message`` payloads to ``receive(data, sender)``."""

        def handle(caller, payload):
            receive(payload, caller)
            return {}

        responders.register(commands.RaftMessage, handle)
