"""Pure tests of the ctl text layouts and of the --wait logic (on a Clock)."""

from __future__ import annotations

import io
import json

import attrs
import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.task import Clock

from ipfscluster.api.rest.client import status_reached, wait_for_status
from ipfscluster.ctl import formatting as fmt
from ipfscluster.errors import WaitFailed, WaitTimeout
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.testing.fakecluster import fake_peer_id, synthetic_cid
from ipfscluster.types import (
    ID,
    IPFSID,
    AddedOutput,
    ConnectGraph,
    GlobalPinInfo,
    Pin,
    PinInfo,
    PinMode,
    PinOptions,
    TrackerStatus,
)

P1, P2, P3 = sorted(fake_peer_id(i) for i in (1, 2, 3))
CID = synthetic_cid(1)
S = 1_000_000_000


def gpi(*statuses, allocations=(), name=""):
    g = GlobalPinInfo(CID, name=name)
    for peer, (status, error) in zip((P1, P2, P3), statuses):
        g = g.add(PinInfo(CID, peer, status=status, error=error, timestamp=S, allocations=allocations))
    return g


PINNED, REMOTE, PINNING = TrackerStatus.PINNED, TrackerStatus.REMOTE, TrackerStatus.PINNING


def test_format_gpi_layout():
    g = GlobalPinInfo(CID)
    g = g.add(PinInfo(CID, P1, name="docs", peername="alpha", status=PINNED, timestamp=S, attempt_count=2))
    g = g.add(PinInfo(CID, P2, name="docs", status=TrackerStatus.PIN_ERROR, error="disk full", timestamp=S,
                      priority_pin=True))  # fmt: skip
    assert fmt.format_gpi(g) == (
        f"{CID} | docs:\n"
        "    > alpha                : PINNED | 1970-01-01T00:00:01Z | Attempts: 2 | Priority: false\n"
        f"    > {P2} : PIN_ERROR: disk full | 1970-01-01T00:00:01Z | Attempts: 0 | Priority: true\n"
    )


def test_format_pin_layouts():
    pin = Pin.new(CID, PinOptions(replication_factor_min=1, replication_factor_max=3, name="n"), timestamp=86400 * S)
    pin = attrs.evolve(pin, allocations=(P2, P1))
    assert fmt.format_pin(pin) == (
        f"{CID} | n | PIN | Repl. Factor: 1--3 | Allocations: [{P1} {P2}] | Recursive | Metadata: no | "
        "Exp: ∞ | Added: 1970-01-02 00:00:00\n"
    )
    everywhere = Pin.new(
        CID,
        PinOptions(replication_factor_min=-1, replication_factor_max=-1, mode=PinMode.DIRECT,
                   metadata={"k": "v"}, expire_at=2 * 86400 * S),
    )  # fmt: skip
    assert fmt.format_pin(everywhere) == (
        f"{CID} |  | PIN-DIRECT | Repl. Factor: -1 | Allocations: [everywhere] | Direct | Metadata: yes | "
        "Exp: 1970-01-03 00:00:00 | Added: unknown\n"
    )


def test_format_id():
    addr = Multiaddr.parse(f"/ip4/10.0.0.1/tcp/9096/p2p/{P1}")
    ident = ID(P1, addresses=(addr,), cluster_peers=(P1, P2), peername="alpha",
               ipfs=IPFSID(P3, (Multiaddr.parse("/ip4/10.0.0.1/tcp/4001"),)))  # fmt: skip
    assert fmt.format_id(ident) == (
        f"{P1} | alpha | Sees 1 other peers\n  > Addresses:\n    - {addr}\n"
        f"  > IPFS: {P3}\n    - /ip4/10.0.0.1/tcp/4001\n"
    )
    assert fmt.format_id(ID(P2, error="unreachable")) == f"{P2} | ERROR: unreachable\n"
    down = ID(P1, ipfs=IPFSID(error="daemon down"))
    assert fmt.format_id(down).endswith("  > IPFS ERROR: daemon down\n")


def test_format_added_and_errors():
    item = AddedOutput("a.txt", CID, size=3)
    assert fmt.format_added(item) == f"added {CID} a.txt\n"
    assert fmt.format_added(item, quiet=True) == f"{CID}\n"
    assert fmt.format_added(AddedOutput("a.txt", None, bytes=10)) == ""
    assert fmt.format_api_error(404, "gone") == "An error occurred:\n  Code: 404\n  Message: gone\n"


def test_json_array_writer_streams_valid_json():
    for count in (0, 1, 3):
        out = io.StringIO()
        writer = fmt.JSONArrayWriter(out.write)
        for i in range(count):
            writer.add({"i": i, "nested": {"x": [1, 2]}})
        writer.close()
        assert json.loads(out.getvalue()) == [{"i": i, "nested": {"x": [1, 2]}} for i in range(count)]
        assert out.getvalue().endswith("\n")


def test_format_graph():
    i1, i2, stray = fake_peer_id(101), fake_peer_id(102), fake_peer_id(200)
    graph = ConnectGraph(
        P1,
        id_to_peername={P1: "alpha", P2: 'be"ta'},
        cluster_links={P1: [P2], P2: [P1]},
        ipfs_links={i1: [i2, stray], i2: [i1]},
        cluster_to_ipfs={P1: i1, P2: i2},
    )
    dot = fmt.format_graph(graph)
    assert dot.startswith("digraph cluster {\n") and dot.endswith("}\n")
    assert 'C0 [label="alpha\\n' in dot and 'be\\"ta' in dot and 'style="filled"' in dot
    assert dot.count("->") == 2 + 2 + 2  # cluster links, cluster->ipfs, ipfs links among known daemons
    assert stray not in dot
    full = fmt.format_graph(graph, all_ipfs_peers=True)
    assert stray in full and full.count("->") == 7


# --- waiting -------------------------------------------------------------------------------


def test_status_reached_rules():
    ok = ""
    assert status_reached(gpi((PINNED, ok), (PINNED, ok), (PINNED, ok)), PINNED)
    assert not status_reached(gpi((PINNED, ok), (PINNING, ok), (PINNED, ok)), PINNED)
    # remote peers do not count; allocations decide who matters
    assert status_reached(gpi((PINNED, ok), (REMOTE, ok), (PINNED, ok)), PINNED)
    assert status_reached(gpi((PINNED, ok), (PINNING, ok), (PINNED, ok), allocations=(P1, P3)), PINNED)
    assert status_reached(gpi((PINNED, ok), (PINNING, ok), (PINNING, ok)), PINNED, limit=1)
    assert not status_reached(gpi((REMOTE, ok), (REMOTE, ok), (REMOTE, ok)), PINNED)
    unpinned = TrackerStatus.UNPINNED
    assert status_reached(gpi((unpinned, ok), (unpinned, ok), (unpinned, ok)), unpinned)
    assert not status_reached(gpi((unpinned, ok), (TrackerStatus.UNPINNING, ok), (unpinned, ok)), unpinned)
    with pytest.raises(WaitFailed, match="PIN_ERROR for .*: boom"):
        status_reached(gpi((PINNED, ok), (TrackerStatus.PIN_ERROR, "boom"), (PINNED, ok)), PINNED)
    # an error on a peer that is not allocated does not matter
    assert status_reached(gpi((PINNED, ok), (TrackerStatus.CLUSTER_ERROR, "x"), (PINNED, ok), allocations=(P1, P3)),
                          PINNED)  # fmt: skip


class ScriptedStatus:
    """Answers status() with the next GlobalPinInfo of a script."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = 0

    async def status(self, cid, local=False):
        self.calls += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest_twisted.ensureDeferred
async def test_wait_polls_on_the_clock_until_reached():
    clock = Clock()
    ok = ""
    client = ScriptedStatus(gpi((PINNING, ok), (PINNING, ok), (PINNED, ok)),
                            gpi((PINNED, ok), (PINNING, ok), (PINNED, ok)),
                            gpi((PINNED, ok), (PINNED, ok), (PINNED, ok)))  # fmt: skip
    d = defer.ensureDeferred(wait_for_status(client, CID, PINNED, clock=clock, interval=0.5))
    assert client.calls == 1 and not d.called
    clock.advance(0.5)
    assert client.calls == 2 and not d.called
    clock.advance(0.5)
    result = await d
    assert client.calls == 3 and status_reached(result, PINNED)


@pytest_twisted.ensureDeferred
async def test_wait_gives_up_at_the_deadline():
    clock = Clock()
    client = ScriptedStatus(gpi((PINNING, ""), (PINNING, ""), (PINNING, "")))
    d = defer.ensureDeferred(wait_for_status(client, CID, PINNED, clock=clock, timeout=1.2, interval=0.5))
    clock.pump([0.5, 0.5])
    assert not d.called
    clock.advance(0.2)  # the last pause is cut to the deadline
    with pytest.raises(WaitTimeout) as info:
        await d
    assert "within 1.2s" in str(info.value) and info.value.status.cid == CID
    assert client.calls == 4 and not clock.getDelayedCalls()
