"""Go duration strings (``"1m0s"``, ``"500ms"``, ``"1h30m"``), exactly as Go does them.

``service.json`` stores every duration in the syntax of Go's ``time.ParseDuration``
and writes them the way Go's ``time.Duration.String()`` does, so a file written by
upstream ipfs-cluster loads here and is written back in the same canonical form.

Why hand-written: no maintained PyPI package parses *and* formats Go durations with
Go's exact rules (units ``ns us µs μs ms s m h``, signed, fractional components,
``"0"`` without unit, int64 nanosecond range, canonical ``1h2m3.5s`` output).  The
grammar is small, so a tested 100-line module is cheaper than a dependency.

Representation: an integer number of nanoseconds, the same exact value Go holds in
its ``int64`` ``Duration``.  A fractional component is converted the way Go does it
(a float64 product truncated towards zero), so ``"0.3333333333333333333h"`` is 20m
here as in Go.

:class:`Duration` wraps that integer in a frozen, ordered value with ``seconds``
(a float for timers) and ``str()`` giving the Go form.
"""

from __future__ import annotations

import re
from fractions import Fraction

import attrs

from ipfscluster.errors import InvalidDuration

NANOSECOND = 1
MICROSECOND = 1000 * NANOSECOND
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

# Go's Duration is an int64 of nanoseconds.
_MAX = (1 << 63) - 1
_MIN = -(1 << 63)

_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,  # µ MICRO SIGN
    "\u03bcs": MICROSECOND,  # μ GREEK SMALL LETTER MU
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}

# one "<number><unit>" component; the unit is any run of non-digit, non-dot chars
_COMPONENT = re.compile(r"(?P<int>[0-9]*)(?:\.(?P<frac>[0-9]*))?(?P<unit>[^0-9.]*)")

EXAMPLES = '"1s", "500ms", "1m0s"'


def _leading_fraction(digits: str) -> tuple[int, float]:
    """Go's fraction reading: digits beyond int64 precision are dropped."""
    value, scale = 0, 1.0
    for c in digits:
        nxt = value * 10 + int(c)
        if value > _MAX // 10 or nxt > 1 << 63:
            break
        value, scale = nxt, scale * 10
    return value, scale


def parse_duration(text: str) -> int:
    """Parse a Go duration string; return the number of nanoseconds (an ``int``).

    Accepts what Go's ``time.ParseDuration`` accepts: an optional sign, then one or
    more ``<decimal><unit>`` components (``"1h30m"``, ``"1.5s"``, ``"-300us"``), or
    ``"0"`` alone.  The result is the one Go computes, bit for bit (fractions included).

    :raises InvalidDuration: naming the text, when it is not a duration or does not
        fit in Go's int64 nanoseconds.
    """
    if not isinstance(text, str):
        raise InvalidDuration(f"{text!r} is not a duration: expected a string like {EXAMPLES}")
    rest = text
    negative = False
    if rest[:1] in ("-", "+"):
        negative = rest[0] == "-"
        rest = rest[1:]
    if rest == "0":
        return 0
    if rest == "":
        raise InvalidDuration(f'"{text}" is not a duration: it is empty (examples: {EXAMPLES})')
    too_large = InvalidDuration(f'"{text}" is not a duration: it is too large (maximum about 2562047h)')
    total = 0
    pos = 0
    while pos < len(rest):
        m = _COMPONENT.match(rest, pos)
        digits, frac, unit = m.group("int"), m.group("frac"), m.group("unit")
        if not digits and not frac:
            raise InvalidDuration(
                f'"{text}" is not a duration: expected a number at "{rest[pos:]}" '
                f"(examples: {EXAMPLES})"
            )
        if not unit:
            raise InvalidDuration(
                f'"{text}" is not a duration: missing unit after "{rest[pos:m.end()]}" '
                f"(units: ns, us, ms, s, m, h)"
            )
        if unit not in _UNITS:
            raise InvalidDuration(
                f'"{text}" is not a duration: unknown unit "{unit}" (units: ns, us, ms, s, m, h)'
            )
        scale_unit = _UNITS[unit]
        value = int(digits or "0")
        if value > (1 << 63) // scale_unit:
            raise too_large
        value *= scale_unit
        if frac:
            fraction, scale = _leading_fraction(frac)
            # Go computes this product in float64 and truncates: do the same
            value += int(float(fraction) * (float(scale_unit) / scale))
        total += value
        if value > 1 << 63 or total > 1 << 63:
            raise too_large
        pos = m.end()
    if negative:
        return -total
    if total > _MAX:
        raise too_large
    return total


def _fraction_digits(value: int, precision: int) -> tuple[str, int]:
    """Split ``value`` into (".ddd" without trailing zeros or "", value // 10**precision)."""
    whole, frac = divmod(value, 10**precision)
    if frac == 0:
        return "", whole
    return "." + str(frac).rjust(precision, "0").rstrip("0"), whole


def format_duration(nanos: int) -> str:
    """Return ``nanos`` written as Go's ``Duration.String()`` writes it.

    Examples: 0 → ``"0s"``, 1.5 s → ``"1.5s"``, 60 s → ``"1m0s"``, 130 s → ``"2m10s"``,
    1000 ns → ``"1µs"`` (MICRO SIGN), 3600 s → ``"1h0m0s"``.

    :raises InvalidDuration: when ``nanos`` is not an int in Go's int64 range.
    """
    if isinstance(nanos, bool) or not isinstance(nanos, int) or not _MIN <= nanos <= _MAX:
        raise InvalidDuration(f"{nanos!r} is not a duration in nanoseconds (a 64-bit integer)")
    sign = "-" if nanos < 0 else ""
    u = abs(nanos)
    if u == 0:
        return "0s"
    if u < SECOND:
        if u < MICROSECOND:
            return f"{sign}{u}ns"
        if u < MILLISECOND:
            frac, whole = _fraction_digits(u, 3)
            return f"{sign}{whole}{frac}\u00b5s"
        frac, whole = _fraction_digits(u, 6)
        return f"{sign}{whole}{frac}ms"
    frac, seconds = _fraction_digits(u, 9)
    minutes, seconds = divmod(seconds, 60)
    text = f"{seconds}{frac}s"
    if minutes:
        hours, minutes = divmod(minutes, 60)
        text = f"{minutes}m{text}"
        if hours:
            text = f"{hours}h{text}"
    return sign + text


@attrs.frozen(order=True)
class Duration:
    """A Go duration: an exact number of nanoseconds.

    ``str(d)`` is Go's canonical form; ``d.seconds`` the value in seconds (float) for
    timers.  Build one with :meth:`parse`, :meth:`of_seconds` or ``Duration(nanos)``.
    """

    nanoseconds: int = attrs.field(validator=attrs.validators.instance_of(int))

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse Go syntax; raises :class:`InvalidDuration` naming the text."""
        return cls(parse_duration(text))

    @classmethod
    def of_seconds(cls, seconds: float) -> Duration:
        """The duration of ``seconds`` seconds (rounded to the nanosecond)."""
        return cls(round(Fraction(seconds) * SECOND))

    @property
    def seconds(self) -> float:
        """The duration in seconds, as a float."""
        return self.nanoseconds / SECOND

    def __str__(self) -> str:
        return format_duration(self.nanoseconds)
