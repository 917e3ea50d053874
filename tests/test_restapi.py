"""REST API routes through ``treq.testing.StubTreq`` over the real Klein resource.

Every route is exercised against :class:`FakeCluster`: success, authentication,
bad CIDs and options (400 naming the parameter), unknown CIDs (404), empty
collections (204), errors before the first item and in the middle of a stream.
The wire bytes of the trailer are checked in ``test_restapi_streaming.py``.
"""

from __future__ import annotations

import base64
import json

import attrs
import pytest
from treq.testing import StubTreq
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from ipfscluster.api.multipart import encode_parts, Part
from ipfscluster.api.rest.server import RestAPI
from ipfscluster.config.restapi import RestAPIConfig
from ipfscluster.errors import ClusterError, NoLeader
from ipfscluster.interfaces import IAPI, ICluster
from ipfscluster.testing.fakecluster import FakeCluster, content_cid, fake_peer_id, synthetic_cid
from ipfscluster.types import Alert, Metric, TrackerStatus

CID1 = str(synthetic_cid(1))
CID2 = str(synthetic_cid(2))
UNKNOWN = str(synthetic_cid(99))
BAD_CID = "QmNotACid"
USERS = {"admin": "s3cret", "nopass": ""}


def _result(d):
    out = []
    d.addBoth(out.append)
    assert out, "the request did not complete"
    if hasattr(out[0], "raiseException"):
        out[0].raiseException()
    return out[0]


class Client:
    """Synchronous requests through StubTreq (everything completes in memory)."""

    def __init__(self, api):
        self.stub = StubTreq(api.resource())

    def __call__(self, method, path, auth=None, **kw):
        kw.setdefault("allow_redirects", False)
        d = self.stub.request(method, "http://127.0.0.1:9094" + path, auth=auth, **kw)
        self.stub.flush()
        response = _result(d)
        body = self.stub.content(response)
        self.stub.flush()
        return response, _result(body)


def header(response, name):
    values = response.headers.getRawHeaders(name)
    return values[0] if values else None


def lines(body):
    return [json.loads(line) for line in body.decode().splitlines()]


def error_of(response, body, code):
    assert response.code == code, body
    assert header(response, "Content-Type") == "application/json"
    doc = json.loads(body)
    assert doc["code"] == code
    return doc["message"]


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def cluster(clock):
    fake = FakeCluster(clock)
    fake._pin(CID1, None)
    return fake


def make_api(cluster, clock, **config):
    return RestAPI(RestAPIConfig(**config), cluster, clock, "/nonexistent")


@pytest.fixture
def call(cluster, clock):
    return Client(make_api(cluster, clock))


def test_interfaces(cluster, clock):
    assert verifyObject(IAPI, make_api(cluster, clock))
    assert verifyObject(ICluster, cluster)


# --- the route table: (method, path, success status) ----------------------------------

ROUTES = [
    ("GET", "/id", 200),
    ("GET", "/version", 200),
    ("GET", "/peers", 200),
    ("POST", "/peers", 200),
    ("DELETE", "/peers/" + fake_peer_id(3), 204),
    ("GET", "/allocations", 200),
    ("GET", "/allocations/" + CID1, 200),
    ("GET", "/pins", 200),
    ("GET", "/pins/" + CID1, 200),
    ("POST", "/pins/" + CID2, 200),
    ("DELETE", "/pins/" + CID1, 200),
    ("POST", "/pins/ipfs/" + CID2, 200),
    ("DELETE", "/pins/ipfs/" + CID1, 200),
    ("POST", "/pins/" + CID1 + "/sync", 200),
    ("POST", "/pins/" + CID1 + "/recover", 200),
    ("POST", "/pins/sync", 204),
    ("POST", "/pins/recover", 204),
    ("POST", "/add", 200),
    ("GET", "/health/graph", 200),
    ("GET", "/health/alerts", 200),
    ("GET", "/monitor/metrics", 200),
    ("GET", "/monitor/metrics/freespace", 200),
]

ADD_BODY, ADD_TYPE = encode_parts(
    [Part({"content-disposition": 'form-data; name="file"; filename="a.txt"'}, "file", "a.txt", "", {}, b"hello")]
)


def request_kwargs(method, path):
    if path == "/peers" and method == "POST":
        return {"data": json.dumps({"peer_id": fake_peer_id(9)}).encode()}
    if path == "/add":
        return {"data": ADD_BODY, "headers": {"Content-Type": ADD_TYPE}}
    return {}


@pytest.mark.parametrize("method,path,status", ROUTES, ids=lambda v: str(v))
def test_every_route_succeeds_with_json(call, method, path, status):
    response, body = call(method, path, **request_kwargs(method, path))
    assert response.code == status, body
    assert header(response, "Content-Type") == "application/json"
    if status == 200:
        assert body.endswith(b"\n")
        for line in body.splitlines():
            json.loads(line)


@pytest.mark.parametrize("method,path,status", ROUTES, ids=lambda v: str(v))
def test_every_route_needs_credentials(cluster, clock, method, path, status):
    call = Client(make_api(cluster, clock, basic_auth_credentials=USERS))
    kwargs = request_kwargs(method, path)
    for auth in (None, ("admin", "wrong"), ("someone", "s3cret")):
        response, body = call(method, path, auth=auth, **kwargs)
        assert error_of(response, body, 401) == "Unauthorized"
        assert header(response, "WWW-Authenticate") == 'Basic realm="Restricted"'
    assert cluster.calls == [], "the cluster was called without credentials"
    response, body = call(method, path, auth=("admin", "s3cret"), **kwargs)
    assert response.code == status, body


def test_auth_details(cluster, clock):
    call = Client(make_api(cluster, clock, basic_auth_credentials=USERS))
    assert call("GET", "/id", auth=("nopass", ""))[0].code == 200
    bad = {"Authorization": "Basic !!notbase64"}
    assert call("GET", "/id", headers=bad)[0].code == 401
    no_colon = {"Authorization": "Basic " + base64.b64encode(b"admin").decode()}
    assert call("GET", "/id", headers=no_colon)[0].code == 401
    bearer = {"Authorization": "Bearer abc"}
    assert call("GET", "/id", headers=bearer)[0].code == 401
    # /health bypasses authentication
    response, body = call("GET", "/health")
    assert (response.code, body) == (204, b"")


# --- peers -----------------------------------------------------------------------------


def test_id_and_version(call, cluster):
    response, body = call("GET", "/id")
    assert json.loads(body)["id"] == cluster.peer_id
    assert json.loads(call("GET", "/version")[1]) == {"version": "1.1.6"}


def test_peers_stream_one_line_per_peer(call, cluster):
    response, body = call("GET", "/peers")
    assert header(response, "Trailer") == "X-Stream-Error"
    assert [d["id"] for d in lines(body)] == sorted(cluster.peer_ids)


def test_peer_add_forms(call, cluster):
    new = fake_peer_id(20)
    maddr = f"/ip4/10.0.0.1/tcp/9096/p2p/{new}"
    response, body = call("POST", "/peers", data=json.dumps({"peer_multiaddress": maddr}).encode())
    assert response.code == 200 and json.loads(body)["id"] == new
    assert cluster.calls[-1] == ("peer_add", (maddr,))
    other = fake_peer_id(21)
    response, body = call("POST", "/peers", data=json.dumps({"peer_id": other}).encode())
    assert json.loads(body)["id"] == other and other in cluster.peer_ids


@pytest.mark.parametrize(
    "data,expected",
    [
        (b"{not json", "error decoding request body"),
        (b"[1]", "error decoding request body"),
        (b"{}", 'give "peer_id" or "peer_multiaddress"'),
        (b'{"peer_multiaddress": "/ip4/1.2.3.4/tcp/1"}', "parameter peer_multiaddress invalid"),
        (b'{"peer_multiaddress": "nonsense"}', "parameter peer_multiaddress invalid"),
        (b'{"peer_id": "xyz"}', 'parameter peer_id invalid: "xyz"'),
    ],
)
def test_peer_add_bad_bodies(call, cluster, data, expected):
    response, body = call("POST", "/peers", data=data)
    assert expected in error_of(response, body, 400)
    assert not [c for c in cluster.calls if c[0] == "peer_add"]


def test_peer_remove_errors(call):
    response, body = call("DELETE", "/peers/" + fake_peer_id(77))
    assert "not a member" in error_of(response, body, 404)
    response, body = call("DELETE", "/peers/notapeer")
    assert error_of(response, body, 400).startswith('parameter peer invalid: "notapeer"')


# --- allocations -----------------------------------------------------------------------


def test_allocations(call, cluster):
    cluster._pin(CID2, None)
    response, body = call("GET", "/allocations?filter=pin")
    assert [d["cid"] for d in lines(body)] == sorted([CID1, CID2], key=lambda c: synthetic_cid(int(c == CID2) + 1))
    response, body = call("GET", "/allocations?filter=meta-pin")
    assert response.code == 204 and body == b""
    response, body = call("GET", "/allocations?filter=bogus")
    assert error_of(response, body, 400).startswith('invalid filter: unknown pin type "bogus"')
    response, body = call("GET", "/allocations/" + CID1)
    assert json.loads(body)["cid"] == CID1
    response, body = call("GET", "/allocations/" + UNKNOWN)
    assert "not pinned" in error_of(response, body, 404)


# --- pins: status ----------------------------------------------------------------------


def test_status_all_filters_local_and_cids(call, cluster):
    cluster._pin(CID2, None)
    cluster.set_status(CID2, cluster.peer_ids[1], TrackerStatus.PIN_ERROR, "boom")
    items = lines(call("GET", "/pins")[1])
    assert [d["cid"] for d in items] == [str(c) for c in sorted(cluster.state)]
    assert len(items[0]["peer_map"]) == 3
    errors = lines(call("GET", "/pins?filter=error")[1])
    assert [d["cid"] for d in errors] == [CID2]
    assert errors[0]["peer_map"][cluster.peer_ids[1]]["error"] == "boom"
    local = lines(call("GET", "/pins?local=True")[1])
    assert all(list(d["peer_map"]) == [cluster.peer_id] for d in local)
    picked = lines(call("GET", f"/pins?cids={UNKNOWN},{CID1}")[1])
    assert [d["cid"] for d in picked] == [UNKNOWN, CID1]
    assert picked[0]["peer_map"][cluster.peer_id]["status"] == "unpinned"
    assert cluster.calls[-1][1][1:] == (False, [synthetic_cid(99), synthetic_cid(1)])


@pytest.mark.parametrize(
    "query,parameter",
    [("filter=nope", "filter"), ("local=yes", "local"), ("local=2", "local"), (f"cids={CID1},zzz", "cids")],
)
def test_status_all_bad_parameters(call, cluster, query, parameter):
    response, body = call("GET", "/pins?" + query)
    message = error_of(response, body, 400)
    assert f"invalid {parameter}" in message or f"parameter {parameter} invalid" in message
    assert not [c for c in cluster.calls if c[0] == "status_all"]


@pytest.mark.parametrize("spelling,local", [("1", True), ("t", True), ("TRUE", True), ("False", False), ("0", False)])
def test_booleans_are_parsed_as_go_does(call, cluster, spelling, local):
    response, body = call("GET", f"/pins/{CID1}?local={spelling}")
    assert response.code == 200
    assert cluster.calls[-1] == ("status", (synthetic_cid(1), local))
    assert len(json.loads(body)["peer_map"]) == (1 if local else 3)


@pytest.mark.parametrize("method,suffix", [("GET", ""), ("POST", ""), ("DELETE", ""), ("POST", "/sync"),
                                           ("POST", "/recover"), ("GET", "/../allocations/")])
def test_bad_cid_is_400_naming_parameter_and_value(call, cluster, method, suffix):
    path = "/pins/" + BAD_CID + suffix if not suffix.startswith("/..") else "/allocations/" + BAD_CID
    response, body = call(method, path)
    message = error_of(response, body, 400)
    assert message.startswith(f'parameter cid invalid: "{BAD_CID}" is not a CID')
    assert cluster.calls == []


def test_unknown_cid(call):
    response, body = call("DELETE", "/pins/" + UNKNOWN)
    assert "not pinned" in error_of(response, body, 404)
    response, body = call("GET", "/pins/" + UNKNOWN)
    assert response.code == 200  # like upstream: unpinned everywhere
    assert {s["status"] for s in json.loads(body)["peer_map"].values()} == {"unpinned"}


def test_sync_and_recover(call, cluster):
    cluster.set_status(CID1, cluster.peer_ids[2], TrackerStatus.PIN_ERROR, "oops")
    synced = lines(call("POST", "/pins/sync")[1])
    assert [d["cid"] for d in synced] == [CID1]
    response, body = call("POST", f"/pins/{CID1}/sync?local=true")
    assert list(json.loads(body)["peer_map"]) == [cluster.peer_id]
    recovered = lines(call("POST", "/pins/recover")[1])
    assert recovered[0]["peer_map"][cluster.peer_ids[2]]["status"] == "pin_queued"
    assert call("POST", "/pins/recover")[0].code == 204
    response, body = call("POST", f"/pins/{CID1}/recover")
    assert json.loads(body)["cid"] == CID1
    assert call("POST", "/pins/sync?local=maybe")[0].code == 400


# --- pins: pin and unpin ---------------------------------------------------------------


def test_pin_with_every_option(call, cluster, clock):
    clock.advance(1000)
    peers = cluster.peer_ids
    origin = f"/ip4/1.2.3.4/tcp/4001/p2p/{fake_peer_id(50)}"
    query = (
        f"replication-min=1&replication-max=2&name=my%20pin&mode=direct&expire-in=1h"
        f"&user-allocations={peers[2]}&meta-owner=bob&origins={origin}&pin-update={CID1}"
    )
    response, body = call("POST", f"/pins/{CID2}?{query}")
    pin = json.loads(body)
    assert response.code == 200
    assert (pin["replication_factor_min"], pin["replication_factor_max"]) == (1, 2)
    assert pin["name"] == "my pin" and pin["mode"] == "direct" and pin["max_depth"] == 0
    assert pin["expire_at"] == "1970-01-01T01:16:40Z"
    assert pin["metadata"] == {"owner": "bob"} and pin["origins"] == [origin]
    assert pin["user_allocations"] == [peers[2]] and pin["allocations"][0] == peers[2]
    assert pin["pin_update"] == CID1
    response, body = call("POST", f"/pins/{CID2}?replication=-1")
    assert json.loads(body)["replication_factor_max"] == -1


@pytest.mark.parametrize(
    "query,parameter",
    [
        ("replication=abc", "replication"),
        ("replication-min=-5", "replication-min"),
        ("replication-max=1.5", "replication-max"),
        ("mode=sideways", "mode"),
        ("expire-in=soon", "expire-in"),
        ("expire-in=10ms", "expire-in"),
        ("expire-at=tomorrow", "expire-at"),
        ("user-allocations=nobody", "user-allocations"),
        ("origins=/ip4/1.2.3.4/tcp/1", "origins"),
        ("pin-update=notacid", "pin-update"),
        ("shard-size=big", "shard-size"),
    ],
)
def test_pin_bad_options_name_the_parameter(call, cluster, query, parameter):
    for path in (f"/pins/{CID2}", f"/pins/ipfs/{CID2}", "/add"):
        kwargs = request_kwargs("POST", path)
        response, body = call("POST", f"{path}?{query}", **kwargs)
        assert error_of(response, body, 400).startswith(f"parameter {parameter} invalid"), body
    assert cluster.calls == []


def test_pin_and_unpin_by_path(call, cluster):
    cluster.paths["/ipfs/" + CID1 + "/docs"] = synthetic_cid(2)
    response, body = call("POST", f"/pins/ipfs/{CID1}/docs?name=docs")
    assert json.loads(body)["cid"] == CID2 and json.loads(body)["name"] == "docs"
    assert cluster.calls[-1][0:2] == ("pin_path", (f"/ipfs/{CID1}/docs", cluster.calls[-1][1][1]))
    response, body = call("DELETE", f"/pins/ipfs/{CID1}/docs")
    assert json.loads(body)["cid"] == CID2 and synthetic_cid(2) not in cluster.state
    response, body = call("POST", "/pins/ipns/example.org")
    assert "no link named" in error_of(response, body, 502)
    response, body = call("DELETE", f"/pins/ipld/{UNKNOWN}")
    assert "not pinned" in error_of(response, body, 404)


# --- add ---------------------------------------------------------------------------------


def _files(*items):
    parts = [
        Part({"content-disposition": f'form-data; name="file"; filename="{name}"',
              "content-type": "application/octet-stream"}, "file", name, "application/octet-stream", {}, data)
        for name, data in items
    ]
    return encode_parts(parts)


def test_add_streams_ndjson_with_headers(call, cluster):
    body, ctype = _files(("a.txt", b"hello"), ("b.txt", b"world!"))
    response, out = call("POST", "/add?replication=2&name=up", data=body, headers={"Content-Type": ctype})
    assert response.code == 200
    for name, value in (("X-Chunked-Output", "1"), ("Cache-Control", "no-cache"), ("Trailer", "X-Stream-Error")):
        assert header(response, name) == value
    items = lines(out)
    assert [(d["name"], d["cid"], d["size"]) for d in items] == [
        ("a.txt", str(content_cid(b"hello")), 5), ("b.txt", str(content_cid(b"world!")), 6)]
    assert len(items[0]["allocations"]) == 2
    parts, params = cluster.calls[-1][1]
    assert [p.filename for p in parts] == ["a.txt", "b.txt"] and params["name"] == "up"


def test_add_single_array_and_no_pin(call, cluster):
    body, ctype = _files(("a.txt", b"hello"))
    response, out = call("POST", "/add?stream-channels=false&no-pin=true", data=body,
                         headers={"Content-Type": ctype})
    assert json.loads(out) == [{"name": "a.txt", "cid": str(content_cid(b"hello")), "size": 5}]
    assert content_cid(b"hello") not in cluster.state


def test_add_large_upload_spooled_to_disk(call):
    data = bytes(range(256)) * 1000  # 256 kB: twisted keeps it in a temporary file
    body, ctype = _files(("big.bin", data), ("small.txt", b"s"))
    response, out = call("POST", "/add", data=body, headers={"Content-Type": ctype})
    assert [(d["name"], d["cid"], d["size"]) for d in lines(out)] == [
        ("big.bin", str(content_cid(data)), len(data)), ("small.txt", str(content_cid(b"s")), 1)]


def test_add_accepts_file_disposition_without_name(call):
    body = b'--XX\r\nContent-Disposition: file; filename="old.txt"\r\n\r\nabc\r\n--XX--\r\n'
    response, out = call("POST", "/add", data=body, headers={"Content-Type": 'multipart/form-data; boundary="XX"'})
    assert lines(out)[0]["name"] == "old.txt"


@pytest.mark.parametrize(
    "query,parameter",
    [("stream-channels=nope", "stream-channels"), ("progress=yes", "progress"), ("cid-version=7", "cid-version"),
     ("layout=zigzag", "layout"), ("format=zip", "format"), ("shard=true", "shard"), ("hash=md5", "hash")],
)
def test_add_bad_parameters(call, cluster, query, parameter):
    body, ctype = _files(("a.txt", b"x"))
    response, out = call("POST", "/add?" + query, data=body, headers={"Content-Type": ctype})
    assert error_of(response, out, 400).startswith(f"parameter {parameter} invalid")
    assert cluster.calls == []


def test_add_needs_a_multipart_body(call):
    response, body = call("POST", "/add", data=b"plain")
    assert "multipart/form-data" in error_of(response, body, 400)
    response, body = call("POST", "/add", data=b"--A\r\nno end", headers={"Content-Type": "multipart/form-data; boundary=A"})
    assert "closing boundary" in error_of(response, body, 400)


# --- health and monitoring -------------------------------------------------------------


def test_health_and_monitor(call, cluster, clock):
    metric = Metric("freespace", peer=cluster.peer_id, value="100", expire=5, valid=True)
    cluster.metrics["freespace"] = [metric]
    cluster.alert_list.append(Alert(Metric("ping", peer=cluster.peer_ids[1]), triggered_at=10**18))
    graph = json.loads(call("GET", "/health/graph")[1])
    assert graph["cluster_id"] == cluster.peer_id and len(graph["cluster_links"]) == 3
    alerts = json.loads(call("GET", "/health/alerts")[1])
    assert alerts[0]["name"] == "ping" and alerts[0]["triggered_at"] == "2001-09-09T01:46:40Z"
    assert json.loads(call("GET", "/monitor/metrics")[1]) == ["freespace"]
    assert json.loads(call("GET", "/monitor/metrics/freespace")[1]) == [metric.to_json()]
    assert json.loads(call("GET", "/monitor/metrics/nothing")[1]) == []


# --- collections: empty, failing before the first item, failing in the middle -----------

STREAMS = [
    ("GET", "/peers", "peers"),
    ("GET", "/allocations", "pins"),
    ("GET", "/pins", "status_all"),
    ("POST", "/pins/sync", "sync_all"),
    ("POST", "/pins/recover", "recover_all"),
    ("POST", "/add", "add"),
]


@pytest.fixture
def empty(clock):
    fake = FakeCluster(clock)
    fake.peer_ids = []
    return fake


@pytest.mark.parametrize("method,path,name", STREAMS)
def test_empty_collections_are_204(empty, clock, method, path, name):
    call = Client(make_api(empty, clock))
    kwargs = request_kwargs(method, path)
    if path == "/add":  # a part without a file name adds nothing
        kwargs["data"], kwargs["headers"]["Content-Type"] = encode_parts(
            [Part({"content-disposition": 'form-data; name="x"'}, "x", None, "", {}, b"")])
    response, body = call(method, path, **kwargs)
    assert (response.code, body) == (204, b"")
    assert header(response, "Content-Type") == "application/json"


@pytest.mark.parametrize("method,path,name", STREAMS)
@pytest.mark.parametrize("error,code", [(ClusterError("boom"), 500), (NoLeader(), 503)])
def test_error_before_first_item_is_an_error_response(call, cluster, method, path, name, error, code):
    cluster.set_status(CID1, cluster.peer_id, TrackerStatus.PIN_ERROR)
    cluster.fail_after[name] = (0, error)
    response, body = call(method, path, **request_kwargs(method, path))
    assert error_of(response, body, code) == str(error)
    assert header(response, "Trailer") is None


@pytest.mark.parametrize("method,path,name", STREAMS)
def test_error_in_the_middle_keeps_the_items_sent(call, cluster, method, path, name):
    cluster._pin(CID2, None)
    cluster.set_status(CID1, cluster.peer_id, TrackerStatus.PIN_ERROR)
    cluster.set_status(CID2, cluster.peer_id, TrackerStatus.PIN_ERROR)
    kwargs = request_kwargs(method, path)
    if path == "/add":
        kwargs["data"], kwargs["headers"]["Content-Type"] = _files(("a", b"1"), ("b", b"2"))
    cluster.fail_after[name] = (1, ClusterError("broken in the middle"))
    response, body = call(method, path, **kwargs)
    assert response.code == 200
    assert len(lines(body)) == 1


def test_errors_of_deferred_routes_map_to_their_status(call, cluster):
    cluster.failures["id"] = ClusterError("daemon exploded")
    response, body = call("GET", "/id")
    assert error_of(response, body, 500) == "daemon exploded"
    cluster.failures["pin"] = NoLeader()
    response, body = call("POST", "/pins/" + CID2)
    assert error_of(response, body, 503).startswith("No Raft leader is known")


@pytest.mark.allow_logged_errors
def test_unexpected_errors_are_500_and_logged(call, cluster):
    cluster.failures["connect_graph"] = RuntimeError("bug")
    response, body = call("GET", "/health/graph")
    assert error_of(response, body, 500) == "internal error: bug"


# --- routing ------------------------------------------------------------------------------


def test_unknown_route_and_wrong_method(call):
    for path in ("/nope", "/pins/a/b/c", "/add/x", "/"):
        response, body = call("GET", path)
        assert error_of(response, body, 404) == "not found"
    response, body = call("GET", "/pins/%ff")
    assert error_of(response, body, 400) == "the URL path is not valid UTF-8 once percent-decoded"
    response, body = call("PUT", "/pins")
    assert error_of(response, body, 405) == "method not allowed"
    assert "GET" in header(response, "Allow")


def test_trailing_slash_redirects_307(call):
    response, body = call("GET", "/pins/?local=true")
    assert error_of(response, body, 307)
    assert header(response, "Location") == "/pins?local=true"
    response, body = call("POST", f"/pins/{CID1}/")
    assert response.code == 307 and header(response, "Location") == f"/pins/{CID1}"
    response, body = call("GET", "/nothing/")
    assert response.code == 404


# --- CORS and body limits ------------------------------------------------------------------


def test_cors_preflight_and_simple_requests(cluster, clock):
    call = Client(make_api(cluster, clock, basic_auth_credentials=USERS,
                           cors_allowed_origins=("https://ok.example",)))
    preflight = {"Origin": "https://ok.example", "Access-Control-Request-Method": "POST"}
    response, body = call("OPTIONS", "/pins/" + CID1, headers=preflight)
    assert response.code == 204 and cluster.calls == []
    assert header(response, "Access-Control-Allow-Origin") == "https://ok.example"
    assert header(response, "Access-Control-Allow-Methods") == "GET, POST, HEAD"
    assert header(response, "Access-Control-Allow-Credentials") == "true"
    response, body = call("GET", "/id", auth=("admin", "s3cret"), headers={"Origin": "https://ok.example"})
    assert header(response, "Access-Control-Allow-Origin") == "https://ok.example"
    assert "X-Stream-Output" in header(response, "Access-Control-Expose-Headers")
    response, body = call("GET", "/id", auth=("admin", "s3cret"), headers={"Origin": "https://evil.example"})
    assert response.code == 200 and header(response, "Access-Control-Allow-Origin") is None


def test_request_bodies_are_size_checked(cluster, clock):
    call = Client(make_api(cluster, clock, max_body_size=1000))
    response, body = call("POST", "/peers", data=b"x" * 70_000)
    assert "request body too large: 70000 bytes" in error_of(response, body, 413)
    data, ctype = _files(("big", b"y" * 2000))
    response, body = call("POST", "/add", data=data, headers={"Content-Type": ctype})
    assert "the limit for this route is 1000" in error_of(response, body, 413)
    data, ctype = _files(("small", b"y" * 10))
    assert call("POST", "/add", data=data, headers={"Content-Type": ctype})[0].code == 200
    assert [c[0] for c in cluster.calls] == ["add"]


def test_config_keys_round_trip():
    section = RestAPIConfig.from_json({"cors_allowed_origins": ["https://a"], "max_body_size": 10})
    assert section.to_json()["cors_allowed_origins"] == ["https://a"]
    assert "cors_allowed_methods" not in section.to_json()
    assert attrs.evolve(section, max_body_size=0).to_json().get("max_body_size") is None
