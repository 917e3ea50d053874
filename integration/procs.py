"""Real peer processes on loopback: ``twistd -n ipfs-cluster`` next to fake kubo daemons.

Used by the process-level fault suite (:mod:`integration.faults`) and by the
benchmarks that need whole processes (leader kill, restart, catch-up, the CPU of
several cores).  Everything runs exactly as a user runs it:

- the fake kubo daemons: ONE ``python -m ipfscluster.testing.fakeipfs --api A1 --api
  A2 … --instant-pins`` process (its daemons share a fake network and answer pins at
  once, so figures are the cluster's own cost);
- every peer: ``twistd -n --pidfile= ipfs-cluster --config DIR`` with its
  output in ``DIR/peer.log``; its ``service.json`` written up front (one secret,
  fixed ports on 127.0.0.1 chosen by the system, every other peer in
  ``cluster.peers``) with real TLS between peers and fsync on (the defaults).

Readiness and the Raft leader are read from the peers' logs (the line
``consensus ready: leader <id>`` that a peer writes once it knows a leader and has
applied the committed log): the REST API does not name the leader.

Why hand-written: this is glue between our own commands; process supervision is
``subprocess.Popen`` polled from the reactor (never a blocking wait).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import attrs
from twisted.internet.task import deferLater

from ipfscluster.config.service import ServiceConfig
from ipfscluster.identity import Identity
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.testing.harness import apply_overrides, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READY = re.compile(r"consensus ready: leader (\S+), applied (\d+)")
#: ``twistd`` run by this interpreter (the script next to it may not exist)
TWISTD = [sys.executable, "-c", "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()"]
SNAPSHOT = re.compile(r"raft snapshot at index (\d+) \((\d+) bytes, ([0-9.]+)s\)")


def child_env() -> dict:
    """The environment of a child process: this checkout first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("IPFS_CLUSTER_PATH", None)
    return env


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used by process ``pid`` (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@attrs.define
class PeerProcess:
    """One peer: its configuration, ports and (while it runs) its process."""

    index: int
    config: ServiceConfig
    rest_port: int
    proxy_port: int
    kubo_port: int
    proc: subprocess.Popen | None = None
    log_offset: int = 0

    @property
    def peer_id(self) -> str:
        return self.config.cluster.peer_id

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    @property
    def log_path(self) -> str:
        return os.path.join(self.config.folder, "peer.log")

    @property
    def data_folder(self) -> str:
        return self.config.raft_data_folder

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_since_start(self) -> str:
        """The peer's log written since its last start."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def ready_leader(self) -> str | None:
        """The leader named by the last ``consensus ready`` line since the start."""
        found = READY.findall(self.log_since_start())
        return found[-1][0] if found else None

    def cpu_seconds(self) -> float:
        """User + system CPU time the running process has used."""
        return proc_cpu_seconds(self.proc.pid)

    def rss_bytes(self) -> int:
        """Resident set size of the running process."""
        with open(f"/proc/{self.proc.pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class ProcessCluster:
    """``n`` peer processes and one fake-kubo process, configured in ``folder``.

    :param reactor: the reactor used to poll (nothing blocks it).
    :param overrides: configuration changes (section → {key: value}), as
        :func:`ipfscluster.testing.harness.apply_overrides` takes them.
    :param loglevel: the peers' ``--loglevel`` (``info`` is needed for readiness).
    """

    def __init__(self, reactor, folder: str, n: int = 3, overrides=None, loglevel: str = "info"):
        self.reactor = reactor
        self.folder = os.path.abspath(folder)
        self.loglevel = loglevel
        self.kubo: subprocess.Popen | None = None
        self.proxies: dict = {}
        secret = os.urandom(32)
        idents = [Identity.generate() for _ in range(n)]
        rpc = [free_port() for _ in range(n)]
        addrs = [f"/ip4/127.0.0.1/tcp/{p}/p2p/{i.peer_id}" for p, i in zip(rpc, idents)]
        self.peers: list[PeerProcess] = []
        for i, ident in enumerate(idents):
            rest, proxy, kubo = free_port(), free_port(), free_port()
            cfg = ServiceConfig.default(os.path.join(self.folder, f"peer{i}"), secret=secret, identity=ident)
            cfg = attrs.evolve(
                cfg,
                cluster=attrs.evolve(
                    cfg.cluster, peername=f"peer{i}",
                    peers=tuple(Multiaddr.parse(a) for j, a in enumerate(addrs) if j != i),
                    listen_multiaddress=Multiaddr.parse(f"/ip4/127.0.0.1/tcp/{rpc[i]}")),
                restapi=attrs.evolve(cfg.restapi, listen_multiaddress=Multiaddr.parse(f"/ip4/127.0.0.1/tcp/{rest}")),
                ipfshttp=attrs.evolve(
                    cfg.ipfshttp,
                    node_multiaddress=Multiaddr.parse(f"/ip4/127.0.0.1/tcp/{kubo}"),
                    proxy_listen_multiaddress=Multiaddr.parse(f"/ip4/127.0.0.1/tcp/{proxy}")),
            )
            cfg = apply_overrides(cfg, overrides or {})
            os.makedirs(cfg.folder, exist_ok=True)
            cfg.save()
            self.peers.append(PeerProcess(i, cfg, rest, proxy, kubo))

    # --- chaos proxies --------------------------------------------------------------------

    def proxy_links(self) -> dict:
        """Put a :class:`~integration.chaos.LinkProxy` on every peer link (before the
        start): peer *i* reaches peer *j* through ``self.proxies[(i, j)]``.  Rewrites
        each ``service.json``; returns the proxies."""
        from integration.chaos import LinkProxy

        self.proxies = {}
        for peer in self.peers:
            addrs = []
            for other in self.peers:
                if other is peer:
                    continue
                proxy = LinkProxy(self.reactor, ("127.0.0.1", other.config.cluster.listen_multiaddress.port))
                port = proxy.listen()
                self.proxies[(peer.index, other.index)] = proxy
                addrs.append(Multiaddr.parse(f"/ip4/127.0.0.1/tcp/{port}/p2p/{other.peer_id}"))
            peer.config = attrs.evolve(peer.config, cluster=attrs.evolve(peer.config.cluster, peers=tuple(addrs)))
            peer.config.save()
        return self.proxies

    def isolate(self, peer: PeerProcess, mode: str = "blackhole") -> None:
        """Apply ``mode`` to every link to and from ``peer`` (``"ok"`` heals).

        Every change resets the link's connections, healing too: a connection that
        lost bytes in the proxy (a TLS handshake or an AMP frame) could never go on,
        where real TCP would have sent them again after the partition healed.
        """
        for (i, j), proxy in self.proxies.items():
            if peer.index in (i, j):
                proxy.set_mode(mode)
                proxy.reset()

    # --- processes ----------------------------------------------------------------------

    def start_kubo(self) -> None:
        """Start the fake kubo process serving every peer's daemon."""
        argv = [sys.executable, "-m", "ipfscluster.testing.fakeipfs", "--instant-pins",
                "--network", "bench", "--network-dir", os.path.join(self.folder, "fakenet")]
        for peer in self.peers:
            argv += ["--api", f"/ip4/127.0.0.1/tcp/{peer.kubo_port}"]
        log = open(os.path.join(self.folder, "kubo.log"), "ab")
        with log:
            self.kubo = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=child_env(), cwd=ROOT)

    def start_peer(self, peer: PeerProcess) -> None:
        """Start ``peer``'s process (its log is appended to)."""
        assert not peer.running(), f"peer{peer.index} already runs"
        try:
            peer.log_offset = os.path.getsize(peer.log_path)
        except FileNotFoundError:
            peer.log_offset = 0
        argv = TWISTD + ["-n", "--pidfile=", "ipfs-cluster",
                "--config", peer.config.folder, "--loglevel", self.loglevel]
        with open(peer.log_path, "ab") as log:
            peer.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=child_env(), cwd=ROOT)

    async def start(self) -> None:
        """Start the daemons and every peer; wait until all are ready."""
        self.start_kubo()
        for peer in self.peers:
            self.start_peer(peer)
        for peer in self.peers:
            await self.wait_ready(peer)

    async def wait_ready(self, peer: PeerProcess, seconds: float = 60.0) -> str:
        """Wait for ``peer``'s ``consensus ready`` line; return the leader it names.
        Raises AssertionError if the process exits or the deadline passes."""
        found: list = []

        def ready():
            if not peer.running():
                raise AssertionError(f"peer{peer.index} exited ({peer.proc.returncode}):\n"
                                     + peer.log_since_start()[-3000:])
            leader = peer.ready_leader()
            if leader:
                found.append(leader)
            return bool(leader)

        await self.poll(ready, seconds, f"peer{peer.index} ready")
        return found[0]

    def kill(self, peer: PeerProcess, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to ``peer``'s process (SIGKILL by default)."""
        if peer.running():
            peer.proc.send_signal(sig)

    async def wait_exit(self, peer: PeerProcess, seconds: float = 30.0) -> int:
        """Wait until ``peer``'s process has exited; return its status."""
        await self.poll(lambda: not peer.running(), seconds, f"peer{peer.index} exit")
        return peer.proc.returncode

    async def stop_peer(self, peer: PeerProcess, seconds: float = 30.0) -> None:
        """SIGTERM ``peer`` and wait for it; SIGKILL if it does not exit in time."""
        if not peer.running():
            return
        self.kill(peer, signal.SIGTERM)
        try:
            await self.wait_exit(peer, seconds)
        except AssertionError:
            self.kill(peer)
            await self.wait_exit(peer, 10)

    async def stop(self) -> None:
        """Stop every peer (gracefully), then the fake daemons."""
        for peer in self.peers:
            self.kill(peer, signal.SIGTERM)
        for peer in self.peers:
            await self.stop_peer(peer)
        if self.kubo is not None and self.kubo.poll() is None:
            self.kubo.terminate()
            await self.poll(lambda: self.kubo.poll() is not None, 10, "fake kubo exit")
        for proxy in self.proxies.values():
            await proxy.stop()

    def leader(self) -> PeerProcess | None:
        """The running peer that the newest ``consensus ready`` line names (None if
        that peer does not run)."""
        leader = None
        for peer in self.peers:
            if peer.running():
                leader = peer.ready_leader() or leader
        return next((p for p in self.peers if p.peer_id == leader and p.running()), None)

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU seconds used so far by the running peers, and by the fake daemons."""
        peers = sum(proc_cpu_seconds(p.proc.pid) for p in self.peers if p.running())
        kubo = proc_cpu_seconds(self.kubo.pid) if self.kubo is not None and self.kubo.poll() is None else 0.0
        return peers, kubo

    def by_id(self, peer_id: str) -> PeerProcess:
        return next(p for p in self.peers if p.peer_id == peer_id)

    async def poll(self, predicate, seconds: float, what: str, interval: float = 0.02) -> None:
        """Wait until ``predicate()``; AssertionError after ``seconds``."""
        deadline = self.reactor.seconds() + seconds
        while not predicate():
            if self.reactor.seconds() > deadline:
                raise AssertionError(f"{what} not reached within {seconds}s")
            await deferLater(self.reactor, interval, lambda: None)


__all__ = ["ProcessCluster", "PeerProcess", "proc_cpu_seconds", "READY", "SNAPSHOT", "child_env"]
