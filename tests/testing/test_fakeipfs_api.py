"""The fake kubo daemon's RPC API, driven through StubTreq over its real resource."""

from __future__ import annotations

import pytest
from twisted.internet.defer import CancelledError
from twisted.web.client import ResponseNeverReceived

from ipfscluster.cid import CID, RAW, sha256_multihash
from ipfscluster.identity import validate_peer_id
from ipfscluster.testing.fakeipfs import Importer
from ipfscluster.testing.fakeipfs.daemon import PROGRESS_INTERVAL
from ipfscluster.testing.fakeipfs.unixfs import decode_pbnode

HELLO = b"hello world\n"
HELLO_CID = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"


def absent_cid() -> str:
    """A CID no daemon has (raw block of bytes nobody added)."""
    return str(CID.v1(RAW, sha256_multihash(b"nobody has this block")))


# --- framing -----------------------------------------------------------------------


def test_get_is_refused_with_405_like_kubo(stub):
    reply = stub.post("id", method="GET")
    assert reply.status == 405
    assert reply.headers["allow"] == "OPTIONS, POST"
    assert reply.body == b"405 - Method Not Allowed\n"


def test_options_answers_204_with_allowed_methods(stub):
    reply = stub.post("version", method="OPTIONS")
    assert reply.status == 204
    assert reply.headers["allow"] == "OPTIONS, POST"


def test_unknown_command_is_404(stub):
    assert stub.post("nosuch").status == 404
    reply = stub.post("pin/nosuch/more")
    assert (reply.status, reply.body) == (404, b"404 page not found\n")
    # a parent without its own Run does not take a path argument
    assert stub.post("pin/" + HELLO_CID).status == 404


def test_single_value_headers_and_json(stub, fake):
    reply = stub.post("version")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["trailer"] == "X-Stream-Error"
    assert "x-chunked-output" not in reply.headers
    assert reply.body.endswith(b"}\n")
    assert reply.json() == {
        "Version": fake.version,
        "Commit": "",
        "Repo": "16",
        "System": "amd64/linux",
        "Golang": "go1.23.3",
    }


def test_version_is_configurable(make_stub):
    assert make_stub(version="0.18.1").post("version").json()["Version"] == "0.18.1"


def test_bad_boolean_is_400_text(stub):
    reply = stub.post("pin/ls", [("stream", "yes")])
    assert reply.status == 400
    assert reply.headers["content-type"].startswith("text/plain")
    assert reply.body == b'could not convert value "yes" to type "bool" (for option "-stream")\n'


@pytest.mark.parametrize("spelling", ["1", "t", "T", "TRUE", "true", "True"])
def test_go_boolean_spellings(stub, spelling):
    reply = stub.post("pin/ls", [("stream", spelling)])
    assert reply.status == 200
    assert reply.headers["x-chunked-output"] == "1"


def test_missing_argument_is_400_text(stub):
    reply = stub.post("pin/add")
    assert (reply.status, reply.body) == (400, b'argument "ipfs-path" is required\n')
    reply = stub.post("pin/update", [("arg", HELLO_CID)])
    assert (reply.status, reply.body) == (400, b'argument "to-path" is required\n')


def test_argument_in_the_path(stub):
    stub.add(HELLO, params=[("pin", "false")])
    reply = stub.post("pin/add/" + HELLO_CID)
    assert reply.json() == {"Pins": [HELLO_CID]}


def test_go_json_escapes_html_characters(stub, fake):
    fake.faults.fail_cid(HELLO_CID, "a <b> & c")
    reply = stub.post("pin/add", [("arg", HELLO_CID)])
    assert b"a \\u003cb\\u003e \\u0026 c" in reply.body


# --- id / version / config / repo --------------------------------------------------


def test_id_reports_a_real_peer_id(stub, fake):
    body = stub.post("id").json()
    assert list(body) == ["ID", "PublicKey", "Addresses", "AgentVersion", "Protocols"]
    assert body["ID"] == validate_peer_id(body["ID"]) == fake.peer_id
    assert body["ID"].startswith("12D3KooW")
    assert body["AgentVersion"] == f"kubo/{fake.version}/"
    assert body["Addresses"] == [f"/ip4/127.0.0.1/tcp/4001/p2p/{fake.peer_id}"]


def test_id_of_another_peer_on_the_network(stub, make_stub):
    other = make_stub()
    assert stub.post("id", [("arg", other.daemon.peer_id)]).json()["ID"] == other.daemon.peer_id
    unknown = make_stub()
    unknown.daemon.stop()
    reply = stub.post("id", [("arg", unknown.daemon.peer_id)])
    assert reply.status == 500 and reply.json()["Type"] == "error"


def test_config_show_has_storage_max(stub, fake):
    config = stub.post("config/show").json()
    assert config["Datastore"]["StorageMax"] == "10000000000B"
    assert config["Identity"] == {"PeerID": fake.peer_id}


def test_repo_stat_counts_blocks_and_free_space_knob(stub, fake):
    empty = stub.post("repo/stat").json()
    assert empty == {
        "RepoSize": 0,
        "StorageMax": 10_000_000_000,
        "NumObjects": 0,
        "RepoPath": fake.repo_path,
        "Version": "fs-repo@16",
    }
    stub.add(b"x" * 300_000)  # two leaves + one root
    stat = stub.post("repo/stat").json()
    assert stat["NumObjects"] == 3
    assert stat["RepoSize"] == fake.blockstore.size > 300_000
    fake.set_free_space(1234)
    sized = stub.post("repo/stat", [("size-only", "true")]).json()
    assert sized["StorageMax"] - sized["RepoSize"] == 1234
    assert (sized["NumObjects"], sized["RepoPath"], sized["Version"]) == (0, "", "")


# --- add and cat -------------------------------------------------------------------


def test_add_known_answer_and_event_shape(stub, fake):
    reply = stub.post("add", files=[("hello.txt", HELLO)])
    assert reply.headers["x-chunked-output"] == "1"
    assert reply.lines() == [{"Name": "hello.txt", "Hash": HELLO_CID, "Size": "20"}]
    assert fake.pin_mode(HELLO_CID) == "recursive"


def test_add_progress_events_precede_the_result(stub):
    data = b"a" * (262144 * 2 + 5)
    events = stub.post("add", [("progress", "true")], files=[("big", data)]).lines()
    assert [e.get("Bytes") for e in events[:-1]] == [262144, 524288, len(data)]
    assert all(e["Name"] == "big" and "Hash" not in e for e in events[:-1])
    assert events[-1]["Name"] == "big" and "Bytes" not in events[-1]


def test_add_unnamed_file_is_named_by_its_cid(stub):
    body = (
        b"--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n"
        + HELLO
        + b"\r\n--b--\r\n"
    )
    reply = stub.post("add", body=body, content_type="multipart/form-data; boundary=b")
    assert reply.lines() == [{"Name": HELLO_CID, "Hash": HELLO_CID, "Size": "20"}]


def test_add_only_hash_and_no_pin(stub, fake):
    event = stub.add(HELLO, params=[("only-hash", "true")])
    assert event["Hash"] == HELLO_CID
    assert len(fake.blockstore) == 0 and fake.pins == {}
    stub.add(HELLO, params=[("pin", "false")])
    assert len(fake.blockstore) == 1 and fake.pin_mode(HELLO_CID) is None


def test_add_cid_version_1_uses_raw_leaves(stub):
    event = stub.add(HELLO, params=[("cid-version", "1")])
    assert event["Hash"] == str(CID.v1(RAW, sha256_multihash(HELLO)))
    assert event["Size"] == str(len(HELLO))
    # raw-leaves=false keeps UnixFS leaves even with CIDv1
    event = stub.add(HELLO, params=[("cid-version", "1"), ("raw-leaves", "false")])
    assert event["Hash"].startswith("bafybei")


def test_add_rejects_unknown_cid_version_and_hash(stub):
    reply = stub.post("add", [("cid-version", "2")], files=[("a", b"x")])
    assert reply.status == 500 and reply.json()["Message"] == "unknown CID version: 2"
    reply = stub.post("add", [("hash", "blake3")], files=[("a", b"x")])
    assert reply.status == 500 and "unrecognized hash function" in reply.json()["Message"]


def test_add_without_multipart_body_is_400(stub):
    reply = stub.post("add")
    assert (reply.status, reply.body) == (400, b"file argument 'path' is required\n")


def test_add_directory_events_and_wrap(stub, fake):
    files = [
        ("d", None),
        ("d/b.txt", b"bbb"),
        ("d/a.txt", b"aaa"),
        ("d/sub", None),
        ("d/sub/c.txt", b"ccc"),
        ("d/empty", None),
    ]
    events = stub.post("add", files=files).lines()
    names = [e["Name"] for e in events]
    # files in arrival order, then directories depth-first with sorted names
    assert names == ["d/b.txt", "d/a.txt", "d/sub/c.txt", "d/empty", "d/sub", "d"]
    root = CID.parse(events[-1]["Hash"])
    node = decode_pbnode(fake.blockstore.get(root))
    assert [link.name for link in node.links] == ["a.txt", "b.txt", "empty", "sub"]
    wrapped = stub.post("add", [("wrap-with-directory", "true")], files=files).lines()
    assert wrapped[-1]["Name"] == ""
    outer = decode_pbnode(fake.blockstore.get(CID.parse(wrapped[-1]["Hash"])))
    assert [(link.name, str(link.cid)) for link in outer.links] == [("d", str(root))]


def test_add_mode_and_mtime_from_field_name_are_reported(stub):
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file?mode=0644&mtime=5"; '
        b'filename="m.txt"\r\n\r\nx\r\n--b--\r\n'
    )
    reply = stub.post("add", body=body, content_type='multipart/form-data; boundary="b"')
    event = reply.lines()[0]
    assert (event["Mode"], event["Mtime"]) == ("0644", 5)


def test_cat_returns_content_with_stream_headers(stub):
    data = bytes(range(256)) * 2000  # two chunks
    cid = stub.add(data)["Hash"]
    reply = stub.post("cat", [("arg", cid)])
    assert reply.body == data
    assert reply.headers["x-stream-output"] == "1"
    assert reply.headers["x-content-length"] == str(len(data))
    part = stub.post("cat", [("arg", "/ipfs/" + cid), ("offset", "10"), ("length", "5")])
    assert part.body == data[10:15]


def test_cat_through_a_directory_path_and_errors(stub):
    events = stub.post("add", files=[("d", None), ("d/x.txt", HELLO)]).lines()
    root = events[-1]["Hash"]
    assert stub.post("cat", [("arg", f"/ipfs/{root}/x.txt")]).body == HELLO
    reply = stub.post("cat", [("arg", root)])
    assert reply.json()["Message"] == "this dag node is a directory"
    reply = stub.post("cat", [("arg", f"/ipfs/{root}/nope")])
    assert reply.json()["Message"] == f'no link named "nope" under {root}'
    reply = stub.post("cat", [("arg", "/ipfs/notacid")])
    assert reply.json()["Message"].startswith('invalid path "/ipfs/notacid": invalid cid')


# --- pins --------------------------------------------------------------------------


def test_pin_add_ls_rm_cycle(stub):
    stub.add(HELLO, params=[("pin", "false")])
    assert stub.post("pin/add", [("arg", HELLO_CID)]).json() == {"Pins": [HELLO_CID]}
    listed = stub.post("pin/ls", [("arg", HELLO_CID), ("type", "recursive")]).json()
    assert listed == {"Keys": {HELLO_CID: {"Type": "recursive", "Name": ""}}}
    assert stub.post("pin/rm", [("arg", HELLO_CID)]).json() == {"Pins": [HELLO_CID]}
    reply = stub.post("pin/ls", [("arg", HELLO_CID)])
    assert reply.status == 500
    assert reply.json() == {
        "Message": f"path '{HELLO_CID}' is not pinned",
        "Code": 0,
        "Type": "error",
    }
    reply = stub.post("pin/rm", [("arg", HELLO_CID)])
    assert (reply.status, reply.json()["Message"]) == (500, "not pinned or pinned indirectly")


def test_pin_ls_empty_is_an_empty_object(stub):
    assert stub.post("pin/ls").body == b"{}\n"


def test_direct_pins_and_type_filters(stub):
    stub.add(HELLO, params=[("pin", "false")])
    assert stub.post("pin/add", [("arg", HELLO_CID), ("recursive", "false")]).status == 200
    assert stub.post("pin/ls", [("type", "direct")]).json()["Keys"] == {
        HELLO_CID: {"Type": "direct", "Name": ""}
    }
    assert stub.post("pin/ls", [("type", "recursive")]).json() == {}
    reply = stub.post("pin/ls", [("arg", HELLO_CID), ("type", "recursive")])
    assert reply.status == 500
    reply = stub.post("pin/ls", [("type", "bogus")])
    assert reply.json()["Message"] == (
        "invalid type 'bogus', must be one of {direct, indirect, recursive, all}"
    )
    # recursive replaces direct; direct over recursive is refused
    stub.post("pin/add", [("arg", HELLO_CID)])
    reply = stub.post("pin/add", [("arg", HELLO_CID), ("recursive", "false")])
    assert reply.json()["Message"] == f"pin: {HELLO_CID} already pinned recursively"
    reply = stub.post("pin/rm", [("arg", HELLO_CID), ("recursive", "false")])
    assert reply.json()["Message"] == f"{HELLO_CID} is pinned recursively"


def test_indirect_pins(stub):
    events = stub.post("add", files=[("d", None), ("d/x.txt", HELLO)]).lines()
    root = events[-1]["Hash"]
    everything = stub.post("pin/ls").json()["Keys"]
    assert everything == {
        root: {"Type": "recursive", "Name": ""},
        HELLO_CID: {"Type": "indirect", "Name": ""},
    }
    one = stub.post("pin/ls", [("arg", HELLO_CID)]).json()["Keys"]
    assert one == {HELLO_CID: {"Type": f"indirect through {root}", "Name": ""}}
    only = stub.post("pin/ls", [("arg", HELLO_CID), ("type", "indirect")]).json()["Keys"]
    assert only == {HELLO_CID: {"Type": "indirect", "Name": ""}}
    reply = stub.post("pin/rm", [("arg", HELLO_CID)])
    assert reply.json()["Message"] == "not pinned or pinned indirectly"


def test_pin_ls_stream_and_names(stub):
    first = stub.add(b"one", params=[("pin", "false")])["Hash"]
    second = stub.add(b"two", params=[("pin", "false")])["Hash"]
    stub.post("pin/add", [("arg", first), ("name", "alpha")])
    stub.post("pin/add", [("arg", second)])
    reply = stub.post("pin/ls", [("stream", "true"), ("type", "recursive")])
    assert reply.headers["x-chunked-output"] == "1"
    assert reply.lines() == [
        {"Cid": first, "Type": "recursive"},
        {"Cid": second, "Type": "recursive"},
    ]
    named = stub.post("pin/ls", [("stream", "true"), ("names", "true")]).lines()
    assert named[0] == {"Cid": first, "Type": "recursive", "Name": "alpha"}
    many = stub.post("pin/ls", [("arg", first), ("arg", second)]).json()["Keys"]
    assert set(many) == {first, second}


def test_pin_add_progress_streams_progress_then_pins(stub, make_stub, clock):
    origin = make_stub()
    data = b"".join(bytes([i]) * 262144 for i in range(3))  # three distinct leaves
    cid = origin.add(data, params=[("pin", "false")])["Hash"]
    origin.daemon.go_down()
    d = stub.start("pin/add", [("arg", cid), ("progress", "true")])
    stub.flush()
    clock.advance(PROGRESS_INTERVAL)  # a tick while nothing is fetched: {}
    origin.daemon.come_up()
    clock.advance(PROGRESS_INTERVAL)
    reply = stub.finish(d)
    lines = reply.lines()
    assert lines[0] == {}
    # every block of the DAG fetched: the root and three leaves
    assert lines[-2] == {"Progress": 4, "Bytes": origin.daemon.blockstore.size}
    assert lines[-1] == {"Pins": [cid]}


def test_pin_update(stub):
    old = stub.add(b"old")["Hash"]
    new = stub.add(b"new", params=[("pin", "false")])["Hash"]
    reply = stub.post("pin/update", [("arg", new), ("arg", old)])
    assert reply.json()["Message"] == "'from' cid was not recursively pinned already"
    assert stub.post("pin/update", [("arg", old), ("arg", new)]).json() == {"Pins": [old, new]}
    assert stub.daemon.pin_mode(new) == "recursive" and stub.daemon.pin_mode(old) is None
    back = stub.post("pin/update", [("arg", new), ("arg", old), ("unpin", "false")])
    assert back.json() == {"Pins": [new, old]}
    assert stub.daemon.pin_mode(new) == stub.daemon.pin_mode(old) == "recursive"


# --- network -----------------------------------------------------------------------


def test_content_added_on_one_daemon_pins_on_another(stub, make_stub):
    other = make_stub()
    data = b"z" * 600_000
    cid = other.add(data)["Hash"]
    assert stub.post("pin/add", [("arg", cid)]).json() == {"Pins": [cid]}
    assert stub.post("cat", [("arg", cid)]).body == data
    assert len(stub.daemon.blockstore) == len(other.daemon.blockstore)


def test_pin_waits_until_the_content_appears(stub, make_stub, network):
    late = make_stub()
    root = Importer().add_bytes(b"late content")  # computed, stored nowhere yet
    d = stub.start("pin/add", [("arg", str(root.cid))])
    stub.flush()
    assert not d.done and network.waiting == 1
    late.add(b"late content")
    reply = stub.finish(d)
    assert reply.json() == {"Pins": [str(root.cid)]}
    assert network.waiting == 0


def test_pin_wait_ends_with_the_request_timeout(stub, clock, network):
    d = stub.start("pin/add", [("arg", absent_cid()), ("timeout", "2s")])
    stub.flush()
    clock.advance(1.9)
    stub.flush()
    assert not d.done
    clock.advance(0.2)
    reply = stub.finish(d)
    assert reply.status == 500
    assert reply.json()["Message"] == "context deadline exceeded"
    assert network.waiting == 0


def test_pin_wait_ends_with_the_daemon_pin_timeout(make_stub, clock, network):
    stub = make_stub(pin_timeout=30)
    d = stub.start("pin/add", [("arg", absent_cid())])
    stub.flush()
    clock.advance(30)
    reply = stub.finish(d)
    assert reply.json()["Message"] == "pin: context deadline exceeded"
    assert network.waiting == 0 and clock.getDelayedCalls() == []


def test_cancelled_request_stops_waiting(stub, network):
    d = stub.start("pin/add", [("arg", absent_cid())])
    stub.flush()
    assert network.waiting == 1
    d.cancel()
    stub.flush()
    assert network.waiting == 0
    assert d.done and d.results[0].check(CancelledError, ResponseNeverReceived)


def test_down_daemon_does_not_serve_content(stub, make_stub, network):
    other = make_stub()
    cid = other.add(b"held by a down daemon")["Hash"]
    other.daemon.go_down()
    d = stub.start("pin/add", [("arg", cid)])
    stub.flush()
    assert not d.done and network.waiting == 1
    other.daemon.come_up()
    assert stub.finish(d).json() == {"Pins": [cid]}


def test_swarm_connect_and_peers(stub, make_stub):
    other = make_stub()
    address = f"/ip4/127.0.0.1/tcp/4002/p2p/{other.daemon.peer_id}"
    reply = stub.post("swarm/connect", [("arg", address)])
    assert reply.json() == {"Strings": [f"connect {other.daemon.peer_id} success"]}
    peers = stub.post("swarm/peers").json()["Peers"]
    assert [(p["Addr"], p["Peer"]) for p in peers] == [
        ("/ip4/127.0.0.1/tcp/4002", other.daemon.peer_id)
    ]
    assert other.post("swarm/peers").json()["Peers"][0]["Peer"] == stub.daemon.peer_id
    stranger = make_stub()
    stranger.daemon.stop()
    reply = stub.post("swarm/connect", [("arg", f"/ip4/1.2.3.4/tcp/1/p2p/{stranger.daemon.peer_id}")])
    assert reply.status == 500
    assert reply.json()["Message"].startswith(f"connect {stranger.daemon.peer_id} failure")
    assert make_stub().post("swarm/peers").json() == {"Peers": None}


# --- blocks and refs ---------------------------------------------------------------


def test_block_put_get_stat(stub):
    reply = stub.post("block/put", files=[("blk", b"raw block")])
    key = reply.lines()[0]
    assert key == {"Key": str(CID.v1(RAW, sha256_multihash(b"raw block"))), "Size": 9}
    got = stub.post("block/get", [("arg", key["Key"])])
    assert got.body == b"raw block"
    assert got.headers["content-type"] == "application/vnd.ipld.raw"
    assert stub.post("block/stat", [("arg", key["Key"])]).json() == key
    legacy = stub.post("block/put", [("format", "v0")], files=[("b", b"\x0a\x00")]).lines()[0]
    assert legacy["Key"].startswith("Qm")


def test_refs(stub):
    events = stub.post(
        "add", files=[("d", None), ("d/a", b"aaa"), ("d/s", None), ("d/s/b", b"bbb")]
    ).lines()
    by_name = {e["Name"]: e["Hash"] for e in events}
    root = by_name["d"]
    direct = stub.post("refs", [("arg", root)]).lines()
    assert direct == [{"Ref": by_name["d/a"], "Err": ""}, {"Ref": by_name["d/s"], "Err": ""}]
    deep = [r["Ref"] for r in stub.post("refs", [("arg", root), ("recursive", "true")]).lines()]
    assert deep == [by_name["d/a"], by_name["d/s"], by_name["d/s/b"]]
    edges = stub.post("refs", [("arg", root), ("edges", "true")]).lines()
    assert edges[0]["Ref"] == f"{root} -> {by_name['d/a']}"


# --- faults ------------------------------------------------------------------------


def test_latency_knob_uses_the_clock(stub, fake, clock):
    fake.faults.set_latency(5, "version")
    d = stub.start("version")
    stub.flush()
    clock.advance(4.9)
    stub.flush()
    assert not d.done
    clock.advance(0.1)
    assert stub.finish(d).status == 200
    assert stub.post("id").status == 200  # other endpoints are not delayed


def test_fail_cid_knob(stub, fake):
    fake.faults.fail_cid(HELLO_CID, "boom", endpoints=["pin/add"])
    stub.add(HELLO, params=[("pin", "false")])
    reply = stub.post("pin/add", [("arg", HELLO_CID)])
    assert (reply.status, reply.json()) == (500, {"Message": "boom", "Code": 0, "Type": "error"})
    assert stub.post("pin/ls", [("arg", HELLO_CID)]).json()["Message"].endswith("is not pinned")
    fake.faults.clear_cid(HELLO_CID)
    assert stub.post("pin/add", [("arg", HELLO_CID)]).status == 200


def test_hang_knob_holds_requests_until_released(stub, fake):
    hang = fake.faults.hang("pin/ls")
    d = stub.start("pin/ls")
    stub.flush()
    assert not d.done and hang.waiting == 1
    assert stub.post("version").status == 200
    hang.release()
    assert stub.finish(d).status == 200
    assert stub.post("pin/ls").status == 200


def test_down_daemon_drops_requests(stub, fake):
    fake.go_down()
    d = stub.start("version")
    stub.flush()
    assert d.done and hasattr(d.results[0], "raiseException"), "a down daemon must not answer"
    fake.come_up()
    assert stub.post("version").status == 200


def test_requests_are_recorded(stub, fake):
    stub.post("pin/ls", [("type", "recursive")])
    assert fake.requests[-1].endpoint == "pin/ls"
    assert fake.requests[-1].options == {"type": ["recursive"]}


def test_error_after_output_started_goes_in_the_trailer(fake, clock):
    """A stream that fails midway ends its chunked body with X-Stream-Error."""
    from twisted.internet.error import ConnectionDone
    from twisted.internet.testing import StringTransport
    from twisted.python.failure import Failure
    from twisted.web.server import Site

    missing = Importer().add_bytes(b"never stored anywhere")
    root = fake.importer().add_directory([("x", missing)])
    channel = Site(fake.resource, timeout=None).buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)
    channel.dataReceived(
        b"POST /api/v0/refs?arg=%s&recursive=true&timeout=1s HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\nContent-Length: 0\r\n\r\n" % str(root.cid).encode()
    )
    clock.advance(1)
    raw = transport.value()
    channel.connectionLost(Failure(ConnectionDone()))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Transfer-Encoding: chunked" in head and b"Trailer: X-Stream-Error" in head
    assert ('{"Ref":"%s","Err":""}' % missing.cid).encode() in body
    assert body.endswith(b"\r\n0\r\nX-Stream-Error: context deadline exceeded\r\n\r\n")


def test_instant_pins_pin_content_nobody_has(make_stub, network):
    stub = make_stub(instant_pins=True)
    cid = absent_cid()
    assert stub.post("pin/add", [("arg", cid)]).json() == {"Pins": [cid]}
    assert network.waiting == 0 and stub.daemon.pin_mode(cid) == "recursive"
    assert len(stub.daemon.blockstore) == 0


def test_indirect_index_follows_pin_changes(stub):
    events = stub.post("add", files=[("d", None), ("d/x.txt", HELLO)]).lines()
    root = CID.parse(events[-1]["Hash"])
    stub.post("pin/add", [("arg", HELLO_CID)])  # also pinned on its own
    assert stub.daemon.pin_mode(HELLO_CID) == "recursive"
    stub.post("pin/rm", [("arg", HELLO_CID)])
    assert stub.daemon.pin_mode(HELLO_CID) == "indirect"
    stub.post("pin/rm", [("arg", str(root))])
    assert stub.daemon.pin_mode(HELLO_CID) is None
    assert stub.post("pin/ls", [("type", "indirect")]).json() == {}


def test_shared_directory_network_spans_processes(tmp_path, clock, stub_of):
    """Two networks on one folder stand for two processes of the standalone command."""
    from ipfscluster.testing.fakeipfs import FakeIPFS
    from ipfscluster.testing.fakeipfs.network import SharedDirectoryNetwork

    here = SharedDirectoryNetwork("demo", str(tmp_path), clock)
    there = SharedDirectoryNetwork("demo", str(tmp_path), clock)
    a = stub_of(FakeIPFS(clock=clock, network=here))
    b = stub_of(FakeIPFS(clock=clock, network=there))
    try:
        cid = a.add(b"crosses processes")["Hash"]
        assert b.post("pin/add", [("arg", cid)]).json() == {"Pins": [cid]}
        assert b.post("id", [("arg", a.daemon.peer_id)]).json()["ID"] == a.daemon.peer_id
        late = Importer().add_bytes(b"added later over there")
        pending = b.start("pin/add", [("arg", str(late.cid))])
        b.flush()
        a.add(b"added later over there")
        assert not pending.done  # the other process's block shows up on the next poll
        clock.advance(there.poll_interval)
        assert b.finish(pending).json() == {"Pins": [str(late.cid)]}
        clock.advance(there.poll_interval)  # the idle poller stops
        assert clock.getDelayedCalls() == []
    finally:
        a.daemon.stop()
        b.daemon.stop()
    assert b.post("id", [("arg", a.daemon.peer_id)]).status == 500  # a left the network


def test_short_option_names(stub):
    stub.add(HELLO, params=[("pin", "false")])
    assert stub.post("pin/add", [("arg", HELLO_CID), ("r", "false")]).status == 200
    assert stub.daemon.pin_mode(HELLO_CID) == "direct"
    assert stub.post("pin/ls", [("t", "direct"), ("s", "true")]).lines() == [
        {"Cid": HELLO_CID, "Type": "direct"}
    ]
    reply = stub.post("pin/ls", [("t", "direct"), ("type", "all")])
    assert (reply.status, reply.body) == (
        400,
        b'duplicate command options were provided ("type" and "t")\n',
    )


def test_paths_outside_the_api_are_404_for_any_method(stub):
    reply = stub.treq.get("http://127.0.0.1:5001/webui")
    stub.flush()
    assert reply.result.code == 404


def test_repo_gc_removes_unprotected_blocks(stub):
    kept = stub.add(b"kept")["Hash"]
    dropped = stub.add(b"x" * 300_000, params=[("pin", "false")])["Hash"]
    removed = stub.post("repo/gc").lines()
    assert len(removed) == 3  # the unpinned file: its root and two leaves
    assert all(set(r) == {"Key"} and r["Key"]["/"].startswith("bafkrei") for r in removed)
    assert len(stub.daemon.blockstore) == 1
    assert stub.post("cat", [("arg", kept)]).body == b"kept"
    assert CID.parse(dropped).multihash not in stub.daemon.blockstore.multihashes()


def test_resolve(stub):
    events = stub.post("add", files=[("d", None), ("d/x.txt", HELLO)]).lines()
    root = events[-1]["Hash"]
    assert stub.post("resolve", [("arg", f"/ipfs/{root}/x.txt")]).json() == {
        "Path": f"/ipfs/{HELLO_CID}"
    }


def test_unparsable_timeout_gets_kubos_empty_answer(stub, fake):
    reply = stub.post("pin/add", [("arg", HELLO_CID), ("timeout", "soon")])
    assert (reply.status, reply.body) == (200, b"")
    assert fake.pins == {}  # the command did not run


def test_client_leaving_a_hung_request_frees_it(stub, fake):
    hang = fake.faults.hang()
    pending = stub.start("id")
    stub.flush()
    assert hang.waiting == 1
    pending.cancel()
    stub.flush()
    assert hang.waiting == 0 and pending.done
    fake.faults.clear()
    assert stub.post("id").status == 200


def test_option_values_are_checked_like_kubo(stub):
    reply = stub.post("pin/ls", [("type", "direct"), ("type", "recursive")])
    assert (reply.status, reply.body) == (
        400,
        b"expected key type to have only a single value, received [direct recursive]\n",
    )
    reply = stub.post("cat", [("arg", HELLO_CID), ("offset", "")])
    assert reply.body == b'could not convert empty value to type "int" (for option "-offset")\n'
    data = bytes(range(20))
    cid = stub.add(data)["Hash"]
    assert stub.post("cat", [("arg", cid), ("offset", "010")]).body == data[8:]  # octal
    assert stub.post("cat", [("arg", cid), ("offset", "0x3")]).body == data[3:]


def test_add_layout_options(stub):
    data = bytes(range(256)) * 10  # 2560 bytes
    narrow = stub.add(data, params=[("chunker", "size-100"), ("max-file-links", "3")])
    root = decode_pbnode(stub.daemon.blockstore.get(CID.parse(narrow["Hash"])))
    assert len(root.links) == 3
    assert stub.post("cat", [("arg", narrow["Hash"])]).body == data
    nocopy = stub.add(HELLO, params=[("nocopy", "true")])
    assert nocopy["Hash"] == str(CID.v1(RAW, sha256_multihash(HELLO)))


@pytest.mark.parametrize(
    "option", [("preserve-mode", "true"), ("inline", "true"), ("mtime", "5"), ("trickle", "true")]
)
def test_add_refuses_layouts_it_cannot_reproduce(stub, option):
    reply = stub.post("add", [option], files=[("f", b"x")])
    assert reply.status == 500 and "does not implement" in reply.json()["Message"]
