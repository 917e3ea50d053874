"""Test-suite wide fixtures.

``_no_leaks`` (autouse) fails any test that leaves something behind in the global
reactor: pending delayed calls, open sockets (readers/writers), or errors logged
through ``twisted.logger``.  A test that expects logged errors and checks them itself
marks itself ``@pytest.mark.allow_logged_errors``.  The check polls for a short
while (a closing connection needs a reactor turn or two) before failing.
"""

from __future__ import annotations

import time

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.logger import globalLogPublisher

_LEAK_GRACE_SECONDS = 2.0


class _ErrorCollector:
    def __init__(self):
        self.events = []

    def __call__(self, event):
        if event.get("log_failure") is not None or event.get("isError"):
            self.events.append(event)


_collector = _ErrorCollector()
globalLogPublisher.addObserver(_collector)


@pytest.fixture
def log_events():
    """Every ``twisted.logger`` event emitted during the test, in order."""
    events = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


def _describe_event(event):
    from twisted.logger import formatEvent

    failure = event.get("log_failure")
    text = formatEvent(event)
    if failure is not None:
        text += "\n" + failure.getTraceback()
    return text


def _io_handles():
    handles = set(reactor.getReaders()) | set(reactor.getWriters())
    # the reactor's own wakers appear when it starts; they are not the test's
    return {h for h in handles if "Waker" not in type(h).__name__}


def _delayed():
    return {c for c in reactor.getDelayedCalls() if c.active()}


@pytest.fixture(autouse=True)
def _no_leaks(request):
    before_io = _io_handles()
    before_calls = _delayed()
    start = len(_collector.events)
    yield
    leaked_io, leaked_calls = _settle_blocking(before_io, before_calls)
    errors = _collector.events[start:]
    del _collector.events[start:]
    problems = []
    if leaked_calls:
        for call in leaked_calls:
            call.cancel()
        problems.append("delayed calls left pending: %r" % (sorted(map(repr, leaked_calls)),))
    if leaked_io:
        problems.append("sockets left open: %r" % (sorted(map(repr, leaked_io)),))
    if errors and request.node.get_closest_marker("allow_logged_errors") is None:
        problems.append(
            "errors were logged:\n" + "\n---\n".join(_describe_event(e) for e in errors)
        )
    if problems:
        pytest.fail("test left a mess behind:\n" + "\n".join(problems), pytrace=False)


def _settle_blocking(before_io, before_calls):
    """Let the reactor run until the test's leftovers are gone or the grace ends."""
    result = {}

    @defer.inlineCallbacks
    def run():
        deadline = time.monotonic() + _LEAK_GRACE_SECONDS
        while True:
            leaked_io = _io_handles() - before_io
            leaked_calls = _delayed() - before_calls
            if (not leaked_io and not leaked_calls) or time.monotonic() > deadline:
                result["io"], result["calls"] = leaked_io, leaked_calls
                return
            d = defer.Deferred()
            reactor.callLater(0.01, d.callback, None)
            yield d

    pytest_twisted.blockon(run())
    return result["io"], result["calls"]
