"""``ipfs-cluster-service state …``: the shared state of a stopped peer (reference §2.3).

::

    ipfs-cluster-service [-c DIR] [-f] state export [--file FILE]   (stdout by default)
    ipfs-cluster-service [-c DIR] [-f] state import [FILE]          (stdin needs -f)
    ipfs-cluster-service [-c DIR]      state upgrade
    ipfs-cluster-service [-c DIR] [-f] state cleanup
    ipfs-cluster-service               state version

Every command but ``version`` holds the execution lock (``cluster.lock``) of the
configuration folder while it runs, so it never touches the data of a running peer.
``import`` and ``cleanup`` ask for confirmation unless the global ``-f`` is given
(after ``state``, ``-f`` means ``--file`` for ``export`` as upstream, ``--force``
otherwise).  The work itself is :mod:`ipfscluster.stateops`; this module parses the
arguments, prints and returns the exit status (0 success, 1 error; errors are one
``error : …`` line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from ipfscluster import stateops
from ipfscluster.config import ServiceConfig, config_folder
from ipfscluster.errors import ClusterError, ConfigError
from ipfscluster.state.snapshot import VERSION

PROG = "ipfs-cluster-service state"
IMPORT_PROMPT = "The peer's state will be replaced.  Run with -h for details.  Continue? [y/n]: "
CLEANUP_PROMPT = ("The peer's shared state (Raft data folder {folder}) will be moved aside to "
                  "{folder}.old.0; the peer will start with an empty state.  Run with -h for "
                  "details.  Continue? [y/n]: ")
SUBCOMMANDS = {
    "export": "write the shared state as a JSON array of pins (stdout, or --file)",
    "import": "replace the shared state with the pins of an export or backup (FILE or stdin)",
    "upgrade": "rewrite an out-of-date state in the current format (a backup is written first)",
    "cleanup": "move the Raft data folder aside (.old.0 … .old.4 are kept): empty state",
    "version": "print the state format version this program uses",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(1, f"error : {message}. Run \"{self.prog} -h\" for more info\n")


def _parser(sub: str) -> argparse.ArgumentParser:
    parser = _Parser(prog=f"{PROG} {sub}", description=SUBCOMMANDS[sub])
    parser.add_argument("-c", "--config", metavar="FOLDER", default=argparse.SUPPRESS,
                        help="configuration folder")
    if sub == "export":
        parser.add_argument("-f", "--file", metavar="FILE", default=None,
                            help="write to FILE instead of stdout")
        parser.add_argument("--force", action="store_true", default=argparse.SUPPRESS,
                            help="accepted for symmetry (export never asks)")
    else:
        parser.add_argument("-f", "--force", action="store_true", default=argparse.SUPPRESS,
                            help="do not ask for confirmation")
    if sub == "import":
        parser.add_argument("file", nargs="?", default=None,
                            help="an export (state export) or a backup (<config>/backups/…); "
                                 "stdin if omitted (then -f is required)")
    return parser


def _usage() -> str:
    lines = [f"usage: {PROG} <command> [options]", "", "commands:"]
    lines += [f"  {name:<9} {text}" for name, text in SUBCOMMANDS.items()]
    return "\n".join(lines)


def _confirm(prompt: str, stdin, stdout) -> bool:
    stdout.write(prompt)
    stdout.flush()
    answer = stdin.readline().strip().lower()
    return answer in ("y", "yes")


def main(args: argparse.Namespace, environ=None, stdin=None, stdout=None) -> int:
    """Run ``state <args.rest…>`` with the global flags already in ``args`` (``config``,
    ``force``); return the exit status."""
    environ = os.environ if environ is None else environ
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    rest = list(args.rest)
    if not rest or rest[0] in ("-h", "--help", "help"):
        print(_usage(), file=stdout if rest else sys.stderr)
        return 0 if rest else 1
    sub = rest.pop(0)
    if sub not in SUBCOMMANDS:
        print(f"error : unknown state command {sub!r}; use one of {', '.join(SUBCOMMANDS)}",
              file=sys.stderr)
        return 1
    _parser(sub).parse_args(rest, namespace=args)
    if sub == "version":
        print(VERSION, file=stdout)
        return 0
    return _locked(config_folder(args.config, environ),
                   lambda config: _run(sub, args, config, stdin, stdout))


def _locked(folder: str, work) -> int:
    """Load the configuration of ``folder``, hold its execution lock and run
    ``work(config)``; print errors as one line; return the exit status."""
    try:
        config = ServiceConfig.load(folder)
    except ConfigError as err:
        print(f"error loading configuration: {err}", file=sys.stderr)
        return 1
    try:
        with stateops.ExecutionLock(config.folder):
            return work(config)
    except ClusterError as err:
        print(f"error : {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"error : {err.filename or ''}: {err.strerror or err}", file=sys.stderr)
        return 1


def _run(sub, args, config, stdin, stdout) -> int:
    data = config.raft_data_folder
    if sub == "export":
        if args.file:
            with open(args.file, "w", encoding="utf-8") as out:
                count = stateops.export_state(data, out)
            print(f"{count} pins exported to {args.file}", file=sys.stderr)
        else:
            stateops.export_state(data, stdout)
        return 0
    if sub == "import":
        return _import(args, config, stdin, stdout)
    if sub == "upgrade":
        return upgrade(config)
    # cleanup
    if not args.force and not _confirm(CLEANUP_PROMPT.format(folder=data), stdin, stdout):
        print("cleanup cancelled: nothing changed", file=sys.stderr)
        return 0
    if stateops.cleanup(data):
        print(f"Raft data moved to {data}.old.0; the peer starts with an empty state "
              "(join a running cluster with --bootstrap)", file=sys.stderr)
    else:
        print(f"nothing to clean up: {data} does not exist", file=sys.stderr)
    return 0


def _import(args, config, stdin, stdout) -> int:
    if args.file is None and not args.force:
        print("error : reading the state from stdin needs -f (the confirmation would read the "
              "same input); or give the file: state import FILE", file=sys.stderr)
        return 1
    if not args.force and not _confirm(IMPORT_PROMPT, stdin, stdout):
        print("import cancelled: the state was not changed", file=sys.stderr)
        return 0
    voters = [a.peer_id for a in config.cluster.peers] + [config.cluster.peer_id]
    if args.file is None:
        count = stateops.import_state(config.raft_data_folder, stdin, voters)
    else:
        with open(args.file, "rb") as f:
            count = stateops.import_state(config.raft_data_folder, f, voters)
    print(f"state imported: {count} pins. The previous Raft data (if any) is kept in "
          f"{config.raft_data_folder}.old.0. Import the same file on every peer of the "
          "cluster before starting them.", file=sys.stderr)
    return 0


def upgrade(config) -> int:
    """``state upgrade`` (and ``daemon --upgrade``) for ``config``; prints what it did.

    The caller holds the execution lock.  Returns the exit status.
    """
    found, backup = stateops.upgrade_state(config.raft_data_folder, config.folder, time.time())
    if found is None:
        print("no state to upgrade: the peer has no Raft snapshot yet", file=sys.stderr)
    elif backup is None:
        print(f"the state is up to date (format {found})", file=sys.stderr)
    else:
        print(f"state upgraded from format {found} to {VERSION}; backup of the old state: "
              f"{backup}", file=sys.stderr)
    return 0


def upgrade_before_daemon(folder: str) -> int:
    """``daemon --upgrade``: run the migrations of the peer in ``folder`` first."""
    return _locked(folder, upgrade)
