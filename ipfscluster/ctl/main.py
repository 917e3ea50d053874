"""``ipfs-cluster-ctl``: the command-line client of the cluster REST API.

``main(argv)`` is the console script: it runs :func:`run` on the reactor with
``twisted.internet.task.react`` and exits with its code.  :func:`run` does the work
and takes the reactor and the output streams as arguments, so tests run commands
in-process against a loopback API.

Exit codes: **0** success; **1** a local problem (bad argument, unreadable file,
network error, wait deadline) with ``error <doing>: <why>`` on stderr; **2** the API
answered with an error, printed as ``An error occurred:`` / ``  Code: N`` /
``  Message: …`` on stderr in text mode, and as the ``{"code","message"}``
document on stdout with ``--enc json`` (upstream 0.3.0 exited 0 there; we do not).

Differences from upstream that are deliberate (reference §14): ``--timeout`` is
applied (one deadline per request, covering its whole body; 0, the default, is no
limit); ``pin rm`` reports API errors; ``pin add/rm`` print the status right away
instead of after a fixed 1 s pause, and ``--wait`` polls the status until the CID
is pinned (unpinned) where it should be, within ``--wait-timeout``.  ``--host``
takes one address (no fail-over list, no libp2p ``/p2p/`` address).  ``sync``
(gone upstream with the stateless tracker) is kept, as the seed had it.

Argument parsing is ``argparse``: its help is wrapped at 100 columns (sharness
checks ≤ 120) and its usage errors exit 1 here (argparse's own 2 is our API-error
code).  This module imports only the REST client and the value modules, never the
server machinery (checked by a test).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

import attrs
from twisted.internet import defer

from ipfscluster import __version__
from ipfscluster.api.rest.client import (
    DEFAULT_HOST,
    RestClient,
    options_query,
    parse_host,
    wait_for_status,
)
from ipfscluster.cid import CID
from ipfscluster.config.durations import parse_duration
from ipfscluster.ctl import formatting as fmt
from ipfscluster.errors import (
    APIError,
    APIUnreachable,
    ClusterError,
    InvalidInput,
    WaitFailed,
    WaitTimeout,
)
from ipfscluster.identity import validate_peer_id
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.types import PinMode, PinOptions, PinType, TrackerStatus, ns_from_seconds

__all__ = ["main", "run", "build_parser", "PROG"]

PROG = "ipfs-cluster-ctl"
_HELP_WIDTH = 100


# --- argument parsing ----------------------------------------------------------------------


class _Exit(Exception):
    """argparse wants to exit (``--help``, ``--version``)."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class _UsageError(Exception):
    """A command line argparse could not read."""

    def __init__(self, usage: str, message: str):
        super().__init__(message)
        self.usage = usage
        self.message = message


class _LocalError(Exception):
    """``error <doing>: <why>`` (exit 1)."""

    def __init__(self, doing: str, why):
        super().__init__(f"error {doing}: {why}")


class _Formatter(argparse.HelpFormatter):
    def __init__(self, prog):
        super().__init__(prog, width=_HELP_WIDTH, max_help_position=34)

    def add_usage(self, usage, actions, groups, prefix=None):
        super().add_usage(usage, actions, groups, "Usage: " if prefix is None else prefix)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that writes to ``out`` and raises instead of exiting."""

    def __init__(self, *args, out=None, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)
        self._out = out

    def _print_message(self, message, file=None):
        if message:
            self._out.write(message)

    def exit(self, status=0, message=None):
        if message:
            self._out.write(message)
        raise _Exit(status)

    def error(self, message):
        raise _UsageError(self.format_usage(), message)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'"{text}" is not a number of seconds') from None
    if value < 0:
        raise argparse.ArgumentTypeError(f'"{text}" is negative')
    return value


def _wait_flags(p, what: str) -> None:
    p.add_argument("--no-status", "--ns", action="store_true", help=f"do not fetch the status after {what}")
    p.add_argument("-w", "--wait", action="store_true", help=f"wait until {what} is done on the relevant peers")
    p.add_argument("--wait-timeout", "--wt", type=_positive_seconds, default=0, metavar="SECONDS",
                   help="give up waiting after this many seconds (0: never)")


def _pin_option_flags(p, replication_short: bool = True) -> None:
    names = ("-r", "--replication") if replication_short else ("--replication",)
    p.add_argument(*names, type=int, metavar="N",
                   help="replication factor (min and max): -1 everywhere, 0 the cluster default")
    p.add_argument("--rmin", "--replication-min", type=int, metavar="N", dest="rmin", help="minimum replication")
    p.add_argument("--rmax", "--replication-max", type=int, metavar="N", dest="rmax", help="maximum replication")
    p.add_argument("--allocations", metavar="PEERS", default="",
                   help="comma-separated peer IDs to allocate to first")
    p.add_argument("-n", "--name", default="", help="a name for the pin")
    p.add_argument("--expire-in", metavar="DURATION", default="",
                   help="unpin after this Go duration (1h, 30m); default: never")
    p.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE",
                   help="metadata to attach (repeat for several)")


def build_parser(out) -> _Parser:
    """The argparse parser of every command; help and messages go to ``out``."""
    make = functools.partial(_Parser, out=out)
    parser = make(
        prog=PROG,
        description="ipfs-cluster-ctl is the client of the ipfs-cluster REST API: it lists peers, pins "
        "and unpins CIDs, shows their status and adds files.",
        epilog="Exit codes: 0 success, 1 local or network error, 2 the API answered with an error.",
    )
    parser._optionals.title = "Global options"
    g = parser
    g.add_argument("-l", "--host", default=DEFAULT_HOST,
                   help=f"REST API address: a multiaddress or host:port (default {DEFAULT_HOST})")
    g.add_argument("-s", "--https", action="store_true", help="use HTTPS")
    g.add_argument("--no-check-certificate", action="store_true", help="with HTTPS, do not verify the certificate")
    g.add_argument("--basic-auth", metavar="USER[:PASS]",
                   help="HTTP basic auth credentials (env CLUSTER_CREDENTIALS); implies --https")
    g.add_argument("-f", "--force-http", action="store_true", help="keep plain HTTP with --basic-auth")
    g.add_argument("--encoding", "--enc", choices=("text", "json"), default="text", help="output format")
    g.add_argument("-t", "--timeout", type=_positive_seconds, default=0, metavar="SECONDS",
                   help="time limit of each request (0: none)")
    g.add_argument("-d", "--debug", action="store_true", help="print requests and raw responses on stderr")
    g.add_argument("--version", action="version", version=f"{PROG} version {__version__}")

    cmds = parser.add_subparsers(title="Commands", dest="command", metavar="COMMAND", parser_class=make)

    cmds.add_parser("id", help="show the ID of the contacted peer").set_defaults(func=cmd_id)

    peers = cmds.add_parser("peers", help="list, add and remove cluster peers")
    peer_cmds = peers.add_subparsers(title="Commands", dest="subcommand", metavar="COMMAND", parser_class=make)
    peers.set_defaults(func=_needs_subcommand(peers))
    peer_cmds.add_parser("ls", help="list the cluster peers").set_defaults(func=cmd_peers_ls)
    p = peer_cmds.add_parser("add", help="add a peer by multiaddress (.../p2p/<id>) or peer ID")
    p.add_argument("peer", metavar="MULTIADDR|PEER_ID")
    p.set_defaults(func=cmd_peers_add)
    p = peer_cmds.add_parser("rm", help="remove a peer from the cluster")
    p.add_argument("peer", metavar="PEER_ID")
    p.set_defaults(func=cmd_peers_rm)

    pin = cmds.add_parser("pin", help="pin, unpin, update and list the pins of the cluster")
    pin_cmds = pin.add_subparsers(title="Commands", dest="subcommand", metavar="COMMAND", parser_class=make)
    pin.set_defaults(func=_needs_subcommand(pin))
    p = pin_cmds.add_parser("add", help="pin a CID (or an /ipfs/, /ipns/, /ipld/ path) in the cluster")
    p.add_argument("cid", metavar="CID|PATH")
    _pin_option_flags(p)
    p.add_argument("--mode", choices=("recursive", "direct"), default="recursive", help="pin mode")
    p.add_argument("--origins", default="", metavar="MULTIADDRS",
                   help="comma-separated multiaddresses (with /p2p/) that have the content")
    p.add_argument("--wait-limit", "--wl", type=int, default=0, metavar="N",
                   help="with --wait: stop once N peers have pinned")
    _wait_flags(p, "pinning")
    p.set_defaults(func=cmd_pin_add)
    p = pin_cmds.add_parser("rm", help="unpin a CID (or path) from the cluster")
    p.add_argument("cid", metavar="CID|PATH")
    _wait_flags(p, "unpinning")
    p.set_defaults(func=cmd_pin_rm)
    p = pin_cmds.add_parser("update", help="pin TO as an update of FROM, keeping its options")
    p.add_argument("from_cid", metavar="FROM")
    p.add_argument("to_cid", metavar="TO")
    p.add_argument("-n", "--name", default="", help="a new name for the pin")
    p.add_argument("--expire-in", metavar="DURATION", default="", help="unpin after this Go duration")
    _wait_flags(p, "pinning")
    p.set_defaults(func=cmd_pin_update)
    p = pin_cmds.add_parser("ls", help="list the pins of the shared state (or one of them)")
    p.add_argument("cid", nargs="?", metavar="CID")
    p.add_argument("--filter", default="pin", metavar="TYPES",
                   help="comma-separated pin types: pin, meta-pin, clusterdag-pin, shard-pin, all")
    p.set_defaults(func=cmd_pin_ls)

    p = cmds.add_parser("status", help="show the status of CIDs on every peer")
    p.add_argument("cids", nargs="*", metavar="CID")
    p.add_argument("--filter", default="", metavar="STATUSES",
                   help="comma-separated statuses: pinned, pinning, pin_error, error, queued, remote, …")
    p.add_argument("--local", action="store_true", help="only the status on the contacted peer")
    p.set_defaults(func=cmd_status)

    p = cmds.add_parser("sync", help="check the status of one or all CIDs against the IPFS daemons")
    p.add_argument("cid", nargs="?", metavar="CID")
    p.add_argument("--local", action="store_true", help="only on the contacted peer")
    p.set_defaults(func=cmd_sync)

    p = cmds.add_parser("recover", help="retry pinning or unpinning one CID, or all those in error")
    p.add_argument("cid", nargs="?", metavar="CID")
    p.add_argument("--local", action="store_true", help="only on the contacted peer")
    p.set_defaults(func=cmd_recover)

    p = cmds.add_parser("add", help="add files and folders to IPFS through the cluster and pin them")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("-r", "--recursive", action="store_true", help="add folders and their content")
    p.add_argument("-H", "--hidden", action="store_true", help="include files whose name starts with a dot")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the CIDs")
    p.add_argument("-Q", "--quieter", action="store_true", help="print only the last CID (the root)")
    p.add_argument("--no-stream", action="store_true", help="ask for one JSON array instead of a stream")
    p.add_argument("--local", action="store_true", help="add to the contacted peer's IPFS daemon only")
    _pin_option_flags(p, replication_short=False)
    p.add_argument("--no-pin", action="store_true", help="add to IPFS but do not pin in the cluster")
    p.add_argument("-w", "--wrap-with-directory", action="store_true", help="wrap the files in a folder")
    p.add_argument("--wait", action="store_true", help="wait until the root CID is pinned")
    p.add_argument("--wait-timeout", "--wt", type=_positive_seconds, default=0, metavar="SECONDS",
                   help="give up waiting after this many seconds (0: never)")
    p.add_argument("--format", choices=("unixfs", "car"), default="unixfs", help="input format")
    p.add_argument("--layout", choices=("balanced", "trickle"), default="balanced", help="DAG layout")
    p.add_argument("-s", "--chunker", default="", help="chunking algorithm (size-262144, rabin-…)")
    p.add_argument("--raw-leaves", action="store_true", help="use raw blocks for leaves")
    p.add_argument("--cid-version", type=int, choices=(0, 1), default=0, help="CID version")
    p.add_argument("--hash", default="sha2-256", help="hash function")
    p.add_argument("--nocopy", action="store_true", help="use the filestore (experimental)")
    p.set_defaults(func=cmd_add)

    cmds.add_parser("version", help="show the version of the contacted peer").set_defaults(func=cmd_version)

    health = cmds.add_parser("health", help="show the cluster's connectivity, metrics and alerts")
    health_cmds = health.add_subparsers(title="Commands", dest="subcommand", metavar="COMMAND", parser_class=make)
    health.set_defaults(func=_needs_subcommand(health))
    p = health_cmds.add_parser("graph", help="print the connectivity of the cluster as a Graphviz dot graph")
    p.add_argument("-f", "--file", default="", help="write the graph to this file instead of stdout")
    p.add_argument("--all-ipfs-peers", action="store_true", help="include IPFS peers outside the cluster")
    p.set_defaults(func=cmd_health_graph)
    p = health_cmds.add_parser("metrics", help="list the metric names, or the latest metric NAME of each peer")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.set_defaults(func=cmd_health_metrics)
    health_cmds.add_parser("alerts", help="list the recent alerts").set_defaults(func=cmd_health_alerts)

    cmds.add_parser("commands", help="list every command").set_defaults(func=cmd_commands)
    p = cmds.add_parser("help", aliases=["h"], help="show the help of a command")
    p.add_argument("topic", nargs="*", metavar="COMMAND")
    p.set_defaults(func=cmd_help)
    return parser


def _needs_subcommand(parser):
    async def missing(ctx):
        raise _UsageError(parser.format_usage(), "a command is needed; see --help")

    return missing


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def command_paths(parser, prefix=PROG) -> list[str]:
    """Every command as ``ipfs-cluster-ctl pin add`` (for ``commands``)."""
    sub = _subparsers(parser)
    if sub is None:
        return [prefix]
    out = [prefix] if prefix != PROG else []
    seen = set()
    for name, child in sub.choices.items():
        if id(child) in seen:
            continue  # an alias
        seen.add(id(child))
        out += command_paths(child, f"{prefix} {name}")
    return out


# --- the command context --------------------------------------------------------------------


class _Context:
    """What a command needs: its arguments, the client, the outputs, the clock."""

    def __init__(self, args, client, out, err, reactor, parser):
        self.args = args
        self.client = client
        self.out = out
        self.err = err
        self.reactor = reactor
        self.parser = parser
        self.json = args.encoding == "json"

    def emit(self, value, text) -> None:
        """Print one value: its JSON, or ``text(value)``."""
        self.out.write(fmt.format_json(value.to_json()) if self.json else text(value))

    async def emit_all(self, items, text) -> None:
        """Print a collection as it streams: a JSON array, or ``text(item)`` each."""
        writer = fmt.JSONArrayWriter(self.out.write) if self.json else None
        async for item in items:
            if writer is not None:
                writer.add(item.to_json())
            else:
                self.out.write(text(item))
        if writer is not None:
            writer.close()

    def now_ns(self) -> int:
        return ns_from_seconds(self.reactor.seconds())


def _parse_cid(text: str) -> CID:
    try:
        return CID.parse(text)
    except InvalidInput as err:
        raise _LocalError("parsing cid", err) from None


def _cid_or_path(text: str):
    """A CID, or a path text for ``/ipfs/…``, ``/ipns/…``, ``/ipld/…``."""
    if text.startswith("/"):
        parts = [p for p in text.split("/") if p]
        if len(parts) < 2 or parts[0] not in ("ipfs", "ipns", "ipld"):
            raise _LocalError("parsing path", f'"{text}" is not /ipfs/<cid>[/…], /ipns/<name>[/…] or /ipld/<cid>')
        if len(parts) == 2 and parts[0] == "ipfs":
            return _parse_cid(parts[1])
        return text
    return _parse_cid(text)


def _parse_peer_id(text: str) -> str:
    try:
        return validate_peer_id(text)
    except InvalidInput as err:
        raise _LocalError("parsing peer ID", err) from None


def _pin_options(ctx, args, mode=PinMode.RECURSIVE, origins="") -> PinOptions:
    rmin = rmax = 0
    if getattr(args, "replication", None) is not None:
        rmin = rmax = args.replication
    if args.rmin is not None:
        rmin = args.rmin
    if args.rmax is not None:
        rmax = args.rmax
    metadata = {}
    for item in args.metadata:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _LocalError("parsing metadata", f'"{item}" is not KEY=VALUE')
        metadata[key] = value
    allocations = tuple(_parse_peer_id(p.strip()) for p in args.allocations.split(",") if p.strip())
    addresses = []
    for text in (t.strip() for t in origins.split(",") if t.strip()):
        try:
            addresses.append(Multiaddr.parse(text))
        except InvalidInput as err:
            raise _LocalError("parsing origins", err) from None
    try:
        return PinOptions(
            replication_factor_min=rmin,
            replication_factor_max=rmax,
            name=args.name,
            mode=mode,
            user_allocations=allocations,
            expire_at=_expiry(ctx, args.expire_in),
            metadata=metadata,
            origins=tuple(addresses),
        )
    except InvalidInput as err:
        raise _LocalError("parsing pin options", err) from None


def _expiry(ctx, text: str) -> int:
    if not text:
        return 0
    try:
        duration = parse_duration(text)
    except InvalidInput as err:
        raise _LocalError("parsing --expire-in", err) from None
    if duration <= 0:
        raise _LocalError("parsing --expire-in", f'"{text}" must be positive')
    return ctx.now_ns() + duration


async def _after_change(ctx, cid, target: TrackerStatus, value, limit: int = 0) -> None:
    """Print the pin (``--no-status``), or its status now or once ``target`` is reached."""
    args = ctx.args
    if args.no_status:
        ctx.emit(value, fmt.format_pin)
        return
    if not args.wait:
        ctx.emit(await ctx.client.status(cid), fmt.format_gpi)
        return
    try:
        gpi = await wait_for_status(
            ctx.client, cid, target, clock=ctx.reactor, timeout=args.wait_timeout, limit=limit
        )
    except (WaitTimeout, WaitFailed) as err:
        if err.status is not None:
            ctx.emit(err.status, fmt.format_gpi)
        raise _LocalError("waiting for " + str(cid), err) from None
    ctx.emit(gpi, fmt.format_gpi)


# --- commands ---------------------------------------------------------------------------------


async def cmd_id(ctx):
    ctx.emit(await ctx.client.id(), fmt.format_id)


async def cmd_peers_ls(ctx):
    await ctx.emit_all(ctx.client.peers(), fmt.format_id)


async def cmd_peers_add(ctx):
    text = ctx.args.peer
    if text.startswith("/"):
        try:
            maddr = Multiaddr.parse(text)
        except InvalidInput as err:
            raise _LocalError("parsing multiaddress", err) from None
        if maddr.peer_id is None:
            raise _LocalError("parsing multiaddress", f'"{text}" has no /p2p/<peer ID> part; add it')
        target = str(maddr)
    else:
        target = _parse_peer_id(text)
    ctx.emit(await ctx.client.peer_add(target), fmt.format_id)


async def cmd_peers_rm(ctx):
    await ctx.client.peer_remove(_parse_peer_id(ctx.args.peer))


async def cmd_pin_add(ctx):
    args = ctx.args
    target = _cid_or_path(args.cid)
    options = _pin_options(ctx, args, PinMode(args.mode), args.origins)
    if isinstance(target, CID):
        pin = await ctx.client.pin(target, options)
    else:
        pin = await ctx.client.pin_path(target, options)
    await _after_change(ctx, pin.cid, TrackerStatus.PINNED, pin, args.wait_limit)


async def cmd_pin_rm(ctx):
    target = _cid_or_path(ctx.args.cid)
    if isinstance(target, CID):
        pin = await ctx.client.unpin(target)
    else:
        pin = await ctx.client.unpin_path(target)
    await _after_change(ctx, pin.cid, TrackerStatus.UNPINNED, pin)


async def cmd_pin_update(ctx):
    args = ctx.args
    old, new = _parse_cid(args.from_cid), _parse_cid(args.to_cid)
    existing = await ctx.client.allocation(old)
    options = existing.options
    if args.name:
        options = attrs.evolve(options, name=args.name)
    if args.expire_in:
        options = attrs.evolve(options, expire_at=_expiry(ctx, args.expire_in))
    pin = await ctx.client.pin_update(old, new, options)
    await _after_change(ctx, pin.cid, TrackerStatus.PINNED, pin)


async def cmd_pin_ls(ctx):
    args = ctx.args
    if args.cid:
        ctx.emit(await ctx.client.allocation(_parse_cid(args.cid)), fmt.format_pin)
        return
    try:
        types = PinType.parse_filter(args.filter)
    except InvalidInput as err:
        raise _LocalError("parsing --filter", err) from None
    await ctx.emit_all(ctx.client.allocations(types), fmt.format_pin)


def _status_filter(text: str) -> TrackerStatus:
    try:
        return TrackerStatus.parse_filter(text)
    except InvalidInput as err:
        raise _LocalError("parsing --filter", err) from None


async def cmd_status(ctx):
    args = ctx.args
    cids = [_parse_cid(c) for c in args.cids]
    status_filter = _status_filter(args.filter)
    if len(cids) == 1 and not status_filter:
        ctx.emit(await ctx.client.status(cids[0], local=args.local), fmt.format_gpi)
        return
    items = ctx.client.status_all(status_filter, local=args.local, cids=cids or None)
    await ctx.emit_all(items, fmt.format_gpi)


async def cmd_sync(ctx):
    args = ctx.args
    if args.cid:
        ctx.emit(await ctx.client.sync(_parse_cid(args.cid), local=args.local), fmt.format_gpi)
    else:
        await ctx.emit_all(ctx.client.sync_all(local=args.local), fmt.format_gpi)


async def cmd_recover(ctx):
    args = ctx.args
    if args.cid:
        ctx.emit(await ctx.client.recover(_parse_cid(args.cid), local=args.local), fmt.format_gpi)
    else:
        await ctx.emit_all(ctx.client.recover_all(local=args.local), fmt.format_gpi)


class _ProgressBar:
    """``[#####     ]  50%  1.2 MiB / 2.4 MiB`` on a terminal, redrawn in place."""

    WIDTH = 30

    def __init__(self, stream):
        self._stream = stream
        self._shown = -1
        self.drawn = False

    def __call__(self, sent: int, total: int) -> None:
        percent = 100 * sent // total if total else 100
        if percent == self._shown:
            return
        self._shown = percent
        filled = self.WIDTH * percent // 100
        bar = "#" * filled + " " * (self.WIDTH - filled)
        self._stream.write(f"\r[{bar}] {percent:3d}%  {_size(sent)} / {_size(total)}")
        self._stream.flush()
        self.drawn = True

    def clear(self) -> None:
        if self.drawn:
            self._stream.write("\r" + " " * (self.WIDTH + 40) + "\r")
            self._stream.flush()


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n:.1f} TiB"


def _add_params(ctx, args) -> dict:
    params = {k: v for k, v in _pin_query(ctx, args).items()}
    flags = {
        "local": args.local, "no-pin": args.no_pin, "wrap-with-directory": args.wrap_with_directory,
        "raw-leaves": args.raw_leaves, "nocopy": args.nocopy, "hidden": args.hidden,
    }  # fmt: skip
    params.update({k: "true" for k, v in flags.items() if v})
    if args.no_stream:
        params["stream-channels"] = "false"
    if args.cid_version:
        params["cid-version"] = str(args.cid_version)
    if args.format != "unixfs":
        params["format"] = args.format
    if args.layout != "balanced":
        params["layout"] = args.layout
    if args.chunker:
        params["chunker"] = args.chunker
    if args.hash != "sha2-256":
        params["hash"] = args.hash
    return params


def _pin_query(ctx, args) -> dict:
    return options_query(_pin_options(ctx, args))


async def cmd_add(ctx):
    args = ctx.args
    params = _add_params(ctx, args)
    bar = _ProgressBar(ctx.err) if _isatty(ctx.err) and not args.quieter else None
    last = None
    writer = fmt.JSONArrayWriter(ctx.out.write) if ctx.json else None
    try:
        items = ctx.client.add(args.paths, params, recursive=args.recursive, hidden=args.hidden, on_progress=bar)
        async for item in items:
            if item.cid is None:
                continue
            if bar is not None:
                bar.clear()
                bar = None
            last = item
            if writer is not None:
                writer.add(item.to_json())
            elif not args.quieter:
                ctx.out.write(fmt.format_added(item, quiet=args.quiet))
    except InvalidInput as err:
        raise _LocalError("adding", err) from None
    finally:
        if bar is not None:
            bar.clear()
    if writer is not None:
        writer.close()
    elif args.quieter and last is not None:
        ctx.out.write(f"{last.cid}\n")
    if args.wait and not args.no_pin and last is not None:
        try:
            await wait_for_status(ctx.client, last.cid, TrackerStatus.PINNED, clock=ctx.reactor,
                                  timeout=args.wait_timeout, local=args.local)
        except (WaitTimeout, WaitFailed) as err:
            raise _LocalError(f"waiting for {last.cid}", err) from None


def _isatty(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


async def cmd_version(ctx):
    ctx.emit(await ctx.client.version(), lambda v: v.version + "\n")


async def cmd_health_graph(ctx):
    args = ctx.args
    graph = await ctx.client.connect_graph()
    text = fmt.format_json(graph.to_json()) if ctx.json else fmt.format_graph(graph, args.all_ipfs_peers)
    if not args.file:
        ctx.out.write(text)
        return
    try:
        with open(args.file, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as err:
        raise _LocalError(f"writing {args.file}", err.strerror) from None


async def cmd_health_metrics(ctx):
    name = ctx.args.name
    if not name:
        names = await ctx.client.metric_names()
        ctx.out.write(fmt.format_json(names) if ctx.json else "".join(n + "\n" for n in names))
        return
    metrics = await ctx.client.metrics(name)
    if ctx.json:
        ctx.out.write(fmt.format_json([m.to_json() for m in metrics]))
    else:
        ctx.out.write("".join(fmt.format_metric(m) for m in metrics))


async def cmd_health_alerts(ctx):
    alerts = await ctx.client.alerts()
    if ctx.json:
        ctx.out.write(fmt.format_json([a.to_json() for a in alerts]))
    else:
        ctx.out.write("".join(fmt.format_alert(a) for a in alerts))


async def cmd_commands(ctx):
    ctx.out.write("".join(p + "\n" for p in command_paths(ctx.parser)))


async def cmd_help(ctx):
    parser = ctx.parser
    for name in ctx.args.topic:
        sub = _subparsers(parser)
        if sub is None or name not in sub.choices:
            raise _UsageError(parser.format_usage(), f'unknown command "{name}"')
        parser = sub.choices[name]
    parser.print_help()


_LOCAL_ONLY = (cmd_commands, cmd_help)


# --- running ---------------------------------------------------------------------------------


def _credentials(args, env) -> tuple[str, str] | None:
    text = args.basic_auth if args.basic_auth is not None else env.get("CLUSTER_CREDENTIALS")
    if not text:
        return None
    user, _, password = text.partition(":")
    return user, password


def _make_client(args, env, reactor, err) -> RestClient:
    auth = _credentials(args, env)
    https = args.https or (auth is not None and not args.force_http)
    try:
        parse_host(args.host)
    except InvalidInput as e:
        raise _LocalError("parsing host", e) from None
    debug = (lambda line: err.write(line + "\n")) if args.debug else None
    return RestClient(
        args.host,
        https=https,
        no_check_certificate=args.no_check_certificate,
        basic_auth=auth,
        timeout=args.timeout or None,
        reactor=reactor,
        debug=debug,
    )


async def run(argv, reactor, stdout, stderr, env=None) -> int:
    """Run one ``ipfs-cluster-ctl`` command line (``argv`` without the program name).

    Writes results to ``stdout`` and errors to ``stderr`` (text files); ``env`` is
    the environment (``os.environ`` when None; read for ``CLUSTER_CREDENTIALS``).
    Returns the exit code: 0, 1 (local/network error) or 2 (API error).
    """
    env = os.environ if env is None else env
    parser = build_parser(stdout)
    try:
        args = parser.parse_args(list(argv))
    except _Exit as done:
        return done.status
    except _UsageError as bad:
        stderr.write(f"{bad.usage}error: {bad.message}\n")
        return 1
    if args.command is None:
        parser.print_help()
        return 0
    client = None
    try:
        if args.func not in _LOCAL_ONLY:
            client = _make_client(args, env, reactor, stderr)
        await args.func(_Context(args, client, stdout, stderr, reactor, parser))
        return 0
    except APIError as err:
        if args.encoding == "json":
            stdout.write(fmt.format_json({"code": err.code, "message": err.message}))
        else:
            stderr.write(fmt.format_api_error(err.code, err.message))
        return 2
    except _UsageError as bad:
        stderr.write(f"{bad.usage}error: {bad.message}\n")
        return 1
    except _LocalError as err:
        stderr.write(f"{err}\n")
        return 1
    except APIUnreachable as err:
        stderr.write(f"error performing request to {err.url}: {err.reason}\n")
        return 1
    except ClusterError as err:
        stderr.write(f"error: {err}\n")
        return 1
    finally:
        if client is not None:
            await client.close()


def main(argv=None) -> None:
    """The ``ipfs-cluster-ctl`` console script: runs :func:`run` and exits with its code."""
    from twisted.internet import task

    argv = sys.argv[1:] if argv is None else argv

    async def _main(reactor):
        try:
            code = await run(argv, reactor, sys.stdout, sys.stderr)
            sys.stdout.flush()
        except BrokenPipeError:
            # the reader went away (``| head``): stop quietly; later flushes go nowhere
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            code = 1
        if code:
            raise SystemExit(code)

    task.react(lambda reactor: defer.ensureDeferred(_main(reactor)))


if __name__ == "__main__":
    main()
