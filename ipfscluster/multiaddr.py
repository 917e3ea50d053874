"""Multiaddresses: parse, validate, print, and turn into Twisted endpoint strings.

A multiaddress is a path of ``/protocol/value`` pairs such as
``/ip4/127.0.0.1/tcp/9096/p2p/12D3KooW…``.  This module supports the protocols a
cluster peer uses: ``ip4``, ``ip6``, ``dns``, ``dns4``, ``dns6``, ``tcp``, ``udp``
and ``p2p`` (``ipfs`` is accepted as an old name of ``p2p`` and printed as ``p2p``).
Every value is validated and kept in canonical form (IP addresses as
:mod:`ipaddress` prints them, ports as plain decimals, peer IDs as base58btc), so two
spellings of one address compare equal.  The binary form uses the standard multicodec
protocol codes (ip4 4, tcp 6, dns 53, dns4 54, dns6 55, ip6 41, udp 273, p2p 421).

Why not the ``multiaddr`` package from PyPI: it depends on trio (another async
framework), and a cluster peer needs only these eight protocols.

Rules beyond per-value validation: a ``/p2p/`` part may only come last (relay
addresses are not supported).

Errors are :class:`ipfscluster.errors.InvalidMultiaddr`, with messages such as
``invalid multiaddress "/ip4/1.2.3/tcp/1": bad IPv4 address "1.2.3"``.
"""

from __future__ import annotations

import ipaddress
import re

import attrs

from ipfscluster.encoding import varint_decode, varint_encode
from ipfscluster.errors import InvalidMultiaddr, InvalidPeerID
from ipfscluster.identity import peer_id_from_bytes, peer_id_to_bytes, validate_peer_id

__all__ = ["Multiaddr", "PROTOCOL_CODES"]

#: protocol name -> multicodec code
PROTOCOL_CODES = {
    "ip4": 0x04,
    "tcp": 0x06,
    "dns": 0x35,
    "dns4": 0x36,
    "dns6": 0x37,
    "ip6": 0x29,
    "udp": 0x0111,
    "p2p": 0x01A5,
}
_NAMES_BY_CODE = {code: name for name, code in PROTOCOL_CODES.items()}
_ALIASES = {"ipfs": "p2p"}
_HOSTS = ("ip4", "ip6", "dns", "dns4", "dns6")
_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\Z")
_SUPPORTED = "ip4, ip6, dns, dns4, dns6, tcp, udp, p2p (ipfs)"


# --- values: text -> canonical text, and to/from bytes ------------------------------


def _ip4(value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ValueError(f'bad IPv4 address "{value}"') from None


def _ip6(value: str) -> str:
    if "%" in value:  # ipaddress accepts scope ids; multiaddrs put them in /ip6zone/
        raise ValueError(f'bad IPv6 address "{value}" (zones such as %eth0 are not supported)')
    try:
        return str(ipaddress.IPv6Address(value))
    except ValueError:
        raise ValueError(f'bad IPv6 address "{value}"') from None


def _port(value: str) -> str:
    if not (value.isascii() and value.isdigit()) or len(value) > 5 or int(value) > 65535:
        raise ValueError(f'bad port "{value}" (expected 0 to 65535)')
    return str(int(value))


def _dns(value: str) -> str:
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253 or not all(_DNS_LABEL.match(label) for label in name.split(".")):
        raise ValueError(f'bad DNS name "{value}"')
    return value


def _p2p(value: str) -> str:
    try:
        return validate_peer_id(value)
    except InvalidPeerID as e:
        raise ValueError(e.message) from None


_CANONICAL = {
    "ip4": _ip4,
    "ip6": _ip6,
    "dns": _dns,
    "dns4": _dns,
    "dns6": _dns,
    "tcp": _port,
    "udp": _port,
    "p2p": _p2p,
}


def _value_to_bytes(name: str, value: str) -> bytes:
    if name == "ip4" or name == "ip6":
        return ipaddress.ip_address(value).packed
    if name == "tcp" or name == "udp":
        return int(value).to_bytes(2, "big")
    raw = peer_id_to_bytes(value) if name == "p2p" else value.encode("ascii")
    return varint_encode(len(raw)) + raw


def _value_from_bytes(name: str, buf: bytes, pos: int) -> tuple[str, int]:
    """Decode the value of protocol ``name`` at ``buf[pos:]``; ValueError if short."""
    fixed = {"ip4": 4, "ip6": 16, "tcp": 2, "udp": 2}.get(name)
    if fixed is not None:
        raw = buf[pos : pos + fixed]
        if len(raw) != fixed:
            raise ValueError(f"{name} needs {fixed} bytes, {len(raw)} left")
        if name == "tcp" or name == "udp":
            return str(int.from_bytes(raw, "big")), pos + fixed
        return str(ipaddress.ip_address(raw)), pos + fixed
    length, pos = varint_decode(buf, pos)
    raw = buf[pos : pos + length]
    if len(raw) != length:
        raise ValueError(f"{name} value needs {length} bytes, {len(raw)} left")
    if name == "p2p":
        try:
            return peer_id_from_bytes(raw), pos + length
        except InvalidPeerID as e:
            raise ValueError(e.message) from None
    try:
        return _dns(raw.decode("ascii")), pos + length
    except UnicodeDecodeError:
        raise ValueError(f"bad DNS name {raw!r}") from None


def _check_structure(components) -> None:
    for i, (name, _) in enumerate(components):
        if name == "p2p" and i != len(components) - 1:
            raise ValueError("the /p2p/ part must come last")


def _validate_components(instance, attribute, components) -> None:
    """attrs validator: every component is a (known name, canonical value) pair."""
    try:
        for name, value in components:
            if name not in _CANONICAL or _CANONICAL[name](value) != value:
                raise ValueError(f"/{name}/{value} is not a canonical component")
        _check_structure(components)
    except (ValueError, TypeError) as e:
        raise InvalidMultiaddr(f"invalid multiaddress components {components!r}: {e}") from None


def _escape(value: str) -> str:
    """Escape a value for a Twisted endpoint description."""
    return value.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


@attrs.frozen
class Multiaddr:
    """A validated multiaddress; equal when its canonical components are equal.

    Build one with :meth:`parse`, :meth:`from_bytes` or :meth:`from_host_port`.
    ``components`` is a tuple of ``(protocol name, canonical value)`` pairs.
    """

    components: tuple[tuple[str, str], ...] = attrs.field(
        converter=lambda c: tuple(tuple(pair) for pair in c), validator=_validate_components
    )

    # --- construction -----------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> Multiaddr:
        """Parse multiaddress text such as ``/ip4/127.0.0.1/tcp/9096/p2p/12D3KooW…``.

        Returns the Multiaddr (``/ipfs/`` becomes ``/p2p/``; a trailing ``/`` is
        ignored).  Raises InvalidMultiaddr quoting ``text`` and saying what is wrong.
        """
        if isinstance(text, Multiaddr):
            return text
        if not isinstance(text, str):
            raise InvalidMultiaddr(
                f"invalid multiaddress {text!r}: expected a string, got {type(text).__name__}",
                value=text,
            )
        try:
            components = _parse_components(text)
        except ValueError as e:
            raise InvalidMultiaddr(f'invalid multiaddress "{text}": {e}', value=text) from None
        return cls(components)

    @classmethod
    def from_bytes(cls, b: bytes) -> Multiaddr:
        """Decode a binary multiaddress.  Raises InvalidMultiaddr."""
        if not isinstance(b, (bytes, bytearray, memoryview)):
            raise InvalidMultiaddr(
                f"invalid binary multiaddress {b!r}: expected bytes, got {type(b).__name__}"
            )
        b = bytes(b)
        components = []
        pos = 0
        try:
            if not b:
                raise ValueError("no bytes")
            while pos < len(b):
                code, pos = varint_decode(b, pos)
                name = _NAMES_BY_CODE.get(code)
                if name is None:
                    raise ValueError(f"unsupported protocol code {hex(code)}")
                value, pos = _value_from_bytes(name, b, pos)
                components.append((name, value))
            _check_structure(components)
        except ValueError as e:
            raise InvalidMultiaddr(f"invalid binary multiaddress {b.hex()!r}: {e}") from None
        return cls(components)

    @classmethod
    def from_host_port(cls, host: str, port: int, transport: str = "tcp") -> Multiaddr:
        """Return ``/ip4/…``, ``/ip6/…`` or ``/dns/…`` for ``host`` followed by
        ``/tcp/<port>`` (or ``/udp/``).  Raises InvalidMultiaddr for a bad host or
        port."""
        if transport not in ("tcp", "udp"):
            raise InvalidMultiaddr(f"invalid transport {transport!r}: expected tcp or udp")
        if not isinstance(host, str):
            raise InvalidMultiaddr(
                f"invalid host {host!r}: expected a string, got {type(host).__name__}"
            )
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            kind = "dns"
        else:
            kind = "ip4" if address.version == 4 else "ip6"
        try:
            if not isinstance(port, int) or isinstance(port, bool):
                raise ValueError(f"bad port {port!r} (expected an integer 0 to 65535)")
            components = [(kind, _CANONICAL[kind](str(host))), (transport, _port(str(port)))]
        except ValueError as e:
            raise InvalidMultiaddr(
                f"invalid host and port {host!r}, {port!r}: {e}", value=(host, port)
            ) from None
        return cls(components)

    # --- reading ----------------------------------------------------------------

    def __str__(self) -> str:
        return "".join(f"/{name}/{value}" for name, value in self.components)

    def __repr__(self) -> str:
        return f"Multiaddr.parse({str(self)!r})"

    def to_bytes(self) -> bytes:
        """Return the binary multiaddress (standard protocol codes)."""
        return b"".join(
            varint_encode(PROTOCOL_CODES[name]) + _value_to_bytes(name, value)
            for name, value in self.components
        )

    @property
    def protocols(self) -> tuple[str, ...]:
        """The protocol names, in order (``("ip4", "tcp", "p2p")``)."""
        return tuple(name for name, _ in self.components)

    def _first(self, names) -> tuple[str, str] | None:
        return next(((n, v) for n, v in self.components if n in names), None)

    @property
    def peer_id(self) -> str | None:
        """The peer ID of the ``/p2p/`` part, or None."""
        found = self._first(("p2p",))
        return found[1] if found else None

    @property
    def host(self) -> str | None:
        """The IP address or DNS name of the first ip4/ip6/dns* part, or None."""
        found = self._first(_HOSTS)
        return found[1] if found else None

    @property
    def port(self) -> int | None:
        """The port of the first tcp/udp part, or None."""
        found = self._first(("tcp", "udp"))
        return int(found[1]) if found else None

    @property
    def transport(self) -> str | None:
        """``"tcp"``, ``"udp"`` or None."""
        found = self._first(("tcp", "udp"))
        return found[0] if found else None

    # --- changing ---------------------------------------------------------------

    def with_peer_id(self, peer_id: str) -> Multiaddr:
        """Return this address ending in ``/p2p/<peer_id>`` (replacing any peer ID).

        Raises InvalidMultiaddr if ``peer_id`` is not a valid peer ID.
        """
        try:
            canonical = validate_peer_id(peer_id)
        except InvalidPeerID as e:
            raise InvalidMultiaddr(f"cannot add /p2p/ to {self}: {e}") from None
        return attrs.evolve(self, components=self.without_peer_id().components + (("p2p", canonical),))

    def without_peer_id(self) -> Multiaddr:
        """Return this address without its ``/p2p/`` part."""
        if self.peer_id is None:
            return self
        return attrs.evolve(self, components=tuple(c for c in self.components if c[0] != "p2p"))

    # --- Twisted endpoints ------------------------------------------------------

    def _tcp_parts(self, purpose: str) -> tuple[str, str, int]:
        found = self._first(_HOSTS)
        if self.transport != "tcp" or found is None:
            raise InvalidMultiaddr(
                f'multiaddress "{self}" cannot be used to {purpose}: it needs an IP '
                "address or DNS name and a /tcp/ port"
            )
        return found[0], found[1], self.port

    def tcp_endpoint_string(self) -> str:
        """Return the Twisted server endpoint description that listens here, e.g.
        ``tcp:port=9096:interface=0.0.0.0`` (``tcp6:`` for IPv6 addresses).

        Raises InvalidMultiaddr if the address is not ip4/ip6 + tcp.
        """
        kind, host, port = self._tcp_parts("listen")
        if kind not in ("ip4", "ip6"):
            raise InvalidMultiaddr(
                f'multiaddress "{self}" cannot be used to listen: use an IP address '
                f"(/ip4/ or /ip6/), not a DNS name"
            )
        scheme = "tcp6" if kind == "ip6" else "tcp"
        return f"{scheme}:port={port}:interface={_escape(host)}"

    def client_endpoint_string(self) -> str:
        """Return the Twisted client endpoint description that connects here, e.g.
        ``tcp:host=127.0.0.1:port=9096`` (IPv6 colons escaped as ``\\:``).  DNS names
        are passed through; Twisted's ``tcp:`` client resolves them to IPv4, so use an
        IP address for IPv6-only peers.

        Raises InvalidMultiaddr if the address is not ip4/ip6/dns* + tcp.
        """
        _, host, port = self._tcp_parts("connect")
        return f"tcp:host={_escape(host.rstrip('.'))}:port={port}"


def _parse_components(text: str) -> list[tuple[str, str]]:
    if not text or text == "/":
        raise ValueError("empty multiaddress")
    if text[0] != "/":
        raise ValueError('a multiaddress starts with "/"')
    parts = text[1:].split("/")
    if parts[-1] == "":
        parts.pop()  # one trailing slash
    components = []
    i = 0
    while i < len(parts):
        raw_name = parts[i]
        name = _ALIASES.get(raw_name, raw_name)
        check = _CANONICAL.get(name)
        if check is None:
            if not raw_name:
                raise ValueError('empty protocol name (a "//" in the address)')
            raise ValueError(f'unsupported protocol "{raw_name}" (supported: {_SUPPORTED})')
        if i + 1 >= len(parts) or parts[i + 1] == "":
            raise ValueError(f'protocol "{raw_name}" needs a value')
        components.append((name, check(parts[i + 1])))
        i += 2
    _check_structure(components)
    return components
