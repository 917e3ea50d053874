"""``ipfs-cluster-service sandbox``: a whole cluster for newcomers, in one process."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from ipfscluster import sandbox
from ipfscluster.config.service import ServiceConfig

from cli_processes import env, running, service_cmd  # noqa: F401  (fixture)

CID_A = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
CID_B = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"


def free_base(peers: int) -> int:
    rnd = random.Random()
    for _ in range(50):
        base = rnd.randrange(20000, 60000, 10)
        try:
            sandbox.check_ports(base, peers)
        except sandbox.SandboxError:
            continue
        return base
    pytest.fail("no free port range found")


def test_port_plan():
    assert [sandbox.port_of(19090, 0, k) for k in (sandbox.KUBO, sandbox.REST, sandbox.PROXY, sandbox.RPC)] == [
        19091, 19094, 19095, 19096]
    assert sandbox.port_of(19090, 2, sandbox.REST) == 19114


def test_busy_port_is_named():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        base = port - sandbox.REST
        with pytest.raises(sandbox.SandboxError, match=f"port {port} \\(REST API of peer 0\\) is in use"):
            sandbox.check_ports(base, 1)


def test_base_port_out_of_range():
    with pytest.raises(sandbox.SandboxError, match="does not leave room"):
        sandbox.check_ports(65530, 3)


def test_configs_are_generated_then_reused(tmp_path):
    first = sandbox.peer_configs(str(tmp_path), 3, 30000)
    assert len({c.cluster.peer_id for c in first}) == 3
    assert len({c.cluster.secret for c in first}) == 1
    for i, cfg in enumerate(first):
        assert len(cfg.cluster.peers) == 2
        assert str(cfg.restapi.listen_multiaddress) == f"/ip4/127.0.0.1/tcp/{30000 + 10 * i + 4}"
        assert ServiceConfig.load(cfg.folder).cluster.peer_id == cfg.cluster.peer_id
    again = sandbox.peer_configs(str(tmp_path), 3, 30000)
    assert [c.cluster.peer_id for c in again] == [c.cluster.peer_id for c in first]
    with pytest.raises(sandbox.SandboxError, match="another size"):
        sandbox.peer_configs(str(tmp_path), 4, 30000)


def _ctl(*args, cwd):
    """Run ipfs-cluster-ctl as a user would; its output (exit status must be 0)."""
    done = subprocess.run([sys.executable, "-m", "ipfscluster.ctl.main", *args], cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read() or b"null")


def _post(url):
    req = urllib.request.Request(url, method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def _poll(predicate, what, seconds=30.0):
    deadline = time.monotonic() + seconds
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached within {seconds}s")
        time.sleep(0.1)  # polling a condition with a deadline, not waiting a fixed time


def _api(addr: str) -> str:
    parts = addr.split("/")
    return f"http://{parts[2]}:{parts[4]}"


@pytest.mark.loopback
@pytest.mark.slow
def test_sandbox_runs_a_cluster_and_cleans_up(tmp_path, running):  # noqa: F811
    base = free_base(3)
    folder = tmp_path / "sbx"
    proc = running(service_cmd("sandbox", "--dir", str(folder), "--base-port", str(base)), cwd=tmp_path)
    out = proc.wait_for("Press Ctrl-C to stop the sandbox.")
    assert "IPFS Cluster sandbox ready: 3 peers" in out
    info = json.loads((folder / "sandbox.json").read_text())
    assert len(info["peers"]) == 3
    apis = [_api(p["rest_api"]) for p in info["peers"]]
    ids = [p["id"] for p in info["peers"]]
    for p in info["peers"]:
        assert os.path.exists(os.path.join(p["config_folder"], "service.json"))

    def statuses(cid, via):
        gpi = _get(f"{apis[via]}/pins/{cid}")
        return {peer: st["status"] for peer, st in gpi["peer_map"].items()}

    host = info["peers"][0]["rest_api"]
    added = _ctl("--host", host, "pin", "add", "--wait", "--wait-timeout", "30", CID_A, cwd=tmp_path)
    assert CID_A in added

    def ctl_statuses(cid, via):
        text = _ctl("--host", info["peers"][via]["rest_api"], "status", cid, cwd=tmp_path)
        return [line.split(":")[1].split("|")[0].strip() for line in text.splitlines() if "> " in line]

    _poll(lambda: ctl_statuses(CID_A, 1) == ["PINNED"] * 3, "PINNED on every peer (ipfs-cluster-ctl status)")
    _ctl("--host", host, "pin", "add", "--replication", "2", CID_B, cwd=tmp_path)
    _poll(lambda: sorted(ctl_statuses(CID_B, 2)) == ["PINNED", "PINNED", "REMOTE"],
          "pinned on 2 peers, remote on 1")
    assert sorted(statuses(CID_B, 0).values()) == ["pinned", "pinned", "remote"]  # same over plain HTTP

    status, _ = proc.stop(signal.SIGINT, timeout=30)
    assert status == 0
    sandbox.check_ports(base, 3)  # every port is free again
