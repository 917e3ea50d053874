"""Go duration parsing and formatting (ipfscluster.config.durations)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipfscluster.config.durations import (
    HOUR,
    MICROSECOND,
    MILLISECOND,
    MINUTE,
    SECOND,
    Duration,
    format_duration,
    parse_duration,
)
from ipfscluster.errors import InvalidDuration, InvalidInput

INT64 = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)

# (text, nanoseconds) pairs as Go's time.ParseDuration reads them
PARSED = [
    ("0", 0),
    ("-0", 0),
    ("+0", 0),
    ("0s", 0),
    ("5s", 5 * SECOND),
    ("30s", 30 * SECOND),
    ("1478s", 1478 * SECOND),
    ("-5s", -5 * SECOND),
    ("+5s", 5 * SECOND),
    ("-0s", 0),
    ("5.0s", 5 * SECOND),
    ("5.6s", 5 * SECOND + 600 * MILLISECOND),
    ("5.s", 5 * SECOND),
    (".5s", 500 * MILLISECOND),
    ("1.0s", SECOND),
    ("1.00s", SECOND),
    ("1.004s", SECOND + 4 * MILLISECOND),
    ("1.0040s", SECOND + 4 * MILLISECOND),
    ("100.00100s", 100 * SECOND + MILLISECOND),
    ("10ns", 10),
    ("11us", 11 * MICROSECOND),
    ("12µs", 12 * MICROSECOND),
    ("12μs", 12 * MICROSECOND),
    ("13ms", 13 * MILLISECOND),
    ("500ms", 500 * MILLISECOND),
    ("14s", 14 * SECOND),
    ("15m", 15 * MINUTE),
    ("16h", 16 * HOUR),
    ("3h30m", 3 * HOUR + 30 * MINUTE),
    ("1h30m", 90 * MINUTE),
    ("1.5h", 90 * MINUTE),
    ("2h45m30.5s", 2 * HOUR + 45 * MINUTE + 30 * SECOND + 500 * MILLISECOND),
    ("10.5s4m", 4 * MINUTE + 10 * SECOND + 500 * MILLISECOND),
    ("-2m3.4s", -(2 * MINUTE + 3 * SECOND + 400 * MILLISECOND)),
    ("1h2m3s4ms5us6ns", HOUR + 2 * MINUTE + 3 * SECOND + 4 * MILLISECOND + 5 * MICROSECOND + 6),
    ("39h9m14.425s", 39 * HOUR + 9 * MINUTE + 14 * SECOND + 425 * MILLISECOND),
    ("52763797000ns", 52763797000),
    ("0.3333333333333333333h", 20 * MINUTE),
    ("9007199254740993ns", (1 << 53) + 1),
    ("9223372036854775807ns", (1 << 63) - 1),
    ("9223372036854775.807us", (1 << 63) - 1),
    ("-9223372036854775808ns", -(1 << 63)),
    ("0.100000000000000000000h", 6 * MINUTE),
    ("0.830103483285477580700h", 49 * MINUTE + 48 * SECOND + 372539827),
    ("1m0s", MINUTE),
    ("2m10s", 2 * MINUTE + 10 * SECOND),
    ("1h0m0s", HOUR),
    ("300us", 300 * MICROSECOND),
]


@pytest.mark.parametrize("text,nanos", PARSED)
def test_parse_known_go_values(text, nanos):
    assert parse_duration(text) == nanos


@pytest.mark.parametrize(
    "text",
    [
        "",
        "3",
        "-",
        "s",
        ".",
        "-.",
        ".s",
        "+.s",
        "1d",
        "1 s",
        "1x",
        "1m-1s",
        "1.2.3s",
        "1e3s",
        "\x85\x85",
        "9223372036854775808ns",
        "9223372036854775.808us",
        "-9223372036854775809ns",
        "3000000h",
    ],
)
def test_parse_rejects_what_go_rejects(text):
    with pytest.raises(InvalidDuration) as info:
        parse_duration(text)
    assert f'"{text}"' in str(info.value)
    assert isinstance(info.value, InvalidInput)


def test_parse_error_names_the_bad_unit():
    with pytest.raises(InvalidDuration, match='unknown unit "x"'):
        parse_duration("1x")
    with pytest.raises(InvalidDuration, match="missing unit"):
        parse_duration("10")


def test_parse_rejects_non_strings():
    with pytest.raises(InvalidDuration):
        parse_duration(15)


# (nanoseconds, Go's Duration.String())
FORMATTED = [
    (0, "0s"),
    (1, "1ns"),
    (1100, "1.1µs"),
    (MICROSECOND, "1µs"),
    (2200 * MICROSECOND, "2.2ms"),
    (500 * MILLISECOND, "500ms"),
    (50 * MILLISECOND, "50ms"),
    (200 * MILLISECOND, "200ms"),
    (SECOND, "1s"),
    (1500 * MILLISECOND, "1.5s"),
    (3300 * MILLISECOND, "3.3s"),
    (15 * SECOND, "15s"),
    (MINUTE, "1m0s"),
    (2 * MINUTE + 10 * SECOND, "2m10s"),
    (4 * MINUTE + 5 * SECOND, "4m5s"),
    (4 * MINUTE + 5001 * MILLISECOND, "4m5.001s"),
    (HOUR, "1h0m0s"),
    (5 * HOUR + 6 * MINUTE + 7001 * MILLISECOND, "5h6m7.001s"),
    (8 * MINUTE + 1, "8m0.000000001s"),
    (-1, "-1ns"),
    (-SECOND, "-1s"),
    (-(90 * MINUTE), "-1h30m0s"),
    ((1 << 63) - 1, "2562047h47m16.854775807s"),
    (-(1 << 63), "-2562047h47m16.854775808s"),
]


@pytest.mark.parametrize("nanos,text", FORMATTED)
def test_format_like_go(nanos, text):
    assert format_duration(nanos) == text
    assert parse_duration(text) == nanos


@pytest.mark.parametrize("bad", [1.5, True, "1s", 1 << 63, -(1 << 63) - 1])
def test_format_rejects_non_int64(bad):
    with pytest.raises(InvalidDuration):
        format_duration(bad)


@given(INT64)
def test_format_parse_round_trip(nanos):
    text = format_duration(nanos)
    assert parse_duration(text) == nanos
    assert format_duration(parse_duration(text)) == text


@given(
    st.lists(
        st.tuples(st.integers(0, 10_000), st.sampled_from(["ns", "us", "µs", "ms", "s", "m", "h"])),
        min_size=1,
        max_size=4,
    )
)
def test_parse_sums_components(parts):
    text = "".join(f"{n}{unit}" for n, unit in parts)
    scale = {"ns": 1, "us": MICROSECOND, "µs": MICROSECOND, "ms": MILLISECOND, "s": SECOND,
             "m": MINUTE, "h": HOUR}
    expected = sum(n * scale[unit] for n, unit in parts)
    assert parse_duration(text) == expected
    assert parse_duration("-" + text) == -expected


def test_duration_value():
    d = Duration.parse("1m30s")
    assert d.nanoseconds == 90 * SECOND
    assert d.seconds == 90.0
    assert str(d) == "1m30s"
    assert Duration.of_seconds(0.5) == Duration.parse("500ms")
    assert Duration.parse("1s") < Duration.parse("1m")
    assert Duration(0) == Duration.parse("0")
    with pytest.raises(TypeError):
        Duration("1s")
