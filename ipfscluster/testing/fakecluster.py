"""An in-memory :class:`~ipfscluster.interfaces.ICluster` for testing the APIs.

:class:`FakeCluster` stands in for the peer (``ipfscluster.cluster.Cluster``) behind
the REST API and the IPFS proxy, and behind ``ipfs-cluster-ctl`` in its tests.  It
keeps the shared state in a ``dict`` (CID → ``Pin``), answers status questions from
the pins and their allocations (or from statuses a test sets), and has no Raft, no
RPC and no daemon.  Time comes from an injected clock.

What it does, like the real peer:

- ``pin`` builds a ``Pin`` from the options, allocates the first
  ``replication_factor_max`` peers (``-1``/``0``: everywhere) and stores it;
  ``unpin`` of a CID not in the state fails with ``NotFound``;
- ``status`` shows ``pinned`` on allocated peers, ``remote`` on the others, and
  ``unpinned`` everywhere for a CID not in the state; :meth:`set_status` overrides
  one peer's status (``pin_error`` …); ``local=True`` keeps only this peer;
- ``pin_path``/``unpin_path`` resolve ``/ipfs/<cid>`` to the CID, and other paths
  through :attr:`paths` (unknown → ``IPFSError`` as a daemon says it);
- ``add`` "adds" every file part (CID = CIDv1 raw of the content) and pins the
  results unless ``no-pin`` is true;
- ``sync_all``/``recover_all`` yield the items in an error state (recover
  re-queues them as ``pin_queued``).

Knobs for tests:

- :attr:`failures`: ``{"method": error}``: the method fails with ``error`` (a
  Deferred method fails, a collection raises before its first item, a synchronous
  method raises);
- :attr:`fail_after`: ``{"method": (n, error)}``: a collection yields ``n`` items
  and then raises ``error`` (an error in the middle of a stream);
- :attr:`synthetic`: when > 0, ``pins()`` and ``status_all()`` yield that many
  items, each handed out only when the consumer asks for it (for streaming tests
  with 100k items; they are one value repeated, so making them costs nothing and
  keeps nothing);
- :attr:`gate`: ``(batch, wait)``: collections call ``wait()`` (which may return a
  Deferred) before every ``batch`` items, so a test decides when items are made;
- counters: :attr:`produced` (items yielded by every collection so far),
  :attr:`open_streams` (collections started and not yet finished or closed: a
  consumer that goes away must close them), :attr:`calls` (``(method, args)`` in
  call order).
"""

from __future__ import annotations

from typing import AsyncIterator

import attrs
from twisted.internet import defer
from twisted.internet.task import Clock
from zope.interface import implementer

from ipfscluster.api.rest.parsing import query_bool
from ipfscluster.api.rest.streaming import encode_json
from ipfscluster.cid import CID, RAW, sha256_multihash
from ipfscluster.errors import InvalidInput, IPFSError, NotFound
from ipfscluster.identity import peer_id_from_public_key, validate_peer_id
from ipfscluster.interfaces import ICluster
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.types import (
    ID,
    IPFSID,
    AddedOutput,
    ConnectGraph,
    GlobalPinInfo,
    Pin,
    PinInfo,
    PinOptions,
    PinType,
    RepoStat,
    TrackerStatus,
    Version,
    ns_from_seconds,
)

__all__ = ["FakeCluster", "content_cid", "fake_peer_id", "synthetic_cid"]

_NS = 1_000_000_000


def fake_peer_id(n: int) -> str:
    """A valid, deterministic peer ID for test peer number ``n`` (0-255)."""
    return peer_id_from_public_key(bytes([n]) * 32)


def content_cid(data: bytes) -> CID:
    """The CID :meth:`FakeCluster.add` gives the content ``data`` (CIDv1 raw)."""
    return CID.v1(RAW, sha256_multihash(data))


def synthetic_cid(i: int) -> CID:
    """A valid, deterministic CID number ``i`` (CIDv1 raw)."""
    return CID.v1(RAW, sha256_multihash(b"synthetic %d" % i))


@implementer(ICluster)
class FakeCluster:
    """ICluster in memory (see the module docstring).

    :param clock: ``IReactorTime`` giving "now" (default: a new ``Clock``).
    :param peers: number of peers in the peerset (this one is the first).
    :param version: what ``version()`` reports.
    """

    def __init__(self, clock=None, peers: int = 3, version: str = "1.1.6"):
        self.clock = clock if clock is not None else Clock()
        self.peer_ids = [fake_peer_id(i + 1) for i in range(peers)]
        self.peer_id = self.peer_ids[0]
        self._version = version
        self.state: dict[CID, Pin] = {}
        self.statuses: dict[CID, dict[str, PinInfo]] = {}
        self.paths: dict[str, CID] = {}
        self.metrics: dict[str, list] = {}
        self.alert_list: list = []
        self.failures: dict[str, Exception] = {}
        self.fail_after: dict[str, tuple[int, Exception]] = {}
        self.synthetic = 0
        self.gate: tuple[int, object] | None = None
        self.produced = 0
        self.open_streams = 0
        self.calls: list[tuple[str, tuple]] = []

    # --- helpers ----------------------------------------------------------------------

    def _now(self) -> int:
        return ns_from_seconds(self.clock.seconds())

    def _call(self, method: str, *args) -> None:
        """Record the call and raise the configured failure, if any."""
        self.calls.append((method, args))
        error = self.failures.get(method)
        if error is not None:
            raise error

    def _deferred(self, method: str, fn, *args) -> defer.Deferred:
        try:
            self._call(method, *args)
            return defer.succeed(fn(*args))
        except Exception as err:  # every failure goes into the Deferred
            return defer.fail(err)

    async def _stream(self, method: str, items) -> AsyncIterator:
        """Yield the items of ``items()`` (an iterable, consumed lazily) with the
        knobs applied."""
        stop_after = self.fail_after.get(method)
        count = 0
        self.open_streams += 1
        try:
            error = self.failures.get(method)
            if error is not None:
                raise error
            for item in items():
                if stop_after is not None and count >= stop_after[0]:
                    raise stop_after[1]
                if self.gate is not None and count % self.gate[0] == 0:
                    await defer.maybeDeferred(self.gate[1])
                count += 1
                self.produced += 1
                yield item
            if stop_after is not None and count >= stop_after[0]:
                raise stop_after[1]
        finally:
            self.open_streams -= 1

    def _collection(self, method: str, items_factory, *args) -> AsyncIterator:
        # like the peer's async generators: the call is recorded now, a configured
        # failure is raised by the first ``__anext__``
        self.calls.append((method, args))
        return self._stream(method, items_factory)

    def _peer_info(self, peer: str) -> ID:
        return ID(
            peer,
            addresses=(Multiaddr.parse("/ip4/127.0.0.1/tcp/9096").with_peer_id(peer),),
            cluster_peers=tuple(self.peer_ids),
            version=self._version,
            rpc_protocol_version="/ipfscluster/%s/rpc" % self._version,
            ipfs=IPFSID(fake_peer_id(100 + self.peer_ids.index(peer) % 100)),
            peername="peer%d" % self.peer_ids.index(peer),
        )

    # --- knobs --------------------------------------------------------------------------

    def set_status(self, cid, peer: str, status: TrackerStatus, error: str = "") -> None:
        """Make ``peer`` report ``status`` (and ``error``) for ``cid`` from now on."""
        cid = CID.parse(cid)
        info = PinInfo(cid, peer, status=status, error=error, timestamp=self._now())
        self.statuses.setdefault(cid, {})[peer] = info

    # --- ICluster: peers ------------------------------------------------------------------

    def id(self) -> defer.Deferred:
        return self._deferred("id", lambda: self._peer_info(self.peer_id))

    def version(self) -> Version:
        self._call("version")
        return Version(self._version)

    def peers(self) -> AsyncIterator[ID]:
        return self._collection("peers", lambda: (self._peer_info(p) for p in sorted(self.peer_ids)))

    def peer_add(self, peer_id_or_multiaddr) -> defer.Deferred:
        def add(target):
            text = str(target)
            if text.startswith("/"):
                peer = Multiaddr.parse(text).peer_id
                if peer is None:
                    raise InvalidInput(f"the multiaddress {text} has no /p2p/<peer ID> part; add it")
            else:
                peer = validate_peer_id(text)
            if peer not in self.peer_ids:
                self.peer_ids.append(peer)
            return self._peer_info(peer)

        return self._deferred("peer_add", add, peer_id_or_multiaddr)

    def peer_remove(self, peer_id: str) -> defer.Deferred:
        def remove(peer):
            if peer not in self.peer_ids:
                raise NotFound(f"peer {peer} is not a member of this cluster")
            self.peer_ids.remove(peer)

        return self._deferred("peer_remove", remove, peer_id)

    # --- ICluster: pins -------------------------------------------------------------------

    def _allocations(self, options: PinOptions) -> tuple:
        rmax = options.replication_factor_max
        if rmax <= 0 or options.replication_factor_min == -1:
            return ()
        preferred = [p for p in options.user_allocations if p in self.peer_ids]
        rest = [p for p in self.peer_ids if p not in preferred]
        return tuple((preferred + rest)[:rmax])

    def _pin(self, cid, options) -> Pin:
        cid = CID.parse(cid)
        options = options or PinOptions()
        pin = Pin.new(cid, options, timestamp=self._now())
        pin = attrs.evolve(pin, allocations=self._allocations(options))
        self.state[cid] = pin
        return pin

    def _unpin(self, cid) -> Pin:
        cid = CID.parse(cid)
        pin = self.state.pop(cid, None)
        if pin is None:
            raise NotFound(f"{cid} is not pinned in the cluster (not part of the shared state)")
        self.statuses.pop(cid, None)
        return pin

    def _resolve(self, path: str) -> CID:
        parts = [p for p in str(path).split("/") if p]
        if len(parts) < 2 or parts[0] not in ("ipfs", "ipns", "ipld"):
            raise InvalidInput(f'invalid path "{path}": use /ipfs/<cid>[/...], /ipns/<name> or /ipld/<cid>')
        found = self.paths.get("/" + "/".join(parts))
        if found is not None:
            return found
        if len(parts) == 2 and parts[0] != "ipns":
            return CID.parse(parts[1])
        raise IPFSError(f'no link named "{parts[-1]}" under {parts[1]}', code=500)

    def pin(self, cid, options=None) -> defer.Deferred:
        return self._deferred("pin", self._pin, cid, options)

    def pin_path(self, path, options=None) -> defer.Deferred:
        return self._deferred("pin_path", lambda p, o: self._pin(self._resolve(p), o), path, options)

    def unpin(self, cid) -> defer.Deferred:
        return self._deferred("unpin", self._unpin, cid)

    def unpin_path(self, path) -> defer.Deferred:
        return self._deferred("unpin_path", lambda p: self._unpin(self._resolve(p)), path)

    def pin_update(self, from_cid, to_cid, options=None) -> defer.Deferred:
        def update(old, new, opts):
            existing = self.state.get(CID.parse(old))
            if existing is None:
                raise NotFound(f"cannot update from {old}: it is not pinned in the cluster")
            opts = attrs.evolve(opts or existing.options, pin_update=existing.cid)
            return self._pin(new, opts)

        return self._deferred("pin_update", update, from_cid, to_cid, options)

    def _synthetic_pins(self):
        pin = Pin.new(synthetic_cid(0), timestamp=_NS)
        for _ in range(self.synthetic):
            yield pin

    def _all_pins(self, pin_types):
        if self.synthetic:
            return self._synthetic_pins()
        wanted = pin_types or PinType.ALL
        return (p for _, p in sorted(self.state.items()) if p.type & wanted)

    def pins(self, pin_types=None) -> AsyncIterator[Pin]:
        return self._collection("pins", lambda: self._all_pins(pin_types), pin_types)

    async def pins_ndjson(self, pin_types=None) -> AsyncIterator[bytes]:
        # one line per pin: the knobs of pins() (gates, failures) apply line by line
        pins = self.pins(pin_types)
        try:
            async for pin in pins:
                yield encode_json(pin.to_json())
        finally:
            await pins.aclose()

    def pin_get(self, cid) -> defer.Deferred:
        def get(c):
            pin = self.state.get(CID.parse(c))
            if pin is None:
                raise NotFound(f"{c} is not pinned in the cluster (not part of the shared state)")
            return pin

        return self._deferred("pin_get", get, cid)

    # --- ICluster: status, sync, recover ------------------------------------------------

    def _status_of(self, cid: CID, local: bool) -> GlobalPinInfo:
        peers = [self.peer_id] if local else list(self.peer_ids)
        pin = self.state.get(cid)
        overrides = self.statuses.get(cid, {})
        gpi = GlobalPinInfo(cid)
        for peer in peers:
            info = overrides.get(peer)
            if info is None:
                if pin is None:
                    status = TrackerStatus.UNPINNED
                elif pin.is_remote_for(peer) and pin.allocations:
                    status = TrackerStatus.REMOTE
                else:
                    status = TrackerStatus.PINNED
                info = PinInfo(cid, peer, status=status, timestamp=self._now())
            if pin is not None:
                info = attrs.evolve(
                    info, name=pin.name, allocations=pin.allocations, origins=pin.origins,
                    created=pin.timestamp, metadata=pin.metadata,
                )
            gpi = gpi.add(info)
        return gpi

    def _synthetic_statuses(self):
        gpi = GlobalPinInfo(synthetic_cid(0))
        for peer in self.peer_ids:
            gpi = gpi.add(PinInfo(gpi.cid, peer, status=TrackerStatus.PINNED, timestamp=_NS))
        for _ in range(self.synthetic):
            yield gpi

    def _statuses(self, status_filter, local, cids):
        if self.synthetic and not cids:
            items = self._synthetic_statuses()
        else:
            wanted = [CID.parse(c) for c in cids] if cids else sorted(set(self.state) | set(self.statuses))
            items = (self._status_of(c, local) for c in wanted)
        return (g for g in items if not status_filter or g.match(status_filter))

    def status_all(self, status_filter=None, local=False, cids=None) -> AsyncIterator[GlobalPinInfo]:
        return self._collection(
            "status_all", lambda: self._statuses(status_filter, local, cids), status_filter, local, cids
        )

    async def status_all_ndjson(self, status_filter=None, local=False, cids=None) -> AsyncIterator[bytes]:
        # one line per item: the knobs of status_all() apply line by line
        items = self.status_all(status_filter, local, cids)
        try:
            async for gpi in items:
                yield encode_json(gpi.to_json())
        finally:
            await items.aclose()

    def status(self, cid, local=False) -> defer.Deferred:
        return self._deferred("status", lambda c, lo: self._status_of(CID.parse(c), lo), cid, local)

    def _in_error(self, local):
        return [g for g in self._statuses(TrackerStatus.ERROR, local, None)]

    def sync_all(self, local=False) -> AsyncIterator[GlobalPinInfo]:
        return self._collection("sync_all", lambda: self._in_error(local), local)

    def sync(self, cid, local=False) -> defer.Deferred:
        return self._deferred("sync", lambda c, lo: self._status_of(CID.parse(c), lo), cid, local)

    def _requeue(self, gpi: GlobalPinInfo) -> GlobalPinInfo:
        for peer, short in gpi.peer_map.items():
            if short.status.is_error:
                self.set_status(gpi.cid, peer, TrackerStatus.PIN_QUEUED)
        return self._status_of(gpi.cid, False)

    def recover_all(self, local=False) -> AsyncIterator[GlobalPinInfo]:
        return self._collection("recover_all", lambda: (self._requeue(g) for g in self._in_error(local)), local)

    def recover(self, cid, local=False) -> defer.Deferred:
        return self._deferred("recover", lambda c, lo: self._requeue(self._status_of(CID.parse(c), lo)), cid, local)

    # --- ICluster: add --------------------------------------------------------------------

    def _added(self, parts, params):
        no_pin = query_bool(params, "no-pin")
        options = PinOptions.from_query(params, self._now())
        for part in parts:
            if part.filename is None:
                continue
            cid = content_cid(part.body)
            allocations = () if no_pin else self._pin(cid, options).allocations
            yield AddedOutput(part.filename, cid, size=len(part.body), allocations=allocations)

    def add(self, parts, params) -> AsyncIterator[AddedOutput]:
        return self._collection("add", lambda: self._added(parts, params), parts, params)

    # --- ICluster: health and monitoring --------------------------------------------------

    def connect_graph(self) -> defer.Deferred:
        def graph():
            ipfs = {p: fake_peer_id(100 + i) for i, p in enumerate(self.peer_ids)}
            return ConnectGraph(
                cluster_id=self.peer_id,
                id_to_peername={p: "peer%d" % i for i, p in enumerate(self.peer_ids)},
                ipfs_links={ipfs[p]: [ipfs[q] for q in self.peer_ids if q != p] for p in self.peer_ids},
                cluster_links={p: [q for q in self.peer_ids if q != p] for p in self.peer_ids},
                cluster_trust_links={p: True for p in self.peer_ids},
                cluster_to_ipfs=ipfs,
            )

        return self._deferred("connect_graph", graph)

    def alerts(self) -> list:
        self._call("alerts")
        return list(self.alert_list)

    def metric_names(self) -> list[str]:
        self._call("metric_names")
        return sorted(self.metrics)

    def latest_metrics(self, name: str) -> defer.Deferred:
        return self._deferred("latest_metrics", lambda n: list(self.metrics.get(n, [])), name)

    def repo_stat(self, local=False) -> defer.Deferred:
        return self._deferred("repo_stat", lambda lo: RepoStat(1000, 10000), local)

    def ipfs_api_url(self) -> str:
        return "http://127.0.0.1:5001"


