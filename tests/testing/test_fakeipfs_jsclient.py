"""The official JavaScript kubo client (``kubo-rpc-client``) against the fake.

It sends multipart uploads its own way (``file?mode=...&mtime=...`` field names,
directories as paths) and parses kubo's answers strictly; the node process runs
while the reactor serves the fake on loopback.
"""

from __future__ import annotations

import json
import os

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue

from ipfscluster.testing.fakeipfs import FakeIPFS

pytestmark = pytest.mark.loopback


@pytest_twisted.ensureDeferred
async def test_kubo_rpc_client_session(npm_cache):
    daemon = FakeIPFS(reactor=reactor)
    daemon.listen("/ip4/127.0.0.1/tcp/0")
    node, script = npm_cache.script("kubo_rpc_client_session.mjs")
    try:
        stdout, stderr, code = await getProcessOutputAndValue(
            node, [script, daemon.api_url], env=dict(os.environ), path=npm_cache.folder
        )
    finally:
        await daemon.stop()
    assert code == 0, stderr.decode()
    seen = json.loads(stdout)
    hello = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    assert seen["added"] == {"cid": hello, "size": 20, "path": "hello.txt", "mode": 0o644}
    assert [e["path"] for e in seen["dir"]] == ["d/a.txt", "d/sub/b.txt", "d/sub", "d", ""]
    wrapper = seen["dir"][-1]["cid"]
    assert seen["cat"] == "hello world\n"
    assert seen["pins"] == [hello, wrapper]
    assert seen["removed"] == seen["pinned"] == hello
    assert seen["rmError"] == "not pinned or pinned indirectly"
    assert seen["id"] == daemon.peer_id and seen["version"] == daemon.version
    assert int(seen["objects"]) == len(daemon.blockstore)
