"""Fakes of the state, monitor, informer and allocator for other components' tests.

Each fake implements the same interface as the real component and passes the same
behaviour tests (``tests/test_state.py``, ``tests/test_monitor.py``,
``tests/test_informer.py``, ``tests/test_allocator.py`` run every test against both),
but is written the obvious way, trading memory and speed for simplicity, and adds
a few knobs for tests:

- :class:`FakeState`: a ``dict`` of ``Pin`` objects; snapshots are a JSON array
  behind a header and a SHA-256 line; ``restore`` also reads the JSON backups and
  exports of every version (through the real migrations);
- :class:`FakePeerMonitor`: the latest metric per (name, peer) only; records what
  was published in :attr:`FakePeerMonitor.published`;
- :class:`FakeInformer`: the real informer machinery over a value you set
  (:attr:`value`), or an invalid metric when :attr:`fail` is true; counts calls;
- :class:`FakeAllocator`: sorts peers by metric value with ``sorted``.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Callable

import attrs
from twisted.application.service import Service
from twisted.application.internet import TimerService
from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from ipfscluster.config.durations import Duration
from ipfscluster.errors import (
    InvalidInput,
    IPFSUnreachable,
    NotFound,
    ShuttingDown,
    StateCorrupted,
    StateVersionError,
)
from ipfscluster.informer.base import BaseInformer
from ipfscluster.interfaces import IPeerMonitor, IPinAllocator, IState
from ipfscluster.state.migrations import read_pins
from ipfscluster.types import Alert, Metric, Pin, PinType

__all__ = ["FakeAllocator", "FakeInformer", "FakePeerMonitor", "FakeState"]

_log = Logger(namespace="monitor")
_NS = 1_000_000_000
_FAKE_HEADER = b"fake-state "


def _now_ns(clock) -> int:
    return int(round(clock.seconds() * _NS))


@implementer(IState)
class FakeState:
    """IState over a plain ``dict`` (CID bytes -> Pin)."""

    version = 5

    def __init__(self):
        self.pins: dict[bytes, Pin] = {}

    def add(self, pin):
        if not isinstance(pin, Pin):
            raise InvalidInput(f"the shared state stores Pin values, not {type(pin).__name__}")
        self.pins[pin.cid.to_bytes()] = pin

    def rm(self, cid):
        if self.pins.pop(cid.to_bytes(), None) is None:
            raise NotFound("Cid is not part of the global state", cid=cid)

    def get(self, cid):
        try:
            return self.pins[cid.to_bytes()]
        except KeyError:
            raise NotFound("Cid is not part of the global state", cid=cid) from None

    def has(self, cid):
        return cid.to_bytes() in self.pins

    def count(self):
        return len(self.pins)

    def list(self, pin_type=None):
        pins = [self.pins[key] for key in sorted(self.pins)]
        if pin_type is not None:
            pins = [p for p in pins if p.type & pin_type]
        return iter(pins)

    def snapshot(self, fileobj):
        body = json.dumps([p.to_json() for p in self.list()]).encode("utf-8")
        fileobj.write(_FAKE_HEADER + b"%d\n" % self.version)
        fileobj.write(body + b"\n" + hashlib.sha256(body).hexdigest().encode("ascii"))
        return len(self.pins)

    def restore(self, fileobj):
        data = fileobj.read()
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not data:
            raise StateCorrupted("the state snapshot is empty: there is nothing to restore")
        if data.startswith(_FAKE_HEADER):
            header, _, rest = data.partition(b"\n")
            version = header[len(_FAKE_HEADER) :]
            if not version.isdigit():
                raise StateCorrupted("bad fake snapshot header")
            if int(version) != self.version:
                raise StateVersionError(f"fake snapshot version {int(version)}", version=int(version))
            body, _, digest = rest.rpartition(b"\n")
            if hashlib.sha256(body).hexdigest().encode("ascii") != digest:
                raise StateCorrupted("the fake snapshot fails its checksum")
            pins = [Pin.from_json(entry) for entry in json.loads(body)]
        elif data[:1].isalpha():
            raise StateCorrupted("not a state snapshot")
        else:
            pins = list(read_pins(io.BytesIO(data)))
        self.pins = {p.cid.to_bytes(): p for p in pins}
        return len(self.pins)


@implementer(IPeerMonitor)
class FakePeerMonitor(Service):
    """IPeerMonitor keeping the latest metric per (name, peer); alerts once per expiry."""

    name = "monitor"

    def __init__(self, clock, check_interval: float = 15.0, peers: Callable | None = None):
        self.clock = clock
        self.check_interval = check_interval
        self.peers = peers
        self.latest: dict[tuple[str, str], Metric] = {}
        self.published: list[Metric] = []
        self.raised: list[tuple[int, Alert]] = []
        self.subscribers: list[Callable] = []
        self.alerted: set[tuple[str, str]] = set()
        self._timer = None
        self._stopped = False

    def startService(self):
        # a TimerService checks at once, then every check_interval
        self._stopped = False
        self._timer = TimerService(self.check_interval, self.check)
        self._timer.clock = self.clock
        self._timer.startService()
        super().startService()

    def stopService(self):
        self._stopped = True
        super().stopService()
        return self._timer.stopService()

    def log_metric(self, metric):
        if self._stopped:
            raise ShuttingDown()
        if not metric.name or not metric.peer:
            raise InvalidInput("a metric needs a name and a peer")
        self.latest[(metric.name, metric.peer)] = attrs.evolve(metric, received_at=_now_ns(self.clock))
        self.alerted.discard((metric.name, metric.peer))

    def publish_metric(self, metric):
        try:
            self.log_metric(metric)
        except Exception:
            return defer.fail()
        self.published.append(metric)
        return defer.succeed(None)

    def _current(self, name):
        if self.peers is not None:
            return sorted(set(self.peers()))
        return sorted(peer for (n, peer) in self.latest if n == name)

    def latest_metrics(self, name):
        now = _now_ns(self.clock)
        out = []
        for peer in self._current(name):
            m = self.latest.get((name, peer))
            if m is not None and not m.discard(now):
                out.append(m)
        return out

    def latest_for_peer(self, name, peer_id):
        return self.latest.get((name, peer_id))

    def metric_names(self):
        return sorted({name for name, _ in self.latest})

    def alerts(self):
        horizon = _now_ns(self.clock) - int(self.check_interval * _NS)
        return [a for t, a in self.raised if t > horizon]

    def subscribe_alerts(self, callback):
        self.subscribers.append(callback)
        return lambda: self.subscribers.remove(callback) if callback in self.subscribers else None

    def check(self):
        now = _now_ns(self.clock)
        raised = []
        for name in self.metric_names():
            for peer in self._current(name):
                m = self.latest.get((name, peer))
                if m is None or (name, peer) in self.alerted or not m.valid or not m.expired(now):
                    continue
                self.alerted.add((name, peer))
                raised.append(Alert(m, triggered_at=now))
        for alert in raised:
            self.raised.append((now, alert))
            for callback in list(self.subscribers):
                try:
                    callback(alert)
                except Exception:
                    _log.failure("alert subscriber {callback!r} failed", callback=callback)
        return raised


class FakeInformer(BaseInformer):
    """IInformer (the real informer machinery) over a value you set.

    :attr:`value` is the metric value; with :attr:`fail` set the metric is invalid
    (as when the IPFS daemon cannot answer); :attr:`calls` counts the metrics made.
    """

    def __init__(self, clock, name: str = "freespace", ttl: float = 30.0, value: int = 100, peer_id: str = ""):
        super().__init__(Duration.of_seconds(ttl), None, clock, peer_id)
        self.name = name
        self.value = value
        self.fail = False
        self.calls = 0

    async def _value(self) -> int:
        self.calls += 1
        if self.fail:
            raise IPFSUnreachable("the fake IPFS daemon is down")
        return self.value


@implementer(IPinAllocator)
class FakeAllocator:
    """IPinAllocator sorting by the integer value of one metric."""

    def __init__(self, metric: str = "freespace", descending: bool = True):
        self.metric = metric
        self.descending = descending

    def metrics(self):
        return [self.metric]

    def _sorted(self, metrics):
        numeric = []
        for m in metrics:
            if m.value.isascii() and m.value.isdigit() and int(m.value) < 1 << 64:
                numeric.append(m)
        sign = -1 if self.descending else 1
        return [m.peer for m in sorted(numeric, key=lambda m: (sign * int(m.value), m.peer))]

    def allocate(self, cid, current, candidates, priority):
        out = []
        for group in (priority, current, candidates):
            for peer in self._sorted(group.get(self.metric, [])):
                if peer not in out:
                    out.append(peer)
        return out
