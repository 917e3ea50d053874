"""Reading REST request parameters the way upstream ipfs-cluster does.

Query strings arrive in ``request.args`` as ``{bytes: [bytes, ...]}``.  The helpers
here turn them into text and typed values and raise
:class:`~ipfscluster.errors.InvalidParameter` (HTTP 400) whose message names the
parameter and quotes the value, so an operator sees at once what to fix:
``parameter local invalid: "yes" is not a boolean (use true or false)``.

Booleans follow Go's ``strconv.ParseBool`` exactly (reference §15): ``1 t T TRUE
true True`` are true, ``0 f F FALSE false False`` are false, anything else is an
error.  Python clients send ``True``/``False`` (``str(True)``), JS clients
``true``/``false``; both work.  An empty value means "not given" (the default).

Written by hand because these are a few lines of table lookups; no library
reproduces Go's exact set of spellings.
"""

from __future__ import annotations

from collections.abc import Mapping

from ipfscluster.cid import CID
from ipfscluster.errors import InvalidCID, InvalidParameter, InvalidPeerID
from ipfscluster.identity import validate_peer_id

__all__ = [
    "parse_bool",
    "query_args",
    "query_bool",
    "query_int",
    "query_choice",
    "parse_cid",
    "parse_peer_id",
    "bad_parameter",
]

_TRUE = frozenset(("1", "t", "T", "TRUE", "true", "True"))
_FALSE = frozenset(("0", "f", "F", "FALSE", "false", "False"))


def bad_parameter(parameter: str, value: str, why: str) -> InvalidParameter:
    """Return the 400 error ``parameter <name> invalid: "<value>" <why>``."""
    shown = value if len(value) <= 100 else value[:97] + "..."
    return InvalidParameter(
        f'parameter {parameter} invalid: "{shown}" {why}', parameter=parameter, value=value
    )


def parse_bool(value: str, parameter: str) -> bool:
    """Parse ``value`` as Go's ``strconv.ParseBool`` does.

    Returns the boolean.  Raises :class:`InvalidParameter` naming ``parameter`` for
    any other spelling.
    """
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise bad_parameter(parameter, value, "is not a boolean (use true or false)")


def query_args(args: Mapping) -> dict[str, str]:
    """Return ``request.args`` as ``{name: first value}``, both decoded as UTF-8.

    Undecodable bytes are replaced (U+FFFD) rather than failing; such values then
    fail the parameter's own validation with a readable message.
    """
    out = {}
    for key, values in args.items():
        name = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
        if not values:
            continue
        value = values[0]
        out[name] = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return out


def query_bool(query: Mapping[str, str], parameter: str, default: bool = False) -> bool:
    """The boolean parameter ``parameter`` of ``query`` (``default`` when absent or
    empty).  Raises :class:`InvalidParameter` for a value Go would reject."""
    value = query.get(parameter)
    if value is None or value == "":
        return default
    return parse_bool(value, parameter)


def query_int(query: Mapping[str, str], parameter: str, default: int, minimum: int = 0) -> int:
    """The integer parameter ``parameter`` of ``query`` (``default`` when absent or
    empty).  Raises :class:`InvalidParameter` for a non-integer or a value below
    ``minimum``."""
    value = query.get(parameter)
    if value is None or value == "":
        return default
    text = value[1:] if value[:1] in ("+", "-") else value
    if not (text.isascii() and text.isdigit()):
        raise bad_parameter(parameter, value, "is not an integer")
    number = int(value)
    if number < minimum:
        raise bad_parameter(parameter, value, f"is too small (use at least {minimum})")
    return number


def query_choice(query: Mapping[str, str], parameter: str, choices: tuple[str, ...]) -> str:
    """The parameter ``parameter``, which must be one of ``choices`` (the first is
    the default when absent or empty).  Raises :class:`InvalidParameter` otherwise."""
    value = query.get(parameter) or choices[0]
    if value not in choices:
        raise bad_parameter(parameter, value, "is not valid (use one of: %s)" % ", ".join(choices))
    return value


def parse_cid(value: str, parameter: str = "cid") -> CID:
    """Parse the CID text ``value`` received as ``parameter``.

    Returns the :class:`CID`.  Raises :class:`InvalidParameter` (400) naming the
    parameter, quoting the value and saying why it is not a CID.
    """
    try:
        return CID.parse(value)
    except InvalidCID as err:
        raise bad_parameter(parameter, value, f"is not a CID: {err.reason}") from None


def parse_peer_id(value: str, parameter: str = "peer") -> str:
    """Validate the peer ID text ``value`` received as ``parameter``.

    Returns the canonical peer ID.  Raises :class:`InvalidParameter` (400) naming the
    parameter and quoting the value.
    """
    try:
        return validate_peer_id(value)
    except InvalidPeerID as err:
        why = str(err).split('": ', 1)[-1]
        raise bad_parameter(parameter, value, f"is not a peer ID: {why}") from None
