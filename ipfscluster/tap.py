"""The peer as a Twisted service: twistd ``Options`` + ``makeService``, and the
:class:`PeerService` both entry points run.

``twistd -n ipfs-cluster --config DIR`` (the plugin in
``twisted/plugins/ipfscluster_plugin.py`` points here) and ``ipfs-cluster-service
daemon`` build the very same :class:`PeerService` through :func:`build_peer_service`.

Start-up is split the Twisted way:

- synchronous, in ``makeService``: read and validate the options and
  ``service.json``.  A configuration error prints ONE line
  ``error loading configuration: <message>`` on stderr and exits 1 (SystemExit, so
  twistd prints no traceback);
- asynchronous, in :meth:`PeerService.startService`: everything that needs the
  reactor.  At this stage the peer logs its warnings, its peer ID and its listen
  address; the real cluster (``ipfscluster/cluster.py``) slots in at
  :meth:`PeerService._start_cluster` / :meth:`PeerService._stop_cluster`.

Flags ``--bootstrap``/``--leave`` change the configuration *in memory* only: unlike
ipfs-cluster 0.3.0 (reference §14.5), they are not written back to
``service.json``, so a one-off ``--bootstrap`` does not become permanent.
"""

from __future__ import annotations

import os
import signal
import sys

import attrs
from twisted.application import service
from twisted.internet import defer
from twisted.logger import ILogObserver, Logger, textFileLogObserver
from twisted.python import usage

import ipfscluster
from ipfscluster import logging as cluster_logging
from ipfscluster.config import ServiceConfig, config_folder, startup_warnings
from ipfscluster.errors import ConfigError, InvalidMultiaddr
from ipfscluster.multiaddr import Multiaddr

log = Logger(namespace="service")
config_log = Logger(namespace="config")


# --- options shared by both entry points -------------------------------------------


@attrs.frozen
class Allocation:
    """An ``--alloc`` strategy: which informer feeds which allocator."""

    name: str
    informer: str  # "disk" | "numpin"
    allocator: str  # "descend" | "ascend"


ALLOCATIONS = {
    "disk": Allocation("disk", "disk", "descend"),
    "disk-freespace": Allocation("disk-freespace", "disk", "descend"),
    "disk-reposize": Allocation("disk-reposize", "disk", "ascend"),
    "numpin": Allocation("numpin", "numpin", "ascend"),
    "pincount": Allocation("pincount", "numpin", "ascend"),
}
DEFAULT_ALLOCATION = "disk-freespace"


def parse_allocation(name: str) -> Allocation:
    """The :class:`Allocation` for an ``--alloc`` value.

    :raises ValueError: "unknown allocation strategy" naming the value and the valid ones.
    """
    try:
        return ALLOCATIONS[name]
    except KeyError:
        raise ValueError(
            f'unknown allocation strategy "{name}" (expected one of {", ".join(ALLOCATIONS)})'
        ) from None


def parse_bootstrap(text: str):
    """The ``--bootstrap`` multiaddress (must end in ``/p2p/<peer ID>``).

    :raises ValueError: naming the value when it is not a peer multiaddress.
    """
    try:
        addr = Multiaddr.parse(text)
        addr.client_endpoint_string()
    except InvalidMultiaddr as err:
        raise ValueError(f'--bootstrap: "{text}" is not a valid multiaddress: {err}') from None
    if not addr.peer_id:
        raise ValueError(f'--bootstrap: "{text}" has no peer ID; it must end in /p2p/<peer ID>')
    return addr


@attrs.frozen
class PeerOptions:
    """What the command line says about the peer (both entry points)."""

    folder: str
    loglevel: str = cluster_logging.DEFAULT_LEVEL
    debug: bool = False
    allocation: Allocation = ALLOCATIONS[DEFAULT_ALLOCATION]
    bootstrap: Multiaddr | None = None
    leave: bool = False
    force: bool = False


def apply_flags(config: ServiceConfig, options: PeerOptions) -> ServiceConfig:
    """``config`` with ``--bootstrap`` and ``--leave`` applied (in memory only).

    :raises ConfigError: ``--bootstrap`` while ``cluster.peers`` is set and no ``-f``.
    """
    cluster = config.cluster
    if options.bootstrap is not None:
        if cluster.peers and not options.force:
            raise ConfigError(
                "the configuration provides cluster.peers. Use -f to ignore and proceed "
                "bootstrapping",
                key="cluster.peers",
                value=[str(p) for p in cluster.peers],
            )
        cluster = attrs.evolve(cluster, bootstrap=(options.bootstrap,), peers=())
    if options.leave:
        cluster = attrs.evolve(cluster, leave_on_shutdown=True)
    return attrs.evolve(config, cluster=cluster)


def load_config(options: PeerOptions) -> ServiceConfig:
    """Load ``service.json`` from ``options.folder`` and apply the flags.

    :raises ConfigError: whatever is wrong, with a one-line message.
    """
    return apply_flags(ServiceConfig.load(options.folder), options)


def exit_on_config_error(options: PeerOptions, stderr=None) -> ServiceConfig:
    """:func:`load_config`, or print ``error loading configuration: …`` and exit 1."""
    try:
        return load_config(options)
    except ConfigError as err:
        print(f"error loading configuration: {err}", file=stderr or sys.stderr)
        raise SystemExit(1) from None


# --- the service ------------------------------------------------------------------


class PeerService(service.Service):
    """One cluster peer.  ``startService`` starts it asynchronously;
    ``stopService`` returns a Deferred that fires once everything has stopped.

    ``failure`` holds the Failure when start-up failed (the reactor is then stopped
    so the process ends; the entry point turns it into exit status 1).
    """

    name = "ipfs-cluster-peer"

    def __init__(self, config: ServiceConfig, reactor, options: PeerOptions | None = None,
                 log_observer: ILogObserver | None = None):
        self.config = config
        self.reactor = reactor
        self.options = options or PeerOptions(folder=config.folder)
        self.log_observer = log_observer
        self.failure = None
        # fires (None) once the peer has started; never fires if start-up fails
        # (then ``failure`` is set and the reactor stops)
        self.ready = defer.Deferred()
        self._starting: defer.Deferred | None = None

    @property
    def peer_id(self) -> str:
        """This peer's ID."""
        return self.config.cluster.peer_id

    @property
    def listen_addresses(self) -> list[str]:
        """The cluster listen address(es) with ``/p2p/<peer ID>``."""
        cluster = getattr(self, "cluster", None)
        if cluster is not None:
            return [str(a) for a in cluster.addresses()]
        return [f"{self.config.cluster.listen_multiaddress}/p2p/{self.peer_id}"]

    def setServiceParent(self, parent):
        # under twistd the parent is the Application: give it our filtered log
        # observer (twistd asks for it right after makeService)
        if self.log_observer is not None and hasattr(parent, "setComponent"):
            parent.setComponent(ILogObserver, self.log_observer)
        return super().setServiceParent(parent)

    def startService(self):
        super().startService()
        # twistd starts services before the reactor runs: begin once it does, so
        # that signal handlers are in place and the reactor is fully initialised
        self._starting = defer.Deferred()
        self._starting.addCallback(lambda _: defer.Deferred.fromCoroutine(self._start()))
        self._starting.addErrback(self._start_failed)
        self.reactor.callWhenRunning(self._starting.callback, None)

    async def _start(self):
        for warning in startup_warnings(self.config):
            config_log.warn("{warning}", warning=warning)
        log.info(
            "IPFS Cluster v{version} peer {peer_id} ({peername}) starting",
            version=ipfscluster.__version__,
            peer_id=self.peer_id,
            peername=self.config.cluster.peername,
        )
        log.info("configuration folder: {folder}", folder=self.config.folder)
        await self._start_cluster()
        for address in self.listen_addresses:
            log.info("listening on: {address}", address=address)
        log.info("peer {peer_id} is ready", peer_id=self.peer_id)
        self.ready.callback(None)

    async def _start_cluster(self):
        """Build the cluster (:func:`ipfscluster.cluster.build_cluster`) and start it.

        The APIs (REST API, IPFS proxy) come from :func:`api_services`.  If the
        peer shuts itself down later (consensus never became ready), the reactor is
        stopped so that the process ends.
        """
        from ipfscluster.cluster import build_cluster

        self.cluster = build_cluster(
            self.config, self.reactor, alloc=self.options.allocation.name,
            apis_factory=lambda cluster: api_services(cluster, self.reactor))
        self.cluster.on_fatal = self._fatal
        await self.cluster.start()

    def _fatal(self):
        if self.reactor.running:
            self.reactor.stop()

    async def _stop_cluster(self):
        """Stop what :meth:`_start_cluster` started, in reverse order.

        Also called after a failed start: it must stop whatever did start.
        """
        cluster = getattr(self, "cluster", None)
        if cluster is not None:
            await cluster.stop()

    def _start_failed(self, failure):
        self.failure = failure
        from ipfscluster.errors import ClusterError

        if failure.check(ClusterError):  # the user can fix it: the message says how
            log.error("error starting cluster: {error}", error=str(failure.value))
        else:
            log.failure("the peer could not start", failure)
        if self.reactor.running:
            self.reactor.stop()

    def stopService(self):
        super().stopService()
        return defer.Deferred.fromCoroutine(self._stop())

    async def _stop(self):
        if self._starting is not None:
            await self._starting
        await self._stop_cluster()
        log.info("peer {peer_id} stopped", peer_id=self.peer_id)


def api_services(cluster, reactor) -> list:
    """The API services of a peer: those whose modules are present.

    The REST API (``api.restapi``) and the IPFS proxy (``ipfs_connector.ipfshttp``
    proxy keys) listen on their configured addresses.
    """
    from ipfscluster.api.rest.server import RestAPI

    services = [RestAPI(cluster.config.restapi, cluster, reactor, cluster.config.folder)]
    try:
        from ipfscluster.api.proxy.server import IPFSProxy
    except ImportError:  # pragma: no cover - during development only
        IPFSProxy = None
    if IPFSProxy is not None:
        services.append(IPFSProxy(cluster.config.ipfshttp, cluster, reactor))
    return services


def build_peer_service(options: PeerOptions, reactor, log_observer=None) -> PeerService:
    """Load the configuration for ``options`` and build the peer (nothing started).

    :raises SystemExit: (1) after printing ``error loading configuration: …`` when the
        configuration is not valid.
    """
    config = exit_on_config_error(options)
    return PeerService(config, reactor, options, log_observer=log_observer)


def install_stop_signals(reactor, signums=(signal.SIGHUP,)) -> None:
    """Make each signal of ``signums`` stop the reactor gracefully, as SIGTERM does
    (reference §2.2: SIGINT, SIGTERM and SIGHUP all shut the peer down).

    Installing SIGINT here also covers a peer started with SIGINT ignored (a
    background job of a non-interactive shell), which Twisted would leave ignored.
    """

    def stop():
        if reactor.running:
            reactor.stop()

    def on_signal(signum, frame):
        log.info("received {signal}, shutting down", signal=signal.Signals(signum).name)
        reactor.callFromThread(stop)

    for signum in signums:
        signal.signal(signum, on_signal)


# --- twistd -----------------------------------------------------------------------


class Options(usage.Options):
    """``twistd ipfs-cluster`` options (the flags of ``ipfs-cluster-service``)."""

    synopsis = "[options]"
    longdesc = (
        "Run an IPFS Cluster peer. The configuration folder holds service.json "
        "(create it with: ipfs-cluster-service -c DIR init)."
    )
    optParameters = [
        ["config", "c", None,
         "configuration folder (default: $IPFS_CLUSTER_PATH, else ~/.ipfs-cluster)"],
        ["loglevel", "l", cluster_logging.DEFAULT_LEVEL,
         "log level of the cluster facilities: " + ", ".join(cluster_logging.LEVEL_NAMES)],
        ["alloc", "a", DEFAULT_ALLOCATION,
         "allocation strategy: " + ", ".join(ALLOCATIONS)],
        ["bootstrap", "j", None, "join the cluster through this peer multiaddress"],
    ]
    optFlags = [
        ["debug", "d", "debug logging for every facility"],
        ["leave", "x", "leave the cluster on shutdown"],
        ["force", "f", "bootstrap even when cluster.peers is set"],
    ]

    def postOptions(self):
        try:
            cluster_logging.parse_level(self["loglevel"])
            allocation = parse_allocation(self["alloc"])
            bootstrap = parse_bootstrap(self["bootstrap"]) if self["bootstrap"] else None
        except ValueError as err:
            raise usage.UsageError(str(err)) from None
        self.peer_options = PeerOptions(
            folder=config_folder(self["config"]),
            loglevel=self["loglevel"],
            debug=bool(self["debug"]),
            allocation=allocation,
            bootstrap=bootstrap,
            leave=bool(self["leave"]),
            force=bool(self["force"]),
        )


def _twistd_log_observer(options: Options):
    """The observer twistd would use, behind our level filter; None when twistd was
    told to use syslog or a custom logger (then twistd's choice stands unfiltered)."""
    parent = getattr(options, "parent", None)
    if parent is None or parent.get("syslog") or parent.get("logger"):
        return None
    logfile = parent.get("logfile") or ""
    if logfile == "-" or (parent.get("nodaemon") and not logfile):
        stream = sys.stdout
    else:
        from twisted.python.logfile import LogFile

        stream = LogFile.fromFullPath(logfile or "twistd.log")
    opts = options.peer_options
    return cluster_logging.wrap_observer(
        textFileLogObserver(stream, timeFormat=cluster_logging.TIME_FORMAT), opts.loglevel, opts.debug
    )


def makeService(options: Options) -> PeerService:
    """twistd entry: the peer for ``options`` (config errors exit 1, see module doc)."""
    from twisted.internet import reactor

    service_ = build_peer_service(options.peer_options, reactor, _twistd_log_observer(options))
    install_stop_signals(reactor)  # twistd itself handles SIGINT and SIGTERM
    if getattr(options, "parent", None) is not None:  # really under twistd
        reactor.addSystemEventTrigger("after", "shutdown", _exit_1_if_start_failed, service_)
    return service_


def _exit_1_if_start_failed(service_: PeerService) -> None:
    """twistd exits 0 whatever happened: a peer that refused to start (damaged Raft
    data, a port in use …) must exit 1 so that systemd and scripts see the failure."""
    if service_.failure is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
