"""One AMP connection between two authenticated cluster peers.

:class:`PeerProtocol` runs inside a ``TLSMemoryBIOProtocol``; the same class is
used on both sides and both sides call commands over it.  Its life:

1. ``makeConnection``: TCP_NODELAY is set (Twisted leaves Nagle on, which
   collapses pipelined calls) and the connection is announced to the node.
2. ``handshakeCompleted``: the TLS layer verified the other side's certificate
   (:mod:`ipfscluster.rpc.tls`); its peer ID is now known.  The side that dialled
   sends ``RPC.Hello`` with :data:`~ipfscluster.rpc.commands.PROTOCOL_VERSION`.
3. The accepting side answers the hello (or refuses an incompatible version with
   a fatal error that closes the connection; both sides log both versions); from
   then on it serves every command.  The dialling side serves commands as soon as
   it sent its hello (the other side only calls after accepting it) and becomes
   *ready* when the answer arrives.  Each side hands the ready connection to the
   node (:meth:`ipfscluster.rpc.client.RPCClient.connection_ready`).
4. Commands are looked up in the node's responders; the handler is called with
   the authenticated peer ID as ``caller``.  Typed errors travel as their AMP tag;
   anything else is logged here and sent as ``RemoteError``.  A command sent
   one-way (:meth:`PeerProtocol.send_one_way`, no ``_ask`` in its box: Raft
   messages) gets no answer; its handler's failure is only logged here.
5. A duplicate connection (both peers dialled at once) is *retired*: no new calls
   go over it; the side that dialled it sends ``RPC.Goodbye`` and closes it once
   nothing is in flight any more (TCP ordering makes the goodbye's answer arrive
   after every call the other side sent before it).

A connection that ends before it is ready logs one line saying why (another
cluster secret, misdial, version …); :meth:`PeerProtocol.when_ready` then fails
with the typed error.
"""

from __future__ import annotations

from OpenSSL import SSL
from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.internet.error import ConnectionClosed
from twisted.internet.interfaces import IHandshakeListener
from twisted.logger import Logger
from twisted.protocols import amp
from twisted.python.failure import Failure
from zope.interface import implementer

from ipfscluster import __version__
from ipfscluster.errors import (
    ClusterError,
    ClusterSecretMismatch,
    IncompatibleProtocol,
    PeerAuthenticationFailed,
    PeerConnectionLost,
    PeerIDMismatch,
    RemoteError,
    UnknownCommand,
)
from ipfscluster.rpc import commands
from ipfscluster.rpc.tls import explain_handshake_failure, handshake_state

log = Logger(namespace="rpc")


def _describe_address(transport) -> str:
    try:
        peer = transport.getPeer()
        return f"{peer.host}:{peer.port}"
    except AttributeError:
        return "?"


@implementer(IHandshakeListener)
class PeerProtocol(amp.AMP):
    """An AMP connection to one other peer (see the module docstring).

    :param node: the owner (an :class:`ipfscluster.rpc.client.RPCClient`): gives
        ``peer_id``, ``clock``, ``responders`` and receives the connection events.
    :param dialled: True when this side dialled.
    :param expected_peer: the peer ID dialled (None when accepting).

    ``peer_id`` is the authenticated ID of the other side, ``address`` the remote
    ``host:port``; :meth:`when_ready` tells when the version exchange is done.
    """

    #: The RPC protocol version this side speaks (see ``commands.PROTOCOL_VERSION``).
    protocol_version = commands.PROTOCOL_VERSION

    def __init__(self, node, dialled: bool, expected_peer: str | None = None):
        super().__init__()
        self.node = node
        self.dialled = dialled
        self.expected_peer = expected_peer
        self.peer_id: str | None = None
        self.address = "?"
        self.is_ready = False
        self.retired = False
        self.closed = False
        self.remote_release: str | None = None
        self._ready_outcome: tuple[bool, object] | None = None
        self._ready_waiters: list[Deferred] = []
        self.receptions = 0  # reads from the socket so far (liveness of the connection)
        self._hello_sent = False
        self._inflight_in = 0
        self._goodbye_state = None  # None, "sent", "done"
        self._early_error: ClusterError | None = None
        #: the pending check that something arrived after one-way sends (RPCClient)
        self.silence_watch = None

    # --- connection events --------------------------------------------------------------

    def makeConnection(self, transport):
        # AMP.makeConnection logs every connection at info level; we log our own lines.
        amp.BinaryBoxProtocol.makeConnection(self, transport)

    def connectionMade(self):
        self.address = _describe_address(self.transport)
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)
        self.node.protocol_started(self)

    def handshakeCompleted(self):
        state = handshake_state(self.transport)
        if state is None or state.peer_id is None:
            # cannot happen with our connection creators; refuse rather than guess
            self._refuse(PeerAuthenticationFailed(f"TLS with {self.address} completed without a verified peer ID"))
            return
        self.peer_id = state.peer_id
        if self.dialled:
            self._hello_sent = True
            d = self.callRemote(commands.Hello, version=self.protocol_version, release=__version__)
            d.addCallbacks(self._hello_answered, self._hello_failed)

    def dataReceived(self, data):
        self.receptions += 1
        amp.AMP.dataReceived(self, data)

    def connectionLost(self, reason):
        # Detach from the node first: failing the outstanding calls below runs the
        # callers' code, and their next call must not pick this connection again.
        self.closed = True
        self.node.protocol_lost(self, reason)
        if self._ready_outcome is None:
            self._settle_ready(False, self._explain_early_end(reason))
        amp.BinaryBoxProtocol.connectionLost(self, reason)
        self.transport = None

    def unhandledError(self, failure):
        """An error escaped a caller's callbacks (or sending an answer failed).

        AMP would drop the connection; one caller's bug must not fail every other
        call sharing it, so the error is only logged.
        """
        log.failure(
            "unhandled error in a call with peer {peer} (the connection stays up)",
            failure,
            peer=self.peer_id,
        )

    def _explain_early_end(self, reason) -> ClusterError:
        """The typed error for a connection that ended before it was ready (logged once)."""
        if self._early_error is not None:
            return self._early_error
        state = handshake_state(self.transport)
        if reason.check(SSL.Error) or (state is not None and state.rejection is not None):
            error = explain_handshake_failure(state, reason.value, self.address)
            self._log_refusal(error)
            return error
        if self.peer_id is None:
            error = PeerAuthenticationFailed(
                f"the connection with {self.address} closed before the TLS handshake completed"
            )
            log.info("{message}", message=str(error), peer_address=self.address)
            return error
        return PeerConnectionLost(
            f"the connection to peer {self.peer_id} at {self.address} closed before the "
            "RPC version exchange completed"
        )

    def _log_refusal(self, error: ClusterError) -> None:
        if self._early_error is not None:
            return
        self._early_error = error
        emit = log.error if isinstance(error, (ClusterSecretMismatch, PeerIDMismatch)) else log.warn
        emit(
            "{message}",
            message=str(error),
            peer_address=self.address,
            local_peer=self.node.peer_id,
            error_class=type(error).__name__,
        )

    def _refuse(self, error: ClusterError) -> None:
        self._log_refusal(error)
        self._settle_ready(False, error)
        if self.transport is not None:
            self.transport.abortConnection()

    def when_ready(self) -> Deferred:
        """A Deferred firing with this protocol once the version exchange is done.

        Fails with the typed reason (``PeerAuthenticationFailed`` and subclasses,
        ``IncompatibleProtocol``, ``PeerConnectionLost``) when the connection ends
        before.  Cancelling it aborts the connection.
        """
        if self._ready_outcome is not None:
            ok, value = self._ready_outcome
            return succeed(self) if ok else fail(Failure(value))
        d = Deferred(canceller=self._cancel_ready)
        self._ready_waiters.append(d)
        return d

    def _settle_ready(self, ok: bool, value) -> None:
        if self._ready_outcome is not None:
            return
        self._ready_outcome = (ok, value)
        waiters, self._ready_waiters = self._ready_waiters, []
        for d in waiters:
            if d.called:  # cancelled by an earlier waiter's callbacks
                continue
            if ok:
                d.callback(self)
            else:
                d.errback(Failure(value))

    def _cancel_ready(self, d):
        if d in self._ready_waiters:
            self._ready_waiters.remove(d)
        if self.transport is not None:
            self.transport.abortConnection()

    # --- version exchange ---------------------------------------------------------------

    def _hello_answered(self, answer):
        self.remote_release = answer["release"]
        if answer["version"] != self.protocol_version:
            self._refuse(self._incompatible(answer["version"], answer["release"]))
            return
        self._become_ready()

    def _hello_failed(self, failure):
        if failure.check(IncompatibleProtocol):
            error = IncompatibleProtocol(
                f"peer {self.peer_id} at {self.address} refused us: {failure.value}"
            )
            self._refuse(error)
            return None
        if failure.check(ConnectionClosed, SSL.Error) or self.closed:
            return None  # connectionLost explains it
        if failure.check(ClusterError):
            self._refuse(failure.value)
            return None
        return failure

    def _incompatible(self, theirs, release) -> IncompatibleProtocol:
        return IncompatibleProtocol(
            f"peer {self.peer_id} at {self.address} speaks RPC protocol version {theirs} "
            f"(ipfscluster {release}); this peer speaks version {self.protocol_version} "
            f"(ipfscluster {__version__}): run the same ipfscluster release on every peer"
        )

    def _on_hello(self, version, release):
        self.remote_release = release
        if version != self.protocol_version:
            error = self._incompatible(version, release)
            self._log_refusal(error)
            raise error
        self._become_ready()
        return {"version": self.protocol_version, "release": __version__}

    def _become_ready(self):
        self.is_ready = True
        self.node.connection_ready(self)
        self._settle_ready(True, self)

    # --- serving ------------------------------------------------------------------------

    def locateResponder(self, name):
        if name == commands.Hello.commandName and not self.dialled and not self.is_ready:
            return self._responder(commands.Hello, self._on_hello)
        if self.peer_id is None or not (self.is_ready or self._hello_sent):
            return self._responder(None, self._not_ready, name)
        if name == commands.Goodbye.commandName:
            return self._responder(commands.Goodbye, self._on_goodbye)
        found = self.node.responders.lookup(name)
        if found is None:
            return self._responder(None, self._unknown, name)
        command, handler = found
        return self._responder(command, handler, self.peer_id)

    def _not_ready(self, name):
        raise IncompatibleProtocol(
            f"{name.decode('ascii', 'replace')} received before the RPC version exchange; "
            "the other side does not follow the ipfscluster RPC protocol"
        )

    def _unknown(self, name):
        raise UnknownCommand(
            f"peer {self.node.peer_id} has no handler for {name.decode('ascii', 'replace')}; "
            "is it running another ipfscluster release?"
        )

    def _on_goodbye(self):
        self.retired = True
        self.node.connection_retired(self)
        return {}

    def _responder(self, command, handler, *leading):
        def respond(box):
            if command is not None and amp.ASK not in box:
                return self._one_way(command, box, handler, leading)
            self._inflight_in += 1
            if command is None:
                d = maybeDeferred(handler, *leading)
            else:
                d = maybeDeferred(_call_handler, command, box, self, handler, leading)
                d.addCallback(lambda result: command.makeResponse(result or {}, self))
            d.addErrback(self._to_remote_error, command)
            d.addBoth(self._responded)
            return d

        return respond

    def _one_way(self, command, box, handler, leading):
        """Serve a command sent without asking for an answer (see :meth:`send_one_way`):
        nothing goes back; a failure is logged here, where it happened."""
        try:
            result = _call_handler(command, box, self, handler, leading)
        except Exception:
            self._one_way_failed(Failure(), command)
        else:
            if isinstance(result, Deferred):
                result.addErrback(self._one_way_failed, command)
        return succeed(None)

    def _one_way_failed(self, failure, command):
        log.failure("handler of one-way {command} failed for peer {peer}", failure,
                    command=command.commandName.decode("ascii"), peer=self.peer_id)

    def _to_remote_error(self, failure, command):
        name = command.commandName.decode("ascii") if command is not None else "?"
        if failure.check(ClusterError):
            tag = failure.value.amp_tag()
            text = commands.encode_error(failure.value)
            # a refused version exchange closes the connection after the answer
            fatal = isinstance(failure.value, IncompatibleProtocol) and command in (None, commands.Hello)
        else:
            log.failure(
                "handler of {command} failed for peer {peer}",
                failure,
                command=name,
                peer=self.peer_id,
            )
            tag = RemoteError.amp_tag()
            text = (
                f"peer {self.node.peer_id} failed handling {name}: "
                f"{type(failure.value).__name__}: {failure.value} (see that peer's log)"
            )
            fatal = False
        return Failure(amp.RemoteAmpError(tag, text, fatal=fatal, local=failure))

    def _responded(self, result):
        self._inflight_in -= 1
        if self.retired:
            self.node.clock.callLater(0, self.close_if_retired_and_idle)
        return result

    # --- calling ------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """True while new calls may be sent over this connection."""
        return self.is_ready and not self.retired and not self.closed

    @property
    def idle(self) -> bool:
        return not self._outstandingRequests and self._inflight_in == 0

    def send_one_way(self, command, arguments: dict) -> None:
        """Send ``command`` without asking for an answer (an AMP box with no
        ``_ask``): the other side runs its handler and sends nothing back.

        For messages whose answer would carry nothing (Raft's: its responses are
        messages of their own).  Raises like ``callRemote`` for bad arguments.
        """
        self._sendBoxCommand(command.commandName, command.makeArguments(arguments, self),
                             requiresAnswer=False)

    def abort(self):
        """Drop this connection now (it is considered dead); no new call uses it."""
        if self.closed:
            return
        self.retired = True
        self.node.connection_retired(self)
        self.transport.abortConnection()

    def retire(self):
        """Stop using this (duplicate) connection and close it when it is idle."""
        if self.retired and self._goodbye_state is not None:
            return
        self.retired = True
        if self.dialled and self._goodbye_state is None and not self.closed:
            self._goodbye_state = "sent"
            d = self.callRemote(commands.Goodbye)
            d.addCallbacks(self._goodbye_answered, lambda _: None)

    def _goodbye_answered(self, _):
        self._goodbye_state = "done"
        self.close_if_retired_and_idle()

    def close_if_retired_and_idle(self):
        if self.retired and self._goodbye_state == "done" and self.idle and not self.closed:
            log.debug("closing duplicate connection to peer {peer}", peer=self.peer_id)
            self.transport.loseConnection()


def _call_handler(command, box, proto, handler, leading):
    kwargs = command.parseArguments(box, proto)
    return handler(*leading, **kwargs)


class PeerFactory:
    """Builds :class:`PeerProtocol` instances for one side of a connection.

    Used as the wrapped factory of a ``TLSMemoryBIOFactory``.
    """

    noisy = False

    def __init__(self, node, dialled: bool, expected_peer: str | None = None):
        self.node = node
        self.dialled = dialled
        self.expected_peer = expected_peer

    def doStart(self):
        pass

    def doStop(self):
        pass

    def startedConnecting(self, connector):
        pass

    def clientConnectionFailed(self, connector, reason):
        pass

    def clientConnectionLost(self, connector, reason):
        pass

    def buildProtocol(self, addr):
        proto = PeerProtocol(self.node, self.dialled, self.expected_peer)
        proto.factory = self
        return proto
