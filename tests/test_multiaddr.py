"""Tests of ipfscluster.multiaddr: parsing, canonical form, binary form, endpoints."""

from __future__ import annotations

import ipaddress

import attrs
import pytest
import pytest_twisted
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactor

from ipfscluster.errors import InvalidMultiaddr
from ipfscluster.identity import Identity, peer_id_to_cid
from ipfscluster.multiaddr import Multiaddr

# peer ID of the libp2p specs' tls/tls.md test vector 1
PEER = "12D3KooWM6CgA9iBFZmcYAHA6A2qvbAxqfkmrYiRQuz3XEsk4Ksv"
LEGACY_PEER = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"


def test_full_peer_address():
    ma = Multiaddr.parse(f"/ip4/127.0.0.1/tcp/9096/p2p/{PEER}")
    assert ma.protocols == ("ip4", "tcp", "p2p")
    assert ma.components == (("ip4", "127.0.0.1"), ("tcp", "9096"), ("p2p", PEER))
    assert (ma.host, ma.port, ma.transport, ma.peer_id) == ("127.0.0.1", 9096, "tcp", PEER)
    assert str(ma) == f"/ip4/127.0.0.1/tcp/9096/p2p/{PEER}"


def test_ipfs_alias_and_cid_peer_ids_print_as_p2p_base58():
    canonical = Multiaddr.parse(f"/ip4/10.0.0.1/tcp/9096/p2p/{PEER}")
    assert Multiaddr.parse(f"/ip4/10.0.0.1/tcp/9096/ipfs/{PEER}") == canonical
    assert Multiaddr.parse(f"/ip4/10.0.0.1/tcp/9096/p2p/{peer_id_to_cid(PEER)}") == canonical
    assert str(Multiaddr.parse(f"/ip4/10.0.0.1/tcp/9096/ipfs/{PEER}/")) == str(canonical)


def test_values_are_canonicalised():
    ma = Multiaddr.parse("/ip6/0:0:0:0:0:0:0:1/udp/00080")
    assert str(ma) == "/ip6/::1/udp/80"
    assert ma == Multiaddr.parse("/ip6/::1/udp/80")
    assert hash(ma) == hash(Multiaddr.parse("/ip6/::1/udp/80"))
    assert ma.transport == "udp" and ma.port == 80


@pytest.mark.parametrize(
    "text",
    [
        "/dns/example.com/tcp/443",
        "/dns4/localhost/tcp/9094",
        "/dns6/node-1.cluster.internal./tcp/1",
        "/dns/_service.example/udp/53",
        f"/p2p/{LEGACY_PEER}",
        "/tcp/0",
    ],
)
def test_other_valid_addresses_round_trip(text):
    ma = Multiaddr.parse(text)
    assert str(ma) == text
    assert Multiaddr.from_bytes(ma.to_bytes()) == ma


def test_binary_form_uses_standard_codes():
    ma = Multiaddr.parse(f"/ip4/127.0.0.1/tcp/9096/p2p/{PEER}")
    # ip4=0x04, tcp=0x06, p2p=0x01a5 (varint a5 03), then the 38-byte multihash
    expected = (
        bytes.fromhex("047f000001") + bytes.fromhex("062388") + bytes.fromhex("a50326")
        + bytes.fromhex("002408011220a77f1d92fedb59dddaea5a1c4abd1ac2fbde7d7b879ed364501809923d7c11b9")
    )
    assert ma.to_bytes() == expected
    assert Multiaddr.from_bytes(expected) == ma
    dns = Multiaddr.parse("/dns4/example.com/udp/53")
    assert dns.to_bytes() == b"\x36\x0bexample.com" + b"\x91\x02\x00\x35"
    assert Multiaddr.parse("/ip6/::1/tcp/1").to_bytes() == b"\x29" + bytes(15) + b"\x01\x06\x00\x01"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty multiaddress"),
        ("/", "empty multiaddress"),
        ("ip4/1.2.3.4", 'a multiaddress starts with "/"'),
        ("/ip4/1.2.3/tcp/1", 'bad IPv4 address "1.2.3"'),
        ("/ip4/1.2.3.256/tcp/1", 'bad IPv4 address "1.2.3.256"'),
        ("/ip4/01.2.3.4", 'bad IPv4 address "01.2.3.4"'),
        ("/ip6/::g", 'bad IPv6 address "::g"'),
        ("/ip6/1.2.3.4", 'bad IPv6 address "1.2.3.4"'),
        ("/ip6/fe80::1%eth0/tcp/1", "zones such as %eth0 are not supported"),
        ("/ip4/1.2.3.4/tcp/65536", 'bad port "65536" (expected 0 to 65535)'),
        ("/ip4/1.2.3.4/tcp/-1", 'bad port "-1"'),
        ("/ip4/1.2.3.4/udp/1e3", 'bad port "1e3"'),
        ("/ip4/1.2.3.4/tcp/ 1", 'bad port " 1"'),
        ("/dns4/-bad.example/tcp/1", 'bad DNS name "-bad.example"'),
        ("/dns/a..b/tcp/1", 'bad DNS name "a..b"'),
        ("/dns/" + "a" * 64 + "/tcp/1", "bad DNS name"),
        ("/dns/ex ample.com", 'bad DNS name "ex ample.com"'),
        ("/ip4", 'protocol "ip4" needs a value'),
        ("/ip4//tcp/1", 'protocol "ip4" needs a value'),
        ("/ip4/1.2.3.4/tcp", 'protocol "tcp" needs a value'),
        ("/quic/1", 'unsupported protocol "quic"'),
        ("//ip4/1.2.3.4", "empty protocol name"),
        ("/p2p/QmNotAPeer", 'invalid peer ID "QmNotAPeer"'),
        ("/ipfs/bafkqaaa", "libp2p-key codec"),
        (f"/p2p/{PEER}/tcp/1", "the /p2p/ part must come last"),
    ],
)
def test_invalid_addresses_quote_the_input_and_say_why(text, message):
    with pytest.raises(InvalidMultiaddr) as info:
        Multiaddr.parse(text)
    assert str(info.value).startswith(f'invalid multiaddress "{text}": ')
    assert message in str(info.value)
    assert info.value.http_status == 400


def test_non_string_input():
    with pytest.raises(InvalidMultiaddr, match="expected a string, got bytes"):
        Multiaddr.parse(b"/ip4/1.2.3.4")
    ma = Multiaddr.parse("/ip4/1.2.3.4")
    assert Multiaddr.parse(ma) is ma


def test_binary_input_must_be_bytes():
    with pytest.raises(InvalidMultiaddr, match="expected bytes, got int"):
        Multiaddr.from_bytes(5)  # bytes(5) would be five zero bytes
    ma = Multiaddr.parse("/ip4/1.2.3.4/tcp/1")
    assert Multiaddr.from_bytes(bytearray(ma.to_bytes())) == ma
    assert Multiaddr.from_bytes(memoryview(ma.to_bytes())) == ma


def test_repr_evaluates_back():
    ma = Multiaddr.parse(f"/ip4/1.2.3.4/tcp/1/p2p/{PEER}")
    assert repr(ma) == f"Multiaddr.parse('/ip4/1.2.3.4/tcp/1/p2p/{PEER}')"
    assert eval(repr(ma), {"Multiaddr": Multiaddr}) == ma


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "no bytes"),
        (b"\x04\x7f\x00", "ip4 needs 4 bytes, 2 left"),
        (b"\x06\x01", "tcp needs 2 bytes, 1 left"),
        (b"\x99\x01", "unsupported protocol code 0x99"),
        (b"\x80", "truncated varint"),
        (b"\x35\x05ab", "dns value needs 5 bytes, 2 left"),
        (b"\x35\x02\xff\xfe", "bad DNS name"),
        (b"\x35\x03a.-", "bad DNS name"),
        (b"\xa5\x03\x02\x12\x20", "truncated multihash"),
        (b"\xa5\x03\x26" + bytes(38), "invalid binary peer ID"),
    ],
)
def test_invalid_binary(raw, message):
    with pytest.raises(InvalidMultiaddr) as info:
        Multiaddr.from_bytes(raw)
    assert str(info.value).startswith("invalid binary multiaddress ")
    assert message in str(info.value)


def test_peer_id_helpers():
    base = Multiaddr.parse("/ip4/1.2.3.4/tcp/9096")
    other = Identity.generate().peer_id
    with_peer = base.with_peer_id(PEER)
    assert str(with_peer) == f"/ip4/1.2.3.4/tcp/9096/p2p/{PEER}"
    assert with_peer.with_peer_id(other).peer_id == other  # replaced, not appended
    assert with_peer.with_peer_id(peer_id_to_cid(other)).peer_id == other
    assert with_peer.without_peer_id() == base
    assert base.without_peer_id() is base
    assert base.peer_id is None
    with pytest.raises(InvalidMultiaddr, match="cannot add /p2p/ to /ip4/1.2.3.4/tcp/9096"):
        base.with_peer_id("nope")


def test_direct_construction_and_evolve_are_validated():
    ma = Multiaddr([("ip4", "1.2.3.4"), ("tcp", "1")])
    assert ma == Multiaddr.parse("/ip4/1.2.3.4/tcp/1")
    with pytest.raises(InvalidMultiaddr, match='bad IPv4 address "01.2.3.4"'):
        Multiaddr((("ip4", "01.2.3.4"),))
    with pytest.raises(InvalidMultiaddr, match="/tcp/01 is not a canonical component"):
        Multiaddr((("ip4", "1.2.3.4"), ("tcp", "01")))
    with pytest.raises(InvalidMultiaddr, match='bad port "x"'):
        attrs.evolve(ma, components=(("udp", "x"),))
    with pytest.raises(InvalidMultiaddr, match="'ipfs'"):
        Multiaddr((("ipfs", PEER),))
    with pytest.raises(InvalidMultiaddr, match="must come last"):
        Multiaddr((("p2p", PEER), ("tcp", "1")))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ma.components = ()


def test_from_host_port():
    assert str(Multiaddr.from_host_port("127.0.0.1", 9096)) == "/ip4/127.0.0.1/tcp/9096"
    assert str(Multiaddr.from_host_port("::1", 9096)) == "/ip6/::1/tcp/9096"
    assert str(Multiaddr.from_host_port("example.com", 53, "udp")) == "/dns/example.com/udp/53"
    with pytest.raises(InvalidMultiaddr, match="bad port"):
        Multiaddr.from_host_port("127.0.0.1", 70000)
    with pytest.raises(InvalidMultiaddr, match="expected an integer"):
        Multiaddr.from_host_port("127.0.0.1", "80/udp/1")
    # a host cannot smuggle in more components
    with pytest.raises(InvalidMultiaddr, match='bad DNS name "a/udp/5"'):
        Multiaddr.from_host_port("a/udp/5", 80)
    with pytest.raises(InvalidMultiaddr, match='bad DNS name ""'):
        Multiaddr.from_host_port("", 80)
    with pytest.raises(InvalidMultiaddr, match="expected a string, got int"):
        Multiaddr.from_host_port(1, 80)  # ipaddress would read it as 0.0.0.1
    with pytest.raises(InvalidMultiaddr, match="expected tcp or udp"):
        Multiaddr.from_host_port("127.0.0.1", 1, "sctp")


# --- Twisted endpoint descriptions -------------------------------------------------


@pytest.mark.parametrize(
    "text, server, interface",
    [
        ("/ip4/0.0.0.0/tcp/9096", "tcp:port=9096:interface=0.0.0.0", "0.0.0.0"),
        (f"/ip4/127.0.0.1/tcp/9096/p2p/{PEER}", "tcp:port=9096:interface=127.0.0.1", "127.0.0.1"),
        ("/ip6/::/tcp/9096", "tcp6:port=9096:interface=\\:\\:", "::"),
    ],
)
def test_server_endpoint_strings_parse_in_twisted(text, server, interface):
    ma = Multiaddr.parse(text)
    assert ma.tcp_endpoint_string() == server
    endpoint = serverFromString(MemoryReactor(), server)
    assert endpoint._port == 9096
    assert endpoint._interface == interface


@pytest.mark.parametrize(
    "text, client, host",
    [
        ("/ip4/127.0.0.1/tcp/9096", "tcp:host=127.0.0.1:port=9096", "127.0.0.1"),
        ("/ip6/::1/tcp/9096", "tcp:host=\\:\\:1:port=9096", "::1"),
        ("/dns4/node.example./tcp/9096", "tcp:host=node.example:port=9096", "node.example"),
    ],
)
def test_client_endpoint_strings_parse_in_twisted(text, client, host):
    ma = Multiaddr.parse(text)
    assert ma.client_endpoint_string() == client
    endpoint = clientFromString(MemoryReactor(), client)
    assert (endpoint._host, endpoint._port) == (host, 9096)


@pytest.mark.parametrize(
    "text, message",
    [
        ("/ip4/1.2.3.4/udp/1", "needs an IP address or DNS name and a /tcp/ port"),
        ("/tcp/1", "needs an IP address or DNS name and a /tcp/ port"),
        ("/dns/example.com/tcp/1", "use an IP address (/ip4/ or /ip6/), not a DNS name"),
    ],
)
def test_endpoint_strings_need_tcp(text, message):
    ma = Multiaddr.parse(text)
    with pytest.raises(InvalidMultiaddr, match=message.replace("(", r"\(").replace(")", r"\)")):
        ma.tcp_endpoint_string()
    if "DNS name and" in message:
        with pytest.raises(InvalidMultiaddr, match="cannot be used to connect"):
            ma.client_endpoint_string()


class _Echo(Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


class _Client(Protocol):
    def __init__(self):
        self.reply = Deferred()
        self.closed = Deferred()

    def dataReceived(self, data):
        self.reply.callback(data)

    def connectionLost(self, reason):
        self.closed.callback(None)


@pytest.mark.loopback
@pytest_twisted.ensureDeferred
async def test_listen_and_connect_on_loopback_with_the_endpoint_strings():
    listen = Multiaddr.parse("/ip4/127.0.0.1/tcp/0")
    port = await serverFromString(reactor, listen.tcp_endpoint_string()).listen(
        Factory.forProtocol(_Echo)
    )
    try:
        bound = Multiaddr.from_host_port("127.0.0.1", port.getHost().port)
        client = await clientFromString(reactor, bound.client_endpoint_string()).connect(
            Factory.forProtocol(_Client)
        )
        client.transport.write(b"ping")
        assert await client.reply == b"ping"
        client.transport.loseConnection()
        await client.closed
    finally:
        await port.stopListening()


# --- round trips -------------------------------------------------------------------

ip4s = st.ip_addresses(v=4).map(lambda a: ("ip4", str(a)))
ip6s = st.ip_addresses(v=6).map(lambda a: ("ip6", str(ipaddress.IPv6Address(a))))
labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
dnss = st.tuples(st.sampled_from(["dns", "dns4", "dns6"]), st.lists(labels, min_size=1, max_size=4)).map(
    lambda t: (t[0], ".".join(t[1]))
)
ports = st.tuples(st.sampled_from(["tcp", "udp"]), st.integers(0, 65535).map(str))
peers = st.sampled_from([PEER, LEGACY_PEER]).map(lambda p: ("p2p", p))


@settings(deadline=None)  # shared, loaded CI machines
@given(ip4s | ip6s | dnss, st.one_of(st.none(), ports), st.one_of(st.none(), peers))
def test_round_trip_text_and_binary(host, port, peer):
    components = [host] + [c for c in (port, peer) if c is not None]
    text = "".join(f"/{n}/{v}" for n, v in components)
    ma = Multiaddr.parse(text)
    assert str(ma) == text
    assert ma.components == tuple(components)
    assert Multiaddr.from_bytes(ma.to_bytes()) == ma
    assert Multiaddr.parse(text.replace("/p2p/", "/ipfs/")) == ma
