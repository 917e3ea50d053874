"""The machinery shared by every ``service.json`` section.

A section is a frozen attrs class (one per component: ``consensus.raft``,
``api.restapi`` …) whose fields are declared with :func:`setting`.  Each setting
names its JSON *kind* (duration, integer, multiaddress, …); the kind converts the
JSON value to the Python value, back, and checks it.  :class:`Section` then gives
every section the same three operations:

- ``Section.from_json(obj)``: validate a JSON object (unknown keys are errors that
  list the valid ones; absent keys take their default) and build the section;
- ``section.to_json()``: the JSON object written to ``service.json`` (declaration
  order, Go durations in canonical form);
- ``Section.default()``: the section as ``init`` writes it.

Every validation failure is a :class:`ipfscluster.errors.ConfigError` whose message
starts with the dotted key (``consensus.raft.heartbeat_timeout: "1x" is not a
duration …``), shows the bad value as JSON and says what is expected; ``err.key`` and
``err.value`` carry the same facts for programs.  Checks also run when a section is
built directly in Python (attrs validators), so a section value is always valid.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import attrs

from ipfscluster.config.durations import EXAMPLES, Duration
from ipfscluster.errors import ConfigError, InvalidDuration, InvalidMultiaddr
from ipfscluster.multiaddr import Multiaddr

_KIND = "ipfscluster.config.kind"


def show(value: Any) -> str:
    """``value`` as it appears in JSON (for error messages)."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def invalid(key: str, value: Any, what: str) -> ConfigError:
    """A ConfigError ``<key>: <value as JSON> <what>``."""
    return ConfigError(f"{key}: {show(value)} {what}", key=key, value=value)


def reason(err: Exception, value: Any) -> str:
    """``err``'s message without a leading ``… "<value>": `` or ``… "<value>" `` (the
    caller shows the value itself)."""
    text = str(err)
    for marker in (f'"{value}": ', f'"{value}" '):
        if marker in text:
            return text.split(marker, 1)[1]
    return text


class Kind:
    """How one setting is read from JSON, written back and checked."""

    expected = "a value"
    omit_when_empty = False

    def load(self, value: Any, key: str) -> Any:
        """JSON value → Python value; raises ConfigError naming ``key``."""
        return value

    def dump(self, value: Any) -> Any:
        """Python value → JSON value."""
        return value

    def check(self, value: Any, key: str) -> None:
        """Raise ConfigError naming ``key`` if the Python value is not acceptable."""


@attrs.frozen
class DurationKind(Kind):
    """A Go duration string; ``minimum`` is the smallest acceptable value."""

    minimum: Duration = Duration(1)

    def load(self, value, key):
        try:
            return Duration.parse(value)
        except InvalidDuration:
            raise invalid(key, value, f"is not a duration (examples: {EXAMPLES})") from None

    def dump(self, value):
        return str(value)

    def check(self, value, key):
        if not isinstance(value, Duration):
            raise invalid(key, value, f"is not a duration (examples: {EXAMPLES})")
        if value < self.minimum:
            if self.minimum == Duration(1):
                need = "it must be longer than 0s"
            else:
                need = f"it must be at least {self.minimum}"
            raise invalid(key, str(value), f"is too short; {need}")


#: the largest integer setting: Go's int (int64), what upstream reads
MAX_INT = (1 << 63) - 1


@attrs.frozen
class IntKind(Kind):
    """A JSON integer (not a boolean) from ``minimum`` to ``maximum`` (Go's int64)."""

    minimum: int = 0
    maximum: int = MAX_INT

    def load(self, value, key):
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(key, value, f"is not an integer (expected an integer ≥ {self.minimum})")
        return value

    def check(self, value, key):
        self.load(value, key)
        if value < self.minimum:
            raise invalid(key, value, f"is too small; it must be at least {self.minimum}")
        if value > self.maximum:
            raise invalid(key, value, f"is too large; it must be at most {self.maximum}")


class BoolKind(Kind):
    """``true`` or ``false``."""

    def load(self, value, key):
        if not isinstance(value, bool):
            raise invalid(key, value, "is not a boolean (expected true or false)")
        return value

    check = load


@attrs.frozen
class StrKind(Kind):
    """A string; with ``choices``, one of them; ``omit_when_empty`` leaves "" out."""

    choices: tuple[str, ...] = ()
    omit_when_empty: bool = False

    def load(self, value, key):
        if not isinstance(value, str):
            raise invalid(key, value, "is not a string")
        if self.choices and value not in self.choices:
            options = ", ".join(show(c) for c in self.choices)
            raise invalid(key, value, f"is not valid (expected one of {options})")
        return value

    check = load


@attrs.frozen
class MultiaddrKind(Kind):
    """A multiaddress string, kept as a :class:`ipfscluster.multiaddr.Multiaddr`.

    ``use``: ``"listen"`` (an IP address and a TCP port this peer listens on) or
    ``"connect"`` (an IP address or DNS name and a TCP port to dial).
    ``needs_peer_id``: the address must end in ``/p2p/<peer ID>`` (peers, bootstrap).
    """

    use: str = "listen"
    needs_peer_id: bool = False
    example: str = "/ip4/127.0.0.1/tcp/9096"

    def load(self, value, key):
        if not isinstance(value, str):
            raise invalid(key, value, f"is not a multiaddress string (example: {show(self.example)})")
        try:
            addr = Multiaddr.parse(value)
        except InvalidMultiaddr as err:
            raise invalid(
                key, value, f"is not a valid multiaddress: {reason(err, value)} (example: {show(self.example)})"
            ) from None
        self.check(addr, key)
        return addr

    def dump(self, value):
        return str(value)

    def check(self, value, key):
        if not isinstance(value, Multiaddr):
            raise invalid(key, value, "is not a multiaddress")
        try:
            if self.use == "listen":
                value.tcp_endpoint_string()
            else:
                value.client_endpoint_string()
        except InvalidMultiaddr as err:
            raise invalid(key, str(value), f"{reason(err, value)} (example: {show(self.example)})") from None
        if self.needs_peer_id and not value.peer_id:
            raise invalid(
                key,
                str(value),
                f"has no peer ID; it must end in /p2p/<peer ID> (example: "
                f'"{self.example}/p2p/12D3KooW...")',
            )


@attrs.frozen
class ListKind(Kind):
    """A JSON array of ``item`` values, kept as a tuple."""

    item: Kind

    def load(self, value, key):
        if not isinstance(value, list):
            raise invalid(key, value, "is not a list (expected a JSON array, possibly empty)")
        return tuple(self.item.load(v, f"{key}[{i}]") for i, v in enumerate(value))

    def dump(self, value):
        return [self.item.dump(v) for v in value]

    def check(self, value, key):
        if not isinstance(value, tuple):
            raise invalid(key, value, "is not a tuple")
        for i, v in enumerate(value):
            self.item.check(v, f"{key}[{i}]")


def multiaddr_factory(text: str):
    """A default factory giving ``Multiaddr.parse(text)``."""

    def make():
        return Multiaddr.parse(text)

    return make


def setting(kind: Kind, default: Any = attrs.NOTHING, *, factory=None, required=False):
    """Declare a section field read from and written to JSON through ``kind``.

    ``required``: the key must be present in ``service.json`` (no default on load).
    """

    def validate(instance, attribute, value):
        kind.check(value, f"{instance.PATH}.{attribute.name}")

    if factory is not None:
        default = attrs.Factory(factory)
    return attrs.field(
        default=default,
        validator=validate,
        metadata={_KIND: kind, "required": required},
    )


def kind_of(cls, name: str) -> Kind:
    """The :class:`Kind` of setting ``name`` of section class ``cls``."""
    return attrs.fields_dict(cls)[name].metadata[_KIND]


def _settings(cls) -> list[tuple[attrs.Attribute, Kind]]:
    return [(a, a.metadata[_KIND]) for a in attrs.fields(cls) if _KIND in a.metadata]


class Section:
    """Base of every section class (see the module docstring).

    Subclasses are ``@attrs.frozen`` and set ``PATH`` (``"consensus.raft"``).
    ``LEGACY_KEYS`` are accepted on input and handled by :meth:`_legacy`.
    """

    PATH: ClassVar[str] = ""
    LEGACY_KEYS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def keys(cls) -> list[str]:
        """The JSON keys of this section, in the order they are written."""
        return [a.name for a, _ in _settings(cls)]

    @classmethod
    def from_json(cls, obj: Any):
        """Build the section from its JSON object.

        :raises ConfigError: naming ``<PATH>.<key>`` for an unknown key, a missing
            required key or an invalid value.
        """
        if not isinstance(obj, dict):
            raise invalid(cls.PATH, obj, "is not a JSON object (expected {\"key\": value, ...})")
        known = cls.keys()
        for key in obj:
            if key not in known and key not in cls.LEGACY_KEYS:
                valid = ", ".join(known)
                raise ConfigError(
                    f"unknown key {show(cls.PATH + '.' + key)}; remove it (valid keys: {valid})",
                    key=f"{cls.PATH}.{key}",
                    value=obj[key],
                )
        values = {}
        for attribute, kind in _settings(cls):
            key = f"{cls.PATH}.{attribute.name}"
            if attribute.name in obj:
                values[attribute.name] = kind.load(obj[attribute.name], key)
            elif attribute.metadata["required"]:
                raise ConfigError(
                    f"{key}: missing; every peer needs it (run \"ipfs-cluster-service init\" "
                    f"to write a complete configuration)",
                    key=key,
                    value=None,
                )
        values = cls._legacy(obj, values)
        return cls(**values)

    @classmethod
    def _legacy(cls, obj: dict, values: dict) -> dict:
        """Fold ``LEGACY_KEYS`` of ``obj`` into ``values`` (override per section)."""
        return values

    def to_json(self) -> dict:
        """The JSON object of this section (keys in declaration order)."""
        out = {}
        for attribute, kind in _settings(type(self)):
            value = getattr(self, attribute.name)
            if kind.omit_when_empty and not value:
                continue
            out[attribute.name] = kind.dump(value)
        return out

    @classmethod
    def default(cls):
        """The section with every default (what ``init`` writes)."""
        return cls()
