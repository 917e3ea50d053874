"""ipfscluster.tap: twistd options, flag handling, PeerService start/stop."""

from __future__ import annotations

import io
import signal

import attrs
import pytest
import pytest_twisted
from twisted.application.service import Application, IService
from twisted.internet import reactor
from twisted.logger import ILogObserver, LogLevel
from twisted.python import usage

from ipfscluster import tap
from ipfscluster.config import ServiceConfig
from ipfscluster.errors import ConfigError
from ipfscluster.identity import Identity
from ipfscluster.multiaddr import Multiaddr

OTHER = Identity.generate()
PEER_ADDR = f"/ip4/192.0.2.7/tcp/9096/p2p/{OTHER.peer_id}"


@pytest.fixture
def folder(tmp_path):
    return str(tmp_path / "peer")


@pytest.fixture
def config(folder):
    return ServiceConfig.init(folder, secret=b"")


@pytest.fixture
def keep_sighup():
    previous = signal.getsignal(signal.SIGHUP)
    yield previous
    signal.signal(signal.SIGHUP, previous)


def parse(*args) -> tap.Options:
    options = tap.Options()
    options.parseOptions(list(args))
    return options


# --- options ----------------------------------------------------------------------


def test_options_defaults(folder, monkeypatch):
    monkeypatch.setenv("IPFS_CLUSTER_PATH", folder)
    opts = parse().peer_options
    assert opts == tap.PeerOptions(folder=folder)
    assert opts.allocation == tap.Allocation("disk-freespace", "disk", "descend")


def test_options_all_flags(folder):
    opts = parse("--config", folder, "-l", "debug", "-d", "-a", "numpin", "-j", PEER_ADDR,
                 "-x", "-f").peer_options
    assert opts.folder == folder
    assert (opts.loglevel, opts.debug, opts.leave, opts.force) == ("debug", True, True, True)
    assert opts.allocation == tap.Allocation("numpin", "numpin", "ascend")
    assert opts.bootstrap == Multiaddr.parse(PEER_ADDR)


@pytest.mark.parametrize(
    "args,message",
    [
        (["-a", "best"], 'unknown allocation strategy "best" (expected one of disk, disk-freespace,'),
        (["-l", "loud"], 'unknown log level "loud"'),
        (["-j", "nonsense"], '--bootstrap: "nonsense" is not a valid multiaddress'),
    ],
)
def test_options_errors(args, message):
    with pytest.raises(usage.UsageError) as info:
        parse(*args)
    assert str(info.value).startswith(message)


def test_allocation_strategies():
    assert {name: (a.informer, a.allocator) for name, a in tap.ALLOCATIONS.items()} == {
        "disk": ("disk", "descend"),
        "disk-freespace": ("disk", "descend"),
        "disk-reposize": ("disk", "ascend"),
        "numpin": ("numpin", "ascend"),
        "pincount": ("numpin", "ascend"),
    }


# --- flags applied to the configuration ---------------------------------------------


def test_bootstrap_replaces_bootstrap_and_needs_force_with_peers(config, folder):
    addr = Multiaddr.parse(PEER_ADDR)
    applied = tap.apply_flags(config, tap.PeerOptions(folder=folder, bootstrap=addr))
    assert applied.cluster.bootstrap == (addr,)
    with_peers = attrs.evolve(config, cluster=attrs.evolve(config.cluster, peers=(addr,)))
    with pytest.raises(ConfigError) as info:
        tap.apply_flags(with_peers, tap.PeerOptions(folder=folder, bootstrap=addr))
    assert str(info.value) == (
        "the configuration provides cluster.peers. Use -f to ignore and proceed bootstrapping"
    )
    forced = tap.apply_flags(with_peers, tap.PeerOptions(folder=folder, bootstrap=addr, force=True))
    assert (forced.cluster.peers, forced.cluster.bootstrap) == ((), (addr,))


def test_leave_flag_is_applied_in_memory_only(config, folder):
    options = tap.PeerOptions(folder=folder, leave=True)
    assert tap.load_config(options).cluster.leave_on_shutdown is True
    assert ServiceConfig.load(folder).cluster.leave_on_shutdown is False


# --- makeService ------------------------------------------------------------------


def test_make_service_builds_the_peer(config, folder, keep_sighup):
    peer = tap.makeService(parse("--config", folder))
    assert isinstance(peer, tap.PeerService)
    assert IService.providedBy(peer)
    assert peer.config == config
    assert peer.peer_id == config.cluster.peer_id
    assert peer.listen_addresses == [f"/ip4/0.0.0.0/tcp/9096/p2p/{peer.peer_id}"]
    assert signal.getsignal(signal.SIGHUP) is not keep_sighup


def test_make_service_config_error_is_one_line_and_exit_1(folder, capsys, keep_sighup):
    with pytest.raises(SystemExit) as info:
        tap.makeService(parse("--config", folder))
    assert info.value.code == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"error loading configuration: {folder}/service.json does not exist; "
        f'run "ipfs-cluster-service -c {folder} init" first'
    ]


def test_twistd_log_observer_goes_on_the_application(config, folder, keep_sighup):
    options = parse("--config", folder, "--loglevel", "error")
    options.parent = {"nodaemon": True, "logfile": None, "syslog": False, "logger": None}
    peer = tap.makeService(options)
    application = Application("ipfs-cluster")
    peer.setServiceParent(application)
    observer = application.getComponent(ILogObserver)
    assert observer is peer.log_observer
    assert list(IService(application)) == [peer]
    # syslog / a custom logger: twistd's choice stands
    options.parent = {"nodaemon": True, "syslog": True}
    assert tap._twistd_log_observer(options) is None
    options.parent = {"nodaemon": True, "logfile": "-"}
    assert tap._twistd_log_observer(options) is not None


# --- the service ------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_peer_service_starts_logs_and_stops(config, log_events):
    peer = tap.PeerService(config, reactor)
    peer.startService()
    await peer.ready
    assert peer.running
    texts = [(e.get("log_namespace"), e["log_level"], e.get("log_format"), e) for e in log_events]
    starting = [e for ns, _, fmt, e in texts if ns == "service" and "starting" in (fmt or "")]
    assert starting and starting[0]["peer_id"] == config.cluster.peer_id
    listening = [e["address"] for ns, _, fmt, e in texts if ns == "service" and "listening on" in (fmt or "")]
    assert listening == peer.listen_addresses
    warnings = [e for ns, level, _, e in texts if level == LogLevel.warn and ns == "config"]
    assert len(warnings) == 1 and "cluster.secret is empty" in warnings[0]["warning"]
    await peer.stopService()
    assert not peer.running
    assert peer.failure is None


@pytest_twisted.ensureDeferred
async def test_peer_service_stop_waits_for_start(config):
    peer = tap.PeerService(config, reactor, options=tap.PeerOptions(folder=config.folder))
    peer.startService()
    await peer.stopService()  # right away: must not fail
    assert peer.ready.called


class _Failing(tap.PeerService):
    async def _start_cluster(self):
        raise RuntimeError("cannot bind")


class _FakeReactor:
    running = True
    stopped = 0

    def callWhenRunning(self, f, *args):
        f(*args)

    def stop(self):
        self.stopped += 1


@pytest.mark.allow_logged_errors
@pytest_twisted.ensureDeferred
async def test_peer_service_start_failure_stops_the_reactor(config, log_events):
    fake = _FakeReactor()
    peer = _Failing(config, fake)
    peer.startService()
    assert peer.failure is not None and peer.failure.check(RuntimeError)
    assert fake.stopped == 1
    errors = [e for e in log_events if e.get("log_failure") is not None]
    assert errors and "could not start" in errors[0]["log_format"]
    await peer.stopService()


def test_wrap_observer_filters(config):
    out = io.StringIO()
    from twisted.logger import Logger, LogPublisher, textFileLogObserver

    from ipfscluster import logging as cluster_logging

    publisher = LogPublisher(cluster_logging.wrap_observer(textFileLogObserver(out), "error"))
    log = Logger(namespace="cluster", observer=publisher)
    log.info("hidden")
    log.error("shown")
    assert "shown" in out.getvalue() and "hidden" not in out.getvalue()
