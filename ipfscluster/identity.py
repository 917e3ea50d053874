"""Peer identity: Ed25519 key pairs and libp2p peer IDs.

Every peer owns an Ed25519 key.  Its **peer ID** follows the libp2p rules
(``peer-ids/peer-ids.md`` of the libp2p specs):

1. the public key is encoded as the protobuf ``PublicKey{Type = Ed25519 (1),
   Data = 32 raw bytes}``, i.e. ``08 01 12 20`` + key (36 bytes);
2. an encoding of at most 42 bytes is wrapped in an *identity* multihash
   (``00 24`` + the 36 bytes), longer ones (RSA, ECDSA keys) are sha2-256 hashed;
3. the multihash is written in base58btc, which for Ed25519 always gives
   ``12D3KooW…``.

``service.json`` stores the private key as the standard base64 of the protobuf
``PrivateKey{Type = Ed25519, Data = seed (32) || public key (32)}``, the same form
go-libp2p and ipfs-cluster write.  Only Ed25519 keys are supported: RSA, secp256k1 and
ECDSA keys are rejected with :class:`~ipfscluster.errors.InvalidKey` saying so.

The two protobuf messages have just two fields, so they are encoded and decoded here
directly rather than through a protobuf library; the cryptography is the
``cryptography`` package's Ed25519.

Peer IDs in text: :func:`validate_peer_id` accepts the base58btc multihash forms
(``12D3KooW…`` identity, ``Qm…`` sha2-256 legacy) and the CIDv1 ``libp2p-key`` forms
(``bafz…``, ``k51…``) and always returns the base58btc text, which is the canonical
form used everywhere in this project.

Error messages never contain private key material.
"""

from __future__ import annotations

import base64
import binascii
import functools

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from ipfscluster.cid import CID, IDENTITY, LIBP2P_KEY, SHA2_256, codec_name, decode_multihash
from ipfscluster.encoding import b58decode, b58encode, varint_decode
from ipfscluster.errors import IdentityMismatch, InvalidCID, InvalidKey, InvalidPeerID

__all__ = [
    "Identity",
    "KEY_TYPES",
    "load_identity",
    "peer_id_from_public_key",
    "public_key_from_peer_id",
    "validate_peer_id",
    "peer_id_to_bytes",
    "peer_id_from_bytes",
    "peer_id_to_cid",
    "verify_signature",
]

#: libp2p ``KeyType`` enum values -> names
KEY_TYPES = {0: "RSA", 1: "Ed25519", 2: "Secp256k1", 3: "ECDSA"}
_ED25519 = 1
_PUBKEY_PREFIX = b"\x08\x01\x12\x20"  # Type=Ed25519, Data = 32 bytes
_PRIVKEY_PREFIX = b"\x08\x01\x12\x40"  # Type=Ed25519, Data = 64 bytes
# identity multihash header for a 36-byte Ed25519 public-key protobuf
_ED25519_ID_PREFIX = b"\x00\x24" + _PUBKEY_PREFIX
_MAX_INLINE_KEY = 42  # keys encoding to at most 42 bytes use an identity multihash
# Longest peer ID text accepted (base58 decoding is quadratic in the length); real
# ones have 46-53 characters, or ~90 as a base16 CID.
_MAX_PEER_ID_TEXT = 256


def _decode_key_protobuf(data: bytes) -> tuple[int, bytes]:
    """Decode a libp2p ``PublicKey``/``PrivateKey`` protobuf into (type, data).

    Raises ValueError describing what is malformed.
    """
    key_type = None
    key_data = None
    pos = 0
    while pos < len(data):
        tag, pos = varint_decode(data, pos)
        field, wire = tag >> 3, tag & 7
        if field == 1 and wire == 0:
            key_type, pos = varint_decode(data, pos)
        elif field == 2 and wire == 2:
            length, pos = varint_decode(data, pos)
            if pos + length > len(data):
                raise ValueError("the key data is truncated")
            key_data = data[pos : pos + length]
            pos += length
        else:
            raise ValueError(f"unexpected protobuf field {field} (wire type {wire})")
    if key_type is None or key_data is None:
        raise ValueError("the Type or Data field is missing")
    return key_type, key_data


def _key_type_name(key_type: int) -> str:
    return KEY_TYPES.get(key_type, f"unknown type {key_type}")


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def peer_id_from_public_key(raw32: bytes) -> str:
    """Return the libp2p peer ID (``12D3KooW…``) of a raw 32-byte Ed25519 public key.

    Raises InvalidKey if ``raw32`` is not 32 bytes.
    """
    if len(raw32) != 32:
        raise InvalidKey(f"an Ed25519 public key has 32 bytes, not {len(raw32)}")
    return b58encode(_ED25519_ID_PREFIX + bytes(raw32))


@functools.lru_cache(maxsize=4096)
def _canonical_peer_id(text: str) -> str:
    if not text:
        raise ValueError("empty string")
    if len(text) > _MAX_PEER_ID_TEXT:
        raise ValueError(f"longer than {_MAX_PEER_ID_TEXT} characters")
    if text[0] == "1" or text.startswith("Qm"):
        mh = b58decode(text)
    else:
        try:
            cid = CID.parse(text)
        except InvalidCID as e:
            raise ValueError(
                "neither a base58btc multihash (12D3KooW…, Qm…) nor a libp2p-key CID "
                f"({e.reason})"
            ) from None
        if cid.version != 1 or cid.codec != LIBP2P_KEY:
            raise ValueError(
                "a CID must have the libp2p-key codec (0x72) to be a peer ID, not "
                f"{codec_name(cid.codec)}"
            )
        mh = cid.multihash
    return _check_peer_multihash(mh)


def _check_peer_multihash(mh: bytes) -> str:
    """Return the base58btc text of peer ID multihash ``mh``; ValueError if it is not
    an identity multihash of a key (at most 42 bytes) or a sha2-256 multihash."""
    code, digest = decode_multihash(mh)
    if code == IDENTITY:
        if not 0 < len(digest) <= _MAX_INLINE_KEY:
            raise ValueError(
                f"an identity-multihash peer ID holds 1 to 42 bytes, not {len(digest)}"
            )
        key_type, key_data = _decode_key_protobuf(digest)
        if key_type not in KEY_TYPES:
            raise ValueError(f"the embedded public key has {_key_type_name(key_type)}")
        if key_type == _ED25519 and len(key_data) != 32:
            raise ValueError(
                f"the embedded Ed25519 public key has {len(key_data)} bytes, not 32"
            )
    elif code != SHA2_256:
        raise ValueError(
            f"a peer ID is an identity or sha2-256 multihash, not hash code {hex(code)}"
        )
    return b58encode(mh)


def validate_peer_id(text: str) -> str:
    """Return the canonical base58btc text of peer ID ``text``.

    Accepts ``12D3KooW…`` (Ed25519, identity multihash), legacy ``Qm…`` (sha2-256 of
    the key) and other identity-multihash IDs, and the CIDv1 ``libp2p-key`` forms in
    any multibase (``bafz…``, ``k51…``).  Raises InvalidPeerID quoting ``text`` and
    saying what is wrong.
    """
    if not isinstance(text, str):
        raise InvalidPeerID(
            f"invalid peer ID {text!r}: expected a string, got {type(text).__name__}",
            value=text,
        )
    try:
        return _canonical_peer_id(text)
    except ValueError as e:
        raise InvalidPeerID(f'invalid peer ID "{text}": {e}', value=text) from None


def peer_id_to_bytes(peer_id: str) -> bytes:
    """Return the binary multihash of ``peer_id`` (as in ``/p2p/`` binary multiaddrs).

    Raises InvalidPeerID.
    """
    return b58decode(validate_peer_id(peer_id))


def peer_id_from_bytes(mh: bytes) -> str:
    """Return the canonical text of the peer ID whose binary multihash is ``mh``.

    Raises InvalidPeerID if ``mh`` is not a valid peer ID multihash.
    """
    mh = bytes(mh)
    try:
        return _check_peer_multihash(mh)
    except ValueError as e:
        raise InvalidPeerID(f"invalid binary peer ID {mh.hex()!r}: {e}") from None


def peer_id_to_cid(peer_id: str, base: str = "base32") -> str:
    """Return ``peer_id`` as a CIDv1 with the libp2p-key codec, in multibase ``base``
    (``bafz…`` in base32, ``k51…`` in base36).  Raises InvalidPeerID."""
    return CID.v1(LIBP2P_KEY, peer_id_to_bytes(peer_id)).encode(base)


def public_key_from_peer_id(pid: str) -> bytes:
    """Return the raw 32-byte Ed25519 public key embedded in peer ID ``pid``.

    Raises InvalidPeerID if ``pid`` is not a valid peer ID or is not an Ed25519
    identity-multihash ID (a ``Qm…`` ID only holds a hash of its key).
    """
    mh = peer_id_to_bytes(pid)
    if len(mh) != 38 or not mh.startswith(_ED25519_ID_PREFIX):
        raise InvalidPeerID(
            f'peer ID "{pid}" does not embed an Ed25519 public key '
            "(only 12D3KooW… peer IDs do)",
            value=pid,
        )
    return mh[6:]


def verify_signature(peer_id: str, data: bytes, signature: bytes) -> bool:
    """Return True if ``signature`` is the Ed25519 signature of ``data`` by the key of
    ``peer_id``; False otherwise.  Raises InvalidPeerID for a peer ID without an
    embedded Ed25519 key."""
    key = Ed25519PublicKey.from_public_bytes(public_key_from_peer_id(peer_id))
    try:
        key.verify(bytes(signature), bytes(data))
    except InvalidSignature:
        return False
    return True


def _check_peer_id(instance: Identity, attribute, value) -> None:
    expected = peer_id_from_public_key(_raw_public(instance.private_key))
    if value != expected:
        raise IdentityMismatch(_mismatch_message(value, expected), key="cluster.id", value=value)


def _mismatch_message(configured: str, actual: str) -> str:
    return (
        f"cluster.id {configured} does not match cluster.private_key (which belongs to "
        f"{actual}); fix the id or restore the matching key"
    )


@attrs.frozen
class Identity:
    """A peer's identity: its peer ID and Ed25519 private key.

    ``private_key`` is a ``cryptography`` Ed25519PrivateKey; it takes no part in
    equality or ``repr``.  Building one whose ``peer_id`` does not belong to the key
    raises IdentityMismatch.
    """

    peer_id: str = attrs.field(validator=_check_peer_id)
    private_key: Ed25519PrivateKey = attrs.field(eq=False, repr=False)

    @classmethod
    def from_private_key(cls, key: Ed25519PrivateKey) -> Identity:
        """Return the identity of ``key``."""
        return cls(peer_id_from_public_key(_raw_public(key)), key)

    @classmethod
    def generate(cls) -> Identity:
        """Return a new identity with a fresh random Ed25519 key."""
        return cls.from_private_key(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_key_b64(cls, text: str) -> Identity:
        """Return the identity of a base64 libp2p protobuf Ed25519 private key (the
        form of ``cluster.private_key``; surrounding whitespace is ignored).

        Raises InvalidKey when the text is not base64, not a key protobuf, not an
        Ed25519 key (RSA, secp256k1 and ECDSA keys are not supported), or when its
        embedded public key does not belong to its seed.
        """
        if not isinstance(text, str):
            raise InvalidKey(f"the private key must be base64 text, not {type(text).__name__}")
        text = text.strip()
        if not text:
            raise InvalidKey("the private key is empty; run init to create an identity")
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidKey(
                "the private key is not valid base64 (expected the standard base64 of "
                "a libp2p protobuf Ed25519 private key)"
            ) from None
        try:
            key_type, data = _decode_key_protobuf(raw)
        except ValueError as e:
            raise InvalidKey(
                f"the private key is not a libp2p protobuf private key: {e}"
            ) from None
        if key_type != _ED25519:
            raise InvalidKey(
                f"the private key is an {_key_type_name(key_type)} key; only Ed25519 keys "
                "are supported (create a new identity with ipfs-cluster-service init)"
            )
        return cls.from_private_key(_ed25519_from_libp2p(data))

    @property
    def private_key_b64(self) -> str:
        """The private key as the standard base64 of its libp2p protobuf encoding."""
        seed = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return base64.b64encode(_PRIVKEY_PREFIX + seed + self.public_key_bytes).decode("ascii")

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The Ed25519 public key."""
        return self.private_key.public_key()

    @property
    def public_key_bytes(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return _raw_public(self.private_key)

    def sign(self, data: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of ``data``."""
        return self.private_key.sign(bytes(data))


def _ed25519_from_libp2p(data: bytes) -> Ed25519PrivateKey:
    """Build the key from libp2p's ``seed || public`` (64 bytes), also accepting the
    legacy ``seed || public || public`` (96 bytes).  Raises InvalidKey."""
    if len(data) == 96:
        if data[32:64] != data[64:96]:
            raise InvalidKey(
                "the 96-byte legacy Ed25519 private key holds two different public keys"
            )
        data = data[:64]
    if len(data) != 64:
        raise InvalidKey(
            f"an Ed25519 private key holds 64 bytes (seed and public key), not {len(data)}"
        )
    key = Ed25519PrivateKey.from_private_bytes(data[:32])
    if _raw_public(key) != data[32:]:
        raise InvalidKey(
            "the Ed25519 private key is corrupt: its public half does not belong to its seed"
        )
    return key


def load_identity(peer_id: str, private_key_b64: str) -> Identity:
    """Return the identity of ``cluster.id``/``cluster.private_key`` after checking
    that they belong together.

    Raises InvalidPeerID (bad ``peer_id`` text), InvalidKey (bad key) or
    IdentityMismatch (``key="cluster.id"``, ``value=peer_id``) when the key belongs to
    another peer ID.
    """
    canonical = validate_peer_id(peer_id)
    identity = Identity.from_private_key_b64(private_key_b64)
    if canonical != identity.peer_id:
        raise IdentityMismatch(
            _mismatch_message(peer_id, identity.peer_id), key="cluster.id", value=peer_id
        )
    return identity
