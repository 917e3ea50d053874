"""``api.restapi``: the REST API server (reference §3.3).

- ``listen_multiaddress`` (``/ip4/127.0.0.1/tcp/9094``); the 0.3.5 name
  ``http_listen_multiaddress`` is read as well (not both at once) and written back
  under the 0.3.0 name.
- ``ssl_cert_file`` / ``ssl_key_file``: both or neither; relative paths are
  resolved against the configuration folder (``ServiceConfig.resolve_path``) and
  must be readable files when the configuration is loaded.  Left out when empty.
- HTTP timeouts ``read_timeout`` 30s, ``read_header_timeout`` 5s, ``write_timeout``
  1m0s, ``idle_timeout`` 2m0s; ``0s`` means no timeout.  Absent keys take their
  default (upstream 0.3.0 required them; being lenient loses nothing).
- ``basic_auth_credentials``: ``null`` (no authentication) or an object
  ``{"user": "password", ...}``; an empty object is an error, because it would
  refuse every request while looking like "no users configured".
- CORS, as modern upstream: ``cors_allowed_origins``, ``cors_allowed_methods``,
  ``cors_allowed_headers``, ``cors_exposed_headers`` (lists of strings); left out
  (or empty) they mean upstream's defaults (every origin; GET, POST, HEAD; the
  usual request headers; Content-Type, X-Stream-Output, X-Chunked-Output,
  X-Content-Length).  Written only when set.
- ``max_body_size``: the largest ``POST /add`` body in bytes; left out (or 0) it
  is 1 GiB.  Written only when set.
"""

from __future__ import annotations

import attrs

from ipfscluster.config.base import (
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
    setting,
)
from ipfscluster.config.durations import Duration
from ipfscluster.errors import ConfigError
from ipfscluster.multiaddr import Multiaddr


class CredentialsKind(Kind):
    """``null`` or a non-empty object of user name → password (both strings)."""

    def load(self, value, key):
        if value is None:
            return None
        if not isinstance(value, dict):
            raise invalid(key, value, 'is not valid (expected null or {"user": "password", ...})')
        return dict(value)

    def check(self, value, key):
        if value is None:
            return
        if not isinstance(value, dict):
            raise invalid(key, value, 'is not valid (expected null or {"user": "password", ...})')
        if not value:
            raise invalid(
                key,
                value,
                "is empty; set it to null to disable authentication, or list "
                '{"user": "password"} pairs',
            )
        for user, password in value.items():
            if not isinstance(user, str) or not user or not isinstance(password, str):
                raise ConfigError(
                    f"{key}: the entry for user {user!r} is not valid; every user name must be "
                    "a non-empty string and every password a string",
                    key=key,
                    value=user,
                )

    def dump(self, value):
        return None if value is None else dict(value)


@attrs.frozen
class _OptionalList(ListKind):
    """A list of strings written only when not empty (empty: the default)."""

    omit_when_empty = True


@attrs.frozen
class _OptionalSize(IntKind):
    """A size in bytes written only when set (0: the default)."""

    omit_when_empty = True


_ZERO_OK = DurationKind(minimum=Duration(0))
_STRINGS = _OptionalList(StrKind())
_LISTEN = "listen_multiaddress"
_NEW_LISTEN = "http_listen_multiaddress"


@attrs.frozen
class RestAPIConfig(Section):
    """The ``api.restapi`` section."""

    PATH = "api.restapi"
    LEGACY_KEYS = (_NEW_LISTEN,)

    listen_multiaddress: Multiaddr = setting(
        MultiaddrKind(example="/ip4/127.0.0.1/tcp/9094"), factory=multiaddr_factory("/ip4/127.0.0.1/tcp/9094")
    )
    ssl_cert_file: str = setting(StrKind(omit_when_empty=True), "")
    ssl_key_file: str = setting(StrKind(omit_when_empty=True), "")
    read_timeout: Duration = setting(_ZERO_OK, Duration.parse("30s"))
    read_header_timeout: Duration = setting(_ZERO_OK, Duration.parse("5s"))
    write_timeout: Duration = setting(_ZERO_OK, Duration.parse("1m0s"))
    idle_timeout: Duration = setting(_ZERO_OK, Duration.parse("2m0s"))
    basic_auth_credentials: dict | None = setting(CredentialsKind(), None)
    cors_allowed_origins: tuple = setting(_STRINGS, ())
    cors_allowed_methods: tuple = setting(_STRINGS, ())
    cors_allowed_headers: tuple = setting(_STRINGS, ())
    cors_exposed_headers: tuple = setting(_STRINGS, ())
    max_body_size: int = setting(_OptionalSize(), 0)

    def __attrs_post_init__(self):
        if bool(self.ssl_cert_file) != bool(self.ssl_key_file):
            present, missing = (
                ("ssl_cert_file", "ssl_key_file") if self.ssl_cert_file else ("ssl_key_file", "ssl_cert_file")
            )
            raise ConfigError(
                f"{self.PATH}.{missing}: missing; HTTPS needs both ssl_cert_file and "
                f"ssl_key_file ({self.PATH}.{present} is set)",
                key=f"{self.PATH}.{missing}",
                value=None,
            )

    @property
    def tls_enabled(self) -> bool:
        """True when the API serves HTTPS (both SSL files are set)."""
        return bool(self.ssl_cert_file)

    @classmethod
    def _legacy(cls, obj, values):
        if _NEW_LISTEN in obj:
            if _LISTEN in obj:
                raise ConfigError(
                    f"{cls.PATH}.{_NEW_LISTEN}: given together with {cls.PATH}.{_LISTEN}; "
                    "keep only one of them",
                    key=f"{cls.PATH}.{_NEW_LISTEN}",
                    value=obj[_NEW_LISTEN],
                )
            values[_LISTEN] = kind_of(cls, _LISTEN).load(obj[_NEW_LISTEN], f"{cls.PATH}.{_NEW_LISTEN}")
        return values
