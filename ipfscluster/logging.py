"""Log facilities and levels (``--loglevel``, ``--debug``) on top of twisted.logger.

Every component logs through ``twisted.logger.Logger(namespace="<facility>")``
with one of the :data:`FACILITIES` below as namespace (or a dotted child of one,
``"consensus.raft"``).  Nothing here wraps the Logger: components stay plain
twisted.logger users and only the *observer* decides what is shown.

Levels follow the reference §2.1:

- ``--loglevel LEVEL`` (critical, error, warning, info, debug; default info)
  applies to the cluster facilities only;
- other namespaces (Twisted's own, libraries) show warnings and above, so Twisted's
  chatter ("Starting factory …") stays out of an operator's log;
- ``--debug`` turns on debug for every namespace, Twisted's included.

The filter is a :class:`twisted.logger.FilteringLogObserver` with a
:class:`twisted.logger.LogLevelFilterPredicate`, wrapped around a text observer
that writes ``<timestamp> [<namespace>#<level>] <message>`` lines.
"""

from __future__ import annotations

import sys
from typing import IO, Iterable

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)

FACILITIES = (
    "service",
    "cluster",
    "restapi",
    "ipfsproxy",
    "ipfshttp",
    "monitor",
    "consensus",
    "pintracker",
    "allocator",
    "informer",
    "config",
    "rpc",
)

LEVELS = {
    "critical": LogLevel.critical,
    "error": LogLevel.error,
    "warning": LogLevel.warn,
    "warn": LogLevel.warn,
    "info": LogLevel.info,
    "debug": LogLevel.debug,
}

LEVEL_NAMES = ("critical", "error", "warning", "info", "debug")
DEFAULT_LEVEL = "info"
OTHER_NAMESPACES_LEVEL = LogLevel.warn
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f%z"


def parse_level(name: str) -> LogLevel:
    """The LogLevel named ``name`` (case-insensitive).

    :raises ValueError: naming the level and listing the valid ones.
    """
    try:
        return LEVELS[name.lower()]
    except (KeyError, AttributeError):
        raise ValueError(
            f'unknown log level "{name}" (expected one of {", ".join(LEVEL_NAMES)})'
        ) from None


def level_predicate(level: str = DEFAULT_LEVEL, debug: bool = False) -> LogLevelFilterPredicate:
    """The filter for ``--loglevel level`` / ``--debug``.

    :raises ValueError: for an unknown level name.
    """
    cluster_level = LogLevel.debug if debug else parse_level(level)
    predicate = LogLevelFilterPredicate(
        defaultLogLevel=LogLevel.debug if debug else OTHER_NAMESPACES_LEVEL
    )
    for facility in FACILITIES:
        predicate.setLogLevelForNamespace(facility, cluster_level)
    return predicate


def make_observer(
    stream: IO[str] | None = None, level: str = DEFAULT_LEVEL, debug: bool = False
) -> ILogObserver:
    """A filtering text observer writing to ``stream`` (default: stderr)."""
    text = textFileLogObserver(sys.stderr if stream is None else stream, timeFormat=TIME_FORMAT)
    return FilteringLogObserver(text, [level_predicate(level, debug)])


def wrap_observer(observer: ILogObserver, level: str = DEFAULT_LEVEL, debug: bool = False):
    """``observer`` behind the level filter (used for twistd's own log file)."""
    return FilteringLogObserver(observer, [level_predicate(level, debug)])


def begin_logging(
    observers: Iterable[ILogObserver], beginner=globalLogBeginner
) -> None:
    """Start the global log system with ``observers`` (entry points only).

    Standard I/O is not redirected, so ``print`` keeps working.
    """
    beginner.beginLoggingTo(list(observers), redirectStandardIO=False)
