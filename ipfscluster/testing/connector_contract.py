"""Behaviour every ``IIPFSConnector`` must show, as a reusable pytest suite.

The real kubo connector (``ipfscluster.ipfsconn``) and the in-memory fake
(:class:`ipfscluster.testing.fakeconnector.FakeIPFSConnector`) run these same tests,
which is what keeps the fake honest.  Use it by subclassing :class:`ConnectorContract`
in a test module and providing a ``connector`` fixture that returns (or yields) a
*started* connector talking to an empty-enough daemon (``tests/test_fakeconnector.py``
does it for the fake; the kubo connector's tests point the real one at the fake kubo
daemon of :mod:`ipfscluster.testing.fakeipfs`, and at a real kubo when installed).

Every test stores its own random content with ``block_put`` first, so it needs
nothing pre-loaded and works against a long-lived daemon too.  Only behaviour that
both a real kubo and the fake can show is checked here; fault injection is the
fake's own business (``tests/test_fakeconnector.py``).
"""

from __future__ import annotations

import os

import pytest
import pytest_twisted
from zope.interface.verify import verifyObject

from ipfscluster.cid import CID, RAW
from ipfscluster.errors import InvalidInput, IPFSError, NotFound
from ipfscluster.interfaces import IIPFSConnector
from ipfscluster.types import IPFSID, IPFSPinStatus, Pin, PinMode, PinOptions, RepoStat

__all__ = ["ConnectorContract"]


def _fresh() -> bytes:
    return b"connector contract " + os.urandom(16)


async def _stored(connector) -> CID:
    """Store a fresh raw block; return its CID."""
    return await connector.block_put(_fresh())


async def _listed(connector, type_filter) -> dict:
    seen = {}

    def receive(cid, status):
        seen[cid] = status

    count = await connector.pin_ls(type_filter, receive)
    assert count == len(seen)
    return seen


class ConnectorContract:
    """Mixin of tests; the subclass provides the ``connector`` fixture."""

    def test_provides_interface(self, connector):
        assert verifyObject(IIPFSConnector, connector)

    @pytest_twisted.ensureDeferred
    async def test_ready_fires(self, connector):
        assert await connector.ready() is None

    @pytest_twisted.ensureDeferred
    async def test_id(self, connector):
        ident = await connector.id()
        assert isinstance(ident, IPFSID)
        assert ident.error == ""
        assert ident.id

    @pytest_twisted.ensureDeferred
    async def test_block_put_get_roundtrip(self, connector):
        data = _fresh()
        cid = await connector.block_put(data)
        assert isinstance(cid, CID)
        assert cid.version == 1 and cid.codec == RAW
        assert await connector.block_get(cid) == data

    @pytest_twisted.ensureDeferred
    async def test_pin_recursive_then_unpin(self, connector):
        cid = await _stored(connector)
        assert await connector.pin_ls_cid(cid) is IPFSPinStatus.UNPINNED
        assert await connector.pin(Pin.new(cid)) is None
        assert await connector.pin_ls_cid(cid) is IPFSPinStatus.RECURSIVE
        assert (await _listed(connector, "recursive")).get(cid) is IPFSPinStatus.RECURSIVE
        assert await connector.unpin(cid) is None
        assert await connector.pin_ls_cid(cid) is IPFSPinStatus.UNPINNED
        assert cid not in await _listed(connector, "recursive")

    @pytest_twisted.ensureDeferred
    async def test_pin_direct(self, connector):
        cid = await _stored(connector)
        await connector.pin(Pin.new(cid, PinOptions(mode=PinMode.DIRECT)))
        assert await connector.pin_ls_cid(cid) is IPFSPinStatus.DIRECT
        assert (await _listed(connector, "direct")).get(cid) is IPFSPinStatus.DIRECT
        assert cid not in await _listed(connector, "recursive")
        assert cid in await _listed(connector, "all")
        await connector.unpin(cid)
        assert await connector.pin_ls_cid(cid) is IPFSPinStatus.UNPINNED

    @pytest_twisted.ensureDeferred
    async def test_pin_twice_and_unpin_unpinned_are_no_ops(self, connector):
        cid = await _stored(connector)
        await connector.pin(Pin.new(cid))
        await connector.pin(Pin.new(cid))
        assert await connector.pin_ls_cid(cid) is IPFSPinStatus.RECURSIVE
        await connector.unpin(cid)
        await connector.unpin(cid)
        assert await connector.pin_ls_cid(cid) is IPFSPinStatus.UNPINNED

    @pytest_twisted.ensureDeferred
    async def test_pin_ls_cid_of_unknown_cid_is_unpinned(self, connector):
        cid = CID.v1(RAW, b"\x12\x20" + os.urandom(32))
        assert await connector.pin_ls_cid(cid) is IPFSPinStatus.UNPINNED

    @pytest_twisted.ensureDeferred
    async def test_pin_update_keeps_or_drops_the_old_pin(self, connector):
        old, new, newer = [await _stored(connector) for _ in range(3)]
        await connector.pin(Pin.new(old))
        await connector.pin_update(old, new)
        assert await connector.pin_ls_cid(old) is IPFSPinStatus.RECURSIVE
        assert await connector.pin_ls_cid(new) is IPFSPinStatus.RECURSIVE
        await connector.pin_update(new, newer, unpin=True)
        assert await connector.pin_ls_cid(new) is IPFSPinStatus.UNPINNED
        assert await connector.pin_ls_cid(newer) is IPFSPinStatus.RECURSIVE
        for cid in (old, newer):
            await connector.unpin(cid)

    @pytest_twisted.ensureDeferred
    async def test_pin_update_from_unpinned_fails(self, connector):
        old, new = await _stored(connector), await _stored(connector)
        with pytest.raises(IPFSError):
            await connector.pin_update(old, new)
        assert await connector.pin_ls_cid(new) is IPFSPinStatus.UNPINNED

    @pytest_twisted.ensureDeferred
    async def test_repo_stat(self, connector):
        stat = await connector.repo_stat()
        assert isinstance(stat, RepoStat)
        assert stat.repo_size > 0
        size = await connector.repo_size()
        free = await connector.free_space()
        assert isinstance(size, int) and size > 0
        assert isinstance(free, int) and free >= 0

    @pytest_twisted.ensureDeferred
    async def test_config_key(self, connector):
        assert await connector.config_key("Datastore/StorageMax")
        with pytest.raises(NotFound):
            await connector.config_key("NoSuchSection/NoSuchKey")

    @pytest_twisted.ensureDeferred
    async def test_resolve_ipfs_path(self, connector):
        cid = await _stored(connector)
        assert await connector.resolve(f"/ipfs/{cid}") == cid

    @pytest_twisted.ensureDeferred
    async def test_resolve_malformed_path(self, connector):
        with pytest.raises(InvalidInput):
            await connector.resolve("not-a-path")

    @pytest_twisted.ensureDeferred
    async def test_swarm_peers_is_a_list(self, connector):
        peers = await connector.swarm_peers()
        assert isinstance(peers, list)
        assert all(isinstance(p, str) for p in peers)
