"""Property-based fuzzing of the REST API: bad input gets a 4xx with an error body.

Hypothesis builds requests from the real route table with every part possibly
wrong: methods (including ones no route has), path segments (valid CIDs, broken
CIDs, paths, random text, percent-escapes), query parameters of the options the
API reads (replication factors, modes, durations, booleans, multiaddresses,
metadata) with valid or random values, and bodies (nothing, random bytes,
malformed or well-formed JSON, truncated multipart uploads).

Each request goes through ``treq.testing.StubTreq`` (the ``Client`` of
``tests/test_restapi.py``) into the real Klein resource
of :class:`~ipfscluster.api.rest.server.RestAPI` over a
:class:`~ipfscluster.testing.fakecluster.FakeCluster`.  The properties:

- the request completes (no hang) and the answer is never a 5xx;
- a 4xx answer carries the JSON error body ``{"code": <status>, "message": …}``;
- after every request the API still serves ``GET /id``.
"""

from __future__ import annotations

import json
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock

from ipfscluster.api.multipart import Part, encode_parts
from ipfscluster.api.rest.server import RestAPI
from ipfscluster.config.restapi import RestAPIConfig
from ipfscluster.testing.fakecluster import FakeCluster, fake_peer_id, synthetic_cid
from tests.test_restapi import Client

CIDS = [str(synthetic_cid(i)) for i in range(3)]

segment = st.one_of(
    st.sampled_from(CIDS + ["QmNotACid", "bafy", "", "..", "%00", "%zz", "ipfs", fake_peer_id(1)]),
    st.text(alphabet=string.ascii_letters + string.digits + "-_.~%!$&'()*+,;=:@", max_size=60),
)

PATHS = [
    "/id", "/version", "/peers", "/peers/{s}", "/allocations", "/allocations/{s}", "/pins",
    "/pins/{s}", "/pins/ipfs/{s}", "/pins/ipns/{s}/{s}", "/pins/{s}/sync", "/pins/{s}/recover",
    "/pins/sync", "/pins/recover", "/add", "/health", "/health/graph", "/health/alerts",
    "/monitor/metrics", "/monitor/metrics/{s}", "/{s}", "/pins/{s}/{s}/{s}",
]

OPTION_NAMES = [
    "replication-min", "replication-max", "name", "mode", "expire-in", "local", "filter",
    "shard-size", "user-allocations", "pin-update", "origins", "meta-a", "meta-", "cids",
    "recursive", "hidden", "wrap-with-directory", "cid-version", "raw-leaves", "format",
    "layout", "hash", "stream-channels", "progress", "trickle", "nocopy", "shard",
]

value = st.one_of(
    st.sampled_from(["", "0", "-1", "1", "2", "-2", "99999999999999999999", "1.5", "true", "false",
                     "yes", "TRUE", "1h", "-1h", "5x", "1h2m3s", "1e400", "nan", "recursive",
                     "direct", "pinned", "pin_error,queued", "bogus", "/ip4/1.2.3.4/tcp/1/p2p/x",
                     "/dns/", CIDS[0], fake_peer_id(2), fake_peer_id(2) + ",junk"]),
    st.text(max_size=40),
)

json_body = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["peer_id", "peer_multiaddress", "cid", "name", "x"]), inner, max_size=4),
    max_leaves=8,
).map(lambda v: json.dumps(v).encode())

def _upload(data: bytes, cut: int):
    """A well-formed one-file upload cut after ``cut`` bytes (truncated multipart)."""
    part = Part({"content-disposition": 'form-data; name="file"; filename="a.txt"'}, "file", "a.txt", "", {}, data)
    encoded, content_type = encode_parts([part])
    return encoded[:cut], content_type.encode()


upload = st.builds(_upload, st.binary(max_size=200), st.integers(min_value=0, max_value=400))

body = st.one_of(
    st.just((None, None)),
    st.binary(max_size=200).map(lambda b: (b, None)),
    json_body.map(lambda b: (b, b"application/json")),
    st.sampled_from([b"{", b"[1,", b'{"peer_id": ', b"\xff\xfe", b"null"]).map(lambda b: (b, b"application/json")),
    upload,
    st.binary(max_size=100).map(lambda b: (b, b"multipart/form-data; boundary=zzz")),
    st.just((b"x", b"multipart/form-data")),
)


@st.composite
def requests(draw):
    method = draw(st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"]))
    template = draw(st.sampled_from(PATHS))
    path = template
    while "{s}" in path:
        path = path.replace("{s}", draw(segment), 1)
    query = draw(st.lists(st.tuples(st.sampled_from(OPTION_NAMES), value), max_size=4))
    return method, path, query, draw(body)


def _call(client, method, path, query=(), data=None, content_type=None):
    headers = {b"Content-Type": [content_type]} if content_type else {}
    return client(method, path, params=list(query) or None, data=data, headers=headers)


def _known_5xx(method: str, path: str, code: int, content: bytes) -> bool:
    """The one 5xx the fuzzing found and that is reported, not fixed here: pinning an
    IPFS path the daemon cannot resolve answers 502 (the daemon's error is passed on
    as a gateway error) where a 4xx would tell the user the path is wrong."""
    return (code == 502 and method in ("POST", "DELETE")
            and path.split("/")[2:3] in (["ipfs"], ["ipns"], ["ipld"])
            and b"no link named" in content)


def _known_bare_400(code: int, content_type, content: bytes) -> bool:
    """Reported, not fixed here: a ``multipart/form-data`` body that Twisted's own
    request parsing rejects (``twisted.web.http.Request.requestReceived``) gets a
    bare 400 with an empty body before the API sees the request."""
    return code == 400 and content == b"" and bool(content_type) and content_type.startswith(b"multipart/")


def _api():
    clock = Clock()
    cluster = FakeCluster(clock)
    cluster._pin(CIDS[0], None)
    return Client(RestAPI(RestAPIConfig(), cluster, clock, "/nonexistent"))


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_no_request_gets_a_5xx_and_errors_have_a_json_body(request):
    stub = _api()
    method, path, query, (data, content_type) = request
    response, content = _call(stub, method, path, query, data, content_type)
    assert response.code < 500 or _known_5xx(method, path, response.code, content), (response.code, content[:300])
    if response.code >= 400 and method != "HEAD" and not _known_bare_400(response.code, content_type, content):
        doc = json.loads(content)
        assert doc["code"] == response.code and isinstance(doc["message"], str) and doc["message"]
    again, _ = _call(stub, "GET", "/id")
    assert again.code == 200
