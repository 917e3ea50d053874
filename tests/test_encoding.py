"""Tests of ipfscluster.encoding: varints, base58btc, base36 and multibase."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipfscluster.encoding import (
    MULTIBASE_PREFIXES,
    b36decode,
    b36encode,
    b58decode,
    b58encode,
    multibase_decode,
    multibase_encode,
    varint_decode,
    varint_encode,
)

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _naive_positional(data: bytes, alphabet: str) -> str:
    """Reference encoder: one digit at a time, leading zero bytes as alphabet[0]."""
    n = int.from_bytes(data, "big")
    digits = ""
    while n:
        n, r = divmod(n, len(alphabet))
        digits = alphabet[r] + digits
    zeros = len(data) - len(data.lstrip(b"\0"))
    return alphabet[0] * zeros + digits


# --- varint ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, encoded",
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (255, b"\xff\x01"),
        (300, b"\xac\x02"),
        (16384, b"\x80\x80\x01"),
        (0x01A5, b"\xa5\x03"),  # the p2p multiaddr code
        ((1 << 63) - 1, b"\xff" * 8 + b"\x7f"),
    ],
)
def test_varint_known_values(value, encoded):
    assert varint_encode(value) == encoded
    assert varint_decode(encoded) == (value, len(encoded))


@settings(deadline=None)  # shared, loaded CI machines
@given(st.integers(min_value=0, max_value=(1 << 63) - 1), st.binary(max_size=4))
def test_varint_round_trip_with_offset_and_trailing_bytes(value, tail):
    buf = b"\xaa" + varint_encode(value) + tail
    decoded, end = varint_decode(buf, 1)
    assert decoded == value
    assert buf[end:] == tail


@pytest.mark.parametrize("value", [-1, 1 << 63])
def test_varint_encode_out_of_range(value):
    with pytest.raises(ValueError, match="out of range"):
        varint_encode(value)


@pytest.mark.parametrize(
    "buf, message",
    [
        (b"", "truncated"),
        (b"\x80", "truncated"),
        (b"\xff\xff", "truncated"),
        (b"\x80\x00", "not minimally encoded"),
        (b"\xff" * 9 + b"\x01", "longer than 9 bytes"),
    ],
)
def test_varint_decode_rejects(buf, message):
    with pytest.raises(ValueError, match=message):
        varint_decode(buf)


def test_varint_decode_offset_past_end():
    with pytest.raises(ValueError, match="truncated"):
        varint_decode(b"\x01", 1)


# --- base58btc / base36 ------------------------------------------------------------


@pytest.mark.parametrize(
    "data, text",
    [
        (b"", ""),
        (b"\0", "1"),
        (b"\0\0\x01", "112"),
        (b"hello world", "StV1DL6CwTryKyV"),
        (b"yes mani !", "7paNL19xttacUY"),  # multiformats/multibase spec test vector
    ],
)
def test_b58_known_values(data, text):
    assert b58encode(data) == text
    assert b58decode(text) == data


@settings(deadline=None)  # shared, loaded CI machines
@given(st.binary(max_size=80))
def test_b58_matches_naive_and_round_trips(data):
    text = b58encode(data)
    assert text == _naive_positional(data, B58)
    assert b58decode(text) == data


@pytest.mark.parametrize("text, bad", [("0abc", "'0'"), ("abcO", "'O'"), ("Il", "'I'"), ("é", "'é'")])
def test_b58decode_names_bad_character(text, bad):
    with pytest.raises(ValueError, match=f"invalid base58btc character {bad}"):
        b58decode(text)


@settings(deadline=None)  # shared, loaded CI machines
@given(st.binary(max_size=80))
def test_b36_matches_naive_and_round_trips(data):
    text = b36encode(data)
    assert text == _naive_positional(data, B36)
    assert b36decode(text) == data
    assert b36decode(text.upper()) == data


@pytest.mark.parametrize("text", ["ab_c", "a b", "-1", "+1", "é1", "٣"])
def test_b36decode_rejects_what_int_would_accept(text):
    with pytest.raises(ValueError, match="invalid base36 character"):
        b36decode(text)


# --- multibase ---------------------------------------------------------------------

# multiformats/multibase spec test vectors for "yes mani !" (tests/test1.csv)
YES_MANI = b"yes mani !"


@pytest.mark.parametrize(
    "base, text",
    [
        ("base58btc", "z7paNL19xttacUY"),
        ("base32", "bpfsxgidnmfxgsibb"),
        ("base32upper", "BPFSXGIDNMFXGSIBB"),
        ("base36", "k2lcpzo5yikidynfl"),
        ("base36upper", "K2LCPZO5YIKIDYNFL"),
        ("base16", "f796573206d616e692021"),
        ("base16upper", "F796573206D616E692021"),
    ],
)
def test_multibase_spec_vectors(base, text):
    assert multibase_encode(YES_MANI, base) == text
    assert multibase_decode(text) == YES_MANI


def test_multibase_base36_leading_zero_vector():
    # spec vector: "\x00yes mani !" -> "k02lcpzo5yikidynfl"
    assert multibase_encode(b"\0" + YES_MANI, "base36") == "k02lcpzo5yikidynfl"
    assert multibase_decode("k02lcpzo5yikidynfl") == b"\0" + YES_MANI


@settings(deadline=None)  # shared, loaded CI machines
@given(st.binary(max_size=80), st.sampled_from(sorted(MULTIBASE_PREFIXES)))
def test_multibase_round_trip(data, base):
    text = multibase_encode(data, base)
    assert text[0] == MULTIBASE_PREFIXES[base]
    assert multibase_decode(text) == data


@settings(deadline=None)  # shared, loaded CI machines
@given(st.binary(max_size=80))
def test_base32_agrees_with_stdlib(data):
    expected = base64.b32encode(data).decode().rstrip("=").lower()
    assert multibase_encode(data, "base32") == "b" + expected
    assert multibase_decode("B" + expected.upper()) == data


def test_multibase_encode_unknown_base():
    with pytest.raises(ValueError, match="unsupported multibase 'base64'"):
        multibase_encode(b"x", "base64")


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty multibase text"),
        ("mAAAA", "unknown multibase prefix 'm'"),
        ("Qm", "unknown multibase prefix 'Q'"),
        ("bAA", "uppercase character in base32 text"),
        ("Baa", "lowercase character in base32upper text"),
        ("ba", "impossible base32 length 1"),
        ("baa1a", "invalid base32 character '1'"),
        ("baaaaaaa=", "padding '=' is not allowed"),
        ("kAB", "uppercase character in base36 text"),
        ("k-1", "invalid base36 character '-'"),
        ("fabc", "odd number of base16 digits"),
        ("fzz", "invalid base16 character"),
        ("FAb", "lowercase character in base16upper text"),
        ("z0", "invalid base58btc character '0'"),
    ],
)
def test_multibase_decode_rejects(text, message):
    with pytest.raises(ValueError, match=message):
        multibase_decode(text)
