"""``ipfs-cluster-service``: create a peer's configuration and run the peer.

Usage::

    ipfs-cluster-service [global flags] [init [-s] | daemon | version | help]

Global flags (reference §2.1): ``-c/--config FOLDER``, ``-f/--force``,
``-l/--loglevel LEVEL``, ``-d/--debug``, ``-a/--alloc STRATEGY``,
``-j/--bootstrap MULTIADDR``, ``-x/--leave`` (hidden), ``-v/--version``.  They may
come before the subcommand, as upstream requires, and also after it
(``ipfs-cluster-service daemon -l debug``): upstream 0.3.0 silently lost them there
(§14.1), we do not.  No subcommand means ``daemon``.

``init`` takes the secret from the prompt (``-s``), else ``$CLUSTER_SECRET``, else
makes a random one, and refuses to overwrite ``service.json`` without ``-f``.
``daemon`` runs :class:`ipfscluster.tap.PeerService`, the same service
``twistd ipfs-cluster`` runs, until SIGINT, SIGTERM or SIGHUP.

Exit status: 0 on success, 1 on any error; errors are one line on stderr, never a
traceback.  :func:`main` returns the status instead of exiting, so tests call it
in-process.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import ipfscluster
from ipfscluster import logging as cluster_logging
from ipfscluster import tap
from ipfscluster.config import ServiceConfig, config_folder
from ipfscluster.config.cluster import parse_secret
from ipfscluster.errors import ConfigError, ConfigExists

PROG = "ipfs-cluster-service"
SECRET_PROMPT = "Enter cluster secret (32-byte hex string): "
SECRET_ENV = "CLUSTER_SECRET"
UNKNOWN_SUBCOMMAND = f'Unknown subcommand. Run "{PROG} help" for more info'
COMMANDS = ("init", "daemon", "version", "help", "h", "sandbox", "state")


class _Parser(argparse.ArgumentParser):
    """argparse that reports mistakes as ``error : …`` with exit status 1."""

    def error(self, message):
        self.exit(1, f"error : {message}. Run \"{PROG} help\" for more info\n")


def _add_global_flags(parser: argparse.ArgumentParser, after_command: bool) -> None:
    # after a subcommand the defaults are SUPPRESSed so they do not override values
    # given before it
    def default(value):
        return argparse.SUPPRESS if after_command else value

    parser.add_argument("-c", "--config", metavar="FOLDER", default=default(None),
                        help="configuration folder (default: $IPFS_CLUSTER_PATH, "
                             "else ~/.ipfs-cluster)")
    parser.add_argument("-f", "--force", action="store_true", default=default(False),
                        help="overwrite the configuration on init; bootstrap even when "
                             "cluster.peers is set")
    parser.add_argument("-l", "--loglevel", metavar="LEVEL",
                        default=default(cluster_logging.DEFAULT_LEVEL),
                        help="log level of the cluster facilities: "
                             + ", ".join(cluster_logging.LEVEL_NAMES) + " (default: info)")
    parser.add_argument("-d", "--debug", action="store_true", default=default(False),
                        help="debug logging for every facility")
    parser.add_argument("-a", "--alloc", metavar="STRATEGY",
                        default=default(tap.DEFAULT_ALLOCATION),
                        help="allocation strategy: " + ", ".join(tap.ALLOCATIONS)
                             + " (default: disk-freespace)")
    parser.add_argument("-j", "--bootstrap", metavar="MULTIADDR", default=default(None),
                        help="join the cluster through this peer multiaddress")
    parser.add_argument("-x", "--leave", action="store_true", default=default(False),
                        help=argparse.SUPPRESS)


def _main_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        usage="%(prog)s [global flags] [init [-s] | daemon | sandbox | version | help]",
        description="IPFS Cluster node: runs one peer of an IPFS Cluster.",
        epilog="commands:\n"
               "  init      create a default configuration (-s: prompt for the secret)\n"
               "  daemon    run the IPFS Cluster peer (default; -u/--upgrade: migrate the\n"
               "            state first)\n"
               "  state     export | import | upgrade | cleanup | version of the shared\n"
               "            state (the peer must be stopped; state -h for details)\n"
               "  sandbox   run a whole test cluster here (fake IPFS daemons; --peers N,\n"
               "            --dir DIR, --base-port P)\n"
               "  version   print the version\n"
               "  help      show this help",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_global_flags(parser, after_command=False)
    parser.add_argument("-v", "--version", action="version",
                        version=f"{PROG} version {ipfscluster.__version__}")
    parser.add_argument("command", nargs="?", default="daemon", help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def _command_parser(command: str) -> argparse.ArgumentParser:
    parser = _Parser(prog=f"{PROG} {command}")
    if command == "init":
        parser.add_argument("-s", "--custom-secret", action="store_true",
                            help="prompt for the cluster secret")
    if command == "sandbox":
        from ipfscluster import sandbox

        parser.add_argument("--peers", type=int, default=sandbox.DEFAULT_PEERS, metavar="N",
                            help="number of peers (default %(default)s)")
        parser.add_argument("--dir", default=sandbox.DEFAULT_DIR, metavar="DIR",
                            help="folder for the peers' configurations (default ./%(default)s)")
        parser.add_argument("--base-port", type=int, default=sandbox.DEFAULT_BASE_PORT, metavar="P",
                            help="peer i uses ports P+10i+1 (IPFS), +4 (REST), +5 (proxy), +6 "
                                 "(cluster) (default %(default)s)")
    if command == "daemon":
        parser.add_argument("-u", "--upgrade", action="store_true",
                            help="upgrade an out-of-date shared state before starting")
    if command != "version":
        _add_global_flags(parser, after_command=True)
    return parser


def _peer_options(args: argparse.Namespace, environ) -> tap.PeerOptions:
    """Validate the global flags; raises ValueError with the message to print."""
    cluster_logging.parse_level(args.loglevel)
    return tap.PeerOptions(
        folder=config_folder(args.config, environ),
        loglevel=args.loglevel,
        debug=args.debug,
        allocation=tap.parse_allocation(args.alloc),
        bootstrap=tap.parse_bootstrap(args.bootstrap) if args.bootstrap else None,
        leave=args.leave,
        force=args.force,
    )


def _read_secret(args, environ, stdin) -> bytes | None:
    """The user's secret (prompt, then $CLUSTER_SECRET), or None for a random one.

    :raises ConfigError: when the given secret is not valid.
    """
    if args.custom_secret:
        sys.stdout.write(SECRET_PROMPT)
        sys.stdout.flush()
        return parse_secret(stdin.readline().strip(), key="")
    if SECRET_ENV in environ:
        return parse_secret(environ[SECRET_ENV], key=SECRET_ENV)
    return None


def _init(args, options: tap.PeerOptions, environ, stdin) -> int:
    folder = options.folder
    try:
        ServiceConfig.check_can_init(folder, options.force)  # before prompting
        try:
            secret = _read_secret(args, environ, stdin)
        except ConfigError as err:
            print(f"error parsing user-provided secret: {err}", file=sys.stderr)
            return 1
        config = ServiceConfig.init(folder, secret=secret, force=options.force)
    except ConfigExists as err:
        print(f"error : {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"error : cannot write the configuration in {folder}: {err.strerror or err}",
              file=sys.stderr)
        return 1
    print(f"{PROG} configuration written to {config.path}", file=sys.stderr)
    return 0


def _daemon(options: tap.PeerOptions) -> int:
    from twisted.internet import reactor

    peer = tap.build_peer_service(options, reactor)  # exits 1 on configuration errors
    cluster_logging.begin_logging(
        [cluster_logging.make_observer(sys.stderr, options.loglevel, options.debug)]
    )
    tap.install_stop_signals(reactor, (signal.SIGHUP, signal.SIGINT))
    reactor.callWhenRunning(peer.startService)
    reactor.addSystemEventTrigger("before", "shutdown", peer.stopService)
    reactor.run()
    return 1 if peer.failure is not None else 0


def main(argv: list[str] | None = None, environ=None, stdin=None) -> int:
    """Run ``ipfs-cluster-service`` with ``argv`` (default ``sys.argv[1:]``); return
    the exit status (0 success, 1 error)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    environ = os.environ if environ is None else environ
    stdin = sys.stdin if stdin is None else stdin
    try:
        parser = _main_parser()
        args = parser.parse_args(argv)
        command = args.command
        if command in ("help", "h"):
            parser.print_help()
            return 0
        if command not in COMMANDS:
            print(f"error : {UNKNOWN_SUBCOMMAND}", file=sys.stderr)
            return 1
        if command == "state":
            from ipfscluster import state_cli

            return state_cli.main(args, environ, stdin)
        _command_parser(command).parse_args(args.rest, namespace=args)
        if command == "version":
            print(ipfscluster.__version__)
            return 0
        try:
            options = _peer_options(args, environ)
        except ValueError as err:
            print(f"error : {err}", file=sys.stderr)
            return 1
        if command == "init":
            return _init(args, options, environ, stdin)
        if command == "sandbox":
            from ipfscluster import sandbox

            return sandbox.run(args.dir, args.peers, args.base_port, options.allocation.name,
                               options.loglevel, options.debug)
        if getattr(args, "upgrade", False):
            from ipfscluster import state_cli

            status = state_cli.upgrade_before_daemon(options.folder)
            if status:
                return status
        return _daemon(options)
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)


if __name__ == "__main__":
    sys.exit(main())
