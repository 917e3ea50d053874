"""Mutual TLS between cluster peers, keyed by the cluster secret (DESIGN.md §6).

Membership by secret
--------------------
Every peer holding the 32-byte ``cluster.secret`` derives the same *cluster CA*:

- CA key: HKDF-SHA256 over the secret (no salt, info :data:`CA_KDF_INFO`, which
  carries a version so that a future scheme can change it) gives 32 bytes, used as
  an Ed25519 seed.
- CA certificate: fixed subject (:data:`CA_COMMON_NAME` plus the CA key's
  fingerprint, see :func:`ca_fingerprint`), fixed serial, fixed validity window,
  deterministic extensions; Ed25519 signatures are deterministic, so every peer
  builds the *byte-identical* certificate without exchanging it.  The fingerprint
  is logged at start: peers logging the same one hold the same secret.

At start each peer makes a *leaf certificate* for its own identity key (the key
behind its peer ID), signed by the CA, valid from the injected clock's "now"
(back-dated one hour for clock skew) for ten years.  Nothing extra is written to
disk: the secret and the identity key are all that is needed.

Verification (both directions, TLS 1.3 only, certificates required on both sides)
is done by :func:`check_certificate` against the injected clock, which is the
authority: it requires an Ed25519 key (the peer ID is derived from it), a signature
by the cluster CA, a validity window containing "now", and, on the dialling side,
the peer ID that was dialled (a *misdial* otherwise).  OpenSSL's own chain check
(the CA is the only trust anchor; peers send their leaf only, never a chain)
decides which TLS alert the other side sees: "unknown CA" for a certificate from
another cluster, since CAs of different secrets differ by name, which lets the
other side log that the secrets probably differ too.  TLS session resumption is
disabled so that every connection presents and verifies certificates.

Empty secret: there is no CA; each peer presents a self-signed leaf and any leaf
with an Ed25519 key is accepted (its peer ID is still bound to the key by the TLS
handshake's proof of possession).  :class:`ClusterTLS` logs a loud warning.

Why not Twisted's ``CertificateOptions``: it verifies host names, not peer IDs, and
has no hook for the per-connection "expected peer ID"; a small pair of connection
creators (:class:`_ServerCreator`, :class:`_ClientCreator`) over two pyOpenSSL
contexts does exactly what is needed.
"""

from __future__ import annotations

import datetime
import hashlib

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL, crypto
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
)
from twisted.logger import Logger
from zope.interface import implementer

from ipfscluster.errors import (
    CertificateRejected,
    ClusterSecretMismatch,
    PeerAuthenticationFailed,
    PeerIDMismatch,
)
from ipfscluster.identity import peer_id_from_public_key

log = Logger(namespace="rpc")

#: HKDF "info" (context) string; the trailing version changes with the scheme.
CA_KDF_INFO = b"ipfscluster rpc cluster-ca ed25519 v1"
CA_COMMON_NAME = "ipfscluster cluster CA v1"
CA_SERIAL = 1
CA_NOT_BEFORE = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
CA_NOT_AFTER = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)
#: A leaf is made at every start; this is how long it stays valid.
LEAF_LIFETIME = datetime.timedelta(days=3650)
#: Leaves are back-dated this much so a peer whose clock is behind accepts them.
LEAF_BACKDATE = datetime.timedelta(hours=1)

EMPTY_SECRET_WARNING = (
    "cluster.secret is empty: the cluster RPC is NOT protected, any peer that can reach "
    "{listen} may join and control this cluster. Set a 64-hex-character cluster.secret "
    "(the same on every peer) to protect it."
)

#: OpenSSL's SSL_MODE_NO_AUTO_CHAIN (ssl.h; not exported by pyOpenSSL): send only
#: our leaf, never a chain built from our trust store.
_MODE_NO_AUTO_CHAIN = 0x00000008

_SECRET_HINT = (
    "the cluster secrets probably differ: compare cluster.secret in service.json on both peers"
)


def derive_ca_key(secret: bytes) -> Ed25519PrivateKey:
    """The cluster CA's Ed25519 key derived from the (non-empty) cluster secret."""
    if not secret:
        raise ValueError("an empty cluster secret has no CA")
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=CA_KDF_INFO).derive(secret)
    return Ed25519PrivateKey.from_private_bytes(seed)


def ca_fingerprint(public_key: Ed25519PublicKey) -> str:
    """Short hex fingerprint of a cluster CA key: equal on peers with equal secrets.

    It is derived from the public key only, so it can be logged and compared
    between peers without revealing the secret.
    """
    return hashlib.sha256(_raw_public(public_key)).hexdigest()[:16]


def _ca_name(public_key: Ed25519PublicKey) -> x509.Name:
    # The fingerprint makes CAs of different secrets differ by name, so OpenSSL
    # reports "unable to get issuer" for another cluster's leaf and the other
    # side receives an "unknown CA" alert (its cue to say the secrets differ).
    name = f"{CA_COMMON_NAME} {ca_fingerprint(public_key)}"
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])


def ca_certificate(secret: bytes) -> x509.Certificate:
    """The cluster CA certificate: identical bytes on every peer with this secret."""
    key = derive_ca_key(secret)
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_ca_name(public))
        .issuer_name(_ca_name(public))
        .public_key(public)
        .serial_number(CA_SERIAL)
        .not_valid_before(CA_NOT_BEFORE)
        .not_valid_after(CA_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    return builder.sign(key, algorithm=None)


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def leaf_certificate(
    identity_key: Ed25519PrivateKey,
    now: float,
    ca_key: Ed25519PrivateKey | None = None,
    lifetime: datetime.timedelta = LEAF_LIFETIME,
) -> x509.Certificate:
    """A certificate for ``identity_key``, valid from ``now`` (POSIX seconds).

    Signed by ``ca_key`` (the cluster CA), or self-signed when ``ca_key`` is None
    (empty cluster secret).  The subject's common name is the peer ID; the serial is
    derived from the key and the start time, so equal inputs give equal bytes.
    """
    public = identity_key.public_key()
    raw = _raw_public(public)
    peer_id = peer_id_from_public_key(raw)
    start = datetime.datetime.fromtimestamp(now, datetime.timezone.utc) - LEAF_BACKDATE
    start = start.replace(microsecond=0)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, peer_id)])
    serial = int.from_bytes(hashlib.sha256(raw + repr(now).encode()).digest()[:16], "big") >> 1
    signer = ca_key if ca_key is not None else identity_key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(_ca_name(ca_key.public_key()) if ca_key is not None else subject)
        .public_key(public)
        .serial_number(serial or 1)
        .not_valid_before(start)
        .not_valid_after(start + LEAF_BACKDATE + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    if ca_key is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    return builder.sign(signer, algorithm=None)


def peer_id_of_certificate(cert: x509.Certificate) -> str:
    """The peer ID of the Ed25519 key in ``cert``.

    :raises CertificateRejected: the key is not an Ed25519 key.
    """
    public = cert.public_key()
    if not isinstance(public, Ed25519PublicKey):
        raise CertificateRejected(
            "the peer's certificate holds a %s key, not an Ed25519 identity key; "
            "it is not an ipfscluster peer" % type(public).__name__
        )
    return peer_id_from_public_key(_raw_public(public))


def check_certificate(
    cert: x509.Certificate,
    ca: x509.Certificate | None,
    now: float,
    expected_peer: str | None = None,
    where: str = "",
) -> str:
    """Check a leaf presented by the other side; return its peer ID.

    ``ca`` is the cluster CA (None: empty secret, no CA check); ``now`` the injected
    clock's time; ``expected_peer`` the peer ID dialled (None when accepting);
    ``where`` describes the remote address for messages.

    :raises ClusterSecretMismatch: not signed by the cluster CA.
    :raises CertificateRejected: not an Ed25519 key, or outside its validity.
    :raises PeerIDMismatch: the key is not the one of ``expected_peer``.
    """
    peer_id = peer_id_of_certificate(cert)
    at = f" at {where}" if where else ""
    if ca is not None:
        try:
            if cert.issuer != ca.subject:
                raise InvalidSignature()
            ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes)
        except InvalidSignature:
            raise ClusterSecretMismatch(
                f"the certificate of peer {peer_id}{at} is not signed by this cluster's CA: "
                f"{_SECRET_HINT}",
                peer_id=peer_id,
            ) from None
    moment = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
        state = "expired" if moment > cert.not_valid_after_utc else "not valid yet"
        raise CertificateRejected(
            f"the certificate of peer {peer_id}{at} is {state} (valid from "
            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S} to "
            f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC, now {moment:%Y-%m-%d %H:%M:%S}): "
            "check the clocks of both machines, then restart that peer to renew it",
            peer_id=peer_id,
        )
    if expected_peer is not None and peer_id != expected_peer:
        raise PeerIDMismatch(
            f"dialled peer {expected_peer}{at} but reached peer {peer_id}: "
            f"the address recorded for {expected_peer} is wrong (check cluster.peers and "
            "cluster.bootstrap)",
            expected=expected_peer,
            reached=peer_id,
        )
    return peer_id


class HandshakeState:
    """Per-connection verification state, kept on the TLS protocol (``rpc_handshake``).

    (Twisted uses the SSL connection's app data for the TLS protocol itself.)

    ``peer_id`` is set once the other side's certificate passed
    :func:`check_certificate`; ``rejection`` holds the error when it did not.
    """

    def __init__(self, tls_protocol, expected_peer: str | None):
        self.tls_protocol = tls_protocol
        self.expected_peer = expected_peer
        self.peer_id: str | None = None
        self.rejection: PeerAuthenticationFailed | None = None
        self.checked = False


def handshake_state(tls_transport) -> HandshakeState | None:
    """The :class:`HandshakeState` of a connection, from its TLS transport."""
    return tls_transport.__dict__.get("rpc_handshake") if tls_transport is not None else None


def _where(tls_protocol) -> str:
    try:
        peer = tls_protocol.transport.getPeer()
        return f"{peer.host}:{peer.port}"
    except AttributeError:
        return ""


class ClusterTLS:
    """The TLS material and policy of one peer.

    :param private_key: the peer's Ed25519 identity key (``identity.private_key``).
    :param secret: the 32-byte cluster secret, or ``b""`` (unprotected; warned).
    :param clock: an ``IReactorTime``; "now" for certificates and checks.
    :param lifetime: validity of the leaf made now.

    ``peer_id`` is this peer's ID, ``certificate`` its leaf, ``ca_certificate`` the
    cluster CA (None for an empty secret).  :meth:`server_creator` and
    :meth:`client_creator` give the connection creators for
    :class:`twisted.protocols.tls.TLSMemoryBIOFactory`.
    """

    def __init__(self, private_key: Ed25519PrivateKey, secret: bytes, clock, *, lifetime=LEAF_LIFETIME):
        if secret and len(secret) != 32:
            raise ValueError("the cluster secret must be 32 bytes (or empty)")
        self._key = private_key
        self._clock = clock
        self.secret_protected = bool(secret)
        self.peer_id = peer_id_from_public_key(_raw_public(private_key.public_key()))
        self.ca_certificate = ca_certificate(secret) if secret else None
        ca_key = derive_ca_key(secret) if secret else None
        self.certificate = self._make_certificate(ca_key, lifetime)
        self._server_context = self._context(server=True)
        self._client_context = self._context(server=False)

    def _make_certificate(self, ca_key, lifetime) -> x509.Certificate:
        """This peer's leaf (tests override it to present other certificates)."""
        return leaf_certificate(self._key, self._clock.seconds(), ca_key, lifetime)

    @property
    def ca_fingerprint(self) -> str | None:
        """Fingerprint of the cluster CA (None without a secret); see :func:`ca_fingerprint`."""
        if self.ca_certificate is None:
            return None
        return ca_fingerprint(self.ca_certificate.public_key())

    def warn_if_unprotected(self, listen: str = "its listen address") -> bool:
        """Log the loud empty-secret warning; return True when it was logged.

        With a secret, log the CA fingerprint instead (info): peers that log the
        same fingerprint hold the same secret.
        """
        if self.secret_protected:
            log.info(
                "cluster RPC protected by the cluster secret (cluster CA fingerprint "
                "{fingerprint}; every peer of this cluster logs the same one)",
                fingerprint=self.ca_fingerprint,
            )
            return False
        log.warn(EMPTY_SECRET_WARNING, listen=listen)
        return True

    def _context(self, server: bool) -> SSL.Context:
        ctx = SSL.Context(SSL.TLS_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
        ctx.set_options(SSL.OP_NO_TICKET | SSL.OP_NO_COMPRESSION)
        ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        ctx.set_mode(_MODE_NO_AUTO_CHAIN)
        ctx.use_certificate(self.certificate)
        ctx.use_privatekey(self._key)
        ctx.check_privatekey()
        if self.ca_certificate is not None:
            ctx.get_cert_store().add_cert(crypto.X509.from_cryptography(self.ca_certificate))
        mode = SSL.VERIFY_PEER | (SSL.VERIFY_FAIL_IF_NO_PEER_CERT if server else 0)
        ctx.set_verify(mode, self._verify)
        return ctx

    def _verify(self, connection, cert, errno, depth, preverify_ok) -> bool:
        """pyOpenSSL verify callback; our check is authoritative for the leaf."""
        state: HandshakeState = connection.get_app_data().rpc_handshake
        if depth > 0:
            # Peers send no chain; if one is sent anyway, only our own CA may appear
            # in it (the leaf itself is checked against our CA key below).
            if self.ca_certificate is None or cert.to_cryptography() == self.ca_certificate:
                return True
            if state.rejection is None:
                state.checked = True
                state.rejection = ClusterSecretMismatch(
                    f"the peer at {_where(state.tls_protocol) or '?'} presented a certificate "
                    f"chain of another cluster CA: {_SECRET_HINT}"
                )
            return False
        if not state.checked:
            state.checked = True
            try:
                state.peer_id = check_certificate(
                    cert.to_cryptography(),
                    self.ca_certificate,
                    self._clock.seconds(),
                    state.expected_peer,
                    _where(state.tls_protocol),
                )
            except PeerAuthenticationFailed as err:
                state.rejection = err
        return state.peer_id is not None

    def server_creator(self) -> IOpenSSLServerConnectionCreator:
        """Connection creator for accepted connections (any cluster member)."""
        return _ServerCreator(self._server_context)

    def client_creator(self, expected_peer: str) -> IOpenSSLClientConnectionCreator:
        """Connection creator for dialling ``expected_peer`` (misdial check)."""
        return _ClientCreator(self._client_context, expected_peer)


@implementer(IOpenSSLServerConnectionCreator)
class _ServerCreator:
    def __init__(self, context):
        self._context = context

    def serverConnectionForTLS(self, tlsProtocol):
        tlsProtocol.rpc_handshake = HandshakeState(tlsProtocol, None)
        return SSL.Connection(self._context, None)


@implementer(IOpenSSLClientConnectionCreator)
class _ClientCreator:
    def __init__(self, context, expected_peer):
        self._context = context
        self._expected = expected_peer

    def clientConnectionForTLS(self, tlsProtocol):
        tlsProtocol.rpc_handshake = HandshakeState(tlsProtocol, self._expected)
        return SSL.Connection(self._context, None)


def _openssl_reasons(error) -> list[str]:
    """The reason strings of a pyOpenSSL error (lower case)."""
    reasons = []
    for item in getattr(error, "args", ())[:1]:
        if isinstance(item, list):
            for entry in item:
                if isinstance(entry, tuple) and entry:
                    reasons.append(str(entry[-1]).lower())
    if not reasons and error is not None:
        reasons.append(str(error).lower())
    return reasons


def explain_handshake_failure(state: HandshakeState | None, reason, where: str) -> PeerAuthenticationFailed:
    """Turn the way a connection ended before it was authenticated into a typed error.

    ``reason`` is the exception that ended the connection (usually an
    ``OpenSSL.SSL.Error``).  The message is the one line to log: it names both peer
    IDs for a misdial and says that the secrets probably differ when this side
    refused the other's certificate as not from its CA, or the other side answered
    with an "unknown CA" alert.
    """
    if state is not None and state.rejection is not None:
        return state.rejection
    text = "; ".join(_openssl_reasons(reason)) or "connection closed"
    at = f" with {where}" if where else ""
    if "unknown ca" in text or "unknown_ca" in text:
        return ClusterSecretMismatch(
            f"TLS handshake{at} failed: the other peer does not accept our certificate "
            f"(OpenSSL: {text}); {_SECRET_HINT}"
        )
    if "expired" in text:
        return CertificateRejected(
            f"TLS handshake{at} failed: the other peer says our certificate expired "
            f"(OpenSSL: {text}); check the clocks, then restart this peer to renew it"
        )
    if "alert" in text:
        return PeerAuthenticationFailed(
            f"TLS handshake{at} failed: the other side refused it (OpenSSL: {text}); its log "
            "says why (a misdialled peer ID, a certificate outside its validity, another release)"
        )
    return PeerAuthenticationFailed(
        f"TLS handshake{at} failed (OpenSSL: {text}): the other side does not speak the "
        "cluster transport (TLS 1.3 with Ed25519 peer certificates); is it an ipfscluster "
        "peer of the same release?"
    )
