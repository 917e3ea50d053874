"""Several cluster peers in one process, each with its own fake kubo daemon.

Used by the multi-peer tests, the sandbox and the benchmarks.  Every peer listens
on 127.0.0.1: its cluster RPC on a port chosen up front (the Raft peerset is
written into each peer's ``service.json``, so the ports must be known before
anything starts), its fake kubo on a port chosen by the system.

Timings are shortened for tests through ``overrides``: a mapping of section name →
keyword changes, applied with ``attrs.evolve`` to the default configuration (for
example ``{"raft": {"election_timeout": Duration.parse("300ms")}}``).
"""

from __future__ import annotations

import os
import socket
from typing import Callable, Mapping

import attrs
from twisted.internet import defer
from twisted.internet.task import deferLater

from ipfscluster.cluster import Cluster, build_cluster
from ipfscluster.config.durations import Duration
from ipfscluster.config.service import ServiceConfig
from ipfscluster.identity import Identity
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.testing.fakeipfs import FakeIPFS, FakeNetwork

#: test timings: a cluster of a few peers is ready in well under a second
FAST = {
    "raft": {
        "election_timeout": "300ms",
        "heartbeat_timeout": "100ms",
        "wait_for_leader_timeout": "10s",
        "network_timeout": "2s",
        "commit_retry_delay": "50ms",
        "commit_retries": 3,
    },
    "cluster": {
        "monitor_ping_interval": "1s",
        "state_sync_interval": "1m0s",
        "ipfs_sync_interval": "1m0s",
    },
    "monitor": {"check_interval": "1s"},
    "disk_informer": {"metric_ttl": "2s"},
    "numpin_informer": {"metric_ttl": "2s"},
    "ipfshttp": {"connect_swarms_delay": "0s"},
}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the system picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _evolve_section(section, changes: Mapping):
    values = {}
    for key, value in changes.items():
        current = getattr(section, key)
        if isinstance(current, Duration) and isinstance(value, str):
            value = Duration.parse(value)
        elif isinstance(current, Multiaddr) and isinstance(value, str):
            value = Multiaddr.parse(value)
        values[key] = value
    return attrs.evolve(section, **values)


def apply_overrides(config: ServiceConfig, overrides: Mapping) -> ServiceConfig:
    """``config`` with ``overrides`` (section → {key: value}) applied."""
    sections = {}
    for name, changes in overrides.items():
        sections[name] = _evolve_section(getattr(config, name), changes)
    return attrs.evolve(config, **sections)


def merge_overrides(*layers: Mapping) -> dict:
    """Later layers win, key by key within a section."""
    out: dict = {}
    for layer in layers:
        for section, changes in (layer or {}).items():
            out.setdefault(section, {}).update(changes)
    return out


@attrs.define
class LocalPeer:
    """One peer of a :class:`LocalCluster`."""

    index: int
    config: ServiceConfig
    kubo: FakeIPFS
    cluster: Cluster | None = None
    running: bool = False

    @property
    def peer_id(self) -> str:
        return self.config.cluster.peer_id


class LocalCluster:
    """``n`` peers on loopback with fake kubo daemons sharing one fake network.

    :param reactor: the real reactor (sockets are real).
    :param folder: where each peer's configuration folder is made.
    :param overrides: configuration changes on top of :data:`FAST`.
    :param alloc: the ``--alloc`` strategy.
    :param apis_factory: ``apis_factory(cluster)`` → API services per peer.
    :param instant_pins: fake daemons pin made-up CIDs at once.
    :param alone: every peer starts as a one-peer cluster (empty ``cluster.peers``),
        as the peer-manager tests need; peers are then added or join.
    """

    def __init__(self, reactor, folder: str, n: int = 3, *, overrides: Mapping | None = None,
                 alloc: str = "disk-freespace", apis_factory: Callable | None = None,
                 instant_pins: bool = True, secret: bytes | None = None, alone: bool = False):
        self.reactor = reactor
        self.folder = folder
        self.alloc = alloc
        self.apis_factory = apis_factory
        self.network = FakeNetwork()
        self.secret = os.urandom(32) if secret is None else secret
        self.overrides = merge_overrides(FAST, overrides or {})
        self.instant_pins = instant_pins
        identities = [Identity.generate() for _ in range(n)]
        ports = [free_port() for _ in range(n)]
        addrs = [f"/ip4/127.0.0.1/tcp/{port}/p2p/{ident.peer_id}" for port, ident in zip(ports, identities)]
        self.peers: list[LocalPeer] = []
        for i, (ident, port) in enumerate(zip(identities, ports)):
            kubo = FakeIPFS(reactor=reactor, network=self.network, instant_pins=instant_pins)
            cfg = ServiceConfig.default(os.path.join(folder, f"peer{i}"), secret=self.secret, identity=ident)
            others = () if alone else tuple(Multiaddr.parse(a) for j, a in enumerate(addrs) if j != i)
            cfg = attrs.evolve(
                cfg,
                cluster=attrs.evolve(
                    cfg.cluster,
                    peername=f"peer{i}",
                    peers=others,
                    listen_multiaddress=Multiaddr.parse(f"/ip4/127.0.0.1/tcp/{port}"),
                ),
            )
            cfg = apply_overrides(cfg, self.overrides)
            self.peers.append(LocalPeer(i, cfg, kubo))

    # --- lifecycle --------------------------------------------------------------------

    async def start(self, wait_ready: bool = True) -> None:
        """Start every fake daemon and every peer; wait until all are ready."""
        for peer in self.peers:
            await self.start_peer(peer, wait_ready=False)
        if wait_ready:
            await self.ready()

    async def start_peer(self, peer: LocalPeer, wait_ready: bool = True) -> None:
        """(Re)start one peer (and its daemon) from its configuration folder.

        A restarted peer reads ``service.json`` again: the cluster rewrites its
        ``peers``/``bootstrap`` there when the peerset changes.
        """
        if peer.cluster is not None and os.path.exists(peer.config.path):
            peer.config = ServiceConfig.load(peer.config.folder)
        if peer.kubo.api_multiaddr is None:
            peer.kubo.listen("/ip4/127.0.0.1/tcp/0")
            peer.config = attrs.evolve(
                peer.config,
                ipfshttp=attrs.evolve(peer.config.ipfshttp, node_multiaddress=Multiaddr.parse(peer.kubo.api_multiaddr)),
            )
        os.makedirs(peer.config.folder, exist_ok=True)
        peer.config.save()
        peer.cluster = build_cluster(peer.config, self.reactor, alloc=self.alloc, apis_factory=self.apis_factory)

        def stopped_itself(peer=peer, cluster=peer.cluster):
            if peer.cluster is cluster:
                peer.running = False

        peer.cluster.on_fatal = stopped_itself
        await peer.cluster.start()
        peer.running = True
        if wait_ready:
            await peer.cluster.ready()

    async def ready(self) -> None:
        for peer in self.running_peers():
            await peer.cluster.ready()

    async def stop_peer(self, peer: LocalPeer, stop_daemon: bool = False) -> None:
        """Stop one peer cleanly (its daemon too when ``stop_daemon``)."""
        if peer.running:
            peer.running = False
            await peer.cluster.stop()
        if stop_daemon and peer.kubo.api_multiaddr is not None:
            await peer.kubo.stop()

    async def stop(self) -> None:
        """Stop every peer and every daemon."""
        for peer in reversed(self.peers):
            await self.stop_peer(peer, stop_daemon=True)

    def running_peers(self) -> list[LocalPeer]:
        return [p for p in self.peers if p.running]

    # --- membership -----------------------------------------------------------------

    def multiaddr(self, peer: LocalPeer) -> Multiaddr:
        """The cluster multiaddress of ``peer`` (with ``/p2p/<id>``)."""
        return peer.config.cluster.listen_multiaddress.with_peer_id(peer.peer_id)

    def set_membership(self, peer: LocalPeer, peers=(), bootstrap=(), **cluster_changes) -> None:
        """Change ``peer``'s configuration (in memory and on disk) before it starts:
        ``peers``/``bootstrap`` are LocalPeers or multiaddresses."""
        def addrs(items):
            return tuple(self.multiaddr(p) if isinstance(p, LocalPeer) else Multiaddr.parse(str(p)) for p in items)

        peer.config = attrs.evolve(peer.config, cluster=attrs.evolve(
            peer.config.cluster, peers=addrs(peers), bootstrap=addrs(bootstrap), **cluster_changes))
        if os.path.exists(peer.config.folder):
            peer.config.save()

    # --- helpers for tests ----------------------------------------------------------

    async def leader(self, seconds: float = 20.0) -> LocalPeer:
        """The running peer every running peer knows as the Raft leader (waits for
        an election after the old leader stopped)."""
        found: list = []

        async def agreed():
            running = self.running_peers()
            ids = {p.cluster.c.consensus.node.leader_id for p in running}
            if len(ids) == 1 and None not in ids:
                peer = next((p for p in running if p.peer_id in ids), None)
                if peer is not None:
                    found[:] = [peer]
                    return True
            return False

        await self.poll_async(agreed, seconds=seconds, what="one leader agreed by every running peer")
        return found[0]

    async def poll(self, predicate: Callable[[], bool], seconds: float = 20.0, what: str = "condition") -> None:
        """Wait until ``predicate()`` is true; fail after ``seconds``."""
        deadline = self.reactor.seconds() + seconds
        while not predicate():
            if self.reactor.seconds() > deadline:
                raise AssertionError(f"{what} not reached within {seconds}s")
            await deferLater(self.reactor, 0.02, lambda: None)

    async def poll_async(self, predicate, seconds: float = 20.0, what: str = "condition") -> None:
        """Like :meth:`poll` for an async predicate."""
        deadline = self.reactor.seconds() + seconds
        while not await predicate():
            if self.reactor.seconds() > deadline:
                raise AssertionError(f"{what} not reached within {seconds}s")
            await deferLater(self.reactor, 0.05, lambda: None)


async def collect(aiter) -> list:
    """The items of an async iterator, as a list."""
    return [item async for item in aiter]


__all__ = ["FAST", "LocalCluster", "LocalPeer", "apply_overrides", "collect", "free_port", "merge_overrides"]

_ = defer  # re-exported for tests that build on this module
