"""Tests of ipfscluster.cid: parsing, canonical text, conversions and errors."""

from __future__ import annotations

import base64
import copy
import hashlib
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipfscluster.cid import (
    CID,
    DAG_CBOR,
    DAG_PB,
    IDENTITY,
    LIBP2P_KEY,
    RAW,
    SHA2_256,
    codec_name,
    decode_multihash,
    identity_multihash,
    normalize,
    parse_cid,
    sha256_multihash,
)
from ipfscluster.encoding import b58decode, varint_encode
from ipfscluster.errors import InvalidCID

HELLO_V0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
EMPTY_V0 = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"


def _unixfs_file_node(data: bytes) -> bytes:
    """The dag-pb node kubo writes for a small file, built by hand from the protobufs:
    PBNode{Data: unixfs.Data{Type: File(2), Data: data, filesize: len}}."""
    inner = b"\x08\x02"
    if data:
        inner += b"\x12" + varint_encode(len(data)) + data
    inner += b"\x18" + varint_encode(len(data))
    return b"\x0a" + varint_encode(len(inner)) + inner


def _b32(data: bytes) -> str:
    return "b" + base64.b32encode(data).decode().rstrip("=").lower()


def _b36(data: bytes) -> str:
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    n, out = int.from_bytes(data, "big"), ""
    while n:
        n, r = divmod(n, 36)
        out = alphabet[r] + out
    return "k" + "0" * (len(data) - len(data.lstrip(b"\0"))) + out


# --- known vectors -----------------------------------------------------------------


@pytest.mark.parametrize("content, text", [(b"hello world\n", HELLO_V0), (b"", EMPTY_V0)])
def test_v0_vectors_match_an_independent_hash_of_the_file_node(content, text):
    digest = hashlib.sha256(_unixfs_file_node(content)).digest()
    cid = CID.parse(text)
    assert cid.version == 0
    assert cid.codec == DAG_PB
    assert cid.multihash == b"\x12\x20" + digest
    assert cid.to_bytes() == cid.multihash
    assert CID.v0(digest) == cid
    assert str(CID.v0(digest)) == text


def test_v0_to_v1_base32_matches_stdlib_base32():
    cid = CID.parse(HELLO_V0)
    v1 = cid.to_v1()
    expected = _b32(b"\x01\x70" + cid.multihash)
    assert str(v1) == expected
    assert expected.startswith("bafybei")
    assert v1.version == 1 and v1.codec == DAG_PB and v1.multihash == cid.multihash
    assert v1.to_bytes() == b"\x01\x70" + cid.multihash
    assert v1 != cid  # different binary forms
    assert v1.to_v1() is v1
    assert CID.parse(expected) == v1


def test_v1_base36_forms():
    dag_pb = CID.parse(HELLO_V0).to_v1()
    text = dag_pb.encode("base36")
    assert text == _b36(dag_pb.to_bytes())
    assert text.startswith("k2")
    assert CID.parse(text) == dag_pb
    assert CID.parse(text.upper()) == dag_pb
    # a libp2p-key CID of an Ed25519 key (identity multihash of 36 bytes) is "k51…"
    key_cid = CID.v1(LIBP2P_KEY, identity_multihash(b"\x08\x01\x12\x20" + bytes(range(32))))
    key_text = key_cid.encode("base36")
    assert key_text == _b36(key_cid.to_bytes())
    assert key_text.startswith("k51")
    assert CID.parse(key_text) == key_cid
    assert str(key_cid).startswith("bafz")


def test_every_text_form_of_a_cid_parses_to_it():
    cid = CID.v1(RAW, sha256_multihash(b"abc"))
    forms = {
        cid.encode(base)
        for base in ("base32", "base32upper", "base58btc", "base36", "base36upper", "base16")
    }
    assert len(forms) == 6
    for text in forms:
        assert CID.parse(text) == cid
        assert normalize(text) == str(cid)
    assert str(cid).startswith("bafkrei")
    assert cid.encode("base16") == "f" + cid.to_bytes().hex()


def test_normalize_keeps_the_version():
    assert normalize(HELLO_V0) == HELLO_V0
    v1_upper = CID.parse(HELLO_V0).to_v1().encode("base32upper")
    assert normalize(v1_upper) == v1_upper.lower()


def test_non_canonical_base32_tail_bits_parse_but_print_canonically():
    cid = CID.parse(HELLO_V0).to_v1()
    text = str(cid)  # 36 bytes -> 58 digits, 2 unused bits in the last one
    last = "abcdefghijklmnopqrstuvwxyz234567".index(text[-1])
    tweaked = text[:-1] + "abcdefghijklmnopqrstuvwxyz234567"[last | 1]
    assert tweaked != text
    assert CID.parse(tweaked) == cid
    assert str(CID.parse(tweaked)) == text


# --- value behaviour ---------------------------------------------------------------


def test_immutable_hashable_and_orderable_by_text():
    a = CID.parse(HELLO_V0)
    b = CID.parse(EMPTY_V0)
    with pytest.raises(AttributeError):
        a.codec = RAW
    with pytest.raises(AttributeError):
        a.anything = 1
    assert {a, CID.from_bytes(a.to_bytes())} == {a}
    assert sorted([b, a]) == ([a, b] if HELLO_V0 < EMPTY_V0 else [b, a])
    assert (a < b) == (HELLO_V0 < EMPTY_V0)
    assert (a >= b) == (HELLO_V0 >= EMPTY_V0)
    assert a <= a and a >= a
    assert a != HELLO_V0  # not equal to its text
    assert repr(a) == f"CID('{HELLO_V0}')"
    assert eval(repr(a), {"CID": CID}) == a
    assert CID(HELLO_V0) == a
    assert codec_name(CID.v1(DAG_CBOR, a.multihash).codec) == "dag-cbor"
    assert codec_name(0x9999) == "0x9999"
    assert pickle.loads(pickle.dumps(a)) == a
    assert copy.deepcopy(a) is a
    assert bytes(a) == a.to_bytes()


def test_parse_cid_and_parse_accept_a_cid():
    cid = parse_cid(HELLO_V0)
    assert CID.parse(cid) is cid


def test_multihash_helpers():
    assert decode_multihash(sha256_multihash(b"x")) == (SHA2_256, hashlib.sha256(b"x").digest())
    assert identity_multihash(b"abc") == b"\x00\x03abc"
    assert decode_multihash(identity_multihash(b"abc")) == (IDENTITY, b"abc")
    with pytest.raises(ValueError, match="truncated multihash"):
        decode_multihash(b"\x12\x20abc")


def test_encode_of_v0_is_only_base58():
    cid = CID.parse(HELLO_V0)
    assert cid.encode("base58btc") == HELLO_V0
    with pytest.raises(ValueError, match="to_v1"):
        cid.encode("base32")


# --- round trips -------------------------------------------------------------------

codecs = st.sampled_from([DAG_PB, RAW, DAG_CBOR, LIBP2P_KEY, 0x0129]) | st.integers(0, 1 << 40)
multihashes = st.one_of(
    st.binary(min_size=32, max_size=32).map(lambda d: b"\x12\x20" + d),
    st.binary(max_size=64).map(identity_multihash),
    st.tuples(st.integers(0x13, 1 << 20), st.binary(max_size=64)).map(
        lambda t: varint_encode(t[0]) + varint_encode(len(t[1])) + t[1]
    ),
)
bases = st.sampled_from(["base32", "base32upper", "base58btc", "base36", "base36upper", "base16"])


@settings(deadline=None)  # shared, loaded CI machines
@given(codecs, multihashes, bases)
def test_v1_round_trip_through_every_base(codec, mh, base):
    cid = CID.v1(codec, mh)
    text = cid.encode(base)
    parsed = CID.parse(text)
    assert parsed == cid
    assert (parsed.version, parsed.codec, parsed.multihash) == (1, codec, mh)
    assert str(parsed) == _b32(cid.to_bytes())
    assert CID.from_bytes(cid.to_bytes()) == cid
    assert hash(parsed) == hash(cid)


@settings(deadline=None)  # shared, loaded CI machines
@given(st.binary(min_size=32, max_size=32))
def test_v0_round_trip(digest):
    cid = CID.v0(digest)
    text = str(cid)
    assert len(text) == 46 and text.startswith("Qm")
    assert CID.parse(text) == cid
    assert CID.from_bytes(cid.to_bytes()) == cid
    assert str(cid.to_v1()) == _b32(b"\x01\x70\x12\x20" + digest)


# --- invalid input -----------------------------------------------------------------

_V1 = CID.parse(HELLO_V0).to_v1().to_bytes()


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty string"),
        ("Qmfoo", "a CIDv0 has 46 characters, this has 5"),
        ("Qm" + "0" * 44, "invalid base58btc character '0'"),
        ("Qm" + "z" * 44, "CIDv0 must be a sha2-256 multihash of 32 bytes"),
        ("xafybei", "unknown multibase prefix 'x'"),
        ("bafybei!", "invalid base32 character '!'"),
        ("bafyBei", "uppercase character"),
        (_b32(_V1[:-3]), "truncated multihash"),
        (_b32(_V1 + b"\x00"), "wrong digest length"),
        (_b32(b"\x01\x55\x12\x10" + bytes(16)), "sha2-256 needs 32 bytes, not 16"),
        (_b32(b"\x02\x70" + _V1[2:]), "unsupported CID version 2"),
        (_b32(b"\x00\x70" + _V1[2:]), "without version byte"),
        (_b32(b"\x01"), "truncated or malformed codec"),
        (_b32(b"\x01\x70\x80"), "truncated or malformed multihash"),
        ("z" + "Qm" * 3, "unsupported CID version"),
        # a bare sha2-256 multihash written with a multibase prefix is not a CIDv0
        (_b32(_V1[2:]), "without a multibase prefix"),
    ],
)
def test_invalid_cids_quote_the_input_and_say_why(text, message):
    with pytest.raises(InvalidCID) as info:
        CID.parse(text)
    assert str(info.value).startswith(f'invalid CID "{text}": ')
    assert message in str(info.value)
    assert info.value.http_status == 400
    assert info.value.value == text
    assert str(info.value) == f'invalid CID "{text}": {info.value.reason}'


def test_overlong_input_is_refused_and_quoted_shortened():
    text = "b" + "a" * 2000
    with pytest.raises(InvalidCID) as info:
        CID.parse(text)
    assert str(info.value) == f'invalid CID "{text[:64]}…": longer than 1024 characters'
    assert info.value.value == text


@pytest.mark.parametrize(
    "text, header",
    [
        # 46-character "Qm…" texts whose multihash header is not sha2-256/32 bytes
        ("Qm" + "1" * 44, "121e"),
        ("Qm" + "z" * 44, "1222"),
    ],
)
def test_v0_text_that_is_not_a_sha256_multihash(text, header):
    assert b58decode(text)[:2].hex() == header
    with pytest.raises(InvalidCID, match="CIDv0 must be a sha2-256 multihash of 32 bytes"):
        CID.parse(text)


def test_binary_v0_with_another_hash_function_is_rejected():
    # a 34-byte sha1-coded (0x11) multihash is not a CIDv0; read as CIDv1 its first
    # byte is the version
    with pytest.raises(InvalidCID, match="unsupported CID version 17"):
        CID.from_bytes(b"\x11\x20" + bytes(32))
    with pytest.raises(InvalidCID, match="CIDv0 must be a sha2-256 multihash"):
        CID.from_bytes(b"\x12\x20" + bytes(31))


@pytest.mark.parametrize("value", [None, 42, b"QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"])
def test_non_string_input(value):
    with pytest.raises(InvalidCID, match="expected a string"):
        CID.parse(value)


def test_constructors_validate():
    with pytest.raises(InvalidCID, match="needs 32 bytes, not 31"):
        CID.v0(bytes(31))
    with pytest.raises(InvalidCID, match="truncated multihash"):
        CID.v1(RAW, b"\x12\x20" + bytes(3))
    with pytest.raises(InvalidCID, match="out of range"):
        CID.v1(-1, sha256_multihash(b""))
    with pytest.raises(InvalidCID, match="invalid binary CID"):
        CID.from_bytes(b"")
    with pytest.raises(InvalidCID, match="expected bytes, got str"):
        CID.from_bytes(HELLO_V0)
    with pytest.raises(InvalidCID, match="invalid CIDv1"):
        CID.v1("dag-pb", sha256_multihash(b""))
    assert CID.from_bytes(bytearray(CID.parse(HELLO_V0).to_bytes())) == CID.parse(HELLO_V0)
    with pytest.raises(InvalidCID, match="malformed CID version"):
        CID.from_bytes(b"\x80")
