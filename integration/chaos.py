"""A small TCP chaos proxy for one peer link (portable: no iptables).

:class:`LinkProxy` listens on 127.0.0.1 and forwards every accepted connection to
one target (a peer's cluster RPC port).  The fault suite configures peer *i* to
reach peer *j* through proxy (*i*, *j*), so every byte between two peers crosses
one of the proxies and can be disturbed.  Modes (:meth:`LinkProxy.set_mode`):

- ``"ok"``: forward both ways;
- ``"blackhole"``: accept connections and bytes, forward nothing (a partition that
  looks like a dead network: the peers only notice by their timeouts);
- ``"cut_forward"`` / ``"cut_backward"``: drop the bytes going to the target / coming
  back from it (a one-way cut);
- ``"delay"``: forward after ``delay`` seconds (order kept per direction).

:meth:`LinkProxy.reset` closes every proxied connection (both ends see a reset).

Why hand-written: a few Twisted protocols; the maintained alternatives
(toxiproxy) are separate Go daemons.
"""

from __future__ import annotations

from twisted.internet import protocol

MODES = ("ok", "blackhole", "cut_forward", "cut_backward", "delay")


class _Half(protocol.Protocol):
    """One side of a proxied connection; ``peer`` is the other side."""

    def __init__(self, proxy: LinkProxy, forward: bool):
        self.proxy = proxy
        self.forward = forward  # True: bytes received here go to the target
        self.peer: _Half | None = None
        self.pending: list[bytes] = []
        self.closed = False

    def connectionMade(self):
        self.proxy.connections.add(self)
        if not self.forward and self.peer is not None:
            # the outbound side is connected: relay what the client sent meanwhile
            # (relayed from buildProtocol, it was dropped: no transport there yet,
            # and the peer's TLS handshake waited out its timeout)
            inbound = self.peer
            if inbound.closed:  # the client gave up (or was reset) meanwhile
                self.transport.loseConnection()
                return
            pending, inbound.pending = inbound.pending, []
            for data in pending:
                self.proxy.relay(inbound, data)

    def dataReceived(self, data: bytes):
        if self.peer is None:
            self.pending.append(data)
            return
        self.proxy.relay(self, data)

    def connectionLost(self, reason):
        self.closed = True
        self.proxy.connections.discard(self)
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.loseConnection()


class _Outbound(protocol.ClientFactory):
    def __init__(self, inbound: _Half):
        self.inbound = inbound

    def buildProtocol(self, addr):
        half = _Half(self.inbound.proxy, forward=False)
        half.peer, self.inbound.peer = self.inbound, half
        return half

    def clientConnectionFailed(self, connector, reason):
        self.inbound.transport.loseConnection()


class _Inbound(protocol.ServerFactory):
    def __init__(self, proxy: LinkProxy):
        self.proxy = proxy

    def buildProtocol(self, addr):
        half = _Half(self.proxy, forward=True)
        host, port = self.proxy.target
        self.proxy.reactor.connectTCP(host, port, _Outbound(half), timeout=10)
        return half


class LinkProxy:
    """A TCP proxy to ``target`` (host, port) with a fault mode (see module doc)."""

    def __init__(self, reactor, target: tuple[str, int]):
        self.reactor = reactor
        self.target = target
        self.mode = "ok"
        self.delay = 0.0
        self.connections: set[_Half] = set()
        #: bytes the proxy received from either side (forwarded or not)
        self.bytes_seen = 0
        self._port = None
        self._calls: set = set()

    def listen(self) -> int:
        """Start listening on 127.0.0.1 (a port the system picks); return the port."""
        self._port = self.reactor.listenTCP(0, _Inbound(self), interface="127.0.0.1")
        return self._port.getHost().port

    def set_mode(self, mode: str, delay: float = 0.0) -> None:
        """Change the fault mode (``ValueError`` for an unknown one)."""
        if mode not in MODES:
            raise ValueError(f"unknown chaos mode {mode!r}: choose one of {', '.join(MODES)}")
        self.mode, self.delay = mode, delay

    def relay(self, source: _Half, data: bytes) -> None:
        self.bytes_seen += len(data)
        mode = self.mode
        if mode == "blackhole" or (mode == "cut_forward" and source.forward) \
                or (mode == "cut_backward" and not source.forward):
            return
        target = source.peer
        if mode == "delay" and self.delay > 0:
            def later():
                self._calls.discard(call)
                if target.transport is not None:
                    target.transport.write(data)
            call = self.reactor.callLater(self.delay, later)
            self._calls.add(call)
            return
        if target.transport is not None:  # None: the other side is already gone
            target.transport.write(data)

    def reset(self) -> None:
        """Abort every proxied connection."""
        for half in list(self.connections):
            if half.transport is not None:
                half.transport.abortConnection()

    async def stop(self) -> None:
        """Stop listening, drop the connections and pending delayed writes."""
        for call in list(self._calls):
            if call.active():
                call.cancel()
        self._calls.clear()
        self.reset()
        if self._port is not None:
            port, self._port = self._port, None
            await port.stopListening()


__all__ = ["LinkProxy", "MODES"]
