"""``ipfs-cluster-service sandbox``: a whole cluster on this machine, for trying things.

It starts ``--peers`` cluster peers (default 3) in this process, each next to its own
fake kubo daemon (:mod:`ipfscluster.testing.fakeipfs`, so no IPFS install is needed),
all on 127.0.0.1, with configurations generated in ``--dir`` (default
``./ipfs-cluster-sandbox``).  It waits until the cluster is ready, writes
``<dir>/sandbox.json`` (each peer's ID, REST API and proxy multiaddresses and
configuration folder), prints ``ipfs-cluster-ctl`` commands to try, and runs until
interrupted (Ctrl-C, SIGTERM), then stops everything it started.

Ports: peer ``i`` uses ``base + 10·i + k`` with ``k`` = 1 (fake kubo API),
4 (REST API), 5 (IPFS proxy), 6 (cluster RPC); the default base 19090 gives the
familiar 19094/19095/19096 for the first peer.

Started again on the same folder, the sandbox reuses the peers' configurations and
Raft data: pins survive a restart.  The fake daemons pin any CID at once (they do not
need its content), so made-up CIDs work; content added through a proxy or
``ipfs-cluster-ctl add`` lives in memory only.

This is the only module outside the tests that imports :mod:`ipfscluster.testing`
(DESIGN.md §3).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

import attrs
from twisted.internet import defer
from twisted.logger import Logger

from ipfscluster.config.durations import Duration
from ipfscluster.config.service import ServiceConfig, config_path
from ipfscluster.errors import ClusterError
from ipfscluster.multiaddr import Multiaddr

log = Logger(namespace="service")

DEFAULT_DIR = "ipfs-cluster-sandbox"
DEFAULT_BASE_PORT = 19090
DEFAULT_PEERS = 3
MAX_PEERS = 20
READY_TIMEOUT = 60.0
KUBO, REST, PROXY, RPC = 1, 4, 5, 6
EXAMPLE_CID = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"


class SandboxError(ClusterError):
    """The sandbox cannot start (bad flags, busy ports, unreadable folder)."""

    http_status = 400


def port_of(base: int, index: int, kind: int) -> int:
    """The port of ``kind`` (KUBO, REST, PROXY, RPC) for peer ``index``."""
    return base + 10 * index + kind


def check_ports(base: int, peers: int, host: str = "127.0.0.1") -> None:
    """Raise SandboxError naming the first port of the plan that is taken."""
    if not 1024 <= base or port_of(base, peers - 1, RPC) > 65535:
        raise SandboxError(
            f"--base-port {base} does not leave room for {peers} peers "
            f"(ports {port_of(base, 0, KUBO)}…{port_of(base, peers - 1, RPC)}); "
            "choose a base between 1024 and " + str(65535 - 10 * peers))
    for index in range(peers):
        for kind, what in ((KUBO, "fake kubo API"), (REST, "REST API"), (PROXY, "IPFS proxy"),
                           (RPC, "cluster RPC")):
            port = port_of(base, index, kind)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((host, port))
                except OSError:
                    raise SandboxError(
                        f"port {port} ({what} of peer {index}) is in use: stop what uses it "
                        "(another sandbox?) or pick other ports with --base-port") from None


def peer_configs(folder: str, peers: int, base: int) -> list[ServiceConfig]:
    """The peers' configurations: loaded from ``folder`` when a sandbox was made there
    before, else generated (one secret, ``peers`` identities) and saved."""
    folders = [os.path.join(folder, f"peer{i}") for i in range(peers)]
    existing = [os.path.exists(config_path(f)) for f in folders]
    if all(existing):
        configs = [ServiceConfig.load(f) for f in folders]
    elif any(existing):
        raise SandboxError(
            f"{folder} holds a sandbox of another size: use --peers "
            f"{sum(existing)}, or another --dir, or remove {folder}")
    else:
        configs = [ServiceConfig.default(f, secret=os.urandom(32)) for f in folders]
        secret = configs[0].cluster.secret
        configs = [attrs.evolve(c, cluster=attrs.evolve(c.cluster, secret=secret)) for c in configs]
    ids = [c.cluster.peer_id for c in configs]
    out = []
    for i, cfg in enumerate(configs):
        others = tuple(
            Multiaddr.parse(f"/ip4/127.0.0.1/tcp/{port_of(base, j, RPC)}/p2p/{ids[j]}")
            for j in range(peers) if j != i)
        cfg = attrs.evolve(
            cfg,
            cluster=attrs.evolve(
                cfg.cluster, peername=f"sandbox-peer{i}", peers=others,
                listen_multiaddress=Multiaddr.parse(f"/ip4/127.0.0.1/tcp/{port_of(base, i, RPC)}")),
            restapi=attrs.evolve(
                cfg.restapi, listen_multiaddress=Multiaddr.parse(f"/ip4/127.0.0.1/tcp/{port_of(base, i, REST)}")),
            ipfshttp=attrs.evolve(
                cfg.ipfshttp,
                node_multiaddress=Multiaddr.parse(f"/ip4/127.0.0.1/tcp/{port_of(base, i, KUBO)}"),
                proxy_listen_multiaddress=Multiaddr.parse(f"/ip4/127.0.0.1/tcp/{port_of(base, i, PROXY)}"),
                connect_swarms_delay=Duration.parse("1s")),
        )
        cfg.save()
        out.append(cfg)
    return out


def describe(configs, base: int) -> dict:
    """The content of ``sandbox.json``."""
    return {
        "peers": [
            {
                "name": cfg.cluster.peername,
                "id": cfg.cluster.peer_id,
                "config_folder": cfg.folder,
                "rest_api": str(cfg.restapi.listen_multiaddress),
                "ipfs_proxy": str(cfg.ipfshttp.proxy_listen_multiaddress),
                "cluster": f"{cfg.cluster.listen_multiaddress}/p2p/{cfg.cluster.peer_id}",
                "ipfs_api": str(cfg.ipfshttp.node_multiaddress),
            }
            for cfg in configs
        ],
        "base_port": base,
    }


def instructions(info: dict) -> str:
    """What to print once the sandbox is ready."""
    first = info["peers"][0]
    host = first["rest_api"]
    lines = [
        f"IPFS Cluster sandbox ready: {len(info['peers'])} peers (details in sandbox.json)",
        "",
    ]
    for p in info["peers"]:
        lines.append(f"  {p['name']}  {p['id']}")
        lines.append(f"      REST API {p['rest_api']}   IPFS proxy {p['ipfs_proxy']}")
    lines += [
        "",
        "Try:",
        f"  ipfs-cluster-ctl --host {host} peers ls",
        f"  ipfs-cluster-ctl --host {host} pin add {EXAMPLE_CID}",
        f"  ipfs-cluster-ctl --host {host} status {EXAMPLE_CID}",
        f"  ipfs-cluster-ctl --host {host} pin add --replication 2 <another CID>",
        f"  ipfs-cluster-ctl --host {host} add <file>",
        f"  ipfs --api {first['ipfs_proxy']} add <file>     (kubo's client, through the proxy)",
        "",
        "Press Ctrl-C to stop the sandbox.",
    ]
    return "\n".join(lines)


class Sandbox:
    """The running sandbox: fake daemons and cluster peers (see the module docstring)."""

    def __init__(self, reactor, folder: str, peers: int = DEFAULT_PEERS,
                 base_port: int = DEFAULT_BASE_PORT, alloc: str = "disk-freespace"):
        if not 1 <= peers <= MAX_PEERS:
            raise SandboxError(f"--peers {peers}: choose between 1 and {MAX_PEERS} peers")
        self.reactor = reactor
        self.folder = os.path.abspath(folder)
        self.peers = peers
        self.base = base_port
        self.alloc = alloc
        self.daemons: list = []
        self.clusters: list = []
        self.configs: list = []
        self.info: dict = {}

    async def start(self) -> dict:
        """Start everything, wait until ready, write sandbox.json; return its content."""
        from ipfscluster.cluster import build_cluster
        from ipfscluster.tap import api_services
        from ipfscluster.testing.fakeipfs import FakeIPFS, FakeNetwork

        check_ports(self.base, self.peers)
        os.makedirs(self.folder, mode=0o700, exist_ok=True)
        self.configs = peer_configs(self.folder, self.peers, self.base)
        network = FakeNetwork()
        try:
            for cfg in self.configs:
                kubo = FakeIPFS(reactor=self.reactor, network=network, instant_pins=True)
                kubo.listen(str(cfg.ipfshttp.node_multiaddress))
                self.daemons.append(kubo)
            for cfg in self.configs:
                cluster = build_cluster(cfg, self.reactor, alloc=self.alloc,
                                        apis_factory=lambda c: api_services(c, self.reactor))
                self.clusters.append(cluster)
                await cluster.start()
            for cluster in self.clusters:
                await cluster.ready().addTimeout(READY_TIMEOUT, self.reactor)
        except defer.TimeoutError:
            await self.stop()
            raise SandboxError(f"the sandbox cluster did not become ready within {READY_TIMEOUT:g}s") from None
        except BaseException:
            await self.stop()
            raise
        self.info = describe(self.configs, self.base)
        path = os.path.join(self.folder, "sandbox.json")
        with open(path, "w") as f:
            json.dump(self.info, f, indent=2)
            f.write("\n")
        return self.info

    async def stop(self) -> None:
        """Stop every peer, then every daemon (idempotent)."""
        clusters, self.clusters = self.clusters, []
        for cluster in reversed(clusters):
            await cluster.stop()
        daemons, self.daemons = self.daemons, []
        for kubo in daemons:
            await kubo.stop()


def run(folder: str, peers: int, base_port: int, alloc: str, loglevel: str, debug: bool,
        stdout=None, stderr=None) -> int:
    """Run the sandbox in this process until a signal; return the exit status."""
    from twisted.internet import reactor

    from ipfscluster import logging as cluster_logging
    from ipfscluster.tap import install_stop_signals

    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    cluster_logging.begin_logging([cluster_logging.make_observer(stderr, loglevel, debug)])
    try:
        sandbox = Sandbox(reactor, folder, peers, base_port, alloc)
    except SandboxError as err:
        print(f"error : {err}", file=stderr)
        return 1
    outcome = {"status": 0}

    async def start():
        try:
            info = await sandbox.start()
        except ClusterError as err:
            print(f"error : {err}", file=stderr)
            outcome["status"] = 1
            reactor.stop()
            return
        print(instructions(info), file=stdout, flush=True)

    def started_failed(failure):
        log.failure("the sandbox could not start", failure)
        outcome["status"] = 1
        if reactor.running:
            reactor.stop()

    install_stop_signals(reactor, (signal.SIGHUP, signal.SIGINT, signal.SIGTERM))
    reactor.callWhenRunning(lambda: defer.ensureDeferred(start()).addErrback(started_failed))
    reactor.addSystemEventTrigger("before", "shutdown", lambda: defer.ensureDeferred(sandbox.stop()))
    reactor.run()
    return outcome["status"]
