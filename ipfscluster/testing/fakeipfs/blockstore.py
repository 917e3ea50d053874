"""The in-memory blockstore of one fake daemon.

Blocks are keyed by multihash, as kubo's blockstore is: a CIDv0 and the CIDv1 of
the same dag-pb block name one stored block.  The store also counts the bytes it
holds, which ``repo/stat`` reports as ``RepoSize``, and calls ``on_put(multihash)``
for every new block so the network can wake daemons waiting for it.
"""

from __future__ import annotations

from typing import Callable

from ipfscluster.cid import CID

__all__ = ["Blockstore"]


class Blockstore:
    """Blocks in memory, keyed by multihash."""

    def __init__(self, on_put: Callable[[bytes], None] | None = None):
        self._blocks: dict[bytes, bytes] = {}
        self._size = 0
        self.on_put = on_put

    def put(self, cid: CID, data: bytes) -> bool:
        """Store ``data`` as the block ``cid``.  Returns True when it was new."""
        key = cid.multihash
        if key in self._blocks:
            return False
        data = bytes(data)
        self._blocks[key] = data
        self._size += len(data)
        if self.on_put is not None:
            self.on_put(key)
        return True

    def get(self, cid: CID) -> bytes | None:
        """Return the block's bytes, or None when it is not here."""
        return self._blocks.get(cid.multihash)

    def get_by_multihash(self, multihash: bytes) -> bytes | None:
        """Return the bytes of the block with this multihash, or None."""
        return self._blocks.get(multihash)

    def has(self, cid: CID) -> bool:
        """Return True when the block is here."""
        return cid.multihash in self._blocks

    def delete(self, cid: CID) -> bool:
        """Remove the block.  Returns True when it was here."""
        return self.delete_multihash(cid.multihash)

    def multihashes(self) -> list[bytes]:
        """The multihashes of the stored blocks."""
        return list(self._blocks)

    def delete_multihash(self, multihash: bytes) -> bool:
        """Remove the block with this multihash.  Returns True when it was here."""
        data = self._blocks.pop(multihash, None)
        if data is None:
            return False
        self._size -= len(data)
        return True

    @property
    def size(self) -> int:
        """Total bytes of the stored blocks."""
        return self._size

    def __len__(self) -> int:
        return len(self._blocks)
