"""The kubo connector over the real fake-daemon resource (StubTreq, Clock): no sockets.

Every method and error path of :class:`~ipfscluster.ipfsconn.ipfshttp.IPFSHTTPConnector`
is driven through ``treq.testing.StubTreq`` over ``FakeIPFS.resource``; time is a
``Clock`` shared by the connector and the fake daemon.  A few tests put a scripted
resource in front of the fake to produce answers the fake does not give (progress
streams with chosen timing, non-JSON errors).
"""

from __future__ import annotations

import json

import pytest
from treq.testing import StubTreq
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.web import resource, server
from zope.interface.verify import verifyObject

from ipfscluster.cid import CID, DAG_PB, RAW, sha256_multihash
from ipfscluster.config.ipfshttp import IPFSHTTPConfig
from ipfscluster.errors import InvalidInput, IPFSError, IPFSUnreachable, NotFound
from ipfscluster.errors import OperationTimeout, ShuttingDown
from ipfscluster.interfaces import IIPFSConnector
from ipfscluster.ipfsconn import IPFSHTTPConnector
from ipfscluster.ipfsconn.ipfshttp import (
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_UNPIN_TIMEOUT,
    FAILURE_THRESHOLD,
    READY_WARN_EVERY,
)
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.testing.fakeipfs import FakeIPFS, FakeNetwork
from ipfscluster.types import IPFSID, IPFSPinStatus, Pin, PinMode, PinOptions, RepoStat

PIN_TIMEOUT = 120.0  # the config default, 2m0s


def absent_cid(seed: bytes = b"nobody has this block") -> CID:
    """A CID of content no daemon holds."""
    return CID.v1(RAW, sha256_multihash(seed))


class Env:
    """A Clock, a fake daemon on it, a StubTreq over its resource, a connector."""

    def __init__(self, wrap=None, **connector_kw):
        self.clock = Clock()
        self.network = FakeNetwork()
        self.kubo = FakeIPFS(clock=self.clock, network=self.network)
        root = self.kubo.resource if wrap is None else wrap(self.kubo)
        self.stub = StubTreq(root)
        self.config = IPFSHTTPConfig()
        self.conn = IPFSHTTPConnector(self.config, self.clock, self.stub, **connector_kw)
        self.others: list[FakeIPFS] = []

    def other_daemon(self) -> FakeIPFS:
        other = FakeIPFS(clock=self.clock, network=self.network)
        self.others.append(other)
        return other

    def settle(self, d: defer.Deferred, advance: float = 0.0, limit: int = 200):
        """Pump the in-memory connections (and advance the clock by ``advance`` per
        round, if given) until ``d`` fired; return its result (Failure on error)."""
        out = []
        d.addBoth(out.append)
        for _ in range(limit):
            self.stub.flush()
            if out:
                return out[0]
            if advance:
                self.clock.advance(advance)
        raise AssertionError(f"the Deferred did not fire (clock at {self.clock.seconds()}s)")

    def value(self, d: defer.Deferred, advance: float = 0.0):
        result = self.settle(d, advance)
        if isinstance(result, Failure):
            result.raiseException()
        return result

    def failure(self, d: defer.Deferred, kind, advance: float = 0.0):
        result = self.settle(d, advance)
        assert isinstance(result, Failure), f"expected {kind.__name__}, got {result!r}"
        assert result.check(kind), result.getTraceback()
        return result.value

    def endpoints(self) -> list[str]:
        return [call.endpoint for call in self.kubo.requests]

    def close(self):
        self.settle(self.conn.stopService())
        for daemon in [self.kubo, *self.others]:
            self.settle(daemon.stop())
        self.stub.flush()
        assert not self.clock.getDelayedCalls(), self.clock.getDelayedCalls()


@pytest.fixture
def env():
    e = Env()
    e.conn.startService()
    e.value(e.conn.ready())
    yield e
    e.close()


@pytest.fixture
def logged():
    events = []

    def observe(event):
        if event.get("log_namespace") == "ipfshttp":
            events.append(event)

    globalLogPublisher.addObserver(observe)
    yield events
    globalLogPublisher.removeObserver(observe)


def test_provides_the_interface(env):
    assert verifyObject(IIPFSConnector, env.conn)


def test_defaults_come_from_the_config_and_module():
    e = Env()
    assert e.conn.base_url == "http://127.0.0.1:5001"
    assert e.conn.pin_timeout == PIN_TIMEOUT
    assert e.conn.request_timeout == DEFAULT_REQUEST_TIMEOUT == 300.0
    assert e.conn.unpin_timeout == DEFAULT_UNPIN_TIMEOUT == 3 * 3600.0
    e.close()


def test_ipv6_and_dns_node_addresses_make_urls():
    clock = Clock()
    for text, url in [
        ("/ip6/::1/tcp/5001", "http://[::1]:5001"),
        ("/dns4/ipfs.local/tcp/5002", "http://ipfs.local:5002"),
    ]:
        config = IPFSHTTPConfig(node_multiaddress=Multiaddr.parse(text))
        conn = IPFSHTTPConnector(config, clock, http_client=object())
        assert conn.base_url == url


def test_every_request_is_a_post_to_api_v0(env):
    env.value(env.conn.repo_stat())
    env.value(env.conn.swarm_peers())
    assert env.endpoints()[-2:] == ["repo/stat", "swarm/peers"]
    # the fake refuses anything but POST with 405, so reaching it proves the method
    assert env.kubo.requests[-2].options == {"size-only": ["true"]}


# --- ready() and the boot loop -----------------------------------------------------------


def test_ready_fires_once_the_daemon_answered_id(env):
    assert env.endpoints()[0] == "id"
    d = env.conn.ready()
    assert d.called  # at once when already reached


def test_ready_waits_for_a_daemon_that_is_down_then_fires(logged):
    e = Env(ready_backoff=(1.0, 8.0))
    e.settle(e.kubo.go_down())
    e.conn.startService()
    ready = e.conn.ready()
    for _ in range(25):
        e.stub.flush()
        e.clock.advance(8.0)
    assert not ready.called
    warnings = [ev for ev in logged if "waiting for the IPFS daemon" in ev["log_format"]]
    # one warning naming the address at the first failure, then every READY_WARN_EVERY
    assert [ev["attempts"] for ev in warnings] == [1, READY_WARN_EVERY, 2 * READY_WARN_EVERY]
    assert warnings[0]["address"] == "/ip4/127.0.0.1/tcp/5001"
    assert "check that the IPFS daemon runs" in warnings[0]["error"]
    e.settle(e.kubo.come_up())
    assert e.value(ready, advance=1.0) is None
    assert e.conn.ready().called
    e.close()


class Recording(resource.Resource):
    """Records the clock time of every request, then lets the fake answer."""

    isLeaf = True

    def __init__(self, kubo):
        super().__init__()
        self.kubo_resource = kubo.resource
        self.clock = kubo.clock
        self.times = []

    def render(self, request):
        self.times.append(self.clock.seconds())
        return self.kubo_resource.render(request)


def test_ready_backs_off_exponentially_up_to_the_longest_delay():
    recorder = {}
    e = Env(wrap=lambda kubo: recorder.setdefault("r", Recording(kubo)), ready_backoff=(1.0, 4.0))
    e.settle(e.kubo.go_down())
    e.conn.startService()
    for _ in range(60):
        e.stub.flush()
        e.clock.advance(0.5)
    times = recorder["r"].times
    assert e.conn.ready_attempts == len(times)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps[:5] == [1.0, 2.0, 4.0, 4.0, 4.0]
    e.close()


def test_a_cancelled_ready_waiter_does_not_disturb_the_others():
    e = Env()
    e.settle(e.kubo.go_down())
    e.conn.startService()
    first, second = e.conn.ready(), e.conn.ready()
    first.cancel()
    e.failure(first, defer.CancelledError)
    e.settle(e.kubo.come_up())
    assert e.value(second, advance=1.0) is None
    e.close()


def test_stop_fails_ready_waiters_with_shutting_down():
    e = Env()
    e.settle(e.kubo.go_down())
    e.conn.startService()
    ready = e.conn.ready()
    e.settle(e.conn.stopService())
    e.failure(ready, ShuttingDown)
    e.failure(e.conn.ready(), ShuttingDown)
    e.close()


def test_calls_after_stop_fail_with_shutting_down(env):
    env.settle(env.conn.stopService())
    env.failure(env.conn.repo_stat(), ShuttingDown)
    env.failure(env.conn.pin(Pin.new(absent_cid())), ShuttingDown)
    assert "shutting down" in env.conn.id().result.error


def test_stop_cancels_calls_in_flight(env):
    hang = env.kubo.faults.hang("pin/rm")
    d = env.conn.unpin(absent_cid())
    env.stub.flush()
    assert hang.waiting == 1
    env.settle(env.conn.stopService())
    env.failure(d, ShuttingDown)
    env.stub.flush()
    assert hang.waiting == 0  # the daemon saw the client go away


# --- id -------------------------------------------------------------------------------


def test_id_reports_the_daemon_identity(env):
    found = env.value(env.conn.id())
    assert isinstance(found, IPFSID)
    assert found.id == env.kubo.peer_id
    assert found.addresses == (Multiaddr.parse(f"/ip4/127.0.0.1/tcp/4001/p2p/{env.kubo.peer_id}"),)
    assert found.error == ""


def test_id_skips_addresses_the_cluster_cannot_parse():
    e = Env()
    e.kubo.swarm_addresses = ["/ip4/10.0.0.1/udp/4001/quic-v1", "/ip4/10.0.0.1/tcp/4001"]
    found = e.value(e.conn.id())
    assert [str(a) for a in found.addresses] == [f"/ip4/10.0.0.1/tcp/4001/p2p/{e.kubo.peer_id}"]
    e.close()


def test_id_reports_failures_inside_the_value(env):
    env.settle(env.kubo.go_down())
    found = env.value(env.conn.id())
    assert found.id == "" and found.addresses == ()
    assert "cannot reach the IPFS daemon at /ip4/127.0.0.1/tcp/5001" in found.error


# --- pin --------------------------------------------------------------------------------


def test_pin_recursive_uses_progress_and_pins(env):
    added = env.kubo.add_bytes(b"some content\n", pin=False)
    assert env.value(env.conn.pin(Pin.new(added.cid))) is None
    assert env.kubo.pin_mode(added.cid) == "recursive"
    call = [c for c in env.kubo.requests if c.endpoint == "pin/add"][-1]
    assert call.args == (str(added.cid),)
    assert call.options == {"recursive": ["true"], "progress": ["true"]}


def test_pin_direct_for_max_depth_zero(env):
    added = env.kubo.add_bytes(b"direct content\n", pin=False)
    pin = Pin.new(added.cid, PinOptions(mode=PinMode.DIRECT))
    assert pin.max_depth == 0
    env.value(env.conn.pin(pin))
    assert env.kubo.pin_mode(added.cid) == "direct"
    call = [c for c in env.kubo.requests if c.endpoint == "pin/add"][-1]
    assert call.options["recursive"] == ["false"]


def test_pin_with_a_positive_depth_sends_max_depth(env):
    added = env.kubo.add_bytes(b"depth content\n", pin=False)
    pin = Pin(added.cid, max_depth=2)
    env.value(env.conn.pin(pin))
    call = [c for c in env.kubo.requests if c.endpoint == "pin/add"][-1]
    assert call.options["recursive"] == ["true"]
    assert call.options["max-depth"] == ["2"]


def test_pin_is_a_no_op_when_already_pinned_that_way(env):
    added = env.kubo.add_bytes(b"already\n", pin=True)
    before = len(env.kubo.requests)
    env.value(env.conn.pin(Pin.new(added.cid)))
    assert [c.endpoint for c in list(env.kubo.requests)[before:]] == ["pin/ls"]


def test_pin_fetches_content_from_another_daemon_of_the_network(env):
    other = env.other_daemon()
    added = other.add_bytes(b"x" * 600_000, pin=True)  # several blocks
    env.value(env.conn.pin(Pin.new(added.cid)), advance=0.5)
    assert env.kubo.pin_mode(added.cid) == "recursive"


def test_pin_without_progress_is_cancelled_after_pin_timeout(env):
    missing = absent_cid()
    d = env.conn.pin(Pin.new(missing))
    env.stub.flush()
    env.clock.advance(PIN_TIMEOUT - 1)
    env.stub.flush()
    assert not d.called  # kubo's "{}" ticks every 500ms are not progress
    assert env.network.waiting == 1
    env.clock.advance(1)
    err = env.failure(d, OperationTimeout)
    assert f"pinning {missing} made no progress for 2m0s" in str(err)
    env.stub.flush()
    assert env.network.waiting == 0  # the request was cancelled on the daemon too
    assert env.kubo.pin_mode(missing) is None


def test_pin_whose_answer_never_starts_is_cancelled_after_pin_timeout(env):
    hang = env.kubo.faults.hang("pin/add")
    d = env.conn.pin(Pin.new(absent_cid()))
    env.stub.flush()
    assert hang.waiting == 1
    env.clock.advance(PIN_TIMEOUT)
    env.failure(d, OperationTimeout)
    env.stub.flush()
    assert hang.waiting == 0


def test_pin_timeout_argument_overrides_the_config(env):
    d = env.conn.pin(Pin.new(absent_cid()), timeout=5)
    env.stub.flush()
    env.clock.advance(5)
    err = env.failure(d, OperationTimeout)
    assert "no progress for 5s" in str(err)


def test_pin_completes_when_the_content_appears_before_the_timeout(env):
    data = b"late content\n"
    other = env.other_daemon()
    cid = FakeIPFS(clock=env.clock).add_bytes(data, pin=False).cid  # on a network of its own
    d = env.conn.pin(Pin.new(cid))
    env.stub.flush()
    env.clock.advance(60)
    added = other.add_bytes(data, pin=False)
    assert added.cid == cid
    env.value(d, advance=0.5)
    assert env.kubo.pin_mode(cid) == "recursive"


def test_pin_connects_to_origins_first_and_ignores_their_failures(env, logged):
    other = env.other_daemon()
    added = other.add_bytes(b"from the origin\n", pin=True)
    good = Multiaddr.parse(f"/ip4/10.0.0.2/tcp/4001/p2p/{other.peer_id}")
    bad = Multiaddr.parse(f"/ip4/10.0.0.3/tcp/4001/p2p/{FakeIPFS(clock=env.clock).peer_id}")
    pin = Pin.new(added.cid, PinOptions(origins=(good, bad)))
    env.value(env.conn.pin(pin), advance=0.5)
    assert env.endpoints()[1:] == ["swarm/connect", "swarm/connect", "pin/ls", "pin/add"]
    assert other.peer_id in env.kubo.connected
    failed = [ev for ev in logged if "connecting to origin" in ev["log_format"]]
    assert len(failed) == 1 and failed[0]["log_level"].name == "debug"
    assert "all dials failed" in failed[0]["error"]


def test_pin_with_pin_update_uses_pin_update_when_the_old_cid_is_pinned(env):
    old = env.kubo.add_bytes(b"version 1\n", pin=True)
    new = env.kubo.add_bytes(b"version 2\n", pin=False)
    pin = Pin.new(new.cid, PinOptions(pin_update=old.cid))
    env.value(env.conn.pin(pin))
    call = env.kubo.requests[-1]
    assert call.endpoint == "pin/update"
    assert call.args == (str(old.cid), str(new.cid))
    assert call.options == {"unpin": ["false"]}
    assert env.kubo.pin_mode(old.cid) == env.kubo.pin_mode(new.cid) == "recursive"


def test_pin_with_pin_update_falls_back_to_pin_add_when_the_old_cid_is_not_pinned(env):
    new = env.kubo.add_bytes(b"version 3\n", pin=False)
    pin = Pin.new(new.cid, PinOptions(pin_update=absent_cid()))
    env.value(env.conn.pin(pin))
    assert env.endpoints()[-1] == "pin/add"
    assert env.kubo.pin_mode(new.cid) == "recursive"


def test_pin_update_of_an_unpinned_cid_is_an_ipfs_error(env):
    new = env.kubo.add_bytes(b"version 4\n", pin=False)
    err = env.failure(env.conn.pin_update(absent_cid(), new.cid), IPFSError)
    assert str(err) == "IPFS unsuccessful: 500: 'from' cid was not recursively pinned already"
    assert err.code == 500


def test_pin_update_with_unpin_removes_the_old_pin(env):
    old = env.kubo.add_bytes(b"version 5\n", pin=True)
    new = env.kubo.add_bytes(b"version 6\n", pin=False)
    env.value(env.conn.pin_update(old.cid, new.cid, unpin=True))
    assert env.kubo.pin_mode(old.cid) is None
    assert env.kubo.pin_mode(new.cid) == "recursive"


def test_pin_error_from_the_daemon_keeps_message_and_code(env):
    cid = absent_cid(b"failing")
    env.kubo.faults.fail_cid(cid, "pin: blockstore is broken", endpoints=["pin/add"])
    err = env.failure(env.conn.pin(Pin.new(cid)), IPFSError)
    assert str(err) == "IPFS unsuccessful: 500: pin: blockstore is broken"
    assert err.code == 500 and not isinstance(err, IPFSUnreachable)


# --- progress streams with chosen timing (scripted pin/add) -------------------------------


class ScriptedPinAdd(resource.Resource):
    """Serves ``pin/add`` from ``script`` (a list of ``(delay, line)``; line None
    ends the stream) and everything else from the fake daemon."""

    isLeaf = True

    def __init__(self, kubo, clock, script):
        super().__init__()
        self.kubo_resource = kubo.resource
        self.clock = clock
        self.script = script
        self.cancelled = False

    def render(self, request):
        if request.path != b"/api/v0/pin/add":
            return self.kubo_resource.render(request)
        request.setHeader("Content-Type", "application/json")
        request.setHeader("X-Chunked-Output", "1")
        calls = []

        def gone(_):
            self.cancelled = True
            for c in calls:
                if c.active():
                    c.cancel()

        request.notifyFinish().addErrback(gone)
        at = 0.0
        for delay, line in self.script:
            at += delay
            if line is None:
                calls.append(self.clock.callLater(at, request.finish))
            else:
                calls.append(self.clock.callLater(at, request.write, json.dumps(line).encode() + b"\n"))
        return server.NOT_DONE_YET


def scripted(script):
    holder = {}

    def wrap(kubo):
        holder["r"] = ScriptedPinAdd(kubo, kubo.clock, script)
        return holder["r"]

    e = Env(wrap=wrap)
    return e, holder["r"]


def test_progress_resets_the_pin_watchdog():
    # five progress steps 100s apart: 500s in all, more than pin_timeout (120s)
    script = [(100, {"Progress": n}) for n in range(1, 6)] + [(10, {"Pins": ["x"]}), (0, None)]
    e, _ = scripted(script)
    d = e.conn.pin(Pin.new(absent_cid()))
    assert e.value(d, advance=10) is None
    assert e.clock.seconds() >= 510
    e.close()


def test_repeated_progress_without_growth_does_not_reset_the_watchdog():
    script = [(30, {"Progress": 3})] * 10 + [(0, {"Pins": ["x"]}), (0, None)]
    e, fake = scripted(script)
    d = e.conn.pin(Pin.new(absent_cid()))
    e.failure(d, OperationTimeout, advance=10)
    assert e.clock.seconds() == pytest.approx(30 + PIN_TIMEOUT, abs=10)
    e.stub.flush()
    assert fake.cancelled
    e.close()


def test_a_stream_ending_without_the_pins_object_is_an_error():
    script = [(1, {"Progress": 1}), (1, None)]
    e, _ = scripted(script)
    err = e.failure(e.conn.pin(Pin.new(absent_cid())), IPFSError, advance=1)
    assert "ended without confirming the pin" in str(err)
    e.close()


def test_an_inline_stream_error_fails_the_pin():
    script = [(1, {"Message": "pin: merkledag: not found", "Code": 0, "Type": "error"}), (1, None)]
    e, _ = scripted(script)
    err = e.failure(e.conn.pin(Pin.new(absent_cid())), IPFSError, advance=1)
    assert str(err) == "IPFS unsuccessful: 200: pin: merkledag: not found"
    e.close()


# --- unpin ------------------------------------------------------------------------------


def test_unpin_removes_the_pin(env):
    added = env.kubo.add_bytes(b"to unpin\n", pin=True)
    env.value(env.conn.unpin(added.cid))
    assert env.kubo.pin_mode(added.cid) is None
    assert env.kubo.requests[-1].endpoint == "pin/rm"


def test_unpin_of_a_cid_that_is_not_pinned_succeeds(env):
    env.value(env.conn.unpin(absent_cid()))
    assert env.kubo.requests[-1].endpoint == "pin/rm"
    assert env.conn.consecutive_failures == 0


def test_unpin_error_is_reported(env):
    added = env.kubo.add_bytes(b"stuck\n", pin=True)
    env.kubo.faults.fail_cid(added.cid, "cannot acquire pin lock", endpoints=["pin/rm"])
    err = env.failure(env.conn.unpin(added.cid), IPFSError)
    assert str(err) == "IPFS unsuccessful: 500: cannot acquire pin lock"


def test_unpin_times_out_after_unpin_timeout(env):
    env.kubo.faults.hang("pin/rm")
    d = env.conn.unpin(absent_cid())
    env.stub.flush()
    env.clock.advance(DEFAULT_UNPIN_TIMEOUT - 1)
    assert not d.called
    env.clock.advance(1)
    err = env.failure(d, OperationTimeout)
    assert "did not answer pin/rm within 3h0m0s" in str(err)
    d2 = env.conn.unpin(absent_cid(), timeout=7)
    env.stub.flush()
    env.clock.advance(7)
    env.failure(d2, OperationTimeout)


# --- pin_ls / pin_ls_cid ---------------------------------------------------------------------


def test_pin_ls_streams_every_pin_of_a_type(env):
    rec = [env.kubo.add_bytes(b"r%d\n" % i, pin=True).cid for i in range(3)]
    direct = env.kubo.add_bytes(b"d\n", pin=False).cid
    env.kubo.set_pin(direct, "direct")
    got = []
    count = env.value(env.conn.pin_ls("recursive", lambda c, s: got.append((c, s))))
    assert count == 3
    assert sorted(got) == sorted((c, IPFSPinStatus.RECURSIVE) for c in rec)
    call = env.kubo.requests[-1]
    assert call.endpoint == "pin/ls"
    assert call.options == {"stream": ["true"], "type": ["recursive"]}
    got.clear()
    assert env.value(env.conn.pin_ls("direct", lambda c, s: got.append((c, s)))) == 1
    assert got == [(direct, IPFSPinStatus.DIRECT)]
    got.clear()
    assert env.value(env.conn.pin_ls("all", lambda c, s: got.append(s))) == 4


def test_pin_ls_of_an_empty_daemon_receives_nothing(env):
    got = []
    assert env.value(env.conn.pin_ls("recursive", lambda c, s: got.append(c))) == 0
    assert got == []


def test_pin_ls_rejects_unknown_filters(env):
    err = env.failure(env.conn.pin_ls("everything", lambda c, s: None), InvalidInput)
    assert "everything" in str(err) and "recursive" in str(err)


class SlowPinLs(resource.Resource):
    """A pin/ls stream that sends one line, then the rest when told to."""

    isLeaf = True

    def __init__(self, lines):
        super().__init__()
        self.lines = lines
        self.request = None

    def render(self, request):
        if request.path == b"/api/v0/id":
            return b'{"ID":"","Addresses":[]}\n'
        self.request = request
        request.write(self.lines[0])
        return server.NOT_DONE_YET

    def finish(self):
        for line in self.lines[1:]:
            self.request.write(line)
        self.request.finish()


def test_pin_ls_calls_receive_as_items_arrive():
    a, b = absent_cid(b"a"), absent_cid(b"b")
    slow = SlowPinLs(
        [
            json.dumps({"Cid": str(a), "Type": "recursive"}).encode() + b"\n",
            json.dumps({"Cid": str(b), "Type": "indirect"}).encode(),  # no final newline
        ]
    )
    e = Env(wrap=lambda kubo: slow)
    got = []
    d = e.conn.pin_ls("all", lambda c, s: got.append((c, s)))
    e.stub.flush()
    assert got == [(a, IPFSPinStatus.RECURSIVE)] and not d.called
    slow.finish()
    assert e.value(d) == 2
    assert got[1] == (b, IPFSPinStatus.INDIRECT)
    e.close()


@pytest.mark.parametrize(
    "line, message",
    [
        (b"garbage\n", "answer to pin/ls that is not JSON"),
        (b"[1, 2]\n", "answer to pin/ls is not a JSON object"),
        (b'{"Cid": "nonsense", "Type": "recursive"}\n', "invalid CID in pin/ls"),
        (b'{"Message": "pin/ls: datastore closed", "Type": "error"}\n', "200: pin/ls: datastore closed"),
    ],
)
def test_pin_ls_stream_problems_are_ipfs_errors(line, message):
    slow = SlowPinLs([line])
    e = Env(wrap=lambda kubo: slow)
    err = e.failure(e.conn.pin_ls("all", lambda c, s: None), IPFSError)
    assert message in str(err)
    e.close()


def test_pin_ls_is_bounded_by_silence_not_by_length():
    slow = SlowPinLs([json.dumps({"Cid": str(absent_cid()), "Type": "recursive"}).encode() + b"\n"])
    e = Env(wrap=lambda kubo: slow, request_timeout=10)
    d = e.conn.pin_ls("all", lambda c, s: None)
    e.stub.flush()
    e.clock.advance(9)
    assert not d.called
    e.clock.advance(1)
    err = e.failure(d, OperationTimeout)
    assert "did not answer pin/ls within 10s" in str(err)
    e.close()


def test_pin_ls_cid_reports_each_pin_type(env):
    root = env.kubo.add_bytes(b"y" * 300_000, pin=True)  # two 256 KiB-chunk leaves
    leaf = env.kubo.add_bytes(b"y" * 262_144, pin=False).cid  # = the first leaf
    assert env.kubo.pin_mode(leaf) == "indirect"
    direct = env.kubo.add_bytes(b"direct one\n", pin=False).cid
    env.kubo.set_pin(direct, "direct")
    assert env.value(env.conn.pin_ls_cid(root.cid)) is IPFSPinStatus.RECURSIVE
    assert env.value(env.conn.pin_ls_cid(direct)) is IPFSPinStatus.DIRECT
    assert env.value(env.conn.pin_ls_cid(leaf)) is IPFSPinStatus.INDIRECT
    assert env.value(env.conn.pin_ls_cid(absent_cid())) is IPFSPinStatus.UNPINNED
    call = env.kubo.requests[-1]
    assert call.options == {"type": ["all"]}


def test_pin_ls_cid_treats_daemon_errors_as_unpinned(env):
    added = env.kubo.add_bytes(b"erroring\n", pin=True)
    env.kubo.faults.fail_cid(added.cid, "some failure", endpoints=["pin/ls"])
    assert env.value(env.conn.pin_ls_cid(added.cid)) is IPFSPinStatus.UNPINNED


def test_pin_ls_cid_fails_when_the_daemon_is_unreachable(env):
    env.settle(env.kubo.go_down())
    env.failure(env.conn.pin_ls_cid(absent_cid()), IPFSUnreachable)


# --- repo, swarm, config, resolve, blocks ------------------------------------------------------


def test_repo_stat_free_space_and_repo_size(env):
    env.kubo.add_bytes(b"z" * 1000, pin=True)
    env.kubo.set_free_space(5000)
    stat = env.value(env.conn.repo_stat())
    assert isinstance(stat, RepoStat)
    assert stat.free_space == 5000
    assert env.value(env.conn.free_space()) == 5000
    assert env.value(env.conn.repo_size()) == env.kubo.blockstore.size == stat.repo_size
    assert env.kubo.requests[-1].options == {"size-only": ["true"]}


def test_swarm_connect_and_swarm_peers(env):
    other = env.other_daemon()
    assert env.value(env.conn.swarm_peers()) == []
    address = Multiaddr.parse(f"/ip4/10.0.0.9/tcp/4001/p2p/{other.peer_id}")
    env.value(env.conn.swarm_connect(address))
    assert env.kubo.requests[-1].args == (str(address),)
    assert env.value(env.conn.swarm_peers()) == [other.peer_id]


def test_swarm_connect_failure_is_an_ipfs_error(env):
    unknown = FakeIPFS(clock=env.clock).peer_id
    address = Multiaddr.parse(f"/ip4/10.0.0.9/tcp/4001/p2p/{unknown}")
    err = env.failure(env.conn.swarm_connect(address), IPFSError)
    assert str(err).startswith("IPFS unsuccessful: 500: connect ")


def test_connect_swarms_is_best_effort_and_logs_failures_at_debug(env, logged):
    other = env.other_daemon()
    addresses = [
        Multiaddr.parse(f"/ip4/10.0.0.1/tcp/4001/p2p/{other.peer_id}"),
        Multiaddr.parse(f"/ip4/127.0.0.1/tcp/4001/p2p/{env.kubo.peer_id}"),  # our own daemon
    ]
    assert env.value(env.conn.connect_swarms(addresses)) == 1
    assert other.peer_id in env.kubo.connected
    failures = [ev for ev in logged if "swarm/connect to" in ev["log_format"]]
    assert len(failures) == 1 and failures[0]["log_level"].name == "debug"
    assert "dial to self" in failures[0]["error"]
    assert env.value(env.conn.connect_swarms([])) == 0


def test_connect_swarms_with_the_daemon_down_fires_zero(env):
    env.settle(env.kubo.go_down())
    other = env.other_daemon()
    address = Multiaddr.parse(f"/ip4/10.0.0.1/tcp/4001/p2p/{other.peer_id}")
    assert env.value(env.conn.connect_swarms([address])) == 0


def test_config_key_walks_config_show(env):
    assert env.value(env.conn.config_key("Datastore/StorageMax")) == f"{env.kubo.storage_max}B"
    assert env.value(env.conn.config_key("Addresses/Swarm")) == ["/ip4/127.0.0.1/tcp/4001"]
    assert env.value(env.conn.config_key("Identity")) == {"PeerID": env.kubo.peer_id}
    err = env.failure(env.conn.config_key("Datastore/NoSuchKey"), NotFound)
    assert "Datastore/NoSuchKey" in str(err)
    env.failure(env.conn.config_key("Datastore/StorageMax/deeper"), NotFound)


def test_resolve_paths(env):
    added = env.kubo.add_bytes(b"resolvable\n", pin=False)
    assert env.value(env.conn.resolve(f"/ipfs/{added.cid}")) == added.cid
    assert env.value(env.conn.resolve(str(added.cid))) == added.cid
    assert env.kubo.requests[-1].endpoint == "resolve"


def test_resolve_rejects_malformed_paths_locally(env):
    before = len(env.kubo.requests)
    for bad in ["", "/ipfs/", "/foo/bar", "not-a-cid"]:
        env.failure(env.conn.resolve(bad), InvalidInput)
    assert len(env.kubo.requests) == before


def test_resolve_error_from_the_daemon(env):
    err = env.failure(env.conn.resolve(f"/ipfs/{env.kubo.add_bytes(b'q').cid}/missing"), IPFSError)
    assert "no link named" in str(err)


def test_block_put_and_get_round_trip(env):
    cid = env.value(env.conn.block_put(b"raw block"))
    assert cid == CID.v1(RAW, sha256_multihash(b"raw block"))
    assert env.kubo.requests[-1].options == {"cid-codec": ["raw"], "mhtype": ["sha2-256"]}
    assert env.value(env.conn.block_get(cid)) == b"raw block"
    node = b"\x0a\x02\x08\x01"  # a dag-pb node with UnixFS data
    cid2 = env.value(env.conn.block_put(node, codec="dag-pb"))
    assert cid2.codec == DAG_PB
    assert env.value(env.conn.block_get(cid2)) == node


def test_block_put_errors(env):
    err = env.failure(env.conn.block_put(b"x", mhtype="md5"), IPFSError)
    assert "unrecognized multihash function: md5" in str(err)


def test_block_get_of_missing_content_times_out(env):
    d = env.conn.block_get(absent_cid())
    env.stub.flush()
    env.clock.advance(DEFAULT_REQUEST_TIMEOUT)
    err = env.failure(d, OperationTimeout)
    assert "did not answer block/get within 5m0s" in str(err)
    env.stub.flush()
    assert env.network.waiting == 0


# --- error mapping, cancellation, rate limit --------------------------------------------------


def test_unreachable_daemon_error_tells_what_to_check(env):
    env.settle(env.kubo.go_down())
    err = env.failure(env.conn.repo_stat(), IPFSUnreachable)
    assert err.code == 0
    assert "cannot reach the IPFS daemon at /ip4/127.0.0.1/tcp/5001" in str(err)
    assert "check that the IPFS daemon runs" in str(err)
    assert "node_multiaddress" in str(err)


class PlainError(resource.Resource):
    isLeaf = True

    def render(self, request):
        if request.path == b"/api/v0/id":
            request.setResponseCode(200)
            return b'{"ID":"","Addresses":[]}\n'
        request.setResponseCode(503)
        request.setHeader("Content-Type", "text/plain")
        return b"upstream is restarting\n"


def test_non_json_error_bodies_quote_the_path_and_body():
    e = Env(wrap=lambda kubo: PlainError())
    err = e.failure(e.conn.pin_ls("recursive", lambda c, s: None), IPFSError)
    assert str(err) == "IPFS-get 'pin/ls?stream=true&type=recursive' unsuccessful: 503: upstream is restarting"
    assert err.code == 503
    e.close()


def test_client_errors_keep_kubo_status(env):
    cid = absent_cid(b"client error")
    env.kubo.faults.fail_cid(cid, "invalid argument", code=1, status=400, endpoints=["block/get"])
    err = env.failure(env.conn.block_get(cid), IPFSError)
    assert str(err) == "IPFS unsuccessful: 400: invalid argument"
    assert err.code == 400


def test_an_error_after_the_stream_started_is_still_an_error(env):
    # the fake (like kubo) reports this one in the X-Stream-Error trailer
    err = env.failure(env.conn.block_put(b"x", codec="no-such-codec"), IPFSError)
    assert "block/put answered no block" in str(err)


def test_request_timeout_on_plain_calls():
    e = Env(request_timeout=30)
    e.kubo.faults.set_latency(31, "repo/stat")
    d = e.conn.repo_stat()
    e.stub.flush()
    e.clock.advance(30)
    err = e.failure(d, OperationTimeout)
    assert "did not answer repo/stat within 30s" in str(err)
    e.close()


def test_caller_cancel_reaches_the_daemon(env):
    hang = env.kubo.faults.hang("swarm/peers")
    d = env.conn.swarm_peers()
    env.stub.flush()
    assert hang.waiting == 1
    d.cancel()
    env.failure(d, defer.CancelledError)
    env.stub.flush()
    assert hang.waiting == 0


def test_requests_are_rate_limited_after_consecutive_failures(env):
    cid = absent_cid(b"always fails")
    env.kubo.faults.fail_cid(cid, "broken", endpoints=["pin/rm"])
    for _ in range(FAILURE_THRESHOLD):
        env.failure(env.conn.unpin(cid), IPFSError)
    assert env.conn.consecutive_failures == FAILURE_THRESHOLD
    seen = len(env.kubo.requests)
    first = env.conn.unpin(cid)
    second = env.conn.unpin(cid)
    env.stub.flush()
    env.failure(first, IPFSError)
    assert len(env.kubo.requests) == seen + 1  # the second waits for its slot
    assert not second.called
    env.clock.advance(1.0)
    env.failure(second, IPFSError)
    assert len(env.kubo.requests) == seen + 2
    # one success ends the rate limit
    env.clock.advance(1.0)
    env.value(env.conn.repo_stat())
    assert env.conn.consecutive_failures == 0
    a, b = env.conn.repo_stat(), env.conn.repo_stat()
    env.stub.flush()
    assert a.called and b.called
    env.value(a), env.value(b)
