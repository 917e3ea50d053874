"""One parsed kubo RPC request: command, arguments, options and body.

kubo (go-ipfs-cmds) reads arguments from repeated ``arg`` query values, after an
optional argument given as the last path component (``/api/v0/pin/add/<cid>``);
every other query key is an option.  Option values are converted when the command
reads them; a value that does not convert fails the request with 400 and a
``text/plain`` message (:class:`KuboRequestError`), as kubo does.  Booleans follow
Go's ``strconv.ParseBool``.
"""

from __future__ import annotations

import attrs

from ipfscluster.testing.fakeipfs.errors import KuboRequestError

__all__ = ["Call", "parse_bool", "parse_go_int"]

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_bool(text: str) -> bool:
    """Parse ``text`` like Go's ``strconv.ParseBool``.  Raises ValueError."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(text)


def parse_go_int(text: str) -> int:
    """Parse ``text`` like Go's ``strconv.ParseInt(text, 0, 64)``: an optional sign,
    then ``0x``/``0o``/``0b`` prefixes or a leading ``0`` for octal.  Raises
    ValueError."""
    sign, digits = 1, text
    if digits[:1] in ("+", "-"):
        sign, digits = (-1 if digits[0] == "-" else 1), digits[1:]
    if digits[:1] in ("+", "-"):
        raise ValueError(text)
    if len(digits) > 1 and digits[0] == "0" and digits[1] not in "xXoObB":
        value = int(digits[1:], 8)
    else:
        value = int(digits, 0 if digits[:2].lower() in ("0x", "0o", "0b") else 10)
    value *= sign
    if not -(1 << 63) <= value < 1 << 63:
        raise ValueError(text)
    return value


def _conversion_error(name: str, value: str, kind: str) -> KuboRequestError:
    shown = "empty value" if value == "" else f'value "{value}"'
    return KuboRequestError(f'could not convert {shown} to type "{kind}" (for option "-{name}")')


@attrs.frozen
class Call:
    """A request to one command.  ``options`` maps names to their list of values."""

    endpoint: str
    args: tuple = ()
    options: dict = attrs.field(factory=dict)
    body: bytes = b""
    content_type: str = ""

    def has(self, name: str) -> bool:
        """True when the option was given."""
        return name in self.options

    def _single(self, name: str) -> str | None:
        values = self.options.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise KuboRequestError(
                f"expected key {name} to have only a single value, received [{' '.join(values)}]"
            )
        return values[0]

    def bool(self, name: str, default: bool = False) -> bool:
        """The boolean option ``name`` (``default`` when absent).  Raises
        KuboRequestError when it is not a Go boolean."""
        value = self._single(name)
        if value is None:
            return default
        try:
            return parse_bool(value)
        except ValueError:
            raise _conversion_error(name, value, "bool") from None

    def int(self, name: str, default: int | None = None) -> int | None:
        """The integer option ``name``.  Raises KuboRequestError when it is not one."""
        value = self._single(name)
        if value is None:
            return default
        try:
            return parse_go_int(value)
        except ValueError:
            raise _conversion_error(name, value, "int") from None

    def str(self, name: str, default: str = "") -> str:
        """The string option ``name``."""
        value = self._single(name)
        return default if value is None else value

    def require(self, argument: str, count: int = 1) -> tuple:
        """Return the arguments, failing like kubo when fewer than ``count`` were
        given: 400 ``argument "<argument>" is required``."""
        if len(self.args) < count:
            raise KuboRequestError(f'argument "{argument}" is required')
        return self.args
