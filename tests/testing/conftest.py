"""Fixtures for the fake kubo daemon's tests.

``fake`` is a FakeIPFS on a ``Clock``; ``stub`` drives its real twisted.web resource
through ``treq.testing.StubTreq`` (no sockets): ``stub.post(path, ...)`` returns a
:class:`Reply` once the in-memory exchange is pumped, ``stub.start(...)`` returns the
pending Deferred of a request that does not answer at once (waits, hangs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import attrs
import pytest
from treq.testing import StubTreq
from twisted.internet.task import Clock

from ipfscluster.testing.fakeipfs import FakeIPFS, FakeNetwork
from ipfscluster.testing.fakeipfs.multipart import encode_multipart


@attrs.frozen
class Reply:
    status: int
    headers: dict  # lower-case name -> value (first)
    body: bytes

    def json(self):
        return json.loads(self.body)

    def lines(self):
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


class Pending:
    """A request in flight: ``done`` once its reply (or failure) arrived."""

    def __init__(self, d):
        self.results = []
        self.deferred = d
        d.addBoth(self.results.append)

    @property
    def done(self) -> bool:
        return bool(self.results)

    def cancel(self):
        self.deferred.cancel()


class StubKubo:
    """A synchronous kubo client over StubTreq for one fake daemon."""

    def __init__(self, daemon: FakeIPFS):
        self.daemon = daemon
        self.treq = StubTreq(daemon.resource)

    def start(self, path, params=(), body=None, content_type=None, method="POST", files=None):
        headers = {}
        if files is not None:
            body, content_type = encode_multipart(files)
        if content_type:
            headers["Content-Type"] = content_type
        d = self.treq.request(
            method, "http://127.0.0.1:5001/api/v0/" + path, params=list(params), data=body,
            headers=headers,
        )

        def read(response):
            heads = {
                k.decode().lower(): v[0].decode() for k, v in response.headers.getAllRawHeaders()
            }
            return response.content().addCallback(lambda b: Reply(response.code, heads, b))

        return Pending(d.addCallback(read))

    def flush(self):
        self.treq.flush()

    def finish(self, pending: Pending) -> Reply:
        self.flush()
        assert pending.done, "the request did not complete"
        result = pending.results[0]
        if hasattr(result, "raiseException"):
            result.raiseException()
        return result

    def post(self, path, params=(), **kwargs) -> Reply:
        return self.finish(self.start(path, params, **kwargs))

    def add(self, data: bytes, name="f.bin", params=()) -> dict:
        """Add one file; return the last add event."""
        reply = self.post("add", params, files=[(name, data)])
        assert reply.status == 200, reply.body
        return reply.lines()[-1]


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def network():
    return FakeNetwork("test")


@pytest.fixture
def fake(clock, network):
    daemon = FakeIPFS(clock=clock, network=network)
    yield daemon
    daemon.stop()


@pytest.fixture
def stub(fake):
    return StubKubo(fake)


@pytest.fixture
def make_stub(clock, network):
    """Make more daemons on the same network (with their StubKubo clients)."""
    made = []

    def make(**kwargs):
        daemon = FakeIPFS(clock=clock, network=network, **kwargs)
        made.append(daemon)
        return StubKubo(daemon)

    yield make
    for daemon in made:
        daemon.stop()


@pytest.fixture
def stub_of():
    """Wrap any daemon in a StubKubo client."""
    return StubKubo


# --- npm packages used as independent references --------------------------------------

HERE = os.path.dirname(os.path.abspath(__file__))
NPM_CACHE = os.path.join(os.path.dirname(os.path.dirname(HERE)), ".cache", "npm-unixfs")
NPM_PACKAGES = {
    "ipfs-unixfs-importer": "17.1.1",  # the reference importer
    "blockstore-core": "5.0.4",  # its MemoryBlockstore
    "kubo-rpc-client": "7.1.0",  # the JavaScript kubo client
}
NPM_INSTALL_DEADLINE = 600


@attrs.frozen
class NpmCache:
    node: str
    folder: str

    def script(self, name: str) -> tuple[str, str]:
        """Copy the test script ``name`` next to the packages; return (node, path)."""
        target = os.path.join(self.folder, name)
        shutil.copyfile(os.path.join(HERE, name), target)
        return self.node, target


def _npm_installed() -> bool:
    for name, version in NPM_PACKAGES.items():
        try:
            with open(os.path.join(NPM_CACHE, "node_modules", name, "package.json")) as f:
                if json.load(f).get("version") != version:
                    return False
        except (OSError, ValueError):
            return False
    return True


@pytest.fixture(scope="session")
def npm_cache():
    """The npm packages of NPM_PACKAGES, installed once into ``.cache/npm-unixfs``.

    CI reaches the npm registry, so a missing node/npm or a failed install fails the
    tests that need them rather than skipping them.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed for the reference checks of the fake daemon")
    os.makedirs(NPM_CACHE, exist_ok=True)
    if not _npm_installed():
        with open(os.path.join(NPM_CACHE, "package.json"), "w") as f:
            json.dump({"name": "fakeipfs-reference", "private": True, "dependencies": NPM_PACKAGES}, f)
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--no-package-lock"],
            cwd=NPM_CACHE,
            capture_output=True,
            text=True,
            timeout=NPM_INSTALL_DEADLINE,
        )
        if done.returncode != 0 or not _npm_installed():
            pytest.fail(f"npm install of the reference packages failed:\n{done.stderr[-2000:]}")
    return NpmCache(node, NPM_CACHE)
