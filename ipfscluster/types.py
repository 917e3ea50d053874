"""The values every component exchanges, and their JSON (the REST wire format).

Every value is a frozen ``attrs`` class (change one with :func:`attrs.evolve`),
checked when it is built: CIDs are :class:`~ipfscluster.cid.CID` objects, peer IDs
are validated strings, multiaddrs are :class:`~ipfscluster.multiaddr.Multiaddr`
objects, lists are tuples and maps are read-only mappings (``MappingProxyType``) so
a value cannot change after it is built.  A bad value raises
:class:`~ipfscluster.errors.InvalidInput`.

JSON
----
``to_json()`` returns plain ``dict``/``list``/``str``/``int``/``bool``/``None``
trees (ready for :func:`json.dumps`) with the field names, order and encodings of
the current upstream ipfs-cluster REST API, so existing clients work unchanged:
CIDs as plain strings, peer IDs and multiaddrs as strings, statuses and pin types
as lowercase names, times as Go's RFC 3339 text (``"2024-05-01T10:00:00.5Z"``,
``"0001-01-01T00:00:00Z"`` for "no time").  ``from_json(d)`` is the inverse: a
missing field takes upstream's default; a field of the wrong type or with a bad
value raises :class:`~ipfscluster.errors.InvalidField` whose message and ``field``
name the field (``peer_map.<peer>.status`` for nested ones).
``from_json(to_json(x)) == x`` holds for every value.

Empty collections follow what upstream sends for a pin read back from its state:
``allocations`` and ``origins`` are ``[]``, an empty ``user_allocations`` is
``null``, empty ``metadata`` is ``null``, an unset ``pin_update`` / ``reference``
is ``null``.  ``null`` and ``[]``/``{}`` are both accepted on input.

Times
-----
Times are **integers: nanoseconds since the Unix epoch, UTC** (the resolution of
Go's ``time.Time`` and of ``Metric.expire``, with no float rounding and cheap to
compare).  ``0`` means "no time" (Go's zero ``time.Time``): it is written as
``"0001-01-01T00:00:00Z"`` and that text, like upstream's other "unset" marker
``"1970-01-01T00:00:00Z"``, reads back as ``0``.  Times are written in UTC with
``Z``; input may carry any RFC 3339 offset.  Nothing here reads the clock:
functions that need "now" take it as an argument (use
:func:`ns_from_seconds` on ``clock.seconds()``).

Speed
-----
``Pin.to_json``/``Pin.from_json`` run once per pin when listing a million pins, so
they build dicts by hand (no reflection over attrs fields), memoize peer-ID
validation (a cluster has few peers) and the formatting of whole seconds.
"""

from __future__ import annotations

import datetime
import enum
import functools
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

import attrs

from ipfscluster.cid import CID
from ipfscluster.config.durations import SECOND, parse_duration
from ipfscluster.errors import (
    InvalidCID,
    InvalidDuration,
    InvalidField,
    InvalidFilter,
    InvalidInput,
    InvalidMultiaddr,
    InvalidParameter,
    InvalidPeerID,
)
from ipfscluster.identity import validate_peer_id
from ipfscluster.multiaddr import Multiaddr

__all__ = [
    "TrackerStatus",
    "PinMode",
    "PinType",
    "IPFSPinStatus",
    "PinOptions",
    "Pin",
    "PinInfoShort",
    "PinInfo",
    "GlobalPinInfo",
    "IPFSID",
    "ID",
    "Version",
    "Metric",
    "Alert",
    "ConnectGraph",
    "AddedOutput",
    "RepoStat",
    "format_time",
    "parse_time",
    "ns_from_seconds",
    "ZERO_TIME_TEXT",
]

# --- times ----------------------------------------------------------------------------

#: how Go writes its zero ``time.Time``; our ``0``
ZERO_TIME_TEXT = "0001-01-01T00:00:00Z"
_UNIX_ZERO_TEXT = "1970-01-01T00:00:00Z"
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_EPOCH_ORDINAL = _EPOCH.date().toordinal()
_GO_ZERO_NS = -62135596800 * SECOND  # 0001-01-01T00:00:00Z
_MAX_TIME_NS = 253402300800 * SECOND - 1  # 9999-12-31T23:59:59.999999999Z

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:[Zz]|([+-])(\d{2}):(\d{2}))\Z"
)


def ns_from_seconds(seconds: float) -> int:
    """Return ``seconds`` (e.g. ``clock.seconds()``) as integer nanoseconds."""
    return int(round(seconds * SECOND))


@functools.lru_cache(maxsize=1024)
def _format_day(days: int) -> str:
    d = datetime.date.fromordinal(days + _EPOCH_ORDINAL)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T"


@functools.lru_cache(maxsize=4096)  # JSON streams write many times of the same seconds
def _format_whole_seconds(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{_format_day(days)}{hours:02d}:{minutes:02d}:{secs:02d}"


def format_time(ns: int) -> str:
    """Return the RFC 3339 text Go's JSON encoder writes for the time ``ns``.

    ``ns`` is nanoseconds since the epoch (UTC); ``0`` gives
    ``"0001-01-01T00:00:00Z"``.  Fractional seconds are written with trailing zeros
    removed (``.5``, ``.000001``), none when whole.  Raises
    :class:`~ipfscluster.errors.InvalidInput` outside years 1–9999.
    """
    if ns == 0:
        return ZERO_TIME_TEXT
    if not _GO_ZERO_NS <= ns <= _MAX_TIME_NS:
        raise InvalidInput(f"time {ns} ns is outside the years 1-9999")
    seconds, frac = divmod(ns, SECOND)
    if frac:
        return f"{_format_whole_seconds(seconds)}.{frac:09d}".rstrip("0") + "Z"
    return _format_whole_seconds(seconds) + "Z"


@functools.lru_cache(maxsize=1024)
def _parse_day(year: str, month: str, day: str) -> int:
    return datetime.date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL


def parse_time(text: str, field: str = "time") -> int:
    """Parse RFC 3339 text (any offset, any number of fractional digits) to nanoseconds.

    Returns nanoseconds since the epoch, UTC; Go's zero time and the Unix epoch give
    ``0`` ("no time").  Digits beyond nanoseconds are dropped, as Go does.  Raises
    :class:`~ipfscluster.errors.InvalidField` naming ``field`` for anything else.
    """
    if text == ZERO_TIME_TEXT or text == _UNIX_ZERO_TEXT:
        return 0
    m = _RFC3339.match(text) if isinstance(text, str) else None
    if m is None:
        raise InvalidField(
            f'invalid {field}: {_show(text)} is not an RFC 3339 time '
            f'(example: "2024-05-01T10:00:00Z")',
            field=field,
        )
    year, month, day, hour, minute, sec, frac, sign, off_h, off_m = m.groups()
    try:
        days = _parse_day(year, month, day)
    except ValueError as e:
        raise InvalidField(f'invalid {field}: "{text}": {e}', field=field) from None
    hour, minute, sec = int(hour), int(minute), int(sec)
    if hour > 23 or minute > 59 or sec > 59:
        raise InvalidField(f'invalid {field}: "{text}": time of day out of range', field=field)
    seconds = days * 86400 + hour * 3600 + minute * 60 + sec
    if sign is not None:
        oh, om = int(off_h), int(off_m)
        if oh > 23 or om > 59:
            raise InvalidField(f'invalid {field}: "{text}": bad UTC offset', field=field)
        offset = oh * 3600 + om * 60
        seconds -= offset if sign == "+" else -offset
    ns = seconds * SECOND
    if frac:
        ns += int(frac[:9].ljust(9, "0"))
    if ns == _GO_ZERO_NS:
        return 0
    if not _GO_ZERO_NS <= ns <= _MAX_TIME_NS:
        raise InvalidField(f'invalid {field}: "{text}" is outside the years 1-9999', field=field)
    return ns


# --- enumerations ---------------------------------------------------------------------


class TrackerStatus(enum.IntFlag):
    """Status of a CID in a pin tracker (the local state), as a bit set.

    Single statuses are one bit each (the bit values are upstream's), so a filter
    is an OR of statuses: ``ERROR`` is any error, ``QUEUED`` either queue, and
    ``UNDEFINED`` (0) as a filter means "everything".  JSON is the lowercase name
    (``"pin_error"``); a combination that has no name of its own is written as a
    comma-separated list, as upstream does.
    """

    UNDEFINED = 0
    CLUSTER_ERROR = 1 << 1  # the peer could not be contacted (fan-out only)
    PIN_ERROR = 1 << 2
    UNPIN_ERROR = 1 << 3
    PINNED = 1 << 4
    PINNING = 1 << 5
    UNPINNING = 1 << 6
    UNPINNED = 1 << 7
    REMOTE = 1 << 8  # tracked, allocated to other peers
    PIN_QUEUED = 1 << 9
    UNPIN_QUEUED = 1 << 10
    SHARDED = 1 << 11
    UNEXPECTEDLY_UNPINNED = 1 << 12  # should be pinned, is not, and is not queued
    ERROR = CLUSTER_ERROR | PIN_ERROR | UNPIN_ERROR
    QUEUED = PIN_QUEUED | UNPIN_QUEUED

    @property
    def is_error(self) -> bool:
        """True when this status is (or includes) one of the error statuses."""
        return bool(self & TrackerStatus.ERROR)

    def match(self, status_filter: TrackerStatus) -> bool:
        """True when this status passes ``status_filter`` (upstream's rule: an
        UNDEFINED filter or status matches everything, else any common bit)."""
        return not status_filter or not self or bool(self & status_filter)

    def to_json(self) -> str:
        """The wire name: ``"pinned"``, ``"error"``, or ``"pinned,pin_error"``."""
        name = _STATUS_NAMES.get(self)
        if name is None:
            name = ",".join(_STATUS_NAMES[s] for s in _SINGLE_STATUSES if s & self)
        return name

    @classmethod
    def from_json(cls, value, field: str = "status") -> TrackerStatus:
        """Parse a wire name (or a comma list of them); ``"bug"`` (0.3.x) is an
        alias of ``undefined``.  Raises InvalidField naming ``field`` otherwise."""
        status = _STATUS_BY_NAME.get(value) if isinstance(value, str) else None
        if status is not None:
            return status
        try:
            return cls._parse_names(value, field)
        except InvalidFilter as e:
            raise InvalidField(e.message, field=field) from None

    @classmethod
    def parse_filter(cls, text: str) -> TrackerStatus:
        """Parse the ``?filter=`` parameter: a comma list of status names.

        Spaces are ignored; ``""`` gives ``UNDEFINED`` (no filtering).  Raises
        :class:`~ipfscluster.errors.InvalidFilter` naming the unknown token and
        listing the valid names.
        """
        return cls._parse_names(text, "filter")

    @classmethod
    def _parse_names(cls, text, parameter) -> TrackerStatus:
        if not isinstance(text, str):
            raise InvalidFilter(
                f"invalid {parameter}: {_show(text)} is not a string of status names",
                parameter=parameter,
                value=text,
            )
        status = cls.UNDEFINED
        for token in text.replace(" ", "").split(","):
            if not token:
                continue
            found = _STATUS_BY_NAME.get(token)
            if found is None:
                raise InvalidFilter(
                    f'invalid {parameter}: unknown tracker status "{token}"; valid '
                    f"values: {', '.join(sorted(_STATUS_NAMES.values()))}",
                    parameter=parameter,
                    value=text,
                )
            status |= found
        return status


_STATUS_NAMES = {s: s.name.lower() for s in TrackerStatus.__members__.values()}
_STATUS_BY_NAME = {name: s for s, name in _STATUS_NAMES.items()}
_STATUS_BY_NAME["bug"] = TrackerStatus.UNDEFINED
_SINGLE_STATUSES = [s for s in _STATUS_NAMES if s and s & (s - 1) == 0]


class PinMode(enum.Enum):
    """How the IPFS daemon pins a CID: the whole DAG or the root block only."""

    RECURSIVE = "recursive"
    DIRECT = "direct"

    @property
    def max_depth(self) -> int:
        """The pin depth of this mode: -1 (recursive) or 0 (direct)."""
        return -1 if self is PinMode.RECURSIVE else 0

    @classmethod
    def from_max_depth(cls, depth: int) -> PinMode:
        """The mode of a pin depth: 0 is direct, anything else recursive."""
        return cls.DIRECT if depth == 0 else cls.RECURSIVE

    @classmethod
    def parse(cls, text: str, field: str = "mode") -> PinMode:
        """Parse ``"recursive"`` (also ``""``) or ``"direct"``; else InvalidField."""
        mode = _MODES.get(text) if isinstance(text, str) else None
        if mode is None:
            raise InvalidField(
                f'invalid {field}: {_show(text)} is not a pin mode; use "recursive" or "direct"',
                field=field,
            )
        return mode


_MODES = {"recursive": PinMode.RECURSIVE, "": PinMode.RECURSIVE, "direct": PinMode.DIRECT}


class PinType(enum.IntFlag):
    """What kind of pin an entry of the shared state is (upstream's bit values).

    ``DATA`` is a normal pin; ``META``, ``CLUSTER_DAG`` and ``SHARD`` describe a
    sharded DAG.  ``ALL`` is the filter matching every kind.  JSON: ``"pin"``,
    ``"meta-pin"``, ``"clusterdag-pin"``, ``"shard-pin"`` (``"all"`` for the filter).
    """

    BAD = 1 << 0
    DATA = 1 << 1
    META = 1 << 2
    CLUSTER_DAG = 1 << 3
    SHARD = 1 << 4
    ALL = DATA | META | CLUSTER_DAG | SHARD

    def to_json(self) -> str:
        """The wire name of this type (``"bad-type"`` for an unnamed combination)."""
        return _PIN_TYPE_NAMES.get(self, "bad-type")

    @classmethod
    def from_json(cls, value, field: str = "type") -> PinType:
        """Parse a wire name; raises InvalidField naming ``field`` otherwise."""
        if type(value) is int and value in _PIN_TYPE_NAMES:  # older numeric form
            value = _PIN_TYPE_NAMES[value]
        found = _PIN_TYPES_BY_NAME.get(value) if isinstance(value, str) else None
        if found is None or found is cls.BAD:
            raise InvalidField(
                f"invalid {field}: {_show(value)} is not a pin type; valid values: "
                "pin, meta-pin, clusterdag-pin, shard-pin",
                field=field,
            )
        return found

    @classmethod
    def parse_filter(cls, text: str) -> PinType:
        """Parse the ``/allocations?filter=`` parameter (comma list of type names).

        ``""`` and ``"all"`` give ``ALL``.  Raises
        :class:`~ipfscluster.errors.InvalidFilter` naming the unknown token.
        """
        result = cls(0)
        for token in text.replace(" ", "").split(","):
            if not token:
                continue
            found = _PIN_TYPES_BY_NAME.get(token)
            if found is None or found is cls.BAD:
                raise InvalidFilter(
                    f'invalid filter: unknown pin type "{token}"; valid values: '
                    "pin, meta-pin, clusterdag-pin, shard-pin, all",
                    parameter="filter",
                    value=text,
                )
            result |= found
        return result or cls.ALL


_PIN_TYPE_NAMES = {
    PinType.BAD: "bad-type",
    PinType.DATA: "pin",
    PinType.META: "meta-pin",
    PinType.CLUSTER_DAG: "clusterdag-pin",
    PinType.SHARD: "shard-pin",
    PinType.ALL: "all",
}
_PIN_TYPES_BY_NAME = {name: t for t, name in _PIN_TYPE_NAMES.items()}


class IPFSPinStatus(enum.Enum):
    """What the IPFS daemon says about one CID (the ipfs state).

    ``INDIRECT`` (pinned only as part of another pin) does not count as pinned.
    JSON is the lowercase name; :meth:`from_ipfs` reads kubo's ``Type`` strings
    (``"recursive"``, ``"direct"``, ``"indirect through <cid>"``).
    """

    BUG = 0
    ERROR = 1
    DIRECT = 2
    RECURSIVE = 3
    INDIRECT = 4
    UNPINNED = 5

    def is_pinned(self, max_depth: int = -1) -> bool:
        """True if the CID is pinned as a pin of depth ``max_depth`` needs
        (-1 or > 0: recursive; 0: direct)."""
        if max_depth == 0:
            return self is IPFSPinStatus.DIRECT
        return self is IPFSPinStatus.RECURSIVE

    def to_tracker_status(self) -> TrackerStatus:
        """The tracker status this ipfs status means (direct/recursive: pinned)."""
        return _IPFS_TO_TRACKER[self]

    @classmethod
    def from_ipfs(cls, text: str) -> IPFSPinStatus:
        """Read kubo's pin ``Type`` text; anything unknown is ``BUG`` (as upstream)."""
        if text.startswith("indirect"):
            return cls.INDIRECT
        if text.startswith("recursive"):
            return cls.RECURSIVE
        if text == "direct":
            return cls.DIRECT
        return cls.BUG

    def to_json(self) -> str:
        """The lowercase name (``"recursive"``, ``"unpinned"`` …)."""
        return self.name.lower()

    @classmethod
    def from_json(cls, value, field: str = "type") -> IPFSPinStatus:
        """Parse a lowercase name; raises InvalidField naming ``field`` otherwise."""
        found = cls.__members__.get(value.upper()) if isinstance(value, str) else None
        if found is None:
            raise InvalidField(
                f"invalid {field}: {_show(value)} is not an IPFS pin status", field=field
            )
        return found


_IPFS_TO_TRACKER = {
    IPFSPinStatus.DIRECT: TrackerStatus.PINNED,
    IPFSPinStatus.RECURSIVE: TrackerStatus.PINNED,
    IPFSPinStatus.INDIRECT: TrackerStatus.UNPINNED,
    IPFSPinStatus.UNPINNED: TrackerStatus.UNPINNED,
    IPFSPinStatus.BUG: TrackerStatus.UNDEFINED,
    IPFSPinStatus.ERROR: TrackerStatus.CLUSTER_ERROR,
}


# --- field checks (used by the attrs validators and by from_json) --------------------


def _show(value) -> str:
    text = f'"{value}"' if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@functools.lru_cache(maxsize=8192)
def _peer(text: str) -> str:
    # memoized: a cluster has few peers and they appear in every pin
    return validate_peer_id(text)


def _check_peer(text, field):
    if not isinstance(text, str):
        raise InvalidField(f"invalid {field}: {_show(text)} is not a peer ID", field=field)
    try:
        return _peer(text)
    except InvalidPeerID as e:
        raise InvalidField(f"invalid {field}: {e}", field=field) from None


def _v_type(kind, expected):
    """Validator: the value's type is exactly ``kind`` (so ``True`` is no int)."""

    def check(inst, attribute, value):
        if type(value) is not kind:
            raise InvalidField(
                f"invalid {attribute.name}: {_show(value)} is not {expected}",
                field=attribute.name,
            )

    return check


_v_int = _v_type(int, "an integer")
_v_str = _v_type(str, "a string")
_v_bool = _v_type(bool, "true or false")
_v_cid = _v_type(CID, "a CID object (parse text with CID.parse)")


def _v_uint(inst, attribute, value):
    _v_int(inst, attribute, value)
    if value < 0:
        raise InvalidField(f"invalid {attribute.name}: {value} is negative", field=attribute.name)


def _v_time(inst, attribute, value):
    _v_int(inst, attribute, value)
    if not _GO_ZERO_NS <= value <= _MAX_TIME_NS:
        raise InvalidField(
            f"invalid {attribute.name}: {value} ns is outside the years 1-9999",
            field=attribute.name,
        )


def _v_optional_cid(inst, attribute, value):
    if value is not None:
        _v_cid(inst, attribute, value)


def _c_peer(field):
    """Converter: a peer ID in canonical base58btc text (InvalidField naming ``field``)."""
    return lambda value: _check_peer(value, field)


def _c_optional_peer(field):
    """Converter: a peer ID, or "" for "not known"."""
    return lambda value: value if value == "" else _check_peer(value, field)


def _c_peers(field):
    """Converter: a tuple of canonical peer IDs from a list or tuple of them
    (None gives ())."""
    as_tuple = _c_tuple(field)

    def convert(value):
        return tuple([_check_peer(p, field) for p in as_tuple(value)])

    return convert


def _v_multiaddrs(inst, attribute, value):
    for m in value:
        if type(m) is not Multiaddr:
            raise InvalidField(
                f"invalid {attribute.name}: {_show(m)} is not a Multiaddr object "
                "(parse text with Multiaddr.parse)",
                field=attribute.name,
            )


def _v_str_map(inst, attribute, value):
    for k, v in value.items():
        if type(k) is not str or not k or type(v) is not str:
            raise InvalidField(
                f"invalid {attribute.name}: entry {_show(k)}: {_show(v)} must map a "
                "non-empty string to a string",
                field=attribute.name,
            )


def _v_instance(cls):
    return _v_type(cls, f"a {cls.__name__}")


_EMPTY_MAP = MappingProxyType({})


def _c_tuple(field):
    """Converter: a tuple from a list or tuple (None gives ())."""

    def convert(value):
        if value is None:
            return ()
        if type(value) is tuple:
            return value
        if type(value) is list:
            return tuple(value)
        raise _bad(field, value, "a list")

    return convert


def _c_metadata(value) -> Mapping:
    """Converter: a read-only copy of a mapping (None or empty gives a shared {})."""
    if isinstance(value, Mapping):
        return MappingProxyType(dict(value)) if value else _EMPTY_MAP
    if value is None:
        return _EMPTY_MAP
    raise _bad("metadata", value, "a mapping of strings to strings")


def _metadata_field(**kw):
    return attrs.field(
        factory=dict, converter=_c_metadata, validator=_v_str_map, hash=False, **kw
    )


def _multiaddrs_field(field, **kw):
    return attrs.field(
        factory=tuple, converter=_c_tuple(field), validator=_v_multiaddrs, **kw
    )


def _peers_field(field, **kw):
    return attrs.field(factory=tuple, converter=_c_peers(field), **kw)


def _peer_field(field, **kw):
    return attrs.field(converter=_c_peer(field), **kw)


def _optional_peer_field(field, **kw):
    return attrs.field(default="", converter=_c_optional_peer(field), **kw)


# --- JSON readers: one per wire type, naming the field on error ----------------------


def _want_dict(d, what):
    if not isinstance(d, dict):
        raise InvalidField(f"invalid {what}: expected a JSON object, got {_show(d)}", field="")
    return d


def _bad(path, value, expected):
    return InvalidField(f"invalid {path}: expected {expected}, got {_show(value)}", field=path)


def _j_int(d, key, default, path=""):
    v = d.get(key, default)
    if type(v) is not int:
        if v is None:
            return default
        if type(v) is float and v.is_integer():
            return int(v)
        raise _bad(path + key, v, "an integer")
    return v


def _j_str(d, key, path=""):
    v = d.get(key, "")
    if type(v) is not str:
        if v is None:
            return ""
        raise _bad(path + key, v, "a string")
    return v


def _j_bool(d, key, path=""):
    v = d.get(key, False)
    if type(v) is not bool:
        if v is None:
            return False
        raise _bad(path + key, v, "true or false")
    return v


def _j_time(d, key, path=""):
    v = d.get(key)
    if v is None:
        return 0
    if type(v) is not str:
        raise _bad(path + key, v, "an RFC 3339 time string")
    return parse_time(v, path + key)


def _j_cid(d, key, path="", optional=False):
    """A CID field (``{"/": cid}``, the older form, too); with ``optional`` a
    missing, null or empty value gives None."""
    v = d.get(key)
    if optional and (v is None or v == ""):
        return None
    if type(v) is dict and "/" in v:
        v = v["/"]
    if type(v) is not str:
        raise _bad(path + key, v, "a CID string or null" if optional else "a CID string")
    try:
        return CID.parse(v)
    except InvalidCID as e:
        raise InvalidField(f"invalid {path}{key}: {e}", field=path + key) from None


def _j_optional_cid(d, key, path=""):
    return _j_cid(d, key, path, optional=True)


def _j_list(d, key, path):
    v = d.get(key)
    if v is None:
        return ()
    if type(v) is not list:
        raise _bad(path + key, v, "a list")
    return v


def _j_peer(d, key, path="", optional=False):
    v = d.get(key, "")
    if v is None or (optional and v == ""):
        return ""
    return _check_peer(v, path + key)


def _parse_multiaddr(text, field):
    if type(text) is not str:
        raise _bad(field, text, "a multiaddress string")
    try:
        return Multiaddr.parse(text)
    except InvalidMultiaddr as e:
        raise InvalidField(f"invalid {field}: {e}", field=field) from None


def _j_multiaddrs(d, key, path=""):
    v = _j_list(d, key, path)
    return tuple(_parse_multiaddr(m, path + key) for m in v) if v else ()


def _j_str_map(d, key, path=""):
    v = d.get(key)
    if not v:
        if v is None or type(v) is dict:
            return _EMPTY_MAP
        raise _bad(path + key, v, "a JSON object of strings")
    if type(v) is not dict:
        raise _bad(path + key, v, "a JSON object of strings")
    for k, item in v.items():
        if type(item) is not str:
            raise _bad(f"{path}{key}.{k}", item, "a string")
    if "" in v:  # upstream ignores metadata under an empty key
        v = {k: item for k, item in v.items() if k}
    return MappingProxyType(dict(v)) if v else _EMPTY_MAP


# --- pins -----------------------------------------------------------------------------


def _pin_option_fields():
    """The attrs fields shared by PinOptions and Pin (upstream embeds one in the other)."""
    return {
        "replication_factor_min": attrs.field(default=0, validator=_v_int, kw_only=True),
        "replication_factor_max": attrs.field(default=0, validator=_v_int, kw_only=True),
        "name": attrs.field(default="", validator=_v_str, kw_only=True),
        "mode": attrs.field(
            default=PinMode.RECURSIVE, validator=_v_instance(PinMode), kw_only=True
        ),
        "shard_size": attrs.field(default=0, validator=_v_uint, kw_only=True),
        "user_allocations": _peers_field("user_allocations", kw_only=True),
        "expire_at": attrs.field(default=0, validator=_v_time, kw_only=True),
        "metadata": _metadata_field(kw_only=True),
        "pin_update": attrs.field(default=None, validator=_v_optional_cid, kw_only=True),
        "origins": _multiaddrs_field("origins", kw_only=True),
    }


_OPTION_NAMES = tuple(_pin_option_fields())


def _options_json(o) -> dict:
    """The PinOptions part of a Pin's JSON, in upstream's key order."""
    return {
        "replication_factor_min": o.replication_factor_min,
        "replication_factor_max": o.replication_factor_max,
        "name": o.name,
        "mode": o.mode.value,
        "shard_size": o.shard_size,
        "user_allocations": list(o.user_allocations) if o.user_allocations else None,
        "expire_at": format_time(o.expire_at) if o.expire_at else ZERO_TIME_TEXT,
        "metadata": dict(o.metadata) if o.metadata else None,
        "pin_update": str(o.pin_update) if o.pin_update is not None else None,
        "origins": [str(m) for m in o.origins] if o.origins else [],
    }


def _options_from_json(d, path="") -> dict:
    mode = d.get("mode")
    return {
        "replication_factor_min": _j_int(d, "replication_factor_min", 0, path),
        "replication_factor_max": _j_int(d, "replication_factor_max", 0, path),
        "name": _j_str(d, "name", path),
        "mode": PinMode.RECURSIVE if mode is None else PinMode.parse(mode, path + "mode"),
        "shard_size": _j_uint(d, "shard_size", path),
        "user_allocations": d.get("user_allocations"),
        "expire_at": _j_time(d, "expire_at", path),
        "metadata": _j_str_map(d, "metadata", path),
        "pin_update": _j_optional_cid(d, "pin_update", path),
        "origins": _j_multiaddrs(d, "origins", path),
    }


def _j_uint(d, key, path=""):
    v = _j_int(d, key, 0, path)
    if v < 0:
        raise _bad(path + key, v, "a non-negative integer")
    return v


_META_PREFIX = "meta-"


def _query_get(query, key):
    """First value of ``key`` in a query mapping (str or list values; str/bytes keys)."""
    v = query.get(key)
    if v is None:
        v = query.get(key.encode())
        if v is None:
            return None
    if isinstance(v, (list, tuple)):
        if not v:
            return None
        v = v[0]
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    return v


def _bad_param(parameter, value, why):
    return InvalidParameter(
        f'parameter {parameter} invalid: "{value}" {why}', parameter=parameter, value=value
    )


_INTEGER = re.compile(r"[+-]?[0-9]+")


def _param_int(query, parameter, default):
    v = _query_get(query, parameter)
    if v is None or v == "":
        return default
    if _INTEGER.fullmatch(v) is None:  # as Go's strconv.Atoi: no spaces, no "_"
        raise _bad_param(parameter, v, "is not an integer")
    n = int(v)
    if n < -1:
        raise _bad_param(
            parameter, v, "is not a replication factor: use -1 (everywhere), 0 "
            "(the cluster default) or a positive number of peers"
        )
    return n


@attrs.frozen(these=_pin_option_fields())
class PinOptions:
    """What a user asks for when pinning: replication, name, mode, expiry, metadata …

    Replication factors: ``0`` means the cluster default, ``-1`` everywhere.
    ``expire_at`` is nanoseconds (0: never).  ``pin_update`` is the CID of an
    existing pin to update from.  ``origins`` are multiaddrs (with ``/p2p/``) that
    peers connect to before pinning.
    """

    @classmethod
    def from_query(cls, query: Mapping, now_ns: int) -> PinOptions:
        """Parse the REST pin query parameters (``POST /pins/{cid}?…``).

        ``query`` maps parameter names to a string or a list of strings (the first
        is used), as parsed from the URL.  Understood: ``replication`` (sets both),
        ``replication-min``, ``replication-max``, ``name``, ``mode``,
        ``shard-size``, ``user-allocations`` (comma peer IDs), ``expire-at``
        (RFC 3339) or ``expire-in`` (Go duration ≥ 1s, counted from ``now_ns``,
        nanoseconds since the epoch), ``meta-<key>``, ``pin-update`` (CID),
        ``origins`` (comma multiaddrs with ``/p2p/``).  Others are ignored.

        Raises :class:`~ipfscluster.errors.InvalidParameter` (HTTP 400) naming the
        parameter and value.
        """
        replication = _param_int(query, "replication", None)
        if replication is not None:
            rmin = rmax = replication
        else:
            rmin = _param_int(query, "replication-min", 0)
            rmax = _param_int(query, "replication-max", 0)
        mode_text = _query_get(query, "mode") or ""
        mode = _MODES.get(mode_text)
        if mode is None:
            raise _bad_param("mode", mode_text, 'is not a pin mode: use "recursive" or "direct"')
        shard_size = 0
        text = _query_get(query, "shard-size")
        if text:
            if not (text.isascii() and text.isdigit()):
                raise _bad_param("shard-size", text, "is not a size in bytes")
            shard_size = int(text)
        user_allocations = ()
        text = _query_get(query, "user-allocations")
        if text:
            try:
                user_allocations = tuple(_peer(p.strip()) for p in text.split(","))
            except InvalidPeerID as e:
                raise _bad_param(
                    "user-allocations", text, f"is not a list of peer IDs: {e}"
                ) from None
        return cls(
            replication_factor_min=rmin,
            replication_factor_max=rmax,
            name=_query_get(query, "name") or "",
            mode=mode,
            shard_size=shard_size,
            user_allocations=user_allocations,
            expire_at=_param_expiry(query, now_ns),
            metadata=_param_metadata(query),
            pin_update=_param_pin_update(query),
            origins=_param_origins(query),
        )

    def to_query(self) -> dict:
        """The query parameters :meth:`from_query` reads back to these options.

        Returns an ordered dict of parameter name → string (for the ctl client).
        """
        q = {
            "replication-min": str(self.replication_factor_min),
            "replication-max": str(self.replication_factor_max),
            "name": self.name,
            "mode": self.mode.value,
            "shard-size": str(self.shard_size),
            "user-allocations": ",".join(self.user_allocations),
        }
        if self.expire_at:
            q["expire-at"] = format_time(self.expire_at)
        for k, v in self.metadata.items():
            q[_META_PREFIX + k] = v
        if self.pin_update is not None:
            q["pin-update"] = str(self.pin_update)
        if self.origins:
            q["origins"] = ",".join(str(m) for m in self.origins)
        return q

    def to_json(self) -> dict:
        """The JSON object of these options (the option keys of a Pin)."""
        return _options_json(self)

    @classmethod
    def from_json(cls, d) -> PinOptions:
        """Build options from their JSON object; raises InvalidField naming the field."""
        return cls(**_options_from_json(_want_dict(d, "pin options")))


def _param_expiry(query, now_ns):
    text = _query_get(query, "expire-at")
    if text:
        try:
            return parse_time(text, "expire-at")
        except InvalidField as e:
            raise InvalidParameter(
                f"parameter expire-at invalid: {e}", parameter="expire-at", value=text
            ) from None
    text = _query_get(query, "expire-in")
    if text:
        try:
            duration = parse_duration(text)
        except InvalidDuration as e:
            raise _bad_param("expire-in", text, f"cannot be parsed: {e}") from None
        if duration < SECOND:
            raise _bad_param("expire-in", text, "is too short: use at least 1s")
        return now_ns + duration
    return 0


def _param_metadata(query):
    meta = {}
    for key in query:
        name = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
        if name.startswith(_META_PREFIX) and len(name) > len(_META_PREFIX):
            meta[name[len(_META_PREFIX):]] = _query_get(query, name) or ""
    return meta


def _param_pin_update(query):
    text = _query_get(query, "pin-update")
    if not text:
        return None
    try:
        return CID.parse(text)
    except InvalidCID as e:
        raise _bad_param("pin-update", text, f"is not a CID: {e}") from None


def _param_origins(query):
    text = _query_get(query, "origins")
    if not text:
        return ()
    origins = []
    for part in text.split(","):
        try:
            ma = Multiaddr.parse(part.strip())
        except InvalidMultiaddr as e:
            raise _bad_param("origins", text, f"is not a list of multiaddresses: {e}") from None
        if ma.peer_id is None:
            raise _bad_param("origins", text, f'has "{part}" without /p2p/<peer ID>')
        origins.append(ma)
    return tuple(origins)


def _pin_fields():
    fields = {"cid": attrs.field(validator=_v_cid)}
    fields.update(_pin_option_fields())
    fields.update(
        type=attrs.field(default=PinType.DATA, validator=_v_instance(PinType), kw_only=True),
        allocations=_peers_field("allocations", kw_only=True),
        max_depth=attrs.field(default=-1, validator=_v_int, kw_only=True),
        reference=attrs.field(default=None, validator=_v_optional_cid, kw_only=True),
        timestamp=attrs.field(default=0, validator=_v_time, kw_only=True),
    )
    return fields


@attrs.frozen(these=_pin_fields())
class Pin:
    """An entry of the shared state: a CID with its options and allocations.

    ``allocations`` lists the peers that must pin it (empty for "everywhere"),
    ``max_depth`` is -1 for recursive and 0 for direct, ``reference`` links the
    pieces of a sharded DAG, ``timestamp`` is when it was committed (nanoseconds).
    """

    @classmethod
    def new(cls, cid: CID, options: PinOptions | None = None, timestamp: int = 0) -> Pin:
        """A normal (``DATA``) pin of ``cid`` with ``options``; ``max_depth`` follows
        the mode.  Raises InvalidInput for bad values."""
        options = options or _DEFAULT_OPTIONS
        values = {name: getattr(options, name) for name in _OPTION_NAMES}
        return cls(cid, max_depth=options.mode.max_depth, timestamp=timestamp, **values)

    @property
    def options(self) -> PinOptions:
        """The PinOptions part of this pin."""
        return PinOptions(**{name: getattr(self, name) for name in _OPTION_NAMES})

    @property
    def is_everywhere(self) -> bool:
        """True when the pin is for every peer (``replication_factor_min == -1``)."""
        return self.replication_factor_min == -1

    def is_remote_for(self, peer_id: str) -> bool:
        """True when ``peer_id`` must not pin it: not everywhere and not allocated."""
        return self.replication_factor_min != -1 and peer_id not in self.allocations

    def is_expired(self, now_ns: int) -> bool:
        """True when the pin has an expiry (``expire_at`` ≠ 0) before ``now_ns``."""
        return self.expire_at != 0 and self.expire_at < now_ns

    def to_json(self) -> dict:
        """The upstream JSON object of this pin (see the module docstring)."""
        d = _options_json(self)
        d["cid"] = str(self.cid)
        d["type"] = _PIN_TYPE_NAMES[self.type]
        d["allocations"] = list(self.allocations)
        d["max_depth"] = self.max_depth
        d["reference"] = str(self.reference) if self.reference is not None else None
        d["timestamp"] = format_time(self.timestamp) if self.timestamp else ZERO_TIME_TEXT
        return d

    @classmethod
    def from_json(cls, d) -> Pin:
        """Build a pin from its JSON object; raises InvalidField naming the field."""
        _want_dict(d, "pin")
        t = d.get("type")
        max_depth = _j_int(d, "max_depth", None)
        values = _options_from_json(d)
        if max_depth is None:
            max_depth = values["mode"].max_depth
        return cls(
            _j_cid(d, "cid"),
            type=PinType.DATA if t is None else PinType.from_json(t),
            allocations=d.get("allocations"),
            max_depth=max_depth,
            reference=_j_optional_cid(d, "reference"),
            timestamp=_j_time(d, "timestamp"),
            **values,
        )


_DEFAULT_OPTIONS = PinOptions()


# --- pin status -----------------------------------------------------------------------


def _short_fields():
    return {
        "peername": attrs.field(default="", validator=_v_str, kw_only=True),
        "ipfs_peer_id": _optional_peer_field("ipfs_peer_id", kw_only=True),
        "ipfs_peer_addresses": _multiaddrs_field("ipfs_peer_addresses", kw_only=True),
        "status": attrs.field(
            default=TrackerStatus.UNDEFINED, validator=_v_instance(TrackerStatus), kw_only=True
        ),
        "timestamp": attrs.field(default=0, validator=_v_time, kw_only=True),
        "error": attrs.field(default="", validator=_v_str, kw_only=True),
        "attempt_count": attrs.field(default=0, validator=_v_uint, kw_only=True),
        "priority_pin": attrs.field(default=False, validator=_v_bool, kw_only=True),
    }


_SHORT_NAMES = tuple(_short_fields())


def _short_json(s, d):
    """Add the PinInfoShort keys of ``s`` to ``d`` (upstream order, omitempty rules)."""
    d["peername"] = s.peername
    if s.ipfs_peer_id:
        d["ipfs_peer_id"] = s.ipfs_peer_id
    if s.ipfs_peer_addresses:
        d["ipfs_peer_addresses"] = [str(m) for m in s.ipfs_peer_addresses]
    d["status"] = s.status.to_json()
    d["timestamp"] = format_time(s.timestamp)
    d["error"] = s.error
    d["attempt_count"] = s.attempt_count
    d["priority_pin"] = s.priority_pin
    return d


def _short_from_json(d, path) -> dict:
    status = d.get("status")
    return {
        "peername": _j_str(d, "peername", path),
        "ipfs_peer_id": _j_peer(d, "ipfs_peer_id", path, optional=True),
        "ipfs_peer_addresses": _j_multiaddrs(d, "ipfs_peer_addresses", path),
        "status": (
            TrackerStatus.UNDEFINED
            if status is None
            else TrackerStatus.from_json(status, path + "status")
        ),
        "timestamp": _j_time(d, "timestamp", path),
        "error": _j_str(d, "error", path),
        "attempt_count": _j_uint(d, "attempt_count", path),
        "priority_pin": _j_bool(d, "priority_pin", path),
    }


@attrs.frozen(these=_short_fields())
class PinInfoShort:
    """One peer's view of a CID inside a GlobalPinInfo (no CID, no peer: the map
    key is the peer)."""

    def to_json(self) -> dict:
        """The upstream JSON object (``ipfs_peer_id``/``_addresses`` omitted if empty)."""
        return _short_json(self, {})

    @classmethod
    def from_json(cls, d, path: str = "") -> PinInfoShort:
        """Build from JSON; raises InvalidField naming ``path`` + the field."""
        return cls(**_short_from_json(_want_dict(d, path or "pin info"), path))


def _pin_info_fields():
    fields = {
        "cid": attrs.field(validator=_v_cid),
        "peer": _peer_field("peer"),
        "name": attrs.field(default="", validator=_v_str, kw_only=True),
        "allocations": _peers_field("allocations", kw_only=True),
        "origins": _multiaddrs_field("origins", kw_only=True),
        "created": attrs.field(default=0, validator=_v_time, kw_only=True),
        "metadata": _metadata_field(kw_only=True),
    }
    fields.update(_short_fields())
    return fields


def _header_json(x, d):
    """The pin description keys shared by PinInfo and GlobalPinInfo."""
    d["name"] = x.name
    d["allocations"] = list(x.allocations)
    d["origins"] = [str(m) for m in x.origins]
    d["created"] = format_time(x.created)
    d["metadata"] = dict(x.metadata) if x.metadata else None
    return d


def _header_from_json(d, path="") -> dict:
    return {
        "name": _j_str(d, "name", path),
        "allocations": d.get("allocations"),
        "origins": _j_multiaddrs(d, "origins", path),
        "created": _j_time(d, "created", path),
        "metadata": _j_str_map(d, "metadata", path),
    }


_HEADER_NAMES = ("name", "allocations", "origins", "created", "metadata")


@attrs.frozen(these=_pin_info_fields())
class PinInfo:
    """The status of one CID on one peer (an entry of a pin tracker's local state).

    ``peer`` is the cluster peer; the pin description (``name``, ``allocations``,
    ``origins``, ``created``, ``metadata``) is copied from the Pin when known.
    """

    def to_short(self) -> PinInfoShort:
        """The per-peer part, as stored in a GlobalPinInfo's ``peer_map``."""
        return PinInfoShort(**{n: getattr(self, n) for n in _SHORT_NAMES})

    def to_global(self) -> GlobalPinInfo:
        """A GlobalPinInfo holding only this peer's status."""
        return GlobalPinInfo.from_pin_info(self)

    def to_json(self) -> dict:
        """The upstream JSON object of this PinInfo (flat, with ``cid`` and ``peer``)."""
        d = {"cid": str(self.cid)}
        d["name"] = self.name
        d["peer"] = self.peer
        d = _header_json(self, d)
        return _short_json(self, d)

    @classmethod
    def from_json(cls, d) -> PinInfo:
        """Build from JSON; raises InvalidField naming the field."""
        _want_dict(d, "pin info")
        values = _header_from_json(d)
        values.update(_short_from_json(d, ""))
        return cls(_j_cid(d, "cid"), _j_peer(d, "peer"), **values)


def _keyed_by_peer(field, convert_value, **kw):
    """A read-only map field keyed by canonical peer IDs; ``convert_value(path, v)``
    checks and converts each value (errors name ``field.<peer>``)."""

    def convert(value):
        if not value:
            return _EMPTY_MAP
        if not isinstance(value, Mapping):
            raise _bad(field, value, "a mapping keyed by peer ID")
        return MappingProxyType(
            {_check_peer(k, field): convert_value(f"{field}.{k}", v) for k, v in value.items()}
        )

    return attrs.field(factory=dict, converter=convert, hash=False, **kw)


def _is(kind, expected):
    def check(path, value):
        if type(value) is not kind:
            raise _bad(path, value, expected)
        return value

    return check


def _peer_list(path, value):
    if not isinstance(value, (list, tuple)):
        raise _bad(path, value, "a list of peer IDs")
    return tuple(_check_peer(p, path) for p in value)


@attrs.frozen
class GlobalPinInfo:
    """The status of one CID on every peer: what ``GET /pins/{cid}`` returns."""

    cid: CID = attrs.field(validator=_v_cid)
    name: str = attrs.field(default="", validator=_v_str, kw_only=True)
    allocations: tuple = _peers_field("allocations", kw_only=True)
    origins: tuple = _multiaddrs_field("origins", kw_only=True)
    created: int = attrs.field(default=0, validator=_v_time, kw_only=True)
    metadata: Mapping = _metadata_field(kw_only=True)
    peer_map: Mapping = _keyed_by_peer(
        "peer_map", _is(PinInfoShort, "a PinInfoShort"), kw_only=True
    )

    @classmethod
    def from_pin_info(cls, info: PinInfo) -> GlobalPinInfo:
        """A GlobalPinInfo with the single peer of ``info``."""
        return cls(info.cid).add(info)

    @classmethod
    def from_pin_infos(cls, cid: CID, infos: Iterable[PinInfo]) -> GlobalPinInfo:
        """The GlobalPinInfo of ``cid`` with each of ``infos`` added in turn (as
        :meth:`add` does), built at once: one value instead of one per peer.

        Raises InvalidInput if an item is about another CID.
        """
        peer_map = {}
        described = None
        for info in infos:
            if info.cid != cid:
                raise InvalidInput(f"cannot add the status of {info.cid} to that of {cid}")
            peer_map[info.peer] = info.to_short()
            if info.status and not info.status & TrackerStatus.CLUSTER_ERROR:
                described = info
        if described is None:
            return cls(cid, peer_map=peer_map)
        return cls(cid, peer_map=peer_map, **{n: getattr(described, n) for n in _HEADER_NAMES})

    @staticmethod
    def json_from_pin_infos(cid: CID, infos: Iterable[PinInfo]) -> dict:
        """``from_pin_infos(cid, infos).to_json()`` without building the value (the
        ``status`` stream's merge: ~2× cheaper).  ``infos`` are about ``cid``."""
        peer_map = {}
        described = None
        for info in infos:
            peer_map[info.peer] = info
            if info.status and not info.status & TrackerStatus.CLUSTER_ERROR:
                described = info
        d = {"cid": str(cid)}
        if described is None:
            d.update(name="", allocations=[], origins=[], created=ZERO_TIME_TEXT, metadata=None)
        else:
            _header_json(described, d)
        d["peer_map"] = {p: _short_json(i, {}) for p, i in peer_map.items()}
        return d

    def add(self, info: PinInfo) -> GlobalPinInfo:
        """Return a copy with ``info.peer``'s status set to ``info``.

        The pin description is taken from ``info`` unless ``info`` is a
        ``cluster_error`` (an unreachable peer knows nothing about the pin), as
        upstream does.  Raises InvalidInput if ``info`` is about another CID.
        """
        if info.cid != self.cid:
            raise InvalidInput(f"cannot add the status of {info.cid} to that of {self.cid}")
        peer_map = dict(self.peer_map)
        peer_map[info.peer] = info.to_short()
        if not info.status or info.status & TrackerStatus.CLUSTER_ERROR:
            return attrs.evolve(self, peer_map=peer_map)
        header = {n: getattr(info, n) for n in _HEADER_NAMES}
        return attrs.evolve(self, peer_map=peer_map, **header)

    def match(self, status_filter: TrackerStatus) -> bool:
        """True when some peer's status passes ``status_filter``."""
        return any(s.status.match(status_filter) for s in self.peer_map.values())

    def to_json(self) -> dict:
        """The upstream JSON object (``peer_map`` values without cid and peer)."""
        d = _header_json(self, {"cid": str(self.cid)})
        d["peer_map"] = {p: _short_json(s, {}) for p, s in self.peer_map.items()}
        return d

    @classmethod
    def from_json(cls, d) -> GlobalPinInfo:
        """Build from JSON; raises InvalidField naming the field (``peer_map.<id>.…``)."""
        _want_dict(d, "global pin info")
        raw = d.get("peer_map") or {}
        if type(raw) is not dict:
            raise _bad("peer_map", raw, "a JSON object")
        peer_map = {}
        for peer, short in raw.items():
            path = f"peer_map.{peer}."
            _check_peer(peer, "peer_map")
            peer_map[peer] = PinInfoShort.from_json(short, path)
        return cls(_j_cid(d, "cid"), peer_map=peer_map, **_header_from_json(d))


# --- peers ----------------------------------------------------------------------------


@attrs.frozen
class IPFSID:
    """The identity of a peer's IPFS daemon (``error`` set when it did not answer)."""

    id: str = _optional_peer_field("id")
    addresses: tuple = _multiaddrs_field("addresses")
    error: str = attrs.field(default="", validator=_v_str)

    def to_json(self) -> dict:
        """``{"id"?, "addresses", "error"}`` (``id`` omitted when empty, as upstream)."""
        d = {"id": self.id} if self.id else {}
        d["addresses"] = [str(m) for m in self.addresses]
        d["error"] = self.error
        return d

    @classmethod
    def from_json(cls, d, path: str = "") -> IPFSID:
        """Build from JSON; raises InvalidField naming the field."""
        _want_dict(d, path or "ipfs id")
        return cls(
            _j_peer(d, "id", path, optional=True),
            _j_multiaddrs(d, "addresses", path),
            _j_str(d, "error", path),
        )


@attrs.frozen
class ID:
    """What a cluster peer says about itself (``GET /id``, one item of ``/peers``)."""

    id: str = _peer_field("id")
    addresses: tuple = _multiaddrs_field("addresses", kw_only=True)
    cluster_peers: tuple = _peers_field("cluster_peers", kw_only=True)
    cluster_peers_addresses: tuple = _multiaddrs_field("cluster_peers_addresses", kw_only=True)
    version: str = attrs.field(default="", validator=_v_str, kw_only=True)
    commit: str = attrs.field(default="", validator=_v_str, kw_only=True)
    rpc_protocol_version: str = attrs.field(default="", validator=_v_str, kw_only=True)
    error: str = attrs.field(default="", validator=_v_str, kw_only=True)
    ipfs: IPFSID = attrs.field(factory=IPFSID, validator=_v_instance(IPFSID), kw_only=True)
    peername: str = attrs.field(default="", validator=_v_str, kw_only=True)

    def to_json(self) -> dict:
        """The upstream JSON object."""
        return {
            "id": self.id,
            "addresses": [str(m) for m in self.addresses],
            "cluster_peers": list(self.cluster_peers),
            "cluster_peers_addresses": [str(m) for m in self.cluster_peers_addresses],
            "version": self.version,
            "commit": self.commit,
            "rpc_protocol_version": self.rpc_protocol_version,
            "error": self.error,
            "ipfs": self.ipfs.to_json(),
            "peername": self.peername,
        }

    @classmethod
    def from_json(cls, d) -> ID:
        """Build from JSON; raises InvalidField naming the field."""
        _want_dict(d, "peer id")
        ipfs = d.get("ipfs")
        return cls(
            _j_peer(d, "id"),
            addresses=_j_multiaddrs(d, "addresses"),
            cluster_peers=d.get("cluster_peers"),
            cluster_peers_addresses=_j_multiaddrs(d, "cluster_peers_addresses"),
            version=_j_str(d, "version"),
            commit=_j_str(d, "commit"),
            rpc_protocol_version=_j_str(d, "rpc_protocol_version"),
            error=_j_str(d, "error"),
            ipfs=IPFSID() if ipfs is None else IPFSID.from_json(ipfs, "ipfs."),
            peername=_j_str(d, "peername"),
        )


@attrs.frozen
class Version:
    """The software version (``GET /version`` → ``{"version": "1.1.6"}``)."""

    version: str = attrs.field(validator=_v_str)

    def to_json(self) -> dict:
        """``{"version": ...}`` (lowercase key, as today's upstream)."""
        return {"version": self.version}

    @classmethod
    def from_json(cls, d) -> Version:
        """Build from JSON; accepts 0.3.x's ``{"Version": ...}`` too."""
        _want_dict(d, "version")
        if "version" not in d and "Version" in d:
            return cls(_j_str(d, "Version"))
        return cls(_j_str(d, "version"))


# --- metrics --------------------------------------------------------------------------


@attrs.frozen
class Metric:
    """A value a peer reports about itself (``freespace``, ``ping`` …).

    ``value`` is a string the allocator interprets; ``expire`` and ``received_at``
    are nanoseconds since the epoch (``expire`` written as an integer, as
    upstream); ``peer`` is "" until the sender fills it in.
    """

    name: str = attrs.field(validator=_v_str)
    peer: str = _optional_peer_field("peer", kw_only=True)
    value: str = attrs.field(default="", validator=_v_str, kw_only=True)
    expire: int = attrs.field(default=0, validator=_v_int, kw_only=True)
    valid: bool = attrs.field(default=False, validator=_v_bool, kw_only=True)
    weight: int = attrs.field(default=0, validator=_v_int, kw_only=True)
    partitionable: bool = attrs.field(default=False, validator=_v_bool, kw_only=True)
    received_at: int = attrs.field(default=0, validator=_v_int, kw_only=True)

    def expired(self, now_ns: int) -> bool:
        """True when ``now_ns`` is after ``expire``."""
        return now_ns > self.expire

    def discard(self, now_ns: int) -> bool:
        """True when the metric is invalid or expired at ``now_ns``."""
        return not self.valid or now_ns > self.expire

    def ttl(self, now_ns: int) -> int:
        """Nanoseconds left before expiry at ``now_ns`` (0 when expired)."""
        return max(0, self.expire - now_ns)

    def to_json(self) -> dict:
        """The upstream JSON object (times as integer nanoseconds)."""
        return _metric_json(self, {})

    @classmethod
    def from_json(cls, d) -> Metric:
        """Build from JSON; raises InvalidField naming the field."""
        return cls(**_metric_from_json(_want_dict(d, "metric")))


def _metric_json(m, d):
    d["name"] = m.name
    d["peer"] = m.peer
    d["value"] = m.value
    d["expire"] = m.expire
    d["valid"] = m.valid
    d["weight"] = m.weight
    d["partitionable"] = m.partitionable
    d["received_at"] = m.received_at
    return d


def _metric_from_json(d) -> dict:
    return {
        "name": _j_str(d, "name"),
        "peer": _j_peer(d, "peer", optional=True),
        "value": _j_str(d, "value"),
        "expire": _j_int(d, "expire", 0),
        "valid": _j_bool(d, "valid"),
        "weight": _j_int(d, "weight", 0),
        "partitionable": _j_bool(d, "partitionable"),
        "received_at": _j_int(d, "received_at", 0),
    }


@attrs.frozen
class Alert:
    """A metric that expired while it was expected (``GET /health/alerts``).

    JSON is the metric's keys plus ``triggered_at`` (RFC 3339), as upstream.
    """

    metric: Metric = attrs.field(validator=_v_instance(Metric))
    triggered_at: int = attrs.field(default=0, validator=_v_time, kw_only=True)

    @property
    def peer(self) -> str:
        """The peer whose metric expired."""
        return self.metric.peer

    @property
    def name(self) -> str:
        """The name of the metric that expired."""
        return self.metric.name

    def to_json(self) -> dict:
        """The upstream JSON object (flat)."""
        d = _metric_json(self.metric, {})
        d["triggered_at"] = format_time(self.triggered_at)
        return d

    @classmethod
    def from_json(cls, d) -> Alert:
        """Build from JSON; raises InvalidField naming the field."""
        _want_dict(d, "alert")
        return cls(Metric(**_metric_from_json(d)), triggered_at=_j_time(d, "triggered_at"))


# --- health graph, add output, repo ---------------------------------------------------


def _j_object(d, key):
    v = d.get(key)
    if v is None:
        return {}
    if type(v) is not dict:
        raise _bad(key, v, "a JSON object")
    return v


@attrs.frozen
class ConnectGraph:
    """Who is connected to whom (``GET /health/graph``).

    ``ipfs_links``/``cluster_links`` map a peer to the peers it sees;
    ``cluster_to_ipfs`` maps a cluster peer to its IPFS daemon's peer ID;
    ``cluster_trust_links`` says which peers are trusted; ``id_to_peername`` names
    cluster peers.
    """

    cluster_id: str = _peer_field("cluster_id")
    id_to_peername: Mapping = _keyed_by_peer("id_to_peername", _is(str, "a string"), kw_only=True)
    ipfs_links: Mapping = _keyed_by_peer("ipfs_links", _peer_list, kw_only=True)
    cluster_links: Mapping = _keyed_by_peer("cluster_links", _peer_list, kw_only=True)
    cluster_trust_links: Mapping = _keyed_by_peer(
        "cluster_trust_links", _is(bool, "true or false"), kw_only=True
    )
    cluster_to_ipfs: Mapping = _keyed_by_peer(
        "cluster_to_ipfs", lambda path, v: _check_peer(v, path), kw_only=True
    )

    def to_json(self) -> dict:
        """The upstream JSON object."""
        return {
            "cluster_id": self.cluster_id,
            "id_to_peername": dict(self.id_to_peername),
            "ipfs_links": {k: list(v) for k, v in self.ipfs_links.items()},
            "cluster_links": {k: list(v) for k, v in self.cluster_links.items()},
            "cluster_trust_links": dict(self.cluster_trust_links),
            "cluster_to_ipfs": dict(self.cluster_to_ipfs),
        }

    @classmethod
    def from_json(cls, d) -> ConnectGraph:
        """Build from JSON; raises InvalidField naming the field."""
        _want_dict(d, "connect graph")
        return cls(
            _j_peer(d, "cluster_id"),
            id_to_peername=_j_object(d, "id_to_peername"),
            ipfs_links=_j_object(d, "ipfs_links"),
            cluster_links=_j_object(d, "cluster_links"),
            cluster_trust_links=_j_object(d, "cluster_trust_links"),
            cluster_to_ipfs=_j_object(d, "cluster_to_ipfs"),
        )


@attrs.frozen
class AddedOutput:
    """One line of the ``POST /add`` answer: a file or folder added (or progress).

    ``cid`` is None on progress lines; ``bytes`` counts bytes read so far,
    ``size`` is the DAG size; both, and ``allocations``, are omitted from JSON when
    empty, as upstream.
    """

    name: str = attrs.field(validator=_v_str)
    cid: CID | None = attrs.field(default=None, validator=_v_optional_cid)
    bytes: int = attrs.field(default=0, validator=_v_uint, kw_only=True)
    size: int = attrs.field(default=0, validator=_v_uint, kw_only=True)
    allocations: tuple = _peers_field("allocations", kw_only=True)

    def to_json(self) -> dict:
        """``{"name", "cid", "bytes"?, "size"?, "allocations"?}``."""
        d = {"name": self.name, "cid": str(self.cid) if self.cid is not None else None}
        if self.bytes:
            d["bytes"] = self.bytes
        if self.size:
            d["size"] = self.size
        if self.allocations:
            d["allocations"] = list(self.allocations)
        return d

    @classmethod
    def from_json(cls, d) -> AddedOutput:
        """Build from JSON; raises InvalidField naming the field."""
        _want_dict(d, "added output")
        return cls(
            _j_str(d, "name"),
            _j_optional_cid(d, "cid"),
            bytes=_j_uint(d, "bytes"),
            size=_j_uint(d, "size"),
            allocations=d.get("allocations"),
        )


@attrs.frozen
class RepoStat:
    """Size figures of an IPFS repository, in bytes (kubo's ``repo/stat`` keys)."""

    repo_size: int = attrs.field(default=0, validator=_v_uint)
    storage_max: int = attrs.field(default=0, validator=_v_uint)

    @property
    def free_space(self) -> int:
        """``storage_max - repo_size``, never negative."""
        return max(0, self.storage_max - self.repo_size)

    def to_json(self) -> dict:
        """``{"RepoSize", "StorageMax"}``, as kubo and upstream's proxy write them."""
        return {"RepoSize": self.repo_size, "StorageMax": self.storage_max}

    @classmethod
    def from_json(cls, d) -> RepoStat:
        """Build from JSON (extra kubo keys are ignored); raises InvalidField."""
        _want_dict(d, "repo stat")
        return cls(_j_uint(d, "RepoSize"), _j_uint(d, "StorageMax"))
