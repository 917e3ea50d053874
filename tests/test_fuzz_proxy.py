"""Property-based fuzzing of the IPFS proxy: bad input gets kubo's error answer.

Hypothesis builds kubo RPC requests to the endpoints the proxy intercepts
(``pin/add|rm|ls|update``, ``add``, ``repo/stat``) and to forwarded ones, with
arguments that are valid CIDs, broken CIDs, IPFS paths or random text, option
values that are right or wrong (booleans, pin types, replication factors, names,
durations), wrong methods, and bodies that are nothing, random bytes or truncated
multipart uploads.  Requests go through ``treq.testing.StubTreq`` into the real
proxy resource with an in-memory fake kubo behind it (``in_memory_proxy`` of
``tests/test_proxy_units.py``).  The properties:

- the request completes (no hang, no exception out of the resource);
- an error is answered the way kubo answers it: a status among 400/404/405/413
  and 500 (kubo reports command errors with 500) with kubo's JSON error object
  ``{"Message": …, "Code": …, "Type": "error"}``, or a plain-text line where kubo
  answers in plain text (405 for a GET, 404 for an unknown command, a missing
  file argument),
  never a 502/503/504 (the
  in-memory daemon is always there);
- after every request the proxy still answers ``version``.
"""

from __future__ import annotations

import json
import string
import urllib.parse

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_fuzz_restapi import _known_bare_400
from tests.test_proxy_units import HELLO, in_memory_proxy

# (not ``block/stat``/``cat`` of content nobody has: kubo, and the fake, wait for it
# to appear on the network, so those never answer by design)
ENDPOINTS = ["pin/add", "pin/rm", "pin/ls", "pin/update", "add", "repo/stat", "version", "id",
             "nonexistent/cmd", ""]

arg = st.one_of(
    # no "/ipfs/<cid>/<missing link>": resolving it waits for content no daemon has
    # (as kubo does), so such a request never ends in this synchronous harness
    st.sampled_from([HELLO, "/ipfs/" + HELLO, "QmNotACid", "", "/ipns/x",
                     "bafy", "/ipfs/", "%00", "a b"]),
    st.text(alphabet=string.printable, max_size=50),
)

OPTIONS = ["recursive", "type", "progress", "stream", "replication", "replication-min", "replication-max",
           "name", "expire-in", "unpin", "pin", "wrap-with-directory", "cid-version", "quiet", "only-hash",
           "quieter", "raw-leaves", "chunker", "hash"]

value = st.one_of(
    st.sampled_from(["", "true", "false", "1", "0", "-1", "yes", "direct", "recursive", "indirect", "all",
                     "bogus", "1h", "-5s", "x", "size-262144", "rabin", "sha2-256", "9" * 30]),
    st.text(max_size=30),
)


def _truncated_upload(data: bytes, cut: int):
    body = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="f.txt"\r\n\r\n'
            + data + b"\r\n--b--\r\n")
    return body[:cut], "multipart/form-data; boundary=b"


body = st.one_of(
    st.just((None, None)),
    st.builds(_truncated_upload, st.binary(max_size=100), st.integers(min_value=0, max_value=200)),
    st.binary(max_size=100).map(lambda b: (b, "multipart/form-data; boundary=b")),
    st.binary(max_size=100).map(lambda b: (b, "application/octet-stream")),
)


@st.composite
def requests(draw):
    method = draw(st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE"]))
    endpoint = draw(st.sampled_from(ENDPOINTS))
    query = [("arg", a) for a in draw(st.lists(arg, max_size=3))]
    query += draw(st.lists(st.tuples(st.sampled_from(OPTIONS), value), max_size=4))
    in_path = draw(st.one_of(st.none(), arg))
    # a client percent-encodes a path argument (raw "#", "?" or a newline cannot be
    # sent in a request line at all)
    path = "/api/v0/" + endpoint + ("/" + urllib.parse.quote(in_path, safe="/") if in_path else "")
    return method, path, query, draw(body)


def _is_text(response) -> bool:
    return (response.headers.getRawHeaders("content-type") or [""])[0].startswith("text/plain")


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_bad_requests_get_kubo_errors_and_the_proxy_keeps_serving(request):
    call, _cluster, _daemon = in_memory_proxy()
    method, path, query, (data, content_type) = request
    headers = {"Content-Type": content_type} if content_type else {}
    response, content = call(method, path, params=query or None, data=data, headers=headers)
    assert response.code in (200, 400, 404, 405, 413, 500), (response.code, content[:300])
    if _known_bare_400(response.code, content_type and content_type.encode(), content):
        pass  # reported in tests/test_fuzz_restapi.py: Twisted's own multipart parsing
    elif response.code >= 400 and _is_text(response):  # kubo's plain-text answers (405, 404, a missing file)
        assert content.strip(), response.code
    elif response.code >= 400:
        lines = [line for line in content.splitlines() if line.strip()]
        error = json.loads(lines[-1])
        assert error["Type"] == "error" and isinstance(error["Message"], str), content[:300]
    again, version = call("POST", "/api/v0/version")
    assert again.code == 200 and "Version" in json.loads(version)
