"""``cluster``: the peer's identity, membership and periodic loops (§3.1 and §3.6).

- ``id`` / ``private_key``: the peer's libp2p peer ID (``12D3KooW…``) and the base64
  libp2p-protobuf Ed25519 private key; both required, and the ID must belong to the
  key (:class:`ipfscluster.errors.IdentityMismatch` otherwise).  The loaded
  :class:`ipfscluster.identity.Identity` is ``config.identity``.
- ``peername``: defaults to the host name.
- ``secret``: 32 bytes written as 64 hex characters, or empty.  Empty means the
  cluster RPC is not protected; the peer warns loudly at start
  (:func:`ipfscluster.config.service.startup_warnings`).  Kept as ``bytes``.
- ``peers`` / ``bootstrap``: multiaddresses ending in ``/p2p/<peer ID>``.
- ``replication_factor_min`` / ``_max``: -1/-1 (pin everywhere) or two positive
  numbers with min ≤ max.  The 0.3.0 key ``replication_factor`` is still read and
  sets both (it may not be combined with the new keys); a 0 is read as -1 with a
  warning, as 0.3.0 did.
"""

from __future__ import annotations

import binascii
import os
import socket

import attrs
from twisted.logger import Logger

from ipfscluster.config.base import (
    BoolKind,
    DurationKind,
    IntKind,
    Kind,
    ListKind,
    MultiaddrKind,
    Section,
    StrKind,
    invalid,
    kind_of,
    multiaddr_factory,
    reason,
    setting,
)
from ipfscluster.config.durations import Duration
from ipfscluster.errors import ConfigError, IdentityMismatch, InvalidKey, InvalidPeerID
from ipfscluster.identity import Identity, load_identity
from ipfscluster.multiaddr import Multiaddr

log = Logger(namespace="config")

SECRET_BYTES = 32

_SECRET_RULE = f"it must be {SECRET_BYTES} bytes written as {2 * SECRET_BYTES} hex characters, or empty"


def parse_secret(text: str, key: str = "cluster.secret") -> bytes:
    """Decode a cluster secret: 64 hex characters → 32 bytes, "" → b"".

    The secret itself never appears in the error message, only its length.  The
    message starts with ``<key>: `` unless ``key`` is empty.

    :raises ConfigError: naming ``key`` and the secret's length otherwise.
    """
    if not isinstance(text, str):
        raise invalid(key, text, f"is not a string; {_SECRET_RULE}")
    text = text.strip()
    prefix = f"{key}: " if key else ""
    try:
        secret = binascii.unhexlify(text)
    except (binascii.Error, ValueError):
        if len(text) % 2:
            problem = f"the secret is {len(text)} hex characters, an odd number"
        else:
            problem = f"the secret ({len(text)} characters) is not hexadecimal"
        raise ConfigError(f"{prefix}{problem}; {_SECRET_RULE}", key=key, value=len(text)) from None
    if len(secret) not in (0, SECRET_BYTES):
        raise ConfigError(
            f"{prefix}the secret is {len(secret)} bytes ({len(text)} hex characters); "
            f"{_SECRET_RULE}",
            key=key,
            value=len(text),
        )
    return secret


def random_secret() -> bytes:
    """A new random 32-byte cluster secret."""
    return os.urandom(SECRET_BYTES)


class SecretKind(Kind):
    """The cluster secret: hex in JSON, ``bytes`` in Python."""

    def load(self, value, key):
        return parse_secret(value, key)

    def dump(self, value):
        return value.hex()

    def check(self, value, key):
        if not isinstance(value, bytes) or len(value) not in (0, SECRET_BYTES):
            raise ConfigError(f"{key}: {_SECRET_RULE}", key=key, value=None)


_REPLICATION = IntKind(minimum=-1)
_PEER = MultiaddrKind(use="connect", needs_peer_id=True, example="/ip4/192.0.2.1/tcp/9096")


@attrs.frozen(kw_only=True)
class ClusterConfig(Section):
    """The ``cluster`` section.  ``identity`` is derived from ``id`` + ``private_key``."""

    PATH = "cluster"
    LEGACY_KEYS = ("replication_factor",)

    id: str = setting(StrKind(), required=True)
    peername: str = setting(StrKind(), factory=socket.gethostname)
    private_key: str = setting(StrKind(), required=True)
    secret: bytes = setting(SecretKind(), b"")
    peers: tuple = setting(ListKind(_PEER), ())
    bootstrap: tuple = setting(ListKind(_PEER), ())
    leave_on_shutdown: bool = setting(BoolKind(), False)
    listen_multiaddress: Multiaddr = setting(
        MultiaddrKind(example="/ip4/0.0.0.0/tcp/9096"), factory=multiaddr_factory("/ip4/0.0.0.0/tcp/9096")
    )
    state_sync_interval: Duration = setting(DurationKind(), Duration.parse("1m0s"))
    ipfs_sync_interval: Duration = setting(DurationKind(), Duration.parse("2m10s"))
    replication_factor_min: int = setting(_REPLICATION, -1)
    replication_factor_max: int = setting(_REPLICATION, -1)
    monitor_ping_interval: Duration = setting(DurationKind(), Duration.parse("15s"))

    identity: Identity = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self):
        object.__setattr__(self, "identity", _load_identity(self.id, self.private_key))
        _check_replication(self.replication_factor_min, self.replication_factor_max)

    @property
    def peer_id(self) -> str:
        """This peer's ID (``12D3KooW…``)."""
        return self.identity.peer_id

    @classmethod
    def default(cls, identity=None, secret: bytes | None = None) -> ClusterConfig:
        """The section ``init`` writes: a new identity (unless given) and a new random
        secret (unless given; pass ``b""`` for none)."""
        if identity is None:
            identity = Identity.generate()
        return cls(
            id=identity.peer_id,
            private_key=identity.private_key_b64,
            secret=random_secret() if secret is None else secret,
        )

    @classmethod
    def _legacy(cls, obj, values):
        old = "replication_factor"
        if old in obj:
            given = [k for k in ("replication_factor_min", "replication_factor_max") if k in obj]
            if given:
                raise ConfigError(
                    f"cluster.{old}: the old key is given together with cluster.{given[0]}; "
                    f"remove cluster.{old} (replication_factor_min and _max replace it)",
                    key=f"cluster.{old}",
                    value=obj[old],
                )
            factor = _REPLICATION.load(obj[old], f"cluster.{old}")
            values["replication_factor_min"] = values["replication_factor_max"] = factor
        for name in ("replication_factor_min", "replication_factor_max"):
            if values.get(name) == 0:
                log.warn(
                    "cluster.{name} is 0, which is not valid; using -1 (pin on every peer)",
                    name=name,
                )
                values[name] = -1
        return values


def _check_replication(rmin: int, rmax: int) -> None:
    for name, value in (("replication_factor_min", rmin), ("replication_factor_max", rmax)):
        kind_of(ClusterConfig, name).check(value, f"cluster.{name}")
        if value == 0:
            raise invalid(f"cluster.{name}", 0, "is not valid; use -1 (every peer) or a positive number")
    if (rmin == -1) != (rmax == -1):
        raise ConfigError(
            f"cluster.replication_factor_min ({rmin}) and cluster.replication_factor_max "
            f"({rmax}) disagree: use -1 for both (pin on every peer) or two positive numbers",
            key="cluster.replication_factor_min",
            value=rmin,
        )
    if rmin > rmax:
        raise ConfigError(
            f"cluster.replication_factor_min: {rmin} is larger than "
            f"cluster.replication_factor_max ({rmax}); min must not exceed max",
            key="cluster.replication_factor_min",
            value=rmin,
        )


def _load_identity(peer_id: str, private_key: str):
    try:
        return load_identity(peer_id, private_key)
    except IdentityMismatch:
        raise  # its message names cluster.id, both peer IDs and what to do
    except InvalidPeerID as err:
        raise ConfigError(
            f'cluster.id: "{peer_id}" is not a valid peer ID ({reason(err, peer_id)})', key="cluster.id", value=peer_id
        ) from None
    except InvalidKey as err:
        # never echo the private key itself
        raise ConfigError(
            f"cluster.private_key: the private key cannot be decoded ({err}); it must be the "
            "base64 libp2p private key written by init",
            key="cluster.private_key",
            value=None,
        ) from None
