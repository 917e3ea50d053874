"""Log levels and facilities (ipfscluster.logging)."""

import io

import pytest
from twisted.logger import Logger, LogLevel, LogPublisher

from ipfscluster import logging as cluster_logging


def emit_all(observer):
    """Log one line per (namespace, level) through a private publisher."""
    publisher = LogPublisher(observer)
    for namespace in ("cluster", "consensus.raft", "config", "twisted.internet", "other"):
        log = Logger(namespace=namespace, observer=publisher)
        for level in ("debug", "info", "warn", "error", "critical"):
            getattr(log, level)("{ns} says {lvl}", ns=namespace, lvl=level)


def lines(level="info", debug=False):
    out = io.StringIO()
    emit_all(cluster_logging.make_observer(out, level, debug))
    return out.getvalue().splitlines()


def shown(text_lines):
    return {tuple(line.split("] ", 1)[1].split(" says ")) for line in text_lines}


def test_default_info_for_cluster_facilities_warn_for_others():
    got = shown(lines())
    assert ("cluster", "info") in got
    assert ("consensus.raft", "info") in got  # children of a facility follow it
    assert ("cluster", "debug") not in got
    assert ("twisted.internet", "info") not in got
    assert ("twisted.internet", "warn") in got
    assert ("other", "error") in got


@pytest.mark.parametrize(
    "level,lowest", [("critical", "critical"), ("error", "error"), ("warning", "warn"),
                     ("info", "info"), ("debug", "debug")]
)
def test_loglevel_applies_to_cluster_facilities(level, lowest):
    order = ["debug", "info", "warn", "error", "critical"]
    got = shown(lines(level))
    for name in order:
        assert (("config", name) in got) == (order.index(name) >= order.index(lowest))
    # not to other namespaces
    assert ("other", "info") not in got
    assert ("other", "warn") in got


def test_debug_turns_on_everything():
    got = shown(lines("error", debug=True))
    assert ("twisted.internet", "debug") in got
    assert ("cluster", "debug") in got


def test_line_format_has_time_namespace_and_level():
    line = lines()[0]
    timestamp, rest = line.split(" [", 1)
    assert timestamp[:2] == "20" and "T" in timestamp
    assert rest == "cluster#info] cluster says info"


def test_every_facility_is_configured():
    predicate = cluster_logging.level_predicate("error")
    for facility in cluster_logging.FACILITIES:
        assert predicate.logLevelForNamespace(facility) == LogLevel.error
    assert set(cluster_logging.FACILITIES) >= {
        "service", "cluster", "restapi", "ipfsproxy", "ipfshttp", "monitor", "consensus",
        "pintracker", "allocator", "informer", "config", "rpc",
    }


def test_unknown_level():
    with pytest.raises(ValueError, match='unknown log level "loud" \\(expected one of critical, error'):
        cluster_logging.parse_level("loud")
    assert cluster_logging.parse_level("WARNING") == LogLevel.warn


def test_begin_logging_uses_the_given_beginner():
    calls = []

    class Beginner:
        def beginLoggingTo(self, observers, redirectStandardIO=True):
            calls.append((observers, redirectStandardIO))

    observer = cluster_logging.make_observer(io.StringIO())
    cluster_logging.begin_logging([observer], beginner=Beginner())
    assert calls == [([observer], False)]
