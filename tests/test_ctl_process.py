"""``ipfs-cluster-ctl`` as a real process (``python -m ipfscluster.ctl.main``).

The REST API these talk to runs in the test's reactor on 127.0.0.1 (port 0); the
child is spawned through the reactor so the server keeps answering while the
child runs.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.task import Clock
from twisted.internet.utils import getProcessOutputAndValue

from ipfscluster.api.rest.server import RestAPI
from ipfscluster.config.restapi import RestAPIConfig
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.testing.fakecluster import FakeCluster, synthetic_cid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.loopback


def _env():
    env = {k: v for k, v in os.environ.items() if k != "CLUSTER_CREDENTIALS"}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def ctl_blocking(*argv):
    return subprocess.run(
        [sys.executable, "-m", "ipfscluster.ctl.main", *argv],
        capture_output=True, text=True, timeout=60, env=_env(), cwd=ROOT,
    )  # fmt: skip


async def ctl_async(*argv):
    out, err, code = await getProcessOutputAndValue(
        sys.executable, ["-m", "ipfscluster.ctl.main", *argv], env=_env(), path=ROOT, reactor=reactor
    )
    return code, out.decode(), err.decode()


def test_import_rule_no_server_machinery():
    """ctl imports only the REST client and the value modules (DESIGN.md §3)."""
    code = (
        "import sys, ipfscluster.ctl.main\n"
        "bad = [m for m in sys.modules if m.startswith(('ipfscluster.cluster', 'ipfscluster.api.rest.server',"
        " 'ipfscluster.api.rest.streaming', 'ipfscluster.api.proxy', 'ipfscluster.consensus',"
        " 'ipfscluster.pintracker', 'ipfscluster.rpc', 'ipfscluster.testing', 'ipfscluster.state', 'klein'))]\n"
        "assert not bad, bad\n"
        "assert 'twisted.internet.reactor' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env=_env(), cwd=ROOT)  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_version_help_and_bad_cid():
    result = ctl_blocking("--version")
    assert (result.returncode, result.stdout) == (0, "ipfs-cluster-ctl version 0.1.0\n")
    result = ctl_blocking("--help")
    assert result.returncode == 0 and "Usage: ipfs-cluster-ctl" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 120
    result = ctl_blocking("status", "QmNotACid")
    assert result.returncode == 1 and result.stderr.startswith('error parsing cid: invalid CID "QmNotACid"')
    result = ctl_blocking("--host", "127.0.0.1:1", "id")
    assert result.returncode == 1 and "error performing request to http://127.0.0.1:1/id" in result.stderr


@pytest_twisted.ensureDeferred
async def test_api_error_and_success_against_a_loopback_api():
    cluster = FakeCluster(Clock())
    config = RestAPIConfig(listen_multiaddress=Multiaddr.parse("/ip4/127.0.0.1/tcp/0"))
    api = RestAPI(config, cluster, reactor, "/nonexistent")
    await defer.maybeDeferred(api.startService)
    try:
        host = str(api.addresses()[0])
        code, out, err = await ctl_async("--host", host, "pin", "rm", str(synthetic_cid(5)))
        assert code == 2 and err.startswith("An error occurred:\n  Code: 404\n  Message: ")
        code, out, err = await ctl_async("--host", host, "--enc", "json", "pin", "add", str(synthetic_cid(5)))
        assert code == 0 and '"status": "pinned"' in out
        assert synthetic_cid(5) in cluster.state
    finally:
        await api.stopService()


class _ClosesStdoutEarly:
    """Process protocol that closes the child's stdout after the first output."""

    def __init__(self):
        from twisted.internet.protocol import ProcessProtocol

        self.done = defer.Deferred()
        self.err = b""
        outer = self

        class Proto(ProcessProtocol):
            def outReceived(self, data):
                self.transport.closeChildFD(1)

            def errReceived(self, data):
                outer.err += data

            def processEnded(self, reason):
                outer.done.callback(reason.value.exitCode)

        self.protocol = Proto()


@pytest_twisted.ensureDeferred
async def test_closed_stdout_ends_quietly():
    cluster = FakeCluster(Clock())
    cluster.synthetic = 50_000
    config = RestAPIConfig(listen_multiaddress=Multiaddr.parse("/ip4/127.0.0.1/tcp/0"))
    api = RestAPI(config, cluster, reactor, "/nonexistent")
    await defer.maybeDeferred(api.startService)
    try:
        watcher = _ClosesStdoutEarly()
        argv = [sys.executable, "-m", "ipfscluster.ctl.main", "--host", str(api.addresses()[0]), "status"]
        reactor.spawnProcess(watcher.protocol, sys.executable, argv, env=_env(), path=ROOT)
        code = await watcher.done
        assert code == 1 and b"Traceback" not in watcher.err, watcher.err.decode()
    finally:
        await api.stopService()
