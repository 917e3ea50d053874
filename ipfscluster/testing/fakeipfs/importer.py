"""kubo's file importer (``ipfs add``) for the fake daemon.

Why our own: no maintained Python library reproduces ``ipfs add`` (reference §16);
the algorithm is short.  kubo's defaults, reproduced here:

- fixed-size chunker, 262144 bytes per chunk (``size-<n>`` selects another size);
- balanced layout, at most 174 links per internal node.  Building it bottom-up
  (group the leaves by 174, then those nodes by 174, ... until one node remains)
  gives exactly kubo's tree: every subtree but the last is full, the last keeps its
  depth even when it holds a single child, and a single leaf is the root itself;
- leaves are dag-pb ``UnixFS{Type=File, Data=chunk, filesize}`` (Data left out for
  the empty chunk) or, with raw leaves, the bare chunk as a ``raw`` (0x55) CIDv1
  block;
- internal nodes are ``UnixFS{Type=File, filesize, blocksizes[]}`` with unnamed
  links whose ``Tsize`` is the child's cumulative size;
- CIDv0 by default; CID version 1 turns raw leaves on unless told otherwise;
- directories are UnixFS Directory nodes, links sorted by name (bytewise), or
  HAMT shards when kubo would shard them (:mod:`~ipfscluster.testing.fakeipfs.hamt`);
- the reported ``Size`` of a node is its block length plus its links' Tsizes.

Blocks are handed to ``put_block(cid, data)`` as they are made, so the caller stores
them (or, for ``only-hash``, drops them).  The importer keeps only CIDs and sizes,
never the file's content.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Iterable

import attrs

from ipfscluster.cid import CID, DAG_PB, RAW, sha256_multihash
from ipfscluster.errors import InvalidInput
from ipfscluster.testing.fakeipfs.hamt import build_shard, needs_sharding
from ipfscluster.testing.fakeipfs.unixfs import (
    TYPE_DIRECTORY,
    TYPE_FILE,
    TYPE_SYMLINK,
    PBLink,
    encode_pbnode,
    encode_unixfs,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_LINKS",
    "MAX_CHUNK_SIZE",
    "ImportOptions",
    "Imported",
    "Importer",
    "parse_chunker",
    "chunk_bytes",
]

DEFAULT_CHUNK_SIZE = 262144
DEFAULT_MAX_LINKS = 174
MAX_CHUNK_SIZE = 1048576  # kubo refuses larger chunks (its block size limit)


def parse_chunker(text: str | None) -> int:
    """Return the chunk size named by a kubo ``chunker`` option (``size-<bytes>``;
    empty or None means the default).  Raises InvalidInput for other chunkers
    (rabin, buzhash: not implemented by the fake) and for sizes kubo refuses."""
    if not text or text == "default":
        return DEFAULT_CHUNK_SIZE
    if text.startswith("size-"):
        try:
            size = int(text[5:])
        except ValueError:
            raise InvalidInput(f"bad chunker size {text[5:]!r}: not a number") from None
        if size <= 0:
            raise InvalidInput("chunker size must be greater than 0")
        if size > MAX_CHUNK_SIZE:
            raise InvalidInput(
                f"chunker parameters may not exceed the maximum chunk size of {MAX_CHUNK_SIZE}"
            )
        return size
    raise InvalidInput(
        f"unrecognized chunker option: {text} (the fake daemon supports size-<bytes> only)"
    )


def chunk_bytes(data: bytes, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterable[bytes]:
    """Yield ``data`` in ``chunk_size`` pieces (memoryview slices, no copies)."""
    view = memoryview(data)
    for start in range(0, len(data), chunk_size):
        yield view[start : start + chunk_size]


@attrs.frozen
class ImportOptions:
    """How to import: CID version, raw leaves (None = kubo's default for the CID
    version: raw for v1, UnixFS leaves for v0), chunk size and links per node."""

    cid_version: int = attrs.field(default=0)
    raw_leaves: bool | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    max_links: int = DEFAULT_MAX_LINKS

    @cid_version.validator
    def _check_version(self, attribute, value):
        if value not in (0, 1):
            raise InvalidInput(f"unknown CID version: {value}")

    @property
    def leaves_are_raw(self) -> bool:
        """Whether leaves are raw blocks (kubo's default follows the CID version)."""
        if self.raw_leaves is None:
            return self.cid_version == 1
        return self.raw_leaves


@attrs.frozen
class Imported:
    """A node the importer made: its CID, the cumulative size of its DAG (``Size``
    as kubo reports it) and, for file nodes, the number of content bytes."""

    cid: CID
    size: int
    filesize: int = 0


class Importer:
    """Turn bytes and directory listings into UnixFS DAGs, kubo style.

    ``put_block(cid, data)`` receives every block made (default: drop them).
    """

    def __init__(
        self,
        options: ImportOptions = ImportOptions(),
        put_block: Callable[[CID, bytes], None] | None = None,
    ):
        self.options = options
        self._put = put_block or (lambda cid, data: None)

    def _pb_cid(self, block: bytes) -> CID:
        if self.options.cid_version == 0:
            return CID.v0(hashlib.sha256(block).digest())
        return CID.v1(DAG_PB, sha256_multihash(block))

    def _store_pb(self, block: bytes, links_size: int, filesize: int) -> Imported:
        cid = self._pb_cid(block)
        self._put(cid, block)
        return Imported(cid, len(block) + links_size, filesize)

    def leaf(self, chunk) -> Imported:
        """Store one chunk as a leaf and return it."""
        chunk = bytes(chunk)
        if self.options.leaves_are_raw:
            cid = CID.v1(RAW, sha256_multihash(chunk))
            self._put(cid, chunk)
            return Imported(cid, len(chunk), len(chunk))
        unixfs = encode_unixfs(TYPE_FILE, chunk or None, len(chunk))
        return self._store_pb(encode_pbnode((), unixfs), 0, len(chunk))

    def _internal(self, children: list[Imported]) -> Imported:
        filesize = sum(c.filesize for c in children)
        unixfs = encode_unixfs(TYPE_FILE, None, filesize, [c.filesize for c in children])
        links = [PBLink(c.cid, "", c.size) for c in children]
        return self._store_pb(
            encode_pbnode(links, unixfs), sum(c.size for c in children), filesize
        )

    def add_chunks(self, chunks: Iterable) -> Imported:
        """Import a file given as its chunks (each at most the chunk size, all but
        the last exactly the chunk size).  Returns the root."""
        level = [self.leaf(chunk) for chunk in chunks]
        if not level:
            return self.leaf(b"")
        width = self.options.max_links
        while len(level) > 1:
            level = [
                self._internal(level[i : i + width]) for i in range(0, len(level), width)
            ]
        return level[0]

    def add_bytes(self, data: bytes) -> Imported:
        """Import a whole file held in memory.  Returns the root."""
        return self.add_chunks(chunk_bytes(data, self.options.chunk_size))

    def add_directory(self, entries: Iterable[tuple[str, Imported]]) -> Imported:
        """Make a UnixFS directory of ``(name, child)`` entries.  Returns it.
        Raises InvalidInput on duplicate names."""
        entries = sorted(entries, key=lambda e: e[0].encode("utf-8"))
        names = [name for name, _ in entries]
        if len(set(names)) != len(names):
            raise InvalidInput("directory has duplicate entry names")
        if needs_sharding(entries):
            return build_shard(entries, self._store_pb)
        links = [PBLink(child.cid, name, child.size) for name, child in entries]
        block = encode_pbnode(links, encode_unixfs(TYPE_DIRECTORY))
        return self._store_pb(block, sum(child.size for _, child in entries), 0)

    def symlink(self, target: str) -> Imported:
        """Store a UnixFS symlink node pointing at ``target`` and return it."""
        block = encode_pbnode((), encode_unixfs(TYPE_SYMLINK, target.encode("utf-8")))
        return self._store_pb(block, 0, 0)
