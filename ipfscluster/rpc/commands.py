"""Every AMP command spoken between cluster peers (DESIGN.md §6, reference §6).

Names are ``b"Service.Method"``.  Services: ``RPC`` (connection housekeeping),
``Cluster``, ``PinTracker``, ``IPFSConnector``, ``Consensus``, ``PeerManager``,
``PeerMonitor`` and ``Raft``.  A handler is registered for a command with
:meth:`ipfscluster.rpc.server.Responders.register`; it is called as
``handler(caller, **arguments)`` (``caller``: the authenticated peer ID of the
other side, or our own for in-process calls) and returns the response as a dict
(``{}`` for commands without a response), a Deferred or a coroutine.

Argument types
--------------
AMP caps every value at 65,535 bytes, so everything that can be longer uses
:class:`Chunked` (bytes split over the keys ``name``, ``name.1``, ``name.2`` …):

- :class:`Chunked`: opaque bytes (Raft messages: the consensus layer encodes them);
- :class:`JSONValue`: one value object with ``to_json()`` / ``from_json()``
  (``ipfscluster.types``), carried as JSON; the class is named lazily
  (``"ipfscluster.types:Pin"``) so this module does not import the value modules;
- :class:`JSONList`: a list of such objects, as a JSON array;
- :class:`PlainJSON`: any JSON-compatible value (maps, lists of strings …).

Long listings are *paged* (:data:`PAGE_ARGUMENTS`/:data:`PAGE_RESPONSE`): the
caller passes ``cursor`` (None for the first page) and ``limit``; the handler
returns ``items`` and ``next_cursor`` (None after the last page).
:meth:`ipfscluster.rpc.client.RPCClient.iter_pages` walks them.

Errors
------
Every :class:`ipfscluster.errors.ClusterError` subclass travels as its
``amp_tag()`` and is raised again, with its message and its simple fields
(``NotLeader.leader`` …, see :func:`encode_error`), on the calling side (the table
is *live*: error classes defined after this module are included).
Commands also list in ``errors`` the failures callers are expected to handle.
Any other exception in a handler is logged on the answering peer and reaches the
caller as :class:`ipfscluster.errors.RemoteError`.
"""

from __future__ import annotations

import importlib
import json

from twisted.protocols import amp

from ipfscluster import errors as E

#: Version of this protocol; peers refuse each other when the versions differ.
PROTOCOL_VERSION = 1
#: Largest AMP value.
MAX_VALUE = 0xFFFF
#: Default page size for paged listings.
DEFAULT_PAGE_SIZE = 1000


# --- error table ----------------------------------------------------------------------


def _error_table() -> dict[bytes, type[E.ClusterError]]:
    return {cls.amp_tag(): cls for cls in E.all_error_classes()}


def error_class(tag: bytes) -> type[E.ClusterError] | None:
    """The ClusterError subclass whose ``amp_tag()`` is ``tag``, or None."""
    return _error_table().get(tag)


_SIMPLE = (str, int, float, bool, type(None))


def encode_error(error: E.ClusterError) -> str:
    """The AMP error description of ``error``: JSON of its message and simple fields.

    Fields are the attributes a ``ClusterError`` was given (``NotLeader.leader``,
    ``ConfigError.key`` …); only strings, numbers, booleans and None travel.
    """
    fields = {
        name: value
        for name, value in vars(error).items()
        if name != "message" and not name.startswith("_") and isinstance(value, _SIMPLE)
    }
    return json.dumps({"message": str(error), "fields": fields}, ensure_ascii=False)


def rebuild_error(cls: type[E.ClusterError], description: str) -> E.ClusterError:
    """An instance of ``cls`` from a description made by :func:`encode_error`.

    A plain-text description is taken as the message.  Classes whose constructor
    wants more than the message are built without calling it.
    """
    message, fields = description, {}
    if description.startswith("{"):
        try:
            decoded = json.loads(description)
            message, fields = decoded["message"], dict(decoded.get("fields") or {})
        except (ValueError, KeyError, TypeError):
            message, fields = description, {}
    try:
        error = cls(message)
    except Exception:
        error = cls.__new__(cls)
        E.ClusterError.__init__(error, message)
    for name, value in fields.items():
        if isinstance(name, str) and not name.startswith("_") and isinstance(value, _SIMPLE):
            setattr(error, name, value)
    return error


class _LiveErrorTable(dict):
    """AMP's ``reverseErrors`` for our commands: tag → a builder of the error.

    Looked up in :func:`errors.all_error_classes` on use, so error classes defined
    after this module are known too.  AMP calls the value with the message.
    """

    def get(self, key, default=None):
        cls = error_class(key)
        if cls is None:
            return default
        return lambda message: rebuild_error(cls, message)

    def __getitem__(self, key):
        builder = self.get(key)
        if builder is None:
            raise KeyError(key)
        return builder

    def __contains__(self, key):
        return error_class(key) is not None


ERROR_CLASSES = _LiveErrorTable()


# --- argument types -------------------------------------------------------------------


def _py_name(name: bytes) -> str:
    return name.decode("ascii").replace("-", "_")


def _chunk_key(name: bytes, index: int) -> bytes:
    return name if index == 0 else b"%s.%d" % (name, index)


class Chunked(amp.Argument):
    """Bytes of any length, split into AMP values of at most 65,535 bytes."""

    def encode(self, value, proto) -> bytes:
        if not isinstance(value, bytes):
            raise TypeError("expected bytes, got %r" % type(value).__name__)
        return value

    def decode(self, data: bytes, proto):
        return data

    def toBox(self, name, strings, objects, proto):
        value = self.retrieve(objects, _py_name(name), proto)
        if value is None and self.optional:
            return
        data = self.encode(value, proto)
        strings[name] = data[:MAX_VALUE]
        for index, start in enumerate(range(MAX_VALUE, len(data), MAX_VALUE), 1):
            strings[_chunk_key(name, index)] = data[start : start + MAX_VALUE]

    def fromBox(self, name, strings, objects, proto):
        first = strings.get(name)
        if first is None:
            if not self.optional:
                raise KeyError(name)
            objects[_py_name(name)] = None
            return
        parts = [first]
        index = 1
        while (part := strings.get(_chunk_key(name, index))) is not None:
            parts.append(part)
            index += 1
        objects[_py_name(name)] = self.decode(b"".join(parts), proto)


def _resolve(ref):
    """A class from ``"module:Name"`` (imported on first use) or the class itself."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def _dumps(data) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _to_json(obj):
    return obj.to_json()


class PlainJSON(Chunked):
    """Any JSON-compatible value (dicts, lists, strings, numbers, None)."""

    def encode(self, value, proto) -> bytes:
        return _dumps(value)

    def decode(self, data, proto):
        return json.loads(data)


class JSONValue(Chunked):
    """One value object with ``to_json()`` and a ``from_json()`` class method."""

    def __init__(self, type_ref, optional=False):
        super().__init__(optional)
        self._type_ref = type_ref

    @property
    def value_type(self):
        return _resolve(self._type_ref)

    def encode(self, value, proto) -> bytes:
        return _dumps(_to_json(value))

    def decode(self, data, proto):
        return self.value_type.from_json(json.loads(data))


class JSONList(JSONValue):
    """A list of value objects, as one JSON array."""

    def encode(self, value, proto) -> bytes:
        return _dumps([_to_json(item) for item in value])

    def decode(self, data, proto):
        from_json = self.value_type.from_json
        return [from_json(item) for item in json.loads(data)]


# --- base command -----------------------------------------------------------------------


class ClusterCommand(amp.Command):
    """Base of every command: live error table (see the module docstring)."""

    errors = {E.ClusterError: E.ClusterError.amp_tag()}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.reverseErrors = ERROR_CLASSES


def _command(name: str, arguments=(), response=(), errors=(), base=ClusterCommand):
    """Define one command class named ``name`` (``"Service.Method"``)."""
    attrs = {
        "commandName": name.encode("ascii"),
        "arguments": list(arguments),
        "response": list(response),
        "errors": {cls: cls.amp_tag() for cls in errors},
        "__doc__": f"AMP command ``{name}``.",
    }
    return type(name.replace(".", ""), (base,), attrs)


PIN = "ipfscluster.types:Pin"
ID = "ipfscluster.types:ID"
PIN_INFO = "ipfscluster.types:PinInfo"
GLOBAL_PIN_INFO = "ipfscluster.types:GlobalPinInfo"
METRIC = "ipfscluster.types:Metric"
VERSION = "ipfscluster.types:Version"
IPFS_ID = "ipfscluster.types:IPFSID"
IPFS_PIN_STATUS = "ipfscluster.types:IPFSPinStatus"

PAGE_ARGUMENTS = [(b"cursor", amp.Unicode(optional=True)), (b"limit", amp.Integer(optional=True))]


def PAGE_RESPONSE(item_type):
    """The response of a paged listing of ``item_type`` values."""
    return [(b"items", JSONList(item_type)), (b"next_cursor", amp.Unicode(optional=True))]


_pin = [(b"pin", JSONValue(PIN))]
_cid = [(b"cid", amp.Unicode())]
_peer = [(b"peer", amp.Unicode())]
_multiaddr = [(b"multiaddr", amp.Unicode())]
_unreachable = (E.PeerUnreachable, E.RPCTimeout)

# --- RPC: connection housekeeping ---------------------------------------------------------

#: First command on every connection, sent by the side that dialled.
Hello = _command(
    "RPC.Hello",
    [(b"version", amp.Integer()), (b"release", amp.Unicode())],
    [(b"version", amp.Integer()), (b"release", amp.Unicode())],
    errors=[E.IncompatibleProtocol],
)
#: Sent by the dialler of a duplicate connection before it closes it.
Goodbye = _command("RPC.Goodbye")

# --- Cluster ----------------------------------------------------------------------------

ClusterID = _command("Cluster.ID", response=[(b"id", JSONValue(ID))])
ClusterPin = _command("Cluster.Pin", _pin, errors=[E.InvalidInput])
ClusterUnpin = _command("Cluster.Unpin", _pin, errors=[E.NotFound])
ClusterPins = _command("Cluster.Pins", PAGE_ARGUMENTS, PAGE_RESPONSE(PIN))
ClusterPinGet = _command("Cluster.PinGet", _cid, [(b"pin", JSONValue(PIN))], errors=[E.NotFound])
ClusterVersion = _command("Cluster.Version", response=[(b"version", JSONValue(VERSION))])
ClusterPeers = _command("Cluster.Peers", response=[(b"peers", JSONList(ID))])
ClusterPeerAdd = _command("Cluster.PeerAdd", _multiaddr, [(b"id", JSONValue(ID))], errors=_unreachable)
ClusterPeerRemove = _command("Cluster.PeerRemove", _peer, errors=[E.NotFound])
ClusterJoin = _command("Cluster.Join", _multiaddr, errors=_unreachable)
ClusterStatusAll = _command("Cluster.StatusAll", PAGE_ARGUMENTS, PAGE_RESPONSE(GLOBAL_PIN_INFO))
ClusterStatus = _command("Cluster.Status", _cid, [(b"info", JSONValue(GLOBAL_PIN_INFO))])
ClusterStatusAllLocal = _command("Cluster.StatusAllLocal", PAGE_ARGUMENTS, PAGE_RESPONSE(PIN_INFO))
ClusterStatusLocal = _command("Cluster.StatusLocal", _cid, [(b"info", JSONValue(PIN_INFO))])
ClusterSyncAllLocal = _command("Cluster.SyncAllLocal", response=[(b"items", JSONList(PIN_INFO))])
ClusterSyncLocal = _command("Cluster.SyncLocal", _cid, [(b"info", JSONValue(PIN_INFO))])
ClusterSyncAll = _command("Cluster.SyncAll", response=[(b"items", JSONList(GLOBAL_PIN_INFO))])
ClusterSync = _command("Cluster.Sync", _cid, [(b"info", JSONValue(GLOBAL_PIN_INFO))])
ClusterStateSync = _command("Cluster.StateSync", response=[(b"items", JSONList(PIN_INFO))])
ClusterRecover = _command("Cluster.Recover", _cid, [(b"info", JSONValue(GLOBAL_PIN_INFO))])
ClusterRecoverAllLocal = _command("Cluster.RecoverAllLocal", response=[(b"items", JSONList(PIN_INFO))])
ClusterRecoverLocal = _command("Cluster.RecoverLocal", _cid, [(b"info", JSONValue(PIN_INFO))])
ClusterRemoteMultiaddrForPeer = _command(
    "Cluster.RemoteMultiaddrForPeer", _peer, [(b"multiaddr", amp.Unicode())], errors=_unreachable
)
ClusterConnectGraph = _command("Cluster.ConnectGraph", response=[(b"graph", PlainJSON())])

# --- PinTracker -------------------------------------------------------------------------

PinTrackerTrack = _command("PinTracker.Track", _pin)
PinTrackerUntrack = _command("PinTracker.Untrack", _pin)
PinTrackerStatusAll = _command("PinTracker.StatusAll", PAGE_ARGUMENTS, PAGE_RESPONSE(PIN_INFO))
PinTrackerStatus = _command("PinTracker.Status", _cid, [(b"info", JSONValue(PIN_INFO))])
PinTrackerRecover = _command("PinTracker.Recover", _cid, [(b"info", JSONValue(PIN_INFO))])
PinTrackerRecoverAll = _command("PinTracker.RecoverAll", response=[(b"items", JSONList(PIN_INFO))])

# --- IPFSConnector ----------------------------------------------------------------------

IPFSConnectorPin = _command("IPFSConnector.Pin", _pin)
IPFSConnectorUnpin = _command("IPFSConnector.Unpin", _pin)
IPFSConnectorID = _command("IPFSConnector.ID", response=[(b"id", JSONValue(IPFS_ID))])
#: ``status``: the ``IPFSPinStatus`` of the CID in the IPFS daemon.
IPFSConnectorPinLsCid = _command("IPFSConnector.PinLsCid", _cid, [(b"status", JSONValue(IPFS_PIN_STATUS))])
#: ``pins``: map CID → IPFS pin type, filtered by ``type_filter``.
IPFSConnectorPinLs = _command(
    "IPFSConnector.PinLs", [(b"type_filter", amp.Unicode())], [(b"pins", PlainJSON())]
)
IPFSConnectorConnectSwarms = _command("IPFSConnector.ConnectSwarms")
IPFSConnectorConfigKey = _command("IPFSConnector.ConfigKey", [(b"key", amp.Unicode())], [(b"value", PlainJSON())])
IPFSConnectorFreeSpace = _command("IPFSConnector.FreeSpace", response=[(b"bytes", amp.Integer())])
IPFSConnectorRepoSize = _command("IPFSConnector.RepoSize", response=[(b"bytes", amp.Integer())])
IPFSConnectorSwarmPeers = _command("IPFSConnector.SwarmPeers", response=[(b"peers", PlainJSON())])

# --- Consensus (leader redirection) -----------------------------------------------------

ConsensusLogPin = _command("Consensus.LogPin", _pin, errors=_unreachable)
ConsensusLogUnpin = _command("Consensus.LogUnpin", _pin, errors=_unreachable)
ConsensusAddPeer = _command("Consensus.AddPeer", _peer, errors=_unreachable)
ConsensusRmPeer = _command("Consensus.RmPeer", _peer, errors=_unreachable)
ConsensusPeers = _command("Consensus.Peers", response=[(b"peers", PlainJSON())])
#: The leader's read index once a heartbeat round confirmed its leadership (ReadIndex):
#: a follower that has applied it holds every entry committed before it asked.
ConsensusReadIndex = _command("Consensus.ReadIndex", response=[(b"index", amp.Integer())],
                              errors=_unreachable)

# --- PeerManager ------------------------------------------------------------------------

PeerManagerAddPeer = _command("PeerManager.AddPeer", _multiaddr)
PeerManagerImportAddresses = _command("PeerManager.ImportAddresses", [(b"multiaddrs", PlainJSON())])
#: Sent by the peer adding us to its cluster, before the Raft change: a peer alone in
#: a cluster of its own (no pins) resets its Raft data to join (fails otherwise).
PeerManagerPrepareJoin = _command("PeerManager.PrepareJoin", errors=[E.InvalidInput])
#: Sent to a peer once its removal from the peerset is committed: it shuts down.
PeerManagerRmPeerShutdown = _command("PeerManager.RmPeerShutdown")

# --- PeerMonitor ------------------------------------------------------------------------

PeerMonitorLogMetric = _command("PeerMonitor.LogMetric", [(b"metric", JSONValue(METRIC))])
PeerMonitorLatestMetrics = _command(
    "PeerMonitor.LatestMetrics", [(b"name", amp.Unicode())], [(b"metrics", JSONList(METRIC))]
)

# --- Raft (opaque payloads; the consensus layer encodes and decodes them) ---------------

#: One Raft message (vote, append entries, their responses …); answered with an
#: empty ack once the receiver has taken it (not necessarily processed it).
RaftMessage = _command("Raft.Message", [(b"payload", Chunked())])
#: One chunk of a snapshot being installed; the ack means it was stored, which is
#: the flow control of snapshot transfer.  ``payload`` may be any size.
RaftInstallSnapshotChunk = _command("Raft.InstallSnapshotChunk", [(b"payload", Chunked())])


def all_commands() -> dict[bytes, type[ClusterCommand]]:
    """Every command of this module by wire name."""
    found = {}
    for value in globals().values():
        if isinstance(value, type) and issubclass(value, ClusterCommand) and value is not ClusterCommand:
            found[value.commandName] = value
    return found
