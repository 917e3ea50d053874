"""Tests of ipfscluster.identity: Ed25519 keys, libp2p peer IDs, config identity."""

from __future__ import annotations

import base64

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ipfscluster.cid import CID, LIBP2P_KEY, RAW, sha256_multihash
from ipfscluster.encoding import b58decode, b58encode
from ipfscluster.errors import IdentityMismatch, InvalidKey, InvalidPeerID
from ipfscluster.identity import (
    Identity,
    load_identity,
    peer_id_from_bytes,
    peer_id_from_public_key,
    peer_id_to_bytes,
    peer_id_to_cid,
    public_key_from_peer_id,
    validate_peer_id,
    verify_signature,
)

# --- published test vectors --------------------------------------------------------
# libp2p specs, peer-ids/peer-ids.md, section "Test vectors" (hex of the protobuf
# encodings; "the provided public key belongs to the private key"):
SPEC_ED25519_PRIVATE = bytes.fromhex(
    "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d"
    "1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
)
SPEC_ED25519_PUBLIC = bytes.fromhex(
    "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
)
SPEC_SECP256K1_PRIVATE = bytes.fromhex(
    "0802122053DADF1D5A164D6B4ACDB15E24AA4C5B1D3461BDBD42ABEDB0A4404D56CED8FB"
)
SPEC_ECDSA_PRIVATE_HEAD = bytes.fromhex("08031279")  # Type=ECDSA, 121 bytes of data follow
# libp2p specs, tls/tls.md, "Test vectors" 1: the certificate's libp2p extension holds
# the public key protobuf 08011220a77f…11b9 and the spec names its peer ID:
TLS_SPEC_PUBLIC = bytes.fromhex("a77f1d92fedb59dddaea5a1c4abd1ac2fbde7d7b879ed364501809923d7c11b9")
TLS_SPEC_PEER_ID = "12D3KooWM6CgA9iBFZmcYAHA6A2qvbAxqfkmrYiRQuz3XEsk4Ksv"
# tls/tls.md vectors 2 and 3: an ECDSA (sha2-256) and a secp256k1 (identity) peer ID
TLS_SPEC_ECDSA_PEER_ID = "QmfXbAwNjJLXfesgztEHe8HwgVDCMMpZ9Eax1HYq6hn9uE"
TLS_SPEC_SECP256K1_PEER_ID = "16Uiu2HAkutTMoTzDw1tCvSRtu6YoixJwS46S1ZFxW8hSx9fWHiPs"
# peer-ids/peer-ids.md, "String representation" examples: one sha2-256 peer ID in
# both forms, and an Ed25519 one
SPEC_SHA256_CID = "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe"
SPEC_SHA256_B58 = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
SPEC_ED25519_PEER_ID = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_tls_spec_vector_public_key_to_peer_id():
    assert peer_id_from_public_key(TLS_SPEC_PUBLIC) == TLS_SPEC_PEER_ID
    assert public_key_from_peer_id(TLS_SPEC_PEER_ID) == TLS_SPEC_PUBLIC
    # the multihash is identity(0x00), 36 bytes, of the public key protobuf
    assert b58decode(TLS_SPEC_PEER_ID) == b"\x00\x24\x08\x01\x12\x20" + TLS_SPEC_PUBLIC


def test_spec_private_key_vector_gives_the_spec_public_key():
    identity = Identity.from_private_key_b64(_b64(SPEC_ED25519_PRIVATE))
    assert b"\x08\x01\x12\x20" + identity.public_key_bytes == SPEC_ED25519_PUBLIC
    assert identity.peer_id == b58encode(b"\x00\x24" + SPEC_ED25519_PUBLIC)
    assert identity.peer_id.startswith("12D3KooW")
    # written back byte for byte
    assert base64.b64decode(identity.private_key_b64) == SPEC_ED25519_PRIVATE


def test_spec_string_representation_examples():
    assert validate_peer_id(SPEC_SHA256_CID) == SPEC_SHA256_B58
    assert validate_peer_id(SPEC_SHA256_B58) == SPEC_SHA256_B58
    assert peer_id_to_cid(SPEC_SHA256_B58) == SPEC_SHA256_CID
    assert validate_peer_id(SPEC_ED25519_PEER_ID) == SPEC_ED25519_PEER_ID
    assert validate_peer_id(TLS_SPEC_ECDSA_PEER_ID) == TLS_SPEC_ECDSA_PEER_ID
    assert validate_peer_id(TLS_SPEC_SECP256K1_PEER_ID) == TLS_SPEC_SECP256K1_PEER_ID


def test_libp2p_key_cid_forms_of_an_ed25519_peer_id():
    b32 = peer_id_to_cid(TLS_SPEC_PEER_ID)
    b36 = peer_id_to_cid(TLS_SPEC_PEER_ID, "base36")
    assert b32.startswith("bafz") and b36.startswith("k51")
    assert CID.parse(b36) == CID.v1(LIBP2P_KEY, b58decode(TLS_SPEC_PEER_ID))
    assert validate_peer_id(b32) == TLS_SPEC_PEER_ID
    assert validate_peer_id(b36) == TLS_SPEC_PEER_ID
    assert validate_peer_id(b36.upper()) == TLS_SPEC_PEER_ID


# --- keys --------------------------------------------------------------------------


def test_legacy_96_byte_private_key_is_accepted():
    seed_pub = SPEC_ED25519_PRIVATE[4:]
    legacy = b"\x08\x01\x12\x60" + seed_pub + seed_pub[32:]
    identity = Identity.from_private_key_b64(_b64(legacy))
    assert identity.peer_id == Identity.from_private_key_b64(_b64(SPEC_ED25519_PRIVATE)).peer_id
    # and re-encoded in the preferred 64-byte form
    assert base64.b64decode(identity.private_key_b64) == SPEC_ED25519_PRIVATE


def test_fields_in_either_order_and_surrounding_whitespace():
    data = SPEC_ED25519_PRIVATE[2:]  # 12 40 <64 bytes>
    swapped = data + b"\x08\x01"
    identity = Identity.from_private_key_b64("  " + _b64(swapped) + "\n")
    assert base64.b64decode(identity.private_key_b64) == SPEC_ED25519_PRIVATE


@pytest.mark.parametrize(
    "raw, message",
    [
        (SPEC_SECP256K1_PRIVATE, "is an Secp256k1 key; only Ed25519 keys are supported"),
        (SPEC_ECDSA_PRIVATE_HEAD + bytes(121), "is an ECDSA key; only Ed25519 keys are supported"),
        (b"\x08\x00\x12\x03abc", "is an RSA key; only Ed25519 keys are supported"),
        (b"\x08\x07\x12\x03abc", "is an unknown type 7 key"),
        (b"\x08\x01", "the Type or Data field is missing"),
        (b"\x08\x01\x12\x40abc", "the key data is truncated"),
        (b"\x18\x01", "unexpected protobuf field 3"),
        (b"\x08", "truncated varint"),
        (b"\x08\x01\x12\x20" + bytes(32), "holds 64 bytes (seed and public key), not 32"),
        (SPEC_ED25519_PRIVATE[:-1] + b"\x00", "its public half does not belong to its seed"),
        (
            b"\x08\x01\x12\x60" + SPEC_ED25519_PRIVATE[4:] + bytes(32),
            "holds two different public keys",
        ),
    ],
)
def test_bad_private_keys_are_rejected_clearly(raw, message):
    with pytest.raises(InvalidKey) as info:
        Identity.from_private_key_b64(_b64(raw))
    assert message in str(info.value)
    assert _b64(raw) not in str(info.value)  # never echo key material


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "the private key is empty"),
        ("   ", "the private key is empty"),
        ("not base64!", "not valid base64"),
        ("CAESQA", "not valid base64"),  # missing padding
        (b"CAES", "must be base64 text, not bytes"),
    ],
)
def test_bad_base64(text, message):
    with pytest.raises(InvalidKey, match=message):
        Identity.from_private_key_b64(text)


def test_sign_and_verify():
    identity = Identity.from_private_key_b64(_b64(SPEC_ED25519_PRIVATE))
    signature = identity.sign(b"message")
    assert len(signature) == 64
    identity.public_key.verify(signature, b"message")  # raises if wrong
    assert verify_signature(identity.peer_id, b"message", signature)
    assert not verify_signature(identity.peer_id, b"other", signature)
    assert not verify_signature(Identity.generate().peer_id, b"message", signature)


def test_identity_value_semantics():
    key = Ed25519PrivateKey.from_private_bytes(SPEC_ED25519_PRIVATE[4:36])
    a = Identity.from_private_key(key)
    b = Identity.from_private_key_b64(_b64(SPEC_ED25519_PRIVATE))
    assert a == b and hash(a) == hash(b)
    assert "private" not in repr(a) and a.peer_id in repr(a)
    assert a != Identity.generate()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        a.peer_id = "x"


def test_constructing_a_mismatched_identity_fails():
    other = Identity.generate()
    with pytest.raises(IdentityMismatch, match="does not match cluster.private_key"):
        Identity(other.peer_id, Ed25519PrivateKey.generate())


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_generated_keys_round_trip_through_base64(seed):
    original = Identity.from_private_key(Ed25519PrivateKey.from_private_bytes(seed))
    loaded = load_identity(original.peer_id, original.private_key_b64)
    assert loaded == original
    assert loaded.public_key_bytes == original.public_key_bytes
    assert public_key_from_peer_id(loaded.peer_id) == original.public_key_bytes
    assert loaded.peer_id.startswith("12D3KooW") and len(loaded.peer_id) == 52


def test_generate_gives_distinct_valid_identities():
    a, b = Identity.generate(), Identity.generate()
    assert a.peer_id != b.peer_id
    assert load_identity(a.peer_id, a.private_key_b64) == a


# --- load_identity -----------------------------------------------------------------


def test_load_identity_mismatch_names_both_ids():
    mine = Identity.from_private_key_b64(_b64(SPEC_ED25519_PRIVATE))
    with pytest.raises(IdentityMismatch) as info:
        load_identity(TLS_SPEC_PEER_ID, _b64(SPEC_ED25519_PRIVATE))
    assert str(info.value) == (
        f"cluster.id {TLS_SPEC_PEER_ID} does not match cluster.private_key "
        f"(which belongs to {mine.peer_id}); fix the id or restore the matching key"
    )
    assert info.value.key == "cluster.id"
    assert info.value.value == TLS_SPEC_PEER_ID
    assert info.value.http_status == 400


def test_load_identity_accepts_the_cid_form_of_its_id():
    mine = Identity.from_private_key_b64(_b64(SPEC_ED25519_PRIVATE))
    assert load_identity(peer_id_to_cid(mine.peer_id), mine.private_key_b64) == mine


def test_load_identity_bad_id_text():
    with pytest.raises(InvalidPeerID, match='invalid peer ID "nope"'):
        load_identity("nope", _b64(SPEC_ED25519_PRIVATE))


# --- peer ID validation ------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty string"),
        ("12D3KooW0000", "invalid base58btc character '0'"),
        (b58encode(b"\x00\x10\x08\x01"), "truncated multihash"),
        ("xyz", "neither a base58btc multihash"),
        (str(CID.v1(RAW, sha256_multihash(b"x"))), "must have the libp2p-key codec (0x72) to be a peer ID, not raw"),
        ("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o" + "1", "wrong digest length"),
        (b58encode(b"\x00\x00"), "holds 1 to 42 bytes, not 0"),
        (b58encode(b"\x00\x2b" + bytes(43)), "holds 1 to 42 bytes, not 43"),
        (b58encode(b"\x00\x05\x08\x09\x12\x01a"), "has unknown type 9"),
        (b58encode(b"\x00\x02\x1a\x00"), "unexpected protobuf field 3"),
        (b58encode(b"\x00\x06\x08\x01\x12\x02ab"), "Ed25519 public key has 2 bytes, not 32"),
        ("1" * 300, "longer than 256 characters"),
        ("b" + "a: b", "invalid base32 character ':'"),
        (str(CID.v1(LIBP2P_KEY, b"\x13\x02ab")), "not hash code 0x13"),
        # a bare base58btc multihash must start with "1" or "Qm"
        (b58encode(b"\x13\x02ab"), "neither a base58btc multihash"),
    ],
)
def test_invalid_peer_ids(text, message):
    with pytest.raises(InvalidPeerID) as info:
        validate_peer_id(text)
    assert str(info.value).startswith(f'invalid peer ID "{text}": ')
    assert message in str(info.value)


def test_non_string_peer_id():
    with pytest.raises(InvalidPeerID, match="expected a string, got NoneType"):
        validate_peer_id(None)


def test_public_key_only_from_ed25519_ids():
    with pytest.raises(InvalidPeerID, match="does not embed an Ed25519 public key"):
        public_key_from_peer_id(SPEC_SHA256_B58)
    with pytest.raises(InvalidPeerID, match="does not embed an Ed25519 public key"):
        public_key_from_peer_id(TLS_SPEC_SECP256K1_PEER_ID)
    with pytest.raises(InvalidKey, match="32 bytes, not 31"):
        peer_id_from_public_key(bytes(31))


def test_peer_id_bytes_round_trip():
    raw = peer_id_to_bytes(TLS_SPEC_PEER_ID)
    assert raw[:2] == b"\x00\x24"
    assert peer_id_from_bytes(raw) == TLS_SPEC_PEER_ID
    with pytest.raises(InvalidPeerID):
        peer_id_from_bytes(b"\x12\x20abc")
