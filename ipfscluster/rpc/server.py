"""The serving side of the cluster RPC: handler registry and listener.

:class:`Responders` maps commands (:mod:`ipfscluster.rpc.commands`) to handlers.
A handler is ``handler(caller, **arguments)`` where ``caller`` is the
authenticated peer ID of the calling peer (our own ID for in-process calls); it
returns the response dict (``{}``/None when the command has no response), a
Deferred or a coroutine, and raises :class:`ipfscluster.errors.ClusterError`
subclasses for failures the caller should see.  The same registry serves remote
calls (through :class:`ipfscluster.rpc.protocol.PeerProtocol`) and in-process
calls (:meth:`Responders.dispatch_local`), so a local call behaves like a remote
one except that nothing is serialised.

:class:`RPCServer` listens on ``cluster.listen_multiaddress`` with TLS
(:mod:`ipfscluster.rpc.tls`) and hands every accepted connection to the
:class:`ipfscluster.rpc.client.RPCClient`, which owns all connections: one
connection per peer pair serves calls in both directions.
"""

from __future__ import annotations

from twisted.application.service import Service
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ipfscluster.errors import ClusterError, RemoteError, UnknownCommand
from ipfscluster.interfaces import IComponent

log = Logger(namespace="rpc")


def _py(name: bytes) -> str:
    return name.decode("ascii").replace("-", "_")


class Responders:
    """Command → handler registry of one peer."""

    def __init__(self):
        self._handlers: dict[bytes, tuple[type, object]] = {}

    def register(self, command, handler) -> None:
        """Serve ``command`` with ``handler(caller, **arguments) -> dict``.

        Replaces an earlier handler of the same command.
        """
        self._handlers[command.commandName] = (command, handler)

    def register_value(self, command, function) -> None:
        """Serve ``command`` with ``function(caller, arg) -> value``.

        For commands with at most one argument and at most one response field:
        ``arg`` is that argument (None without one) and the value returned becomes
        the response field (ignored when there is none).  This is the handler form
        matching :meth:`ipfscluster.rpc.client.RPCClient.call`.
        """
        arg_names = [_py(name) for name, _ in command.arguments]
        out_names = [_py(name) for name, _ in command.response]
        if len(arg_names) > 1 or len(out_names) > 1:
            raise TypeError(f"{command.commandName!r} has several arguments or results; use register()")

        def handler(caller, **kwargs):
            arg = kwargs[arg_names[0]] if arg_names else None
            d = maybeDeferred(function, caller, arg)
            return d.addCallback(lambda value: {out_names[0]: value} if out_names else {})

        self.register(command, handler)

    def unregister(self, command) -> None:
        """Stop serving ``command`` (callers then get ``UnknownCommand``)."""
        self._handlers.pop(command.commandName, None)

    def lookup(self, name: bytes):
        """``(command, handler)`` for the wire name ``name``, or None."""
        return self._handlers.get(name)

    def names(self) -> list[bytes]:
        """Wire names of the registered commands."""
        return sorted(self._handlers)

    def dispatch_local(self, command, caller: str, arguments: dict) -> Deferred:
        """Run the handler of ``command`` in-process; a Deferred of the response dict.

        Missing optional arguments are passed as None and missing optional response
        fields are filled with None, as over the wire.  Fails with
        :class:`UnknownCommand` when nothing handles ``command``, the handler's
        ``ClusterError``, or :class:`RemoteError` (logged) for anything else.
        """
        found = self._handlers.get(command.commandName)
        if found is None:
            return _fail(UnknownCommand(f"this peer has no handler for {command.commandName.decode()}"))
        _, handler = found
        try:
            kwargs = _complete(command.arguments, arguments, command, "argument")
        except TypeError as err:
            return _fail(err)
        d = maybeDeferred(handler, caller, **kwargs)
        d.addCallback(lambda result: _complete(command.response, result or {}, command, "response field"))
        d.addErrback(_local_error, command)
        return d


def _fail(error) -> Deferred:
    d = Deferred()
    d.errback(Failure(error))
    return d


def _complete(spec, values: dict, command, what: str) -> dict:
    out = dict(values)
    for name, argument in spec:
        key = _py(name)
        if key not in out:
            if not argument.optional:
                raise TypeError(f"{command.commandName.decode()}: missing {what} {key!r}")
            out[key] = None
    return out


def _local_error(failure, command):
    if failure.check(ClusterError):
        return failure
    log.failure("in-process handler of {command} failed", failure, command=command.commandName.decode())
    return Failure(
        RemoteError(
            f"handling {command.commandName.decode()} failed: "
            f"{type(failure.value).__name__}: {failure.value} (see the log)"
        )
    )


@implementer(IComponent)
class RPCServer(Service):
    """Listens for cluster peers on ``listen`` (a multiaddress).

    :param reactor: provides ``IReactorTCP``/``IReactorTime``.
    :param client: the :class:`ipfscluster.rpc.client.RPCClient` owning all
        connections (accepted ones included).
    :param listen: ``cluster.listen_multiaddress`` (text or ``Multiaddr``).

    ``startService()`` returns a Deferred firing once listening (``port`` is then
    the listening port; :meth:`address` its host and port).  ``stopService()``
    stops listening and closes every connection of the client.
    """

    name = "rpc"

    def __init__(self, reactor, client, listen):
        self._reactor = reactor
        self._client = client
        self._listen = listen
        self.port = None

    def _endpoint_description(self) -> str:
        from ipfscluster.multiaddr import Multiaddr

        maddr = self._listen if not isinstance(self._listen, str) else Multiaddr.parse(self._listen)
        return maddr.tcp_endpoint_string()

    def startService(self):
        super().startService()
        self._client.tls.warn_if_unprotected(str(self._listen))
        endpoint = serverFromString(self._reactor, self._endpoint_description())
        d = endpoint.listen(self._client.server_factory())

        def listening(port):
            self.port = port
            host = port.getHost()
            log.info(
                "cluster RPC listening on {host}:{port} as peer {peer_id}",
                host=host.host,
                port=host.port,
                peer_id=self._client.peer_id,
            )
            return port

        return d.addCallback(listening)

    def address(self) -> tuple[str, int]:
        """``(host, port)`` of the listening socket (after ``startService``)."""
        host = self.port.getHost()
        return host.host, host.port

    def stopService(self):
        super().stopService()
        port, self.port = self.port, None
        d = maybeDeferred(port.stopListening) if port is not None else Deferred()
        if port is None:
            d.callback(None)
        d.addCallback(lambda _: self._client.close())
        return d
