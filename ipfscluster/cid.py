"""Content identifiers (CIDs): parse, validate, convert and print them.

A CID names a block of IPFS content.  Two versions exist:

- **CIDv0** is a bare sha2-256 multihash (``0x12 0x20`` + 32-byte digest) written in
  base58btc without a multibase prefix: always 46 characters starting ``Qm``.  Its
  codec is implicitly dag-pb.
- **CIDv1** is ``varint(1) varint(codec) multihash`` written in any multibase; the
  canonical text is base32 lowercase (``bafy…`` for dag-pb + sha2-256).

A multihash is ``varint(hash code) varint(digest length) digest``.

:class:`CID` keeps the binary form (``to_bytes()``) as its identity: equality and
hashing use it, so the pinset can store CIDs compactly as ``bytes`` and rebuild them
with :meth:`CID.from_bytes`.  Sorting follows the canonical text, as upstream lists
do.  The canonical text is computed once and cached.

The encodings come from :mod:`ipfscluster.encoding` (hand written for speed; the
measurements against ``py-cid`` and ``multiformats`` are in its docstring).

Every parsing error is :class:`ipfscluster.errors.InvalidCID` whose message quotes
the input and says what is wrong, e.g. ``invalid CID "Qmfoo": ...``.
"""

from __future__ import annotations

import hashlib

from ipfscluster.encoding import (
    b58decode,
    b58encode,
    multibase_decode,
    multibase_encode,
    varint_decode,
    varint_encode,
)
from ipfscluster.errors import InvalidCID

__all__ = [
    "CID",
    "DAG_PB",
    "RAW",
    "DAG_CBOR",
    "LIBP2P_KEY",
    "SHA2_256",
    "IDENTITY",
    "CODEC_NAMES",
    "codec_name",
    "sha256_multihash",
    "identity_multihash",
    "decode_multihash",
    "parse_cid",
    "normalize",
]

# multicodec codes
DAG_PB = 0x70
RAW = 0x55
DAG_CBOR = 0x71
LIBP2P_KEY = 0x72
SHA2_256 = 0x12
IDENTITY = 0x00

#: names of the codecs this project meets, for messages and ``repr``
CODEC_NAMES = {
    DAG_PB: "dag-pb",
    RAW: "raw",
    DAG_CBOR: "dag-cbor",
    LIBP2P_KEY: "libp2p-key",
    0x0129: "dag-json",
    0x0200: "json",
}

# Longest CID text accepted.  Base58 decoding is quadratic in the length, and no
# real CID comes near this (a sha2-512 CIDv1 in base16 is ~140 characters; inline
# identity CIDs are capped by kubo at 128 bytes of data).
MAX_CID_TEXT = 1024

_V0_PREFIX = b"\x12\x20"
_V1_DAG_PB_SHA256 = b"\x01\x70\x12\x20"


def sha256_multihash(data: bytes) -> bytes:
    """Return the sha2-256 multihash (``0x12 0x20`` + digest) of ``data``."""
    return _V0_PREFIX + hashlib.sha256(data).digest()


def identity_multihash(data: bytes) -> bytes:
    """Return the identity multihash of ``data`` (code 0x00, the data inline)."""
    return b"\x00" + varint_encode(len(data)) + data


def _read_multihash(buf: bytes, offset: int) -> tuple[int, bytes]:
    """Decode the multihash filling ``buf[offset:]`` exactly; ValueError otherwise."""
    try:
        code, pos = varint_decode(buf, offset)
        length, pos = varint_decode(buf, pos)
    except ValueError as e:
        raise ValueError(f"truncated or malformed multihash ({e})") from None
    digest = buf[pos:]
    if len(digest) != length:
        if len(digest) < length:
            raise ValueError(
                f"truncated multihash: digest has {len(digest)} bytes, "
                f"its header says {length}"
            )
        raise ValueError(
            f"wrong digest length: {len(digest)} bytes follow a header "
            f"that says {length}"
        )
    if code == SHA2_256 and length != 32:
        raise ValueError(f"wrong digest length: sha2-256 needs 32 bytes, not {length}")
    return code, digest


def decode_multihash(mh: bytes) -> tuple[int, bytes]:
    """Return ``(hash code, digest)`` of multihash ``mh``.

    Raises ValueError if ``mh`` is truncated, has trailing bytes, or its digest
    length disagrees with its header (or sha2-256 with a digest other than 32 bytes).
    """
    return _read_multihash(bytes(mh), 0)


_B32_VALUES = {c: i for i, c in enumerate("abcdefghijklmnopqrstuvwxyz234567")}


def _canonical_base32_tail(text: str, nbytes: int) -> bool:
    """True if the unused low bits of the last base32 digit are zero (so ``text`` is
    exactly what encoding the bytes gives back)."""
    unused = (5 * (len(text) - 1) - 8 * nbytes) & 7
    return not unused or not (_B32_VALUES[text[-1]] & ((1 << unused) - 1))


def codec_name(codec: int) -> str:
    """Return the name of multicodec ``codec`` (``"dag-pb"``), or its hex code."""
    return CODEC_NAMES.get(codec, hex(codec))


class CID:
    """An immutable, hashable CID.

    Attributes: ``version`` (0 or 1), ``codec`` (multicodec code; dag-pb for v0) and
    ``multihash`` (bytes).  Equal when the binary forms are equal; ordered by their
    canonical text.  Build one with :meth:`parse` (``CID(text)`` is the same),
    :meth:`from_bytes`, :meth:`v0` or :meth:`v1`.
    """

    __slots__ = ("version", "codec", "multihash", "_bin", "_str")

    version: int
    codec: int
    multihash: bytes

    def __new__(cls, text: str) -> CID:
        """``CID(text)`` is ``CID.parse(text)``."""
        return cls.parse(text)

    @classmethod
    def _make(cls, version: int, codec: int, multihash: bytes, binary: bytes) -> CID:
        # Internal: the caller has validated the parts.
        self = object.__new__(cls)
        setter = object.__setattr__
        setter(self, "version", version)
        setter(self, "codec", codec)
        setter(self, "multihash", multihash)
        setter(self, "_bin", binary)
        setter(self, "_str", None)
        return self

    def __setattr__(self, name, value):
        raise AttributeError(f"CID is immutable (cannot set {name!r})")

    __delattr__ = __setattr__

    # --- construction -----------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> CID:
        """Parse CID text: a CIDv0 (``Qm…``, 46 characters) or a CIDv1 in multibase
        base58btc (``z``), base32 (``b``/``B``), base36 (``k``/``K``) or base16
        (``f``/``F``).

        Returns the CID.  Raises InvalidCID quoting ``text`` and saying what is wrong
        (also for non-string input); the error's ``value`` is ``text`` and its
        ``reason`` the part after the quote.
        """
        if not isinstance(text, str):
            if isinstance(text, CID):
                return text
            reason = f"expected a string, got {type(text).__name__}"
            raise InvalidCID(f"invalid CID {text!r}: {reason}", value=text, reason=reason)
        n = len(text)
        try:
            if n == 46 and text[0] == "Q" and text[1] == "m":
                mh = b58decode(text)
                if len(mh) != 34 or mh[:2] != _V0_PREFIX:
                    raise ValueError("CIDv0 must be a sha2-256 multihash of 32 bytes")
                cid = cls._make(0, DAG_PB, mh, mh)
                object.__setattr__(cid, "_str", text)
                return cid
            if n == 0:
                raise ValueError("empty string")
            if n > MAX_CID_TEXT:
                raise ValueError(f"longer than {MAX_CID_TEXT} characters")
            if text[0] == "Q" and text[1:2] == "m":
                raise ValueError(f"a CIDv0 has 46 characters, this has {n}")
            data = multibase_decode(text)
            cid = cls._decode(data)
            if cid.version == 0:
                raise ValueError(
                    "a CIDv0 is written in base58btc without a multibase prefix"
                )
            if text[0] == "b" and _canonical_base32_tail(text, len(data)):
                object.__setattr__(cid, "_str", text)
            return cid
        except ValueError as e:
            shown = text if n <= 100 else text[:64] + "…"
            raise InvalidCID(f'invalid CID "{shown}": {e}', value=text, reason=str(e)) from None

    @classmethod
    def from_bytes(cls, b: bytes) -> CID:
        """Return the CID of binary form ``b`` (a bare sha2-256 multihash for v0;
        ``varint(1) varint(codec) multihash`` for v1).

        Raises InvalidCID describing what is wrong.
        """
        if not isinstance(b, (bytes, bytearray, memoryview)):
            raise InvalidCID(f"invalid binary CID {b!r}: expected bytes, got {type(b).__name__}")
        b = bytes(b)
        try:
            return cls._decode(b)
        except ValueError as e:
            raise InvalidCID(f"invalid binary CID {b.hex()!r}: {e}") from None

    @classmethod
    def _decode(cls, b: bytes) -> CID:
        if len(b) == 34 and b[0] == 0x12 and b[1] == 0x20:
            return cls._make(0, DAG_PB, b, b)
        if b[:4] == _V1_DAG_PB_SHA256 and len(b) == 36:  # the common case, fast
            return cls._make(1, DAG_PB, b[2:], b)
        if not b:
            raise ValueError("no bytes")
        try:
            version, pos = varint_decode(b, 0)
        except ValueError as e:
            raise ValueError(f"malformed CID version ({e})") from None
        if version != 1:
            if version == 0x12:
                raise ValueError(
                    "CIDv0 must be a sha2-256 multihash of 32 bytes "
                    f"({len(b) - 2} bytes follow the multihash header)"
                )
            if version == 0:
                raise ValueError("a CIDv0 is a bare multihash, without version byte")
            raise ValueError(f"unsupported CID version {version}")
        try:
            codec, pos = varint_decode(b, pos)
        except ValueError as e:
            raise ValueError(f"truncated or malformed codec ({e})") from None
        _read_multihash(b, pos)
        return cls._make(1, codec, b[pos:], b)

    @classmethod
    def v0(cls, sha256_digest: bytes) -> CID:
        """Return the CIDv0 of a 32-byte sha2-256 digest.  Raises InvalidCID if the
        digest is not 32 bytes."""
        if len(sha256_digest) != 32:
            raise InvalidCID(
                f"invalid CIDv0 digest: sha2-256 needs 32 bytes, not {len(sha256_digest)}"
            )
        mh = _V0_PREFIX + bytes(sha256_digest)
        return cls._make(0, DAG_PB, mh, mh)

    @classmethod
    def v1(cls, codec: int, multihash: bytes) -> CID:
        """Return the CIDv1 of ``codec`` (a multicodec code) and ``multihash``.

        Raises InvalidCID if the codec is negative or the multihash is malformed.
        """
        try:
            multihash = bytes(multihash)
            prefix = b"\x01" + varint_encode(codec)
            _read_multihash(multihash, 0)
        except (ValueError, TypeError) as e:
            raise InvalidCID(f"invalid CIDv1 (codec {codec!r}): {e}") from None
        return cls._make(1, codec, multihash, prefix + multihash)

    # --- conversion -------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Return the binary form: the bare multihash for v0, else
        ``varint(1) varint(codec) multihash``."""
        return self._bin

    def __bytes__(self) -> bytes:
        return self._bin

    def to_v1(self) -> CID:
        """Return this CID as CIDv1 (same codec and multihash); a v1 returns itself."""
        if self.version == 1:
            return self
        return CID._make(1, DAG_PB, self.multihash, b"\x01\x70" + self.multihash)

    def encode(self, base: str = "base32") -> str:
        """Return the text of this CID in multibase ``base`` (see
        :func:`ipfscluster.encoding.multibase_encode` for the names).

        A CIDv0 only has a base58btc form (the ``Qm…`` text); asking it for another
        base raises ValueError (convert with :meth:`to_v1` first).
        """
        if self.version == 0:
            if base != "base58btc":
                raise ValueError(
                    f"a CIDv0 can only be written in base58btc, not {base}; "
                    "use to_v1() first"
                )
            return str(self)
        if base == "base32":
            return str(self)
        return multibase_encode(self._bin, base)

    def __str__(self) -> str:
        s = self._str
        if s is None:
            if self.version == 0:
                s = b58encode(self._bin)
            else:
                s = multibase_encode(self._bin, "base32")
            object.__setattr__(self, "_str", s)
        return s

    def __repr__(self) -> str:
        return f"CID({str(self)!r})"

    # --- identity ---------------------------------------------------------------

    def __eq__(self, other):
        if isinstance(other, CID):
            return self._bin == other._bin
        return NotImplemented

    def __ne__(self, other):
        if isinstance(other, CID):
            return self._bin != other._bin
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._bin)

    def __lt__(self, other):
        if isinstance(other, CID):
            return str(self) < str(other)
        return NotImplemented

    def __le__(self, other):
        if isinstance(other, CID):
            return str(self) <= str(other)
        return NotImplemented

    def __gt__(self, other):
        if isinstance(other, CID):
            return str(self) > str(other)
        return NotImplemented

    def __ge__(self, other):
        if isinstance(other, CID):
            return str(self) >= str(other)
        return NotImplemented

    def __reduce__(self):
        # a module-level function: twisted.persisted.styles (imported by many Twisted
        # modules) replaces method pickling in a way that breaks for classmethods
        return (_cid_from_bytes, (self._bin,))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


def _cid_from_bytes(b: bytes) -> CID:
    return CID.from_bytes(b)


def parse_cid(text: str) -> CID:
    """Return ``CID.parse(text)``; raises InvalidCID."""
    return CID.parse(text)


def normalize(text: str) -> str:
    """Return the canonical text of CID ``text`` (v0: ``Qm…``; v1: base32 ``b…``).

    The CID version is kept (a CIDv0 stays v0).  Raises InvalidCID.
    """
    return str(CID.parse(text))
