"""Membership with real processes (issue [8/10] acceptance).

Three peers run as ``twistd -n ipfs-cluster`` processes on loopback next to one fake
kubo process; a fourth joins with ``--bootstrap``; one is removed with
``ipfs-cluster-ctl peers rm``; one leaves on SIGTERM (``leave_on_shutdown``).  The
survivors keep pinning, and the configurations and Raft data folders end as the
reference (§2.2, §10.2, §10.3) describes.  Waiting is polling with deadlines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import attrs
import pytest

from ipfscluster.cid import CID, sha256_multihash
from ipfscluster.config.service import ServiceConfig
from ipfscluster.identity import Identity
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.testing.harness import apply_overrides, free_port
from tests.cli_processes import env

pytestmark = [pytest.mark.slow, pytest.mark.loopback]

TWISTD = [sys.executable, "-c",
          "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()"]
CTL = [sys.executable, "-c", "from ipfscluster.ctl.main import main; main()"]
TIMINGS = {
    "raft": {"election_timeout": "1s", "heartbeat_timeout": "300ms",
             "wait_for_leader_timeout": "15s", "network_timeout": "5s",
             "commit_retry_delay": "100ms"},
    "cluster": {"monitor_ping_interval": "2s"},
    "monitor": {"check_interval": "2s"},
    "disk_informer": {"metric_ttl": "4s"},
    "ipfshttp": {"connect_swarms_delay": "0s"},
}


def wait_until(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {seconds}s")
        time.sleep(0.05)


@attrs.define
class Peer:
    config: ServiceConfig
    rest: int
    proc: subprocess.Popen | None = None

    @property
    def id(self) -> str:
        return self.config.cluster.peer_id

    @property
    def addr(self) -> str:
        return f"{self.config.cluster.listen_multiaddress}/p2p/{self.id}"

    def log(self) -> str:
        try:
            with open(os.path.join(self.config.folder, "peer.log"), encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def saved(self) -> ServiceConfig:
        return ServiceConfig.load(self.config.folder)

    def exited(self):
        return self.proc is not None and self.proc.poll() is not None


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


def make_peers(folder: str, n: int) -> tuple[list[Peer], list[int]]:
    secret = os.urandom(32)
    idents = [Identity.generate() for _ in range(n)]
    rpc = [free_port() for _ in range(n)]
    kubo = [free_port() for _ in range(n)]
    addrs = [f"/ip4/127.0.0.1/tcp/{p}/p2p/{i.peer_id}" for p, i in zip(rpc, idents)]
    peers = []
    for i, ident in enumerate(idents):
        rest = free_port()
        cfg = ServiceConfig.default(os.path.join(folder, f"peer{i}"), secret=secret, identity=ident)
        static = [a for j, a in enumerate(addrs[:3]) if j != i] if i < 3 else []
        cfg = attrs.evolve(
            cfg,
            cluster=attrs.evolve(cfg.cluster, peername=f"peer{i}",
                                 peers=tuple(Multiaddr.parse(a) for a in static),
                                 listen_multiaddress=Multiaddr.parse(f"/ip4/127.0.0.1/tcp/{rpc[i]}"),
                                 leave_on_shutdown=(i == 2)),
            restapi=attrs.evolve(cfg.restapi, listen_multiaddress=Multiaddr.parse(f"/ip4/127.0.0.1/tcp/{rest}")),
            ipfshttp=attrs.evolve(cfg.ipfshttp,
                                  node_multiaddress=Multiaddr.parse(f"/ip4/127.0.0.1/tcp/{kubo[i]}"),
                                  proxy_listen_multiaddress=Multiaddr.parse(f"/ip4/127.0.0.1/tcp/{free_port()}")),
        )
        cfg = apply_overrides(cfg, TIMINGS)
        os.makedirs(cfg.folder, exist_ok=True)
        cfg.save()
        peers.append(Peer(cfg, rest))
    return peers, kubo


def start(procs, peer: Peer, *extra):
    with open(os.path.join(peer.config.folder, "peer.log"), "ab") as log:
        peer.proc = subprocess.Popen(
            TWISTD + ["-n", "--pidfile=", "ipfs-cluster", "--config", peer.config.folder, *extra],
            stdout=log, stderr=subprocess.STDOUT, env=env())
    procs.append(peer.proc)


def ready(peer: Peer, seconds: float = 40.0):
    def check():
        if peer.exited():
            raise AssertionError(f"{peer.config.cluster.peername} exited:\n{peer.log()[-3000:]}")
        return "IPFS Cluster is ready" in peer.log()

    wait_until(check, seconds, f"{peer.config.cluster.peername} ready")


def stopped_cleanly(peer: Peer) -> None:
    """After SIGTERM: the peer stopped everything (twistd then re-raises the signal,
    so the status is -SIGTERM, as for any twistd application)."""
    wait_until(peer.exited, 30, f"{peer.config.cluster.peername} exit")
    assert peer.proc.returncode == -signal.SIGTERM
    assert f"peer {peer.id} stopped" in peer.log()


def ctl(peer: Peer, *args) -> subprocess.CompletedProcess:
    return subprocess.run(CTL + ["--host", f"127.0.0.1:{peer.rest}", "--timeout", "30", *args],
                          capture_output=True, text=True, env=env(), timeout=60)


def peer_ids(peer: Peer) -> set[str]:
    done = ctl(peer, "--enc", "json", "peers", "ls")
    assert done.returncode == 0, done.stderr
    text = done.stdout.strip()
    items = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines()]
    return {i["id"] for i in items if not i.get("error")}


def test_join_remove_leave_with_real_processes(tmp_path, procs):
    peers, kubo_ports = make_peers(str(tmp_path), 4)
    kubo = subprocess.Popen(
        [sys.executable, "-m", "ipfscluster.testing.fakeipfs", "--instant-pins",
         "--network-dir", str(tmp_path / "net")]
        + [a for p in kubo_ports for a in ("--api", f"/ip4/127.0.0.1/tcp/{p}")],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=env())
    procs.append(kubo)
    p0, p1, p2, p3 = peers
    for p in (p0, p1, p2):
        start(procs, p)
    for p in (p0, p1, p2):
        ready(p)

    # a 4th peer joins through peer 0
    start(procs, p3, "--bootstrap", p0.addr)
    ready(p3)
    everyone = {p.id for p in peers}
    wait_until(lambda: peer_ids(p0) == everyone, 20, "4 peers listed")
    wait_until(lambda: {a.peer_id for a in p3.saved().cluster.peers} == everyone - {p3.id}, 10,
               "the joiner saved the peerset")

    # peer 1 is removed with ipfs-cluster-ctl; it shuts itself down (exit 0)
    done = ctl(p0, "peers", "rm", p1.id)
    assert done.returncode == 0, done.stderr
    assert wait_until(p1.exited, 30, "peer1 exit") and p1.proc.returncode == 0
    saved = p1.saved().cluster
    assert saved.peers == () and {a.peer_id for a in saved.bootstrap} == everyone - {p1.id}
    assert not os.path.exists(p1.config.raft_data_folder)
    assert os.path.isdir(p1.config.raft_data_folder + ".old.0")

    # peer 2 leaves on SIGTERM (leave_on_shutdown)
    p2.proc.send_signal(signal.SIGTERM)
    stopped_cleanly(p2)
    saved = p2.saved().cluster
    assert saved.peers == () and {a.peer_id for a in saved.bootstrap} == {p0.id, p3.id}
    assert os.path.isdir(p2.config.raft_data_folder + ".old.0")
    assert os.listdir(os.path.join(p2.config.folder, "backups"))

    # the survivors keep pinning and saved each other only
    wait_until(lambda: peer_ids(p3) == {p0.id, p3.id}, 20, "2 peers left")
    c = CID.v0(sha256_multihash(b"membership processes")[2:])
    done = ctl(p3, "pin", "add", "--wait", str(c))
    assert done.returncode == 0, done.stdout + done.stderr
    status = ctl(p0, "--enc", "json", "status", str(c))
    assert status.returncode == 0 and status.stdout.count('"pinned"') == 2, status.stdout
    for me, other in ((p0, p3), (p3, p0)):
        assert {a.peer_id for a in me.saved().cluster.peers} == {other.id}

    for p in (p0, p3):
        p.proc.send_signal(signal.SIGTERM)
    for p in (p0, p3):
        stopped_cleanly(p)
    kubo.terminate()
    kubo.wait(timeout=10)
