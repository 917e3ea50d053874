"""Cluster-secret TLS: certificates (pure) and handshakes over in-memory transports.

The handshake tests run real pyOpenSSL over memory BIOs (``twisted.test.iosim``)
with a ``MemoryReactorClock``: no sockets, no real time.
"""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs, formatEvent
from twisted.test import iosim

from ipfscluster import errors
from ipfscluster.identity import Identity
from ipfscluster.rpc import commands, tls
from ipfscluster.rpc.client import RPCClient
from ipfscluster.rpc.server import Responders
from ipfscluster.types import Version

T0 = 1_800_000_000.0  # 2027-01-15, a realistic "now" for the fake clock
SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(1, 33))


# --- helpers -------------------------------------------------------------------------


class Peer:
    """One peer: identity, TLS, responders and RPC client on the shared fake reactor."""

    def __init__(self, reactor, secret, *, tls_class=tls.ClusterTLS, **tls_kwargs):
        self.identity = Identity.generate()
        self.peer_id = self.identity.peer_id
        self.responders = Responders()
        self.tls = tls_class(self.identity.private_key, secret, reactor, **tls_kwargs)
        self.client = RPCClient(reactor, self.tls, self.responders, network_timeout=5)
        self.handled = []
        self.responders.register(commands.ClusterVersion, self._version)

    def _version(self, caller):
        self.handled.append(("Cluster.Version", caller))
        return {"version": Version(f"v-{self.peer_id[-4:]}")}


def settle(reactor, *pumps, rounds=200):
    """Move bytes and run zero-delay calls until nothing happens any more."""
    for _ in range(rounds):
        moved = any([pump.pump() for pump in pumps])
        due = [c for c in reactor.getDelayedCalls() if c.getTime() <= reactor.seconds()]
        reactor.advance(0)
        if not moved and not due:
            return
    raise AssertionError("the in-memory connection did not settle")


def connect(reactor, dialler: Peer, acceptor: Peer, expected: str | None = None, prepare=None):
    """Connect ``dialler`` to ``acceptor`` in memory.

    ``prepare(protocol)`` may alter the dialling ``PeerProtocol`` first.  Returns
    the dialling and the accepting ``PeerProtocol`` and the pump.
    """
    address = IPv4Address("TCP", "127.0.0.1", 9096)
    client = dialler.client.client_factory(expected or acceptor.peer_id).buildProtocol(address)
    server = acceptor.client.server_factory().buildProtocol(address)
    wrapped = client.wrappedProtocol, server.wrappedProtocol
    if prepare is not None:
        prepare(client.wrappedProtocol)
    c, s, pump = iosim.connectedServerAndClient(lambda: server, lambda: client, greet=False)
    settle(reactor, pump)
    return wrapped[0], wrapped[1], pump


def forged_leaf(key, now):
    """A leaf naming the cluster CA (of SECRET) as issuer but signed by another key."""
    real = tls.leaf_certificate(key, now, tls.derive_ca_key(SECRET))
    builder = x509.CertificateBuilder(
        issuer_name=real.issuer,
        subject_name=real.subject,
        public_key=real.public_key(),
        serial_number=real.serial_number,
        not_valid_before=real.not_valid_before_utc,
        not_valid_after=real.not_valid_after_utc,
        extensions=list(real.extensions),
    )
    return builder.sign(Ed25519PrivateKey.generate(), None)


def outcome(d):
    """The result of an already fired Deferred (a Failure's exception is returned)."""
    box = []
    d.addBoth(box.append)
    assert box, "the Deferred has not fired"
    result = box[0]
    return getattr(result, "value", result)


@pytest.fixture
def reactor():
    clock = MemoryReactorClock()
    clock.advance(T0)
    return clock


@pytest.fixture
def rpc_log():
    with capturedLogs() as events:
        yield events


def rpc_events(events):
    """The events of the ``rpc`` log facility."""
    return [e for e in events if e.get("log_namespace") == "rpc"]


def lines_of(events, peer: Peer):
    return [formatEvent(e) for e in events if e.get("local_peer") == peer.peer_id]


@pytest.fixture
def closer(reactor):
    pumps, peers = [], []
    yield pumps, peers
    for peer in peers:
        peer.client.close()
    settle(reactor, *pumps)


# --- certificates (pure) ---------------------------------------------------------------


def test_ca_is_derived_deterministically_from_the_secret():
    first = tls.ca_certificate(SECRET).public_bytes(Encoding.DER)
    again = tls.ca_certificate(bytes(SECRET)).public_bytes(Encoding.DER)
    other = tls.ca_certificate(OTHER_SECRET).public_bytes(Encoding.DER)
    assert first == again
    assert first != other
    cert = tls.ca_certificate(SECRET)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert cert.serial_number == tls.CA_SERIAL
    # self-signed by the derived key
    tls.derive_ca_key(SECRET).public_key().verify(cert.signature, cert.tbs_certificate_bytes)


def test_two_peers_with_the_same_secret_hold_the_identical_ca(reactor):
    a = tls.ClusterTLS(Identity.generate().private_key, SECRET, reactor)
    b = tls.ClusterTLS(Identity.generate().private_key, SECRET, reactor)
    assert a.ca_certificate.public_bytes(Encoding.DER) == b.ca_certificate.public_bytes(Encoding.DER)
    assert a.peer_id != b.peer_id


def test_empty_secret_has_no_ca():
    with pytest.raises(ValueError):
        tls.derive_ca_key(b"")


def test_leaf_is_signed_by_the_ca_and_valid_from_the_clock(reactor):
    identity = Identity.generate()
    peer = tls.ClusterTLS(identity.private_key, SECRET, reactor)
    leaf = peer.certificate
    tls.derive_ca_key(SECRET).public_key().verify(leaf.signature, leaf.tbs_certificate_bytes)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == identity.peer_id
    start = datetime.datetime.fromtimestamp(T0, datetime.timezone.utc) - tls.LEAF_BACKDATE
    assert leaf.not_valid_before_utc == start.replace(microsecond=0)
    assert tls.check_certificate(leaf, peer.ca_certificate, T0, identity.peer_id) == identity.peer_id


def test_check_certificate_refuses_another_cluster():
    key = Ed25519PrivateKey.generate()
    leaf = tls.leaf_certificate(key, T0, tls.derive_ca_key(OTHER_SECRET))
    with pytest.raises(errors.ClusterSecretMismatch, match="secrets probably differ"):
        tls.check_certificate(leaf, tls.ca_certificate(SECRET), T0)


def test_check_certificate_refuses_a_self_signed_leaf_when_there_is_a_secret():
    leaf = tls.leaf_certificate(Ed25519PrivateKey.generate(), T0, None)
    with pytest.raises(errors.ClusterSecretMismatch):
        tls.check_certificate(leaf, tls.ca_certificate(SECRET), T0)


def test_check_certificate_refuses_a_forged_issuer_name():
    # signed by some key, but claiming the cluster CA's name
    leaf = forged_leaf(Ed25519PrivateKey.generate(), T0)
    assert leaf.issuer == tls.ca_certificate(SECRET).subject
    with pytest.raises(errors.ClusterSecretMismatch):
        tls.check_certificate(leaf, tls.ca_certificate(SECRET), T0)


@pytest.mark.parametrize(
    "now, state",
    [(T0 + 61, "expired"), (T0 - 2 * 3600, "not valid yet")],
)
def test_check_certificate_refuses_outside_validity(now, state):
    leaf = tls.leaf_certificate(
        Ed25519PrivateKey.generate(), T0, tls.derive_ca_key(SECRET), datetime.timedelta(seconds=60)
    )
    assert tls.check_certificate(leaf, tls.ca_certificate(SECRET), T0 + 59)
    with pytest.raises(errors.CertificateRejected, match=state):
        tls.check_certificate(leaf, tls.ca_certificate(SECRET), now)


def test_check_certificate_names_both_ids_on_a_misdial():
    key = Ed25519PrivateKey.generate()
    reached = tls.peer_id_of_certificate(tls.leaf_certificate(key, T0, None))
    expected = Identity.generate().peer_id
    leaf = tls.leaf_certificate(key, T0, tls.derive_ca_key(SECRET))
    with pytest.raises(errors.PeerIDMismatch) as info:
        tls.check_certificate(leaf, tls.ca_certificate(SECRET), T0, expected)
    assert expected in str(info.value) and reached in str(info.value)
    assert info.value.expected == expected and info.value.reached == reached


def test_check_certificate_refuses_non_ed25519_keys():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    moment = datetime.datetime.fromtimestamp(T0, datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(5)
        .not_valid_before(moment)
        .not_valid_after(moment + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(errors.CertificateRejected, match="not an Ed25519"):
        tls.check_certificate(cert, None, T0)


def test_empty_secret_accepts_any_ed25519_leaf_but_keeps_the_identity():
    key = Ed25519PrivateKey.generate()
    leaf = tls.leaf_certificate(key, T0, None)
    pid = tls.peer_id_of_certificate(leaf)
    assert tls.check_certificate(leaf, None, T0, pid) == pid
    with pytest.raises(errors.PeerIDMismatch):
        tls.check_certificate(leaf, None, T0, Identity.generate().peer_id)


def test_secret_must_be_32_bytes(reactor):
    with pytest.raises(ValueError):
        tls.ClusterTLS(Ed25519PrivateKey.generate(), b"short", reactor)


# --- handshakes in memory ----------------------------------------------------------------


def test_same_secret_calls_work_in_both_directions(reactor, closer):
    pumps, peers = closer
    a, b = Peer(reactor, SECRET), Peer(reactor, SECRET)
    peers += [a, b]
    c, s, pump = connect(reactor, a, b)
    pumps.append(pump)
    assert a.client.connected_peers() == {b.peer_id}
    assert b.client.connected_peers() == {a.peer_id}
    # the connection is TLS 1.3
    assert c.transport.getHandle().get_protocol_version_name() == "TLSv1.3"

    to_b = a.client.call_command(b.peer_id, commands.ClusterVersion)
    to_a = b.client.call_command(a.peer_id, commands.ClusterVersion)
    settle(reactor, pump)
    assert outcome(to_b) == {"version": Version(f"v-{b.peer_id[-4:]}")}
    assert outcome(to_a) == {"version": Version(f"v-{a.peer_id[-4:]}")}
    # every handler sees the authenticated peer ID of the caller
    assert b.handled == [("Cluster.Version", a.peer_id)]
    assert a.handled == [("Cluster.Version", b.peer_id)]


@pytest.mark.allow_logged_errors
def test_different_secret_fails_on_both_sides_with_one_clear_line(reactor, rpc_log, closer):
    pumps, peers = closer
    a, b = Peer(reactor, SECRET), Peer(reactor, OTHER_SECRET)
    peers += [a, b]
    c, s, pump = connect(reactor, a, b)
    pumps.append(pump)
    assert isinstance(outcome(c.when_ready()), errors.ClusterSecretMismatch)
    assert not a.client.connected_peers() and not b.client.connected_peers()
    assert a.handled == [] and b.handled == []
    assert s.peer_id is None  # the server never authenticated anyone
    for peer in (a, b):
        lines = lines_of(rpc_log, peer)
        assert len(lines) == 1, lines
        assert "cluster secrets probably differ" in lines[0]
    assert len(rpc_events(rpc_log)) == 2  # nothing else was logged about it
    assert {e["log_level"].name for e in rpc_events(rpc_log)} == {"error"}


@pytest.mark.allow_logged_errors
def test_a_peer_without_secret_cannot_join_a_protected_cluster(reactor, rpc_log, closer):
    pumps, peers = closer
    a, b = Peer(reactor, b""), Peer(reactor, SECRET)
    peers += [a, b]
    c, s, pump = connect(reactor, a, b)
    pumps.append(pump)
    assert isinstance(outcome(c.when_ready()), errors.PeerAuthenticationFailed)
    assert a.handled == [] and b.handled == []
    for peer in (a, b):
        lines = lines_of(rpc_log, peer)
        assert len(lines) == 1 and "secrets probably differ" in lines[0], lines


def test_empty_secret_works_and_warns(reactor, rpc_log, closer):
    pumps, peers = closer
    a, b = Peer(reactor, b""), Peer(reactor, b"")
    peers += [a, b]
    assert a.tls.ca_certificate is None
    assert a.tls.warn_if_unprotected("/ip4/0.0.0.0/tcp/9096") is True
    warnings = [formatEvent(e) for e in rpc_events(rpc_log) if e["log_level"].name == "warn"]
    assert any("NOT protected" in w and "/ip4/0.0.0.0/tcp/9096" in w for w in warnings)
    c, s, pump = connect(reactor, a, b)
    pumps.append(pump)
    d = a.client.call_command(b.peer_id, commands.ClusterVersion)
    settle(reactor, pump)
    assert outcome(d)["version"].version.startswith("v-")
    assert b.handled == [("Cluster.Version", a.peer_id)]


def test_protected_peers_log_the_ca_fingerprint_instead_of_warning(reactor, rpc_log):
    peer = tls.ClusterTLS(Ed25519PrivateKey.generate(), SECRET, reactor)
    other = tls.ClusterTLS(Ed25519PrivateKey.generate(), SECRET, reactor)
    assert peer.warn_if_unprotected() is False
    [event] = rpc_events(rpc_log)
    assert event["log_level"].name == "info"
    assert peer.ca_fingerprint in formatEvent(event)
    assert peer.ca_fingerprint == other.ca_fingerprint
    assert peer.ca_fingerprint != tls.ClusterTLS(Ed25519PrivateKey.generate(), OTHER_SECRET, reactor).ca_fingerprint


@pytest.mark.allow_logged_errors
def test_misdial_is_refused_naming_both_peer_ids(reactor, rpc_log, closer):
    pumps, peers = closer
    a, b = Peer(reactor, SECRET), Peer(reactor, SECRET)
    expected = Identity.generate().peer_id  # the peer a believes listens there
    peers += [a, b]
    c, s, pump = connect(reactor, a, b, expected=expected)
    pumps.append(pump)
    error = outcome(c.when_ready())
    assert isinstance(error, errors.PeerIDMismatch)
    assert expected in str(error) and b.peer_id in str(error)
    assert b.handled == [] and not b.client.connected_peers()
    [line] = lines_of(rpc_log, a)
    assert expected in line and b.peer_id in line


class _RogueTLS(tls.ClusterTLS):
    """Presents a leaf that names the cluster CA as issuer but is signed by another key."""

    def _make_certificate(self, ca_key, lifetime):
        return forged_leaf(self._key, self._clock.seconds())


@pytest.mark.allow_logged_errors
@pytest.mark.parametrize("rogue_dials", [True, False])
def test_a_certificate_not_signed_by_the_ca_is_refused(reactor, rpc_log, closer, rogue_dials):
    pumps, peers = closer
    honest, rogue = Peer(reactor, SECRET), Peer(reactor, SECRET, tls_class=_RogueTLS)
    peers += [honest, rogue]
    dialler, acceptor = (rogue, honest) if rogue_dials else (honest, rogue)
    c, s, pump = connect(reactor, dialler, acceptor)
    pumps.append(pump)
    assert isinstance(outcome(c.when_ready()), errors.PeerAuthenticationFailed)
    assert honest.handled == [] and rogue.handled == []
    assert not honest.client.connected_peers()
    [line] = lines_of(rpc_log, honest)
    assert "not signed by this cluster's CA" in line


@pytest.mark.allow_logged_errors
@pytest.mark.parametrize("expired_dials", [True, False])
def test_an_expired_certificate_is_refused(reactor, rpc_log, closer, expired_dials):
    pumps, peers = closer
    old = Peer(reactor, SECRET, lifetime=datetime.timedelta(seconds=60))
    reactor.advance(120)
    fresh = Peer(reactor, SECRET)
    peers += [old, fresh]
    dialler, acceptor = (old, fresh) if expired_dials else (fresh, old)
    c, s, pump = connect(reactor, dialler, acceptor)
    pumps.append(pump)
    assert isinstance(outcome(c.when_ready()), errors.PeerAuthenticationFailed)
    assert old.handled == [] and fresh.handled == []
    [line] = lines_of(rpc_log, fresh)
    assert "expired" in line and old.peer_id in line


@pytest.mark.allow_logged_errors
def test_incompatible_protocol_versions_refuse_each_other(reactor, rpc_log, closer):
    pumps, peers = closer
    a, b = Peer(reactor, SECRET), Peer(reactor, SECRET)
    peers += [a, b]

    def newer(protocol):
        protocol.protocol_version = commands.PROTOCOL_VERSION + 1

    dialling, _, pump = connect(reactor, a, b, prepare=newer)
    pumps.append(pump)
    error = outcome(dialling.when_ready())
    assert isinstance(error, errors.IncompatibleProtocol)
    assert not a.client.connected_peers() and not b.client.connected_peers()
    newer, ours = str(commands.PROTOCOL_VERSION + 1), str(commands.PROTOCOL_VERSION)
    for peer in (a, b):
        [line] = lines_of(rpc_log, peer)
        assert f"version {newer}" in line and f"version {ours}" in line, line


def test_commands_before_the_version_exchange_are_refused(reactor, closer):
    pumps, peers = closer
    a, b = Peer(reactor, SECRET), Peer(reactor, SECRET)
    peers += [a, b]
    answers = []

    def rude(protocol):  # an impostor that authenticated but skips the version exchange
        def skip_hello():
            protocol.peer_id = b.peer_id
            protocol.callRemote(commands.ClusterVersion).addBoth(answers.append)

        protocol.handshakeCompleted = skip_hello

    dialling, _, pump = connect(reactor, a, b, prepare=rude)
    pumps.append(pump)
    [answer] = answers
    assert answer.check(errors.IncompatibleProtocol)
    assert "before the RPC version exchange" in str(answer.value)
    assert b.handled == []
    assert dialling.closed  # the acceptor closed the connection


def test_tls_1_2_is_refused(reactor, rpc_log, closer):
    from OpenSSL import SSL
    from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
    from twisted.internet.protocol import Factory, Protocol
    from twisted.protocols.tls import TLSMemoryBIOFactory
    from zope.interface import implementer

    pumps, peers = closer
    old, b = Peer(reactor, SECRET), Peer(reactor, SECRET)
    peers += [old, b]
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_max_proto_version(SSL.TLS1_2_VERSION)
    context.use_certificate(old.tls.certificate)  # a valid member certificate
    context.use_privatekey(old.identity.private_key)

    @implementer(IOpenSSLClientConnectionCreator)
    class Creator:
        def clientConnectionForTLS(self, tls_protocol):
            return SSL.Connection(context, None)

    address = IPv4Address("TCP", "127.0.0.1", 9096)
    client = TLSMemoryBIOFactory(Creator(), True, Factory.forProtocol(Protocol), clock=reactor).buildProtocol(address)
    server = b.client.server_factory().buildProtocol(address)
    accepting = server.wrappedProtocol
    c, s, pump = iosim.connectedServerAndClient(lambda: server, lambda: client, greet=False)
    pumps.append(pump)
    settle(reactor, pump)
    assert accepting.closed and accepting.peer_id is None
    assert b.handled == [] and not b.client.connected_peers()
    [line] = lines_of(rpc_log, b)
    assert "TLS handshake" in line and "does not speak the cluster transport" in line
