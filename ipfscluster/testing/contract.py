"""The connector-facing contract of a kubo RPC API, as a reusable pytest suite.

What the cluster's IPFS connector and proxy rely on when they talk to kubo:
``id``, ``version``, ``add``, ``cat``, ``pin/add`` (recursive, direct, progress
stream, waiting for missing content bounded by ``timeout``), ``pin/rm``,
``pin/ls`` (map and stream forms, type filters, "not pinned" errors),
``pin/update``, ``repo/stat``, ``swarm/connect``/``swarm/peers``, ``config/show``,
``block/put``/``block/get``, and kubo's framing (POST only, error bodies).

Use it by subclassing :class:`KuboContract` in a test module and providing a
``kubo`` fixture that yields a :class:`KuboTarget` (the API's base URL).  The same
tests then run against the fake daemon (``ipfscluster.testing.fakeipfs``) and, where
an ``ipfs`` binary exists, a real kubo (:func:`start_real_kubo`), which is how the
fake is kept honest.  Every test adds its own random content, so a long-lived kubo
can be used too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import attrs
import pytest
import pytest_twisted
import treq

from ipfscluster.cid import CID, RAW, sha256_multihash
from ipfscluster.identity import validate_peer_id

__all__ = ["KuboTarget", "KuboReply", "KuboContract", "start_real_kubo", "stop_real_kubo"]


@attrs.frozen
class KuboTarget:
    """A kubo RPC API to test: ``url`` like ``http://127.0.0.1:5001``."""

    url: str
    name: str = "kubo"


@attrs.frozen
class KuboReply:
    """An HTTP reply: status, headers (lower-case name -> first value), body."""

    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)

    def lines(self) -> list:
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


async def kubo_request(target: KuboTarget, path: str, params=(), files=None, method="POST"):
    """Send one request to ``/api/v0/<path>``; ``files``: ``[(name, bytes)]`` sent as
    multipart.  Returns a KuboReply."""
    from ipfscluster.testing.fakeipfs.multipart import encode_multipart

    headers, body = {}, None
    if files is not None:
        body, headers["Content-Type"] = encode_multipart(files)
    response = await treq.request(
        method,
        f"{target.url}/api/v0/{path}",
        params=list(params),
        data=body,
        headers=headers,
        persistent=False,
    )
    content = await response.content()
    heads = {k.decode().lower(): v[0].decode() for k, v in response.headers.getAllRawHeaders()}
    return KuboReply(response.code, heads, content)


def _unique(label: str) -> bytes:
    return f"{label} {os.urandom(16).hex()}\n".encode()


def _absent_cid() -> str:
    return str(CID.v1(RAW, sha256_multihash(os.urandom(32))))


def _assert_error(reply: KuboReply, status: int = 500) -> dict:
    assert reply.status == status, (reply.status, reply.body)
    body = reply.json()
    assert body["Type"] == "error" and isinstance(body["Code"], int), body
    return body


class KuboContract:
    """The contract tests; a subclass supplies the ``kubo`` fixture."""

    async def add(self, kubo, data: bytes, *params) -> str:
        reply = await kubo_request(kubo, "add", params, files=[("contract.bin", data)])
        assert reply.status == 200, reply.body
        return reply.lines()[-1]["Hash"]

    @pytest_twisted.ensureDeferred
    async def test_only_post_is_allowed(self, kubo):
        reply = await kubo_request(kubo, "version", method="GET")
        assert reply.status == 405

    @pytest_twisted.ensureDeferred
    async def test_id_reports_peer_id_and_addresses(self, kubo):
        body = (await kubo_request(kubo, "id")).json()
        assert validate_peer_id(body["ID"]) == body["ID"]
        assert isinstance(body["Addresses"], list)
        assert body["AgentVersion"].startswith("kubo/")

    @pytest_twisted.ensureDeferred
    async def test_version(self, kubo):
        body = (await kubo_request(kubo, "version")).json()
        assert isinstance(body["Version"], str) and body["Version"]

    @pytest_twisted.ensureDeferred
    async def test_add_pins_recursively_by_default(self, kubo):
        cid = await self.add(kubo, _unique("add"))
        reply = await kubo_request(kubo, "pin/ls", [("arg", cid), ("type", "recursive")])
        assert reply.json()["Keys"][cid]["Type"] == "recursive"

    @pytest_twisted.ensureDeferred
    async def test_pin_add_ls_rm_cycle(self, kubo):
        cid = await self.add(kubo, _unique("cycle"), ("pin", "false"))
        body = _assert_error(await kubo_request(kubo, "pin/ls", [("arg", cid), ("type", "recursive")]))
        assert body["Message"] == f"path '{cid}' is not pinned"
        assert (await kubo_request(kubo, "pin/add", [("arg", cid)])).json() == {"Pins": [cid]}
        listed = await kubo_request(kubo, "pin/ls", [("type", "recursive")])
        assert listed.json()["Keys"][cid] == {"Type": "recursive", "Name": ""}
        assert (await kubo_request(kubo, "pin/rm", [("arg", cid)])).json() == {"Pins": [cid]}
        _assert_error(await kubo_request(kubo, "pin/ls", [("arg", cid)]))

    @pytest_twisted.ensureDeferred
    async def test_pin_rm_of_unpinned_content_fails(self, kubo):
        cid = await self.add(kubo, _unique("unpinned"), ("pin", "false"))
        body = _assert_error(await kubo_request(kubo, "pin/rm", [("arg", cid)]))
        assert body["Message"] == "not pinned or pinned indirectly"

    @pytest_twisted.ensureDeferred
    async def test_pin_ls_stream_is_ndjson(self, kubo):
        cid = await self.add(kubo, _unique("stream"))
        reply = await kubo_request(kubo, "pin/ls", [("stream", "true"), ("type", "recursive")])
        assert reply.status == 200 and reply.headers.get("x-chunked-output") == "1"
        lines = reply.lines()
        assert all(set(line) <= {"Cid", "Type", "Name"} for line in lines)
        assert {"Cid": cid, "Type": "recursive"} in lines

    @pytest_twisted.ensureDeferred
    async def test_pin_add_progress_ends_with_the_pins(self, kubo):
        cid = await self.add(kubo, _unique("progress"), ("pin", "false"))
        reply = await kubo_request(kubo, "pin/add", [("arg", cid), ("progress", "true")])
        lines = reply.lines()
        assert lines[-1] == {"Pins": [cid]}
        assert all("Pins" not in line for line in lines[:-1])

    @pytest_twisted.ensureDeferred
    async def test_direct_pins_are_filtered_by_type(self, kubo):
        cid = await self.add(kubo, _unique("direct"), ("pin", "false"))
        reply = await kubo_request(kubo, "pin/add", [("arg", cid), ("recursive", "false")])
        assert reply.json() == {"Pins": [cid]}
        direct = await kubo_request(kubo, "pin/ls", [("arg", cid), ("type", "direct")])
        assert direct.json()["Keys"][cid]["Type"] == "direct"
        _assert_error(await kubo_request(kubo, "pin/ls", [("arg", cid), ("type", "recursive")]))
        reply = await kubo_request(kubo, "pin/rm", [("arg", cid), ("recursive", "false")])
        assert reply.json() == {"Pins": [cid]}

    @pytest_twisted.ensureDeferred
    async def test_pin_update(self, kubo):
        old = await self.add(kubo, _unique("old"))
        new = await self.add(kubo, _unique("new"), ("pin", "false"))
        reply = await kubo_request(kubo, "pin/update", [("arg", old), ("arg", new)])
        assert reply.json() == {"Pins": [old, new]}
        _assert_error(await kubo_request(kubo, "pin/ls", [("arg", old), ("type", "recursive")]))
        listed = await kubo_request(kubo, "pin/ls", [("arg", new), ("type", "recursive")])
        assert listed.status == 200

    @pytest_twisted.ensureDeferred
    async def test_missing_content_pin_honours_timeout(self, kubo):
        reply = await kubo_request(
            kubo, "pin/add", [("arg", _absent_cid()), ("timeout", "300ms")]
        )
        body = _assert_error(reply)
        assert "deadline exceeded" in body["Message"]

    @pytest_twisted.ensureDeferred
    async def test_invalid_path_and_missing_argument(self, kubo):
        body = _assert_error(await kubo_request(kubo, "pin/add", [("arg", "notacid")]))
        assert body["Message"].startswith('invalid path "notacid"')
        reply = await kubo_request(kubo, "pin/add")
        assert reply.status == 400

    @pytest_twisted.ensureDeferred
    async def test_repo_stat(self, kubo):
        full = (await kubo_request(kubo, "repo/stat")).json()
        assert isinstance(full["RepoSize"], int) and isinstance(full["StorageMax"], int)
        assert isinstance(full["NumObjects"], int) and full["Version"].startswith("fs-repo@")
        sized = (await kubo_request(kubo, "repo/stat", [("size-only", "true")])).json()
        assert {"RepoSize", "StorageMax"} <= set(sized) and sized["NumObjects"] == 0

    @pytest_twisted.ensureDeferred
    async def test_swarm_connect_to_an_unreachable_peer_fails(self, kubo):
        from ipfscluster.identity import Identity

        peer = Identity.generate().peer_id
        reply = await kubo_request(
            kubo,
            "swarm/connect",
            [("arg", f"/ip4/127.0.0.1/tcp/1/p2p/{peer}"), ("timeout", "5s")],
        )
        body = _assert_error(reply)
        assert body["Message"].startswith(f"connect {peer} failure")

    @pytest_twisted.ensureDeferred
    async def test_swarm_peers_shape(self, kubo):
        body = (await kubo_request(kubo, "swarm/peers")).json()
        assert "Peers" in body and (body["Peers"] is None or isinstance(body["Peers"], list))

    @pytest_twisted.ensureDeferred
    async def test_config_show_has_storage_max(self, kubo):
        body = (await kubo_request(kubo, "config/show")).json()
        assert isinstance(body["Datastore"]["StorageMax"], str)
        assert "PrivKey" not in body["Identity"]

    @pytest_twisted.ensureDeferred
    async def test_add_cat_and_blocks_round_trip(self, kubo):
        data = _unique("cat")
        cid = await self.add(kubo, data)
        assert (await kubo_request(kubo, "cat", [("arg", cid)])).body == data
        put = await kubo_request(kubo, "block/put", files=[("block", data)])
        key = put.lines()[-1]
        assert key == {"Key": str(CID.v1(RAW, sha256_multihash(data))), "Size": len(data)}
        got = await kubo_request(kubo, "block/get", [("arg", key["Key"])])
        assert got.body == data


# --- a real kubo, for running the contract against it ---------------------------------


def start_real_kubo(folder: str, deadline: float = 60.0) -> tuple[subprocess.Popen, KuboTarget]:
    """Start ``ipfs daemon`` with a fresh repository in ``folder`` on loopback ports.

    Returns ``(process, target)``.  Calls ``pytest.skip`` (with the reason) when no
    ``ipfs`` binary is on PATH; raises RuntimeError when the daemon does not come up
    before ``deadline`` seconds.
    """
    ipfs = shutil.which("ipfs")
    if ipfs is None:
        pytest.skip("no `ipfs` (kubo) binary on PATH: the kubo contract ran against the fake only")
    env = dict(os.environ, IPFS_PATH=folder)

    def run(*args):
        subprocess.run([ipfs, *args], env=env, check=True, capture_output=True, timeout=60)

    run("init", "--profile=test")
    run("config", "Addresses.API", "/ip4/127.0.0.1/tcp/0")
    run("config", "Addresses.Gateway", "/ip4/127.0.0.1/tcp/0")
    run("config", "--json", "Addresses.Swarm", '["/ip4/127.0.0.1/tcp/0"]')
    process = subprocess.Popen(
        [ipfs, "daemon"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    api_file = os.path.join(folder, "api")
    limit = time.monotonic() + deadline
    while time.monotonic() < limit:  # poll for the API file with a deadline
        if os.path.exists(api_file):
            with open(api_file) as f:
                parts = f.read().strip().split("/")
            if len(parts) >= 5:
                return process, KuboTarget(f"http://{parts[2]}:{parts[4]}", "real kubo")
        if process.poll() is not None:
            break
        time.sleep(0.05)
    stop_real_kubo(process)
    raise RuntimeError("kubo did not start (no api file) before the deadline")


def stop_real_kubo(process: subprocess.Popen) -> None:
    """Stop a daemon started by :func:`start_real_kubo` and wait for it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
