"""Adding content through the cluster (``ICluster.add``, behind ``POST /add``)."""

import pytest
import pytest_twisted
from twisted.internet import reactor

from ipfscluster.adder import choose_roots, kubo_params
from ipfscluster.api.multipart import boundary_of, parse_parts
from ipfscluster.testing.fakeipfs.multipart import encode_multipart
from ipfscluster.testing.harness import LocalCluster, collect

HELLO_CID = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"


def test_choose_roots():
    answers = [("d/a", "A"), ("d/b", "B"), ("d", "D"), ("f", "F")]
    assert choose_roots(answers, wrap=False) == ["D", "F"]
    assert choose_roots(answers + [("", "W")], wrap=True) == ["W"]
    assert choose_roots([], wrap=True) == []


def test_kubo_params_pass_only_import_options():
    q = {"cid-version": "1", "replication": "2", "name": "x", "layout": "trickle", "raw-leaves": ""}
    assert kubo_params(q) == [("cid-version", "1"), ("trickle", "true")]


def _parts(files):
    body, content_type = encode_multipart(files)
    return parse_parts(body, boundary_of(content_type))


@pytest.mark.loopback
@pytest_twisted.ensureDeferred
async def test_add_imports_like_kubo_and_pins_the_roots(tmp_path):
    lc = LocalCluster(reactor, str(tmp_path), 3, instant_pins=False)
    try:
        await lc.start()
        c = lc.peers[1].cluster
        await lc.poll(lambda: len(c.c.monitor.latest_metrics("freespace")) == 3, what="metrics")
        out = await collect(c.add(_parts([("hello.txt", b"hello world\n")]), {"replication": "2"}))
        assert [(o.name, str(o.cid)) for o in out] == [("hello.txt", HELLO_CID)]
        assert len(out[0].allocations) == 2
        await lc.poll(lambda: c.c.state.has(out[0].cid), what="the pin applied on this peer")
        pin = await c.pin_get(out[0].cid)
        assert pin.replication_factor_min == 2
        holders = [p for p in lc.peers if p.peer_id in out[0].allocations]
        # the other daemons fetch the content over the (fake) network and pin it
        await lc.poll(lambda: all(p.kubo.pin_mode(out[0].cid) == "recursive" for p in holders),
                      what="pinned by the allocated daemons")
        # a folder: only the folder is pinned; no-pin imports without pinning
        out = await collect(c.add(_parts([("d", None), ("d/a", b"a"), ("d/b", b"b")]), {"no-pin": "true"}))
        assert [o.name for o in out] == ["d/a", "d/b", "d"]
        assert all(not o.allocations for o in out)
        assert await collect(c.pins()) != [] and len(await collect(c.pins())) == 1
    finally:
        await lc.stop()
