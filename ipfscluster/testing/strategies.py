"""Hypothesis strategies for every value of :mod:`ipfscluster.types` (public test helpers).

Each strategy draws valid values only (CIDs v0/v1, real Ed25519 peer IDs,
multiaddrs, times within Go's range), so ``X.from_json(x.to_json()) == x`` and
friends can be checked for anything drawn.  Tests of other components use them to
build arbitrary pins, statuses and metrics.
"""

from __future__ import annotations

from hypothesis import strategies as st

from ipfscluster import types as t
from ipfscluster.cid import CID, DAG_CBOR, DAG_PB, RAW
from ipfscluster.identity import peer_id_from_public_key
from ipfscluster.multiaddr import Multiaddr

__all__ = [
    "cids",
    "peer_ids",
    "multiaddrs",
    "times",
    "metadata",
    "tracker_statuses",
    "tracker_filters",
    "pin_types",
    "pin_options",
    "pins",
    "pin_info_shorts",
    "pin_infos",
    "global_pin_infos",
    "ipfs_ids",
    "ids",
    "versions",
    "metrics",
    "alerts",
    "connect_graphs",
    "added_outputs",
    "repo_stats",
    "ipfs_pin_statuses",
]

_digests = st.binary(min_size=32, max_size=32)


def cids() -> st.SearchStrategy[CID]:
    """CIDv0 and CIDv1 (dag-pb, raw, dag-cbor; sha2-256)."""
    v0 = _digests.map(CID.v0)
    v1 = st.builds(
        lambda codec, digest: CID.v1(codec, b"\x12\x20" + digest),
        st.sampled_from([DAG_PB, RAW, DAG_CBOR]),
        _digests,
    )
    return st.one_of(v0, v1)


def peer_ids() -> st.SearchStrategy[str]:
    """Ed25519 libp2p peer IDs (``12D3KooW…``)."""
    return _digests.map(peer_id_from_public_key)


_small_peer_ids = st.integers(0, 7).map(lambda i: peer_id_from_public_key(bytes([i]) * 32))


def _peer_pool() -> st.SearchStrategy[str]:
    # mostly a few recurring peers (as in a real cluster), sometimes any
    return st.one_of(_small_peer_ids, peer_ids())


def multiaddrs(p2p: bool = True) -> st.SearchStrategy[Multiaddr]:
    """TCP multiaddrs over ip4, ip6 or dns4, ending in ``/p2p/<id>`` when ``p2p``."""
    ip4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda q: "/ip4/" + ".".join(map(str, q)))
    ip6 = st.sampled_from(["/ip6/::1", "/ip6/fe80::1", "/ip6/2001:db8::42"])
    dns = st.from_regex(r"[a-z][a-z0-9]{0,10}(\.[a-z]{2,5})?", fullmatch=True).map(
        lambda h: "/dns4/" + h
    )
    host = st.one_of(ip4, ip6, dns)
    port = st.integers(1, 65535).map(lambda p: f"/tcp/{p}")
    tail = _peer_pool().map(lambda p: "/p2p/" + p) if p2p else st.just("")
    return st.builds(lambda h, p, x: Multiaddr.parse(h + p + x), host, port, tail)


def times() -> st.SearchStrategy[int]:
    """Times in nanoseconds: 0 ("no time"), whole seconds, or any nanosecond."""
    any_ns = st.integers(t._GO_ZERO_NS + 1, t._MAX_TIME_NS)
    recent = st.integers(1_500_000_000, 2_000_000_000).map(lambda s: s * 1_000_000_000)
    return st.one_of(st.just(0), recent, any_ns)


def metadata() -> st.SearchStrategy[dict]:
    """Pin metadata: non-empty string keys to string values."""
    return st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=12), max_size=3)


def tracker_statuses() -> st.SearchStrategy[t.TrackerStatus]:
    """Single tracker statuses (what one peer reports)."""
    return st.sampled_from([s for s in t.TrackerStatus if s & (s - 1) == 0])


def tracker_filters() -> st.SearchStrategy[t.TrackerStatus]:
    """Any combination of statuses (filters), including UNDEFINED."""
    return st.lists(tracker_statuses(), max_size=4).map(
        lambda xs: t.TrackerStatus(sum(set(xs)))
    )


def pin_types() -> st.SearchStrategy[t.PinType]:
    """The four pin types an entry can have."""
    kinds = [t.PinType.DATA, t.PinType.META, t.PinType.CLUSTER_DAG, t.PinType.SHARD]
    return st.sampled_from(kinds)


def ipfs_pin_statuses() -> st.SearchStrategy[t.IPFSPinStatus]:
    """Every IPFSPinStatus."""
    return st.sampled_from(list(t.IPFSPinStatus))


def _short_tuple(strategy, max_size=3):
    return st.lists(strategy, max_size=max_size).map(tuple)


def _option_values():
    return st.fixed_dictionaries(
        {
            "replication_factor_min": st.integers(-1, 10),
            "replication_factor_max": st.integers(-1, 10),
            "name": st.text(max_size=16),
            "mode": st.sampled_from(list(t.PinMode)),
            "shard_size": st.integers(0, 2**40),
            "user_allocations": _short_tuple(_peer_pool()),
            "expire_at": times(),
            "metadata": metadata(),
            "pin_update": st.none() | cids(),
            "origins": _short_tuple(multiaddrs(), 2),
        }
    )


def pin_options() -> st.SearchStrategy[t.PinOptions]:
    """Any PinOptions."""
    return _option_values().map(lambda v: t.PinOptions(**v))


def pins() -> st.SearchStrategy[t.Pin]:
    """Any Pin."""
    return st.builds(
        lambda cid, opts, **kw: t.Pin(cid, **opts, **kw),
        cids(),
        _option_values(),
        type=pin_types(),
        allocations=_short_tuple(_peer_pool()),
        max_depth=st.sampled_from([-1, 0, 1, 5]),
        reference=st.none() | cids(),
        timestamp=times(),
    )


def _short_values():
    return st.fixed_dictionaries(
        {
            "peername": st.text(max_size=12),
            "ipfs_peer_id": st.just("") | _peer_pool(),
            "ipfs_peer_addresses": _short_tuple(multiaddrs(), 2),
            "status": tracker_statuses(),
            "timestamp": times(),
            "error": st.text(max_size=20),
            "attempt_count": st.integers(0, 100),
            "priority_pin": st.booleans(),
        }
    )


def pin_info_shorts() -> st.SearchStrategy[t.PinInfoShort]:
    """Any PinInfoShort."""
    return _short_values().map(lambda v: t.PinInfoShort(**v))


def _header_values():
    return st.fixed_dictionaries(
        {
            "name": st.text(max_size=12),
            "allocations": _short_tuple(_peer_pool()),
            "origins": _short_tuple(multiaddrs(), 2),
            "created": times(),
            "metadata": metadata(),
        }
    )


def pin_infos() -> st.SearchStrategy[t.PinInfo]:
    """Any PinInfo."""
    return st.builds(
        lambda cid, peer, head, short: t.PinInfo(cid, peer, **head, **short),
        cids(),
        _peer_pool(),
        _header_values(),
        _short_values(),
    )


def global_pin_infos() -> st.SearchStrategy[t.GlobalPinInfo]:
    """Any GlobalPinInfo (0 to 4 peers)."""
    return st.builds(
        lambda cid, head, peer_map: t.GlobalPinInfo(cid, peer_map=peer_map, **head),
        cids(),
        _header_values(),
        st.dictionaries(_peer_pool(), pin_info_shorts(), max_size=4),
    )


def ipfs_ids() -> st.SearchStrategy[t.IPFSID]:
    """Any IPFSID (sometimes only an error)."""
    return st.builds(
        t.IPFSID,
        st.just("") | peer_ids(),
        _short_tuple(multiaddrs(), 2),
        st.text(max_size=20),
    )


def ids() -> st.SearchStrategy[t.ID]:
    """Any ID."""
    return st.builds(
        t.ID,
        _peer_pool(),
        addresses=_short_tuple(multiaddrs(), 2),
        cluster_peers=_short_tuple(_peer_pool()),
        cluster_peers_addresses=_short_tuple(multiaddrs(), 2),
        version=st.text(max_size=8),
        commit=st.text(alphabet="0123456789abcdef", max_size=8),
        rpc_protocol_version=st.just("/ipfscluster/1.0/rpc"),
        error=st.text(max_size=20),
        ipfs=ipfs_ids(),
        peername=st.text(max_size=12),
    )


def versions() -> st.SearchStrategy[t.Version]:
    """Any Version."""
    return st.builds(t.Version, st.text(max_size=12))


def metrics() -> st.SearchStrategy[t.Metric]:
    """Any Metric."""
    ns = st.integers(0, 2**62)
    return st.builds(
        t.Metric,
        st.sampled_from(["freespace", "reposize", "numpin", "ping", "tag:group"]),
        peer=st.just("") | _peer_pool(),
        value=st.text(max_size=12),
        expire=ns,
        valid=st.booleans(),
        weight=st.integers(-(2**40), 2**40),
        partitionable=st.booleans(),
        received_at=ns,
    )


def alerts() -> st.SearchStrategy[t.Alert]:
    """Any Alert."""
    return st.builds(t.Alert, metrics(), triggered_at=times())


def connect_graphs() -> st.SearchStrategy[t.ConnectGraph]:
    """Any ConnectGraph."""
    peers = _peer_pool()
    links = st.dictionaries(peers, _short_tuple(peers), max_size=3)
    return st.builds(
        t.ConnectGraph,
        peers,
        id_to_peername=st.dictionaries(peers, st.text(max_size=8), max_size=3),
        ipfs_links=links,
        cluster_links=links,
        cluster_trust_links=st.dictionaries(peers, st.booleans(), max_size=3),
        cluster_to_ipfs=st.dictionaries(peers, peers, max_size=3),
    )


def added_outputs() -> st.SearchStrategy[t.AddedOutput]:
    """Any AddedOutput (progress lines have no CID)."""
    return st.builds(
        t.AddedOutput,
        st.text(max_size=16),
        st.none() | cids(),
        bytes=st.integers(0, 2**40),
        size=st.integers(0, 2**40),
        allocations=_short_tuple(_peer_pool()),
    )


def repo_stats() -> st.SearchStrategy[t.RepoStat]:
    """Any RepoStat."""
    return st.builds(t.RepoStat, st.integers(0, 2**50), st.integers(0, 2**50))
