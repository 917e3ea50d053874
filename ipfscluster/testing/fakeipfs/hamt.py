"""HAMT-sharded UnixFS directories, as kubo makes them for very large directories.

kubo keeps a directory as one dag-pb node until its *estimated* size (for each
link: the name's bytes plus the CID's bytes) goes over 256 KiB; then the directory
becomes a hash array mapped trie (HAMT):

- each entry name is hashed with murmur3 (x64, 128-bit, seed 0; the first 64-bit
  half, big-endian), and each level of the trie uses the next 8 bits of that hash
  (fanout 256) as the slot index;
- a slot holds one entry, or, when several names share the slot, a child shard
  that splits them on the next 8 bits;
- a shard node is dag-pb with UnixFS ``Data{Type=HAMTShard, Data=<bitfield of
  used slots, big-endian, leading zero bytes dropped>, hashType=0x22,
  fanout=256}``; its links come in slot order and are named by the slot in two
  upper-case hex digits, followed by the entry name for entries (a bare prefix
  names a child shard).

Why our own murmur3: it is ~30 lines, and keeps the fake free of a compiled
dependency; its answers are checked against the ``mmh3`` package's in the tests.
"""

from __future__ import annotations

import struct

from ipfscluster.errors import InvalidInput
from ipfscluster.testing.fakeipfs.unixfs import PBLink, encode_pbnode, encode_unixfs

__all__ = [
    "FANOUT",
    "HASH_MURMUR3",
    "SHARDING_THRESHOLD",
    "murmur3_64",
    "name_hash",
    "estimated_size",
    "needs_sharding",
    "build_shard",
    "shard_slot_names",
]

FANOUT = 256
HASH_MURMUR3 = 0x22
SHARDING_THRESHOLD = 262144  # kubo's Import.UnixFSHAMTDirectorySizeThreshold
TYPE_HAMT_SHARD = 5

_MASK = (1 << 64) - 1
_C1 = 0x87C37B91114253D5
_C2 = 0x4CF5AD432745937F


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _MASK


def _fmix(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & _MASK
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & _MASK
    return k ^ (k >> 33)


def murmur3_64(data: bytes) -> int:
    """The first 64-bit half of MurmurHash3 x64 128 (seed 0) of ``data``."""
    length = len(data)
    h1 = h2 = 0
    full = length - length % 16
    for k1, k2 in struct.iter_unpack("<QQ", data[:full]):
        k1 = _rotl((k1 * _C1) & _MASK, 31) * _C2 & _MASK
        h1 = (_rotl(h1 ^ k1, 27) + h2) & _MASK
        h1 = (h1 * 5 + 0x52DCE729) & _MASK
        k2 = _rotl((k2 * _C2) & _MASK, 33) * _C1 & _MASK
        h2 = (_rotl(h2 ^ k2, 31) + h1) & _MASK
        h2 = (h2 * 5 + 0x38495AB5) & _MASK
    tail = data[full:]
    if len(tail) > 8:
        k2 = int.from_bytes(tail[8:], "little")
        h2 ^= _rotl((k2 * _C2) & _MASK, 33) * _C1 & _MASK
    if tail:
        k1 = int.from_bytes(tail[:8], "little")
        h1 ^= _rotl((k1 * _C1) & _MASK, 31) * _C2 & _MASK
    h1 ^= length
    h2 ^= length
    h1 = (h1 + h2) & _MASK
    h2 = (h2 + h1) & _MASK
    h1, h2 = _fmix(h1), _fmix(h2)
    return (h1 + h2) & _MASK


def name_hash(name: str) -> bytes:
    """The 8 hash bytes whose successive bytes pick an entry's slot at each level."""
    return murmur3_64(name.encode("utf-8")).to_bytes(8, "big")


def estimated_size(entries) -> int:
    """kubo's size estimate of a directory: name bytes plus CID bytes per link."""
    return sum(len(name.encode("utf-8")) + len(child.cid.to_bytes()) for name, child in entries)


def needs_sharding(entries, threshold: int = SHARDING_THRESHOLD) -> bool:
    """True when kubo would make these ``(name, Imported)`` entries a HAMT."""
    return estimated_size(entries) > threshold


class _Shard:
    def __init__(self, level: int):
        self.level = level
        self.slots: dict = {}  # slot -> (name, child, hash) or _Shard

    def insert(self, name: str, child, digest: bytes) -> None:
        if self.level >= len(digest):
            raise InvalidInput("sharded directory too deep")
        slot = digest[self.level]
        held = self.slots.get(slot)
        if held is None:
            self.slots[slot] = (name, child, digest)
        elif isinstance(held, _Shard):
            held.insert(name, child, digest)
        else:
            deeper = _Shard(self.level + 1)
            deeper.insert(*held)
            deeper.insert(name, child, digest)
            self.slots[slot] = deeper

    def store(self, store_pb):
        links = []
        bitfield = 0
        for slot in sorted(self.slots):
            bitfield |= 1 << slot
            held = self.slots[slot]
            if isinstance(held, _Shard):
                sub = held.store(store_pb)
                links.append(PBLink(sub.cid, f"{slot:02X}", sub.size))
            else:
                name, child, _ = held
                links.append(PBLink(child.cid, f"{slot:02X}{name}", child.size))
        data = encode_unixfs(
            TYPE_HAMT_SHARD,
            bitfield.to_bytes((bitfield.bit_length() + 7) // 8, "big"),
            hash_type=HASH_MURMUR3,
            fanout=FANOUT,
        )
        return store_pb(encode_pbnode(links, data), sum(link.tsize for link in links), 0)


def build_shard(entries, store_pb):
    """Build the HAMT of ``(name, Imported)`` entries; ``store_pb(block, links_size,
    filesize)`` stores a node and returns it.  Returns the root shard.  Raises
    InvalidInput when names collide on all 64 hash bits."""
    root = _Shard(0)
    for name, child in entries:
        root.insert(name, child, name_hash(name))
    return root.store(store_pb)


def shard_slot_names(name: str):
    """The link-name prefixes to follow, level by level, to find ``name``."""
    return [f"{b:02X}" for b in name_hash(name)]
