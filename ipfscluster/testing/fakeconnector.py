"""An in-memory :class:`~ipfscluster.interfaces.IIPFSConnector` with fault knobs.

:class:`FakeIPFSConnector` stands in for the kubo connector (``ipfscluster.ipfsconn``)
in the tests of the components that talk to the IPFS daemon (pin tracker, informers,
cluster).  It keeps the ipfs state in plain dicts, answers on an injected clock and
passes the same behaviour tests as the real connector
(:mod:`ipfscluster.testing.connector_contract`).  It has no HTTP in it: the fake
*daemon* for testing the real connector lives in :mod:`ipfscluster.testing.fakeipfs`.

Knobs (all take effect for calls made afterwards, except :meth:`release` and
:meth:`set_reachable`, which also act on waiting calls):

- ``latency`` (seconds, default 0): every call answers after ``latency`` on the
  clock (0: at once, synchronously);
- :meth:`fail` / :meth:`unfail`: ``pin``/``unpin`` of that CID fail with an
  :class:`~ipfscluster.errors.IPFSError` (or the error given);
- :meth:`hang` / :meth:`release`: ``pin``/``unpin`` of that CID wait (before doing
  anything) until released; with ``pin_timeout`` / ``unpin_timeout`` set they fail
  with :class:`~ipfscluster.errors.OperationTimeout` after that long, as the real
  connector does when the daemon makes no progress;
- :meth:`set_reachable`: ``False`` makes every call fail with
  :class:`~ipfscluster.errors.IPFSUnreachable` (``id`` reports it inside the value);
- :meth:`add_pin` / :meth:`remove_pin`: change the ipfs state behind the cluster's
  back (a daemon that loses pins, a user pinning by hand).

Counters for assertions: :attr:`calls` (``(method, argument)`` in call order),
:attr:`in_flight` / :attr:`max_in_flight` (pin/unpin calls started and not yet
answered) and :attr:`max_in_flight_per_cid` (the most for a single CID).  A waiting call's Deferred can be cancelled (it fails with
``CancelledError``); ``stopService`` fails every waiting call and every later call
with :class:`~ipfscluster.errors.ShuttingDown` and leaves no timer behind.
"""

from __future__ import annotations

import attrs
from twisted.application.service import Service
from twisted.internet import defer
from zope.interface import implementer

from ipfscluster.cid import CID, DAG_CBOR, DAG_PB, RAW, sha256_multihash
from ipfscluster.errors import (
    InvalidCID,
    InvalidInput,
    IPFSError,
    IPFSUnreachable,
    NotFound,
    OperationTimeout,
    ShuttingDown,
)
from ipfscluster.identity import peer_id_from_public_key
from ipfscluster.interfaces import IIPFSConnector
from ipfscluster.types import IPFSID, IPFSPinStatus, RepoStat

__all__ = ["FakeIPFSConnector"]


_CODECS = {"raw": RAW, "dag-pb": DAG_PB, "dag-cbor": DAG_CBOR}
_TYPE_FILTERS = {
    "recursive": (IPFSPinStatus.RECURSIVE,),
    "direct": (IPFSPinStatus.DIRECT,),
    "indirect": (IPFSPinStatus.INDIRECT,),
    "all": (IPFSPinStatus.RECURSIVE, IPFSPinStatus.DIRECT, IPFSPinStatus.INDIRECT),
}
_PIN_CALLS = ("pin", "unpin")


def _default_config(storage_max: int) -> dict:
    return {
        "Datastore": {"StorageMax": f"{storage_max // 10**9}GB", "GCPeriod": "1h"},
        "Addresses": {"API": "/ip4/127.0.0.1/tcp/5001", "Swarm": ["/ip4/0.0.0.0/tcp/4001"]},
    }


@attrs.define(eq=False)
class _Waiter:
    """A pin/unpin call parked by :meth:`FakeIPFSConnector.hang`."""

    cid: CID
    deferred: defer.Deferred
    resume: object  # zero-argument callable doing the operation
    handle: dict
    timer: object = None


@implementer(IIPFSConnector)
class FakeIPFSConnector(Service):
    """IIPFSConnector over dicts, answering on ``clock`` (see the module docstring).

    ``peer_id`` is the daemon's IPFS peer ID (a fixed one by default);
    ``storage_max`` / ``repo_base_size`` shape ``repo_stat``; ``pin_timeout`` /
    ``unpin_timeout`` (seconds or None for "never") bound hung calls.
    """

    def __init__(
        self,
        clock,
        *,
        peer_id: str | None = None,
        latency: float = 0.0,
        pin_timeout: float | None = None,
        unpin_timeout: float | None = None,
        storage_max: int = 10 * 10**9,
        repo_base_size: int = 4096,
    ):
        self.clock = clock
        self.peer_id = peer_id or peer_id_from_public_key(b"\x01" * 32)
        self.latency = latency
        self.pin_timeout = pin_timeout
        self.unpin_timeout = unpin_timeout
        self.storage_max = storage_max
        self.repo_base_size = repo_base_size
        #: the ipfs state: CID -> IPFSPinStatus (DIRECT/RECURSIVE/INDIRECT)
        self.pins: dict[CID, IPFSPinStatus] = {}
        #: raw blocks stored with block_put
        self.blocks: dict[CID, bytes] = {}
        #: the daemon configuration config_key walks
        self.config: dict = _default_config(storage_max)
        #: IPNS names resolve() knows: name -> CID
        self.ipns: dict[str, CID] = {}
        self.addresses: tuple = ()
        self.connected: set[str] = set()
        self.calls: list[tuple[str, object]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        #: most pin/unpin calls for one CID ever in flight together
        self.max_in_flight_per_cid = 0
        self._flying: dict[CID, int] = {}
        self.reachable = True
        self._failing: dict[CID, Exception | None] = {}
        self._hung: set[CID] = set()
        self._waiters: list[_Waiter] = []
        self._pending: dict = {}  # latency timer -> the Deferred it answers
        self._ready_waiters: list[defer.Deferred] = []
        self._stopped = False

    # --- knobs ----------------------------------------------------------------------

    def fail(self, cid: CID, error: Exception | None = None) -> None:
        """Make ``pin``/``unpin`` of ``cid`` fail (with ``error`` or an IPFSError)."""
        self._failing[cid] = error

    def unfail(self, cid: CID | None = None) -> None:
        """Stop failing ``cid`` (None: every CID)."""
        if cid is None:
            self._failing.clear()
        else:
            self._failing.pop(cid, None)

    def hang(self, cid: CID) -> None:
        """Make ``pin``/``unpin`` of ``cid`` wait until :meth:`release`."""
        self._hung.add(cid)

    def release(self, cid: CID | None = None) -> None:
        """Stop hanging ``cid`` (None: every CID) and run the calls waiting on it."""
        released = [w for w in self._waiters if cid is None or w.cid == cid]
        if cid is None:
            self._hung.clear()
        else:
            self._hung.discard(cid)
        for w in released:
            self._waiters.remove(w)
            if w.timer is not None and w.timer.active():
                w.timer.cancel()
            w.handle.pop("waiter", None)
            self._answer(w.deferred, w.resume, w.handle)

    def waiting(self) -> list[CID]:
        """The CIDs of the pin/unpin calls currently hung, in call order."""
        return [w.cid for w in self._waiters]

    def set_reachable(self, reachable: bool) -> None:
        """Make the daemon (un)reachable; coming back fires the ``ready`` waiters."""
        self.reachable = reachable
        if reachable:
            waiters, self._ready_waiters = self._ready_waiters, []
            for d in waiters:
                d.callback(None)

    def add_pin(self, cid: CID, status: IPFSPinStatus = IPFSPinStatus.RECURSIVE) -> None:
        """Pin ``cid`` in the ipfs state directly (not through the connector)."""
        self.pins[cid] = status

    def remove_pin(self, cid: CID) -> None:
        """Drop ``cid`` from the ipfs state directly (a daemon that lost the pin)."""
        self.pins.pop(cid, None)

    def is_pinned(self, cid: CID) -> bool:
        """True when the ipfs state pins ``cid`` directly or recursively."""
        return self.pins.get(cid) in (IPFSPinStatus.RECURSIVE, IPFSPinStatus.DIRECT)

    # --- service --------------------------------------------------------------------

    def startService(self):
        self._stopped = False
        super().startService()

    def stopService(self):
        """Fail every waiting call (and later ones) with ShuttingDown; drop timers."""
        self._stopped = True
        for timer, d in list(self._pending.items()):
            timer.cancel()
            if not d.called:
                d.errback(ShuttingDown("the IPFS connector is shutting down"))
        self._pending.clear()
        for w in list(self._waiters):
            self._waiters.remove(w)
            if w.timer is not None and w.timer.active():
                w.timer.cancel()
            w.deferred.errback(ShuttingDown("the IPFS connector is shutting down"))
        waiters, self._ready_waiters = self._ready_waiters, []
        for d in waiters:
            d.errback(ShuttingDown("the IPFS connector is shutting down"))
        return super().stopService()

    # --- plumbing -------------------------------------------------------------------

    def _check(self):
        if self._stopped:
            raise ShuttingDown("the IPFS connector is shutting down")
        if not self.reachable:
            raise IPFSUnreachable(
                "the IPFS daemon cannot be reached (connection refused); check "
                "ipfs_connector.ipfshttp.node_multiaddress", code=0
            )

    def _answer(self, d: defer.Deferred, work, handle: dict) -> None:
        """Run ``work`` after ``latency`` and fire ``d`` with its result."""

        def run():
            self._pending.pop(handle.get("timer"), None)
            if d.called:
                return
            try:
                self._check()
                result = work()
            except Exception as e:  # noqa: BLE001 - every failure goes to the caller
                d.errback(e)
            else:
                d.callback(result)

        if self.latency <= 0:
            run()
            return
        handle["timer"] = self.clock.callLater(self.latency, run)
        self._pending[handle["timer"]] = d

    def _new_call(self, handle: dict) -> defer.Deferred:
        """A Deferred whose cancellation drops the call's timer or hang slot."""

        def cancel(_d):
            timer = handle.pop("timer", None)
            if timer is not None and timer.active():
                timer.cancel()
                self._pending.pop(timer, None)
            waiter = handle.pop("waiter", None)
            if waiter is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
                if waiter.timer is not None and waiter.timer.active():
                    waiter.timer.cancel()

        return defer.Deferred(cancel)

    def _call(self, method: str, arg, work) -> defer.Deferred:
        self.calls.append((method, arg))
        handle: dict = {}
        d = self._new_call(handle)
        self._answer(d, work, handle)
        return d

    def _pin_call(self, method: str, cid: CID, work, timeout) -> defer.Deferred:
        """A pin/unpin call: counted in flight, subject to fail/hang knobs."""
        self.calls.append((method, cid))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self._flying[cid] = self._flying.get(cid, 0) + 1
        self.max_in_flight_per_cid = max(self.max_in_flight_per_cid, self._flying[cid])

        def done(result):
            self.in_flight -= 1
            self._flying[cid] -= 1
            if not self._flying[cid]:
                del self._flying[cid]
            return result

        def guarded():
            error = self._failing.get(cid, False)
            if error is not False:
                raise error or IPFSError(
                    f"IPFS unsuccessful: 500: {method} {cid} failed (injected)", code=500
                )
            return work()

        handle: dict = {}
        d = self._new_call(handle)
        d.addBoth(done)
        try:
            self._check()
        except Exception as e:  # noqa: BLE001
            d.errback(e)
            return d
        if cid in self._hung:
            waiter = handle["waiter"] = _Waiter(cid, d, guarded, handle)
            self._waiters.append(waiter)
            if timeout is not None:
                waiter.timer = self.clock.callLater(timeout, self._time_out, waiter, method)
            return d
        self._answer(d, guarded, handle)
        return d

    def _time_out(self, waiter: _Waiter, method: str) -> None:
        self._waiters.remove(waiter)
        waiter.handle.pop("waiter", None)
        waiter.deferred.errback(
            OperationTimeout(f"{method} of {waiter.cid} made no progress in time", cid=waiter.cid)
        )

    # --- IIPFSConnector ---------------------------------------------------------------

    def ready(self):
        if self._stopped:
            return defer.fail(ShuttingDown("the IPFS connector is shutting down"))
        if self.reachable:
            return defer.succeed(None)
        d = defer.Deferred()
        self._ready_waiters.append(d)
        return d

    def id(self):
        def work():
            return IPFSID(self.peer_id, self.addresses)

        d = self._call("id", None, work)
        return d.addErrback(lambda f: IPFSID(error=f.getErrorMessage()))

    def pin(self, pin, timeout=None):
        status = IPFSPinStatus.DIRECT if pin.max_depth == 0 else IPFSPinStatus.RECURSIVE

        def work():
            if pin.pin_update is not None and self.pins.get(pin.pin_update) is IPFSPinStatus.RECURSIVE:
                self.pins[pin.cid] = IPFSPinStatus.RECURSIVE
                return None
            if self.pins.get(pin.cid) is not IPFSPinStatus.RECURSIVE:
                self.pins[pin.cid] = status
            return None

        limit = self.pin_timeout if timeout is None else timeout
        return self._pin_call("pin", pin.cid, work, limit)

    def unpin(self, cid, timeout=None):
        def work():
            if self.pins.get(cid) in (IPFSPinStatus.RECURSIVE, IPFSPinStatus.DIRECT):
                del self.pins[cid]

        limit = self.unpin_timeout if timeout is None else timeout
        return self._pin_call("unpin", cid, work, limit)

    def pin_update(self, from_cid, to_cid, unpin=False):
        def work():
            if self.pins.get(from_cid) is not IPFSPinStatus.RECURSIVE:
                raise IPFSError(
                    "IPFS unsuccessful: 500: 'from' cid was not recursively pinned already",
                    code=500,
                )
            self.pins[to_cid] = IPFSPinStatus.RECURSIVE
            if unpin:
                del self.pins[from_cid]

        return self._call("pin_update", (from_cid, to_cid), work)

    def pin_ls(self, type_filter, receive):
        wanted = _TYPE_FILTERS.get(type_filter)
        if wanted is None:
            return defer.fail(
                IPFSError(f'IPFS unsuccessful: 500: invalid type \'{type_filter}\', must be '
                          'one of {direct, indirect, recursive, all}', code=500)
            )

        def work():
            count = 0
            for cid, status in list(self.pins.items()):
                if status in wanted:
                    receive(cid, status)
                    count += 1
            return count

        return self._call("pin_ls", type_filter, work)

    def pin_ls_cid(self, cid):
        return self._call("pin_ls_cid", cid, lambda: self.pins.get(cid, IPFSPinStatus.UNPINNED))

    def repo_stat(self):
        def work():
            size = self.repo_base_size + sum(len(b) for b in self.blocks.values())
            return RepoStat(size, self.storage_max)

        return self._call("repo_stat", None, work)

    def free_space(self):
        return self.repo_stat().addCallback(lambda s: s.free_space)

    def repo_size(self):
        return self.repo_stat().addCallback(lambda s: s.repo_size)

    def swarm_connect(self, multiaddr):
        def work():
            if multiaddr.peer_id is None:
                raise IPFSError(
                    f"IPFS unsuccessful: 500: {multiaddr}: invalid peer address: no /p2p/ part",
                    code=500,
                )
            self.connected.add(multiaddr.peer_id)

        return self._call("swarm_connect", multiaddr, work)

    def swarm_peers(self):
        return self._call("swarm_peers", None, lambda: sorted(self.connected))

    def config_key(self, keypath):
        def work():
            value = self.config
            for part in keypath.split("/"):
                if not isinstance(value, dict) or part not in value:
                    raise NotFound(f"the IPFS configuration has no key {keypath!r}", key=keypath)
                value = value[part]
            return value

        return self._call("config_key", keypath, work)

    def resolve(self, path):
        def work():
            parts = path.split("/") if isinstance(path, str) else []
            if len(parts) < 3 or parts[0] != "" or parts[1] not in ("ipfs", "ipns", "ipld"):
                raise InvalidInput(
                    f"invalid path {path!r}: use /ipfs/<cid>, /ipns/<name> or /ipld/<cid>"
                )
            if parts[1] == "ipns":
                found = self.ipns.get(parts[2])
                if found is None:
                    raise IPFSError(f"IPFS unsuccessful: 500: could not resolve name {parts[2]}", code=500)
                root = found
            else:
                try:
                    root = CID.parse(parts[2])
                except InvalidCID as e:
                    raise InvalidInput(f"invalid path {path!r}: {e}") from None
            if any(p for p in parts[3:]):
                raise IPFSError(
                    f"IPFS unsuccessful: 500: no link named {parts[3]!r} under {root}", code=500
                )
            return root

        return self._call("resolve", path, work)

    def block_put(self, data, codec="raw", mhtype="sha2-256"):
        def work():
            code = _CODECS.get(codec)
            if code is None or mhtype != "sha2-256":
                raise IPFSError(
                    f"IPFS unsuccessful: 500: unsupported codec/hash {codec}/{mhtype}", code=500
                )
            cid = CID.v1(code, sha256_multihash(bytes(data)))
            self.blocks[cid] = bytes(data)
            return cid

        return self._call("block_put", len(data), work)

    def add(self, body, content_type, params=()):
        """Each file part of the multipart ``body`` becomes one raw block (its whole
        content; no chunking or directories: the fake kubo daemon has the real
        importer).  Answers kubo's objects ``{"Name","Hash","Size"}``."""

        def work():
            from ipfscluster.api.multipart import boundary_of, parse_parts

            objects = []
            for part in parse_parts(bytes(body), boundary_of(content_type)):
                if part.filename is None:
                    continue
                cid = CID.v1(RAW, sha256_multihash(part.body))
                self.blocks[cid] = part.body
                objects.append({"Name": part.filename, "Hash": str(cid), "Size": str(len(part.body))})
            return objects

        return self._call("add", len(body), work)

    def block_get(self, cid):
        def work():
            data = self.blocks.get(cid)
            if data is None:
                raise IPFSError(f"IPFS unsuccessful: 500: block {cid} not found", code=500)
            return data

        return self._call("block_get", cid, work)
