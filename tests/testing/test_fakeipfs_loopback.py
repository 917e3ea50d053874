"""The fake daemon on real loopback sockets: a real kubo client and daemon down.

``ipfshttpclient`` (the Python kubo client) is blocking: it runs in a thread pool
while the reactor serves; each test stops its pool, its daemons and its listeners.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor, threads
from twisted.python.threadpool import ThreadPool

from ipfscluster.testing.fakeipfs import FakeIPFS, FakeNetwork

ipfshttpclient = pytest.importorskip("ipfshttpclient")

pytestmark = [
    pytest.mark.loopback,
    # ipfshttpclient 0.7 passes urllib3 an argument it deprecated; not ours to fix
    pytest.mark.filterwarnings("ignore:The 'strict' parameter:FutureWarning"),
]


@pytest.fixture
def pool():
    threadpool = ThreadPool(minthreads=1, maxthreads=1, name="kubo-client")
    threadpool.start()
    yield threadpool
    threadpool.stop()


@pytest.fixture
def daemons():
    made = []
    network = FakeNetwork("loopback")

    def make(**kwargs):
        daemon = FakeIPFS(reactor=reactor, network=network, **kwargs)
        daemon.listen("/ip4/127.0.0.1/tcp/0")
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        pytest_twisted.blockon(daemon.stop())


def _client(daemon):
    return ipfshttpclient.Client(f"{daemon.api_multiaddr}/http")


@pytest_twisted.ensureDeferred
async def test_ipfshttpclient_add_cat_pin(daemons, pool, tmp_path):
    daemon = daemons()
    source = tmp_path / "hello.txt"
    source.write_bytes(b"hello world\n")

    def session():
        client = _client(daemon)
        try:
            added = client.add(str(source))
            data = client.cat(added["Hash"])
            listed = client.pin.ls(type="recursive")
            removed = client.pin.rm(added["Hash"])
            after = client.pin.ls(type="recursive")
            pinned = client.pin.add(added["Hash"])
            version = client.version()
            try:
                client.pin.rm("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH")
            except ipfshttpclient.exceptions.ErrorResponse as e:
                error = str(e)
            else:
                error = None
            return added, data, listed, removed, after, pinned, version, error
        finally:
            client.close()

    added, data, listed, removed, after, pinned, version, error = (
        await threads.deferToThreadPool(reactor, pool, session)
    )
    cid = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    assert added["Hash"] == cid and added["Name"] == "hello.txt" and added["Size"] == "20"
    assert data == b"hello world\n"
    assert listed["Keys"] == {cid: {"Type": "recursive", "Name": ""}}
    assert removed["Pins"] == [cid] and after == {}
    assert pinned["Pins"] == [cid]
    assert version["Version"] == daemon.version
    assert error == "not pinned or pinned indirectly"
    assert daemon.pin_mode(cid) == "recursive"


@pytest_twisted.ensureDeferred
async def test_ipfshttpclient_adds_a_directory(daemons, pool, tmp_path):
    daemon = daemons()
    folder = tmp_path / "d"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_bytes(b"a")
    (folder / "sub" / "b.txt").write_bytes(b"b")

    def session():
        client = _client(daemon)
        try:
            return client.add(str(folder), recursive=True)
        finally:
            client.close()

    added = await threads.deferToThreadPool(reactor, pool, session)
    names = [entry["Name"] for entry in added]
    assert names[-1] == "d" and set(names) == {"d/a.txt", "d/sub/b.txt", "d/sub", "d"}
    assert daemon.pin_mode(added[-1]["Hash"]) == "recursive"


@pytest_twisted.ensureDeferred
async def test_down_daemon_refuses_connections_then_comes_back(daemons):
    daemon = daemons()
    url = f"{daemon.api_url}/api/v0/version"
    response = await treq.post(url, persistent=False)
    assert response.code == 200
    await response.content()
    await daemon.go_down()
    with pytest.raises(Exception) as failure:
        await treq.post(url, persistent=False)
    assert "refused" in str(failure.value).lower() or "connection" in str(failure.value).lower()
    await daemon.come_up()
    response = await treq.post(url, persistent=False)
    assert (await response.json())["Version"] == daemon.version


@pytest_twisted.ensureDeferred
async def test_content_moves_between_listening_daemons(daemons):
    first, second = daemons(), daemons()
    root = first.add_bytes(b"shared over the fake network")
    url = f"{second.api_url}/api/v0/pin/add"
    response = await treq.post(url, params={"arg": str(root.cid)}, persistent=False)
    assert await response.json() == {"Pins": [str(root.cid)]}


def test_standalone_command_serves_the_api(tmp_path):
    """``python -m ipfscluster.testing.fakeipfs`` listens and answers, then stops."""
    code = (
        "import sys, json, urllib.request\n"
        "from twisted.internet import reactor\n"
        "from ipfscluster.testing.fakeipfs.__main__ import start\n"
        "daemons = start(reactor, ['--api', '/ip4/127.0.0.1/tcp/0', '--version', '9.9.9',\n"
        f"                          '--network-dir', {str(tmp_path)!r}])\n"
        "def ask():\n"
        "    base = daemons[0].api_url\n"
        "    from twisted.internet import threads\n"
        "    url = base + '/api/v0/version'\n"
        "    d = threads.deferToThread(lambda: urllib.request.urlopen(\n"
        "        urllib.request.Request(url, method='POST'), timeout=10).read())\n"
        "    d.addCallback(lambda b: print('REPLY', b.decode().strip()))\n"
        "    d.addBoth(lambda _: reactor.stop())\n"
        "reactor.callWhenRunning(ask)\n"
        "reactor.run()\n"
    )
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "listening on /ip4/127.0.0.1/tcp/" in done.stdout
    assert 'REPLY {"Version":"9.9.9"' in done.stdout
    assert (tmp_path / "peers").is_dir()  # the shared network lives in the given folder


def test_standalone_command_rejects_a_bad_address(tmp_path):
    command = [sys.executable, "-m", "ipfscluster.testing.fakeipfs"]
    done = subprocess.run(
        command + ["--api", "/ip4/127.0.0.1/udp/1", "--network-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=os.getcwd()),
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: ")
