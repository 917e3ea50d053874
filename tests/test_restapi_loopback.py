"""The REST API on a real socket (127.0.0.1, port 0): HTTP and HTTPS.

A raw client reads the exact bytes, so the ``X-Stream-Error`` trailer is checked
as it leaves the server; the certificate is a self-signed one made by the test.
"""

from __future__ import annotations

import datetime
import ipaddress
import time

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import defer, reactor, ssl, task
from twisted.internet.endpoints import SSL4ClientEndpoint, TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol

from ipfscluster.api.rest.server import RestAPI
from ipfscluster.config.restapi import RestAPIConfig
from ipfscluster.errors import ClusterError
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.testing.fakecluster import FakeCluster, synthetic_cid

from tests.restapi_wire import parse_response

pytestmark = pytest.mark.loopback

LISTEN = Multiaddr.parse("/ip4/127.0.0.1/tcp/0")
REQUEST = b"GET /allocations HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


class RawClient(Protocol):
    """Sends ``request`` and collects every byte until the connection closes."""

    def __init__(self, request: bytes):
        self.request = request
        self.data = b""
        self.done = defer.Deferred()

    def connectionMade(self):
        self.transport.write(self.request)

    def dataReceived(self, data):
        self.data += data

    def connectionLost(self, reason):
        self.done.callback(self.data)


async def until(condition, timeout=5.0):
    """Poll ``condition`` every 10 ms until it holds; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await task.deferLater(reactor, 0.01, lambda: None)


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_self_signed(folder) -> None:
    """Write ``tls/cert.pem`` and ``tls/key.pem`` (EC P-256, for 127.0.0.1) in ``folder``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    tls = folder / "tls"
    tls.mkdir()
    (tls / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tls / "key.pem").write_bytes(_pem_key(key))


@pytest.fixture
def cluster():
    fake = FakeCluster(reactor)
    for i in range(3):
        fake._pin(synthetic_cid(i), None)
    fake.fail_after["pins"] = (2, ClusterError("state read failed"))
    return fake


@pytest.fixture
def started():
    apis = []

    async def start(api):
        await api.startService()
        apis.append(api)
        return api

    yield start
    for api in apis:
        pytest_twisted.blockon(defer.ensureDeferred(_stop(api)))


async def _stop(api):
    if api.running:
        await api.stopService()


async def fetch(endpoint, request=REQUEST) -> bytes:
    client = RawClient(request)
    await connectProtocol(endpoint, client)
    return await client.done


def assert_stream_with_trailer_error(raw: bytes) -> None:
    status, headers, body, trailers = parse_response(raw)
    assert status == 200 and headers[b"content-type"] == b"application/json"
    assert len(body.splitlines()) == 2
    assert trailers == {b"x-stream-error": b"state read failed"}
    assert raw.endswith(b"\r\n0\r\nX-Stream-Error: state read failed\r\n\r\n")


@pytest_twisted.ensureDeferred
async def test_http_trailer_on_the_wire(cluster, started):
    api = await started(RestAPI(RestAPIConfig(listen_multiaddress=LISTEN), cluster, reactor))
    [address] = api.addresses()
    assert address.host == "127.0.0.1" and address.port > 0
    raw = await fetch(TCP4ClientEndpoint(reactor, "127.0.0.1", address.port))
    assert_stream_with_trailer_error(raw)


@pytest_twisted.ensureDeferred
async def test_https_trailer_on_the_wire_and_no_plain_http(cluster, started, tmp_path):
    write_self_signed(tmp_path)
    config = RestAPIConfig(listen_multiaddress=LISTEN, ssl_cert_file="tls/cert.pem", ssl_key_file="tls/key.pem",
                           basic_auth_credentials={"admin": "pw"})
    api = await started(RestAPI(config, cluster, reactor, str(tmp_path)))
    port = api.addresses()[0].port
    tls = SSL4ClientEndpoint(reactor, "127.0.0.1", port, ssl.CertificateOptions())
    raw = await fetch(tls)
    assert parse_response(raw)[0] == 401
    authorized = REQUEST.replace(b"\r\n\r\n", b"\r\nAuthorization: Basic YWRtaW46cHc=\r\n\r\n")
    assert_stream_with_trailer_error(await fetch(tls, authorized))
    plain = await fetch(TCP4ClientEndpoint(reactor, "127.0.0.1", port), authorized)
    assert not plain.startswith(b"HTTP/")


@pytest_twisted.ensureDeferred
async def test_stop_service_closes_open_connections(started):
    cluster = FakeCluster(reactor)
    cluster.synthetic = 10
    cluster.gate = (5, defer.Deferred)  # the source never answers
    api = await started(RestAPI(RestAPIConfig(listen_multiaddress=LISTEN), cluster, reactor))
    port = api.addresses()[0].port
    client = RawClient(REQUEST)
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
    idle = RawClient(b"")
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), idle)
    await until(lambda: cluster.open_streams == 1 and len(api._connections) == 2)
    await api.stopService()
    assert await client.done == b"" and await idle.done == b""
    assert cluster.open_streams == 0 and api.addresses()


@pytest_twisted.ensureDeferred
async def test_unreadable_certificate_fails_start(cluster, tmp_path):
    (tmp_path / "cert.pem").write_bytes(b"not a certificate")
    (tmp_path / "key.pem").write_bytes(b"not a key")
    config = RestAPIConfig(listen_multiaddress=LISTEN, ssl_cert_file="cert.pem", ssl_key_file="key.pem")
    api = RestAPI(config, cluster, reactor, str(tmp_path))
    with pytest.raises(ClusterError, match="cannot load the TLS certificate .*cert.pem"):
        await api.startService()
    assert not api.running and api.addresses() == []
    write_self_signed(tmp_path)  # a valid certificate, with the key of another one
    (tmp_path / "tls" / "key.pem").write_bytes(_pem_key(ec.generate_private_key(ec.SECP256R1())))
    config = RestAPIConfig(listen_multiaddress=LISTEN, ssl_cert_file="tls/cert.pem", ssl_key_file="tls/key.pem")
    with pytest.raises(ClusterError, match="key.pem: .*; check ssl_cert_file and ssl_key_file"):
        await RestAPI(config, cluster, reactor, str(tmp_path)).startService()


@pytest_twisted.ensureDeferred
async def test_large_add_upload_over_a_real_socket(cluster, started):
    # the body limit of /add is chosen before twisted has set request.path: a
    # 300 kB upload must reach the handler whole (not be cut to the 64 KiB limit)
    from ipfscluster.testing.fakeipfs.multipart import encode_multipart

    api = await started(RestAPI(RestAPIConfig(listen_multiaddress=LISTEN), cluster, reactor))
    port = api.addresses()[0].port
    data = bytes(range(256)) * 1200  # 300 kB
    body, content_type = encode_multipart([("big.bin", data)])
    request = (b"POST /add?stream-channels=false HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
               b"Content-Type: " + content_type.encode() + b"\r\nContent-Length: "
               + str(len(body)).encode() + b"\r\n\r\n" + body)
    raw = await fetch(TCP4ClientEndpoint(reactor, "127.0.0.1", port), request)
    status = parse_response(raw)[0]
    assert status == 200, raw[:300]
    assert b"big.bin" in raw
