"""Parameter parsing (Go booleans, integers, CIDs, peer IDs) and multipart bodies."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ipfscluster.api.multipart import MultipartError, Part, boundary_of, encode_parts, parse_parts
from ipfscluster.api.rest.parsing import (
    parse_bool,
    parse_cid,
    parse_peer_id,
    query_args,
    query_bool,
    query_choice,
    query_int,
)
from ipfscluster.errors import InvalidParameter
from ipfscluster.testing.fakecluster import fake_peer_id, synthetic_cid

GO_TRUE = ["1", "t", "T", "TRUE", "true", "True"]
GO_FALSE = ["0", "f", "F", "FALSE", "false", "False"]


@pytest.mark.parametrize("text", GO_TRUE)
def test_go_true_spellings(text):
    assert parse_bool(text, "local") is True


@pytest.mark.parametrize("text", GO_FALSE)
def test_go_false_spellings(text):
    assert parse_bool(text, "local") is False


@given(st.text(max_size=6).filter(lambda t: t not in GO_TRUE + GO_FALSE))
def test_every_other_spelling_is_refused_naming_the_parameter(text):
    with pytest.raises(InvalidParameter) as info:
        parse_bool(text, "stream-channels")
    assert str(info.value).startswith(f'parameter stream-channels invalid: "{text[:97]}')
    assert info.value.parameter == "stream-channels" and info.value.value == text
    assert info.value.http_status == 400


def test_query_helpers():
    query = query_args({b"local": [b"true", b"false"], b"name": [b"caf\xc3\xa9"], b"empty": []})
    assert query == {"local": "true", "name": "café"}
    assert query_bool(query, "local") is True
    assert query_bool(query, "missing", default=True) is True
    assert query_bool({"x": ""}, "x", default=True) is True
    assert query_int({"n": "-1"}, "n", 0, minimum=-1) == -1
    assert query_int({}, "n", 7) == 7
    for bad, why in (("1.5", "is not an integer"), ("１", "is not an integer"), ("-3", "is too small")):
        with pytest.raises(InvalidParameter, match=f'parameter n invalid: "{bad}" {why}'):
            query_int({"n": bad}, "n", 0, minimum=-1)
    assert query_choice({}, "layout", ("balanced", "trickle")) == "balanced"
    with pytest.raises(InvalidParameter, match="use one of: balanced, trickle"):
        query_choice({"layout": "x"}, "layout", ("balanced", "trickle"))


def test_cid_and_peer_id_messages_name_parameter_and_value():
    cid = synthetic_cid(3)
    assert parse_cid(str(cid)) == cid
    with pytest.raises(InvalidParameter) as info:
        parse_cid("Qmshort", "cids")
    assert str(info.value) == 'parameter cids invalid: "Qmshort" is not a CID: a CIDv0 has 46 characters, this has 7'
    peer = fake_peer_id(4)
    assert parse_peer_id(peer) == peer
    with pytest.raises(InvalidParameter, match='^parameter peer invalid: "12D3nope" is not a peer ID: '):
        parse_peer_id("12D3nope")
    long_value = "x" * 300
    with pytest.raises(InvalidParameter) as info:
        parse_cid(long_value)
    assert len(str(info.value)) < 300 and info.value.value == long_value


# --- multipart ----------------------------------------------------------------------


def test_boundary_of():
    assert boundary_of('multipart/form-data; boundary="a b"') == b"a b"
    assert boundary_of("multipart/mixed; boundary=xyz") == b"xyz"
    with pytest.raises(MultipartError, match="expected a multipart/form-data body"):
        boundary_of("application/json")
    with pytest.raises(MultipartError, match="no boundary"):
        boundary_of("multipart/form-data")


def test_parse_variants_clients_send():
    body = (
        b"preamble\r\n--B\r\n"
        b'Content-Disposition: form-data; name="file"; filename="d%2Fx.txt"\r\n'
        b"Content-Type: application/octet-stream\r\nAbspath: /tmp/x\r\n\r\n"
        b"binary --B\n\x00--B-not-a-delimiter\r\n--B\r\n"
        b'Content-Disposition: file; filename="old.txt"\r\n\r\n'
        b"\r\n--B\r\n"
        b'Content-Disposition: form-data; name="dir?mode=0755"; filename="d"\r\n'
        b"Content-Type: multipart/mixed; boundary=inner\r\n\r\n--inner--\r\n--B--\r\n"
    )
    parts = parse_parts(body, b"B")
    assert [p.filename for p in parts] == ["d%2Fx.txt", "old.txt", "d"]
    first, old, folder = parts
    assert first.name == "file" and first.body == b"binary --B\n\x00--B-not-a-delimiter"
    assert first.headers["abspath"] == "/tmp/x" and first.content_type == "application/octet-stream"
    assert old.name == "" and old.body == b""
    assert folder.name == "dir?mode=0755" and folder.content_params == {"boundary": "inner"}


@pytest.mark.parametrize(
    "body,message",
    [(b"no delimiter here", "does not contain its boundary"), (b"--B\r\nX: y\r\n\r\ndata", "closing boundary"),
     (b"--B\r\nX: y\r\nno blank line\r\n--B--", "header has no end")],
)
def test_parse_errors(body, message):
    with pytest.raises(MultipartError, match=message):
        parse_parts(body, b"B")


@given(st.lists(st.tuples(st.text(min_size=1, max_size=10), st.binary(max_size=50)), max_size=5))
def test_encode_then_parse_round_trip(files):
    parts = [
        Part({"content-disposition": 'form-data; name="file"; filename="%d"' % i}, "file", str(i), "", {}, data)
        for i, (_, data) in enumerate(files)
    ]
    body, content_type = encode_parts(parts)
    assert parse_parts(body, boundary_of(content_type)) == parts


def test_encode_refuses_a_body_containing_the_boundary():
    part = Part({}, "", None, "", {}, b"--ipfscluster-boundary-5b2e9d")
    with pytest.raises(MultipartError, match="boundary occurs inside a part"):
        encode_parts([part])
