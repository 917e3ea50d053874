"""The kubo contract suite, run against the fake daemon and (when installed) kubo."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor

from ipfscluster.testing.contract import KuboContract, KuboTarget, start_real_kubo, stop_real_kubo
from ipfscluster.testing.fakeipfs import FakeIPFS

pytestmark = pytest.mark.loopback


class TestFakeIPFSContract(KuboContract):
    @pytest.fixture
    def kubo(self):
        daemon = FakeIPFS(reactor=reactor)
        daemon.listen("/ip4/127.0.0.1/tcp/0")
        yield KuboTarget(daemon.api_url, "fake")
        pytest_twisted.blockon(daemon.stop())


class TestRealKuboContract(KuboContract):
    @pytest.fixture
    def kubo(self, tmp_path):
        process, target = start_real_kubo(str(tmp_path / "ipfs"))
        yield target
        stop_real_kubo(process)
