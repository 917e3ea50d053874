"""Text and JSON layouts of ``ipfs-cluster-ctl`` output (reference §5.3, §12.6).

Every function returns text (lines ending in ``\\n``) and never prints, so the
layouts are tested as pure functions.  Where the reference gives a layout it is
followed; the choices made where it does not:

- **status** (GlobalPinInfo) uses today's layout: ``<cid>[ | <name>]:`` then, per
  peer sorted by peer ID, ``    > <peername or peer ID, padded to 20> :
  <STATUS>[: <error>] | <timestamp> | Attempts: N | Priority: true|false``;
- **pin** lines use today's layout: ``<cid> | <name> | <TYPE>[-DIRECT] | Repl.
  Factor: <min>--<max> | Allocations: [<ids>] | Recursive|Direct | Metadata:
  yes|no | Exp: <date|∞> | Added: <date>`` (``Repl. Factor: -1 | Allocations:
  [everywhere]`` for everywhere); dates as ``YYYY-MM-DD HH:MM:SS`` UTC;
- **id** keeps the seed layout with the 0.3.1 peername: ``<id> | <peername> |
  Sees N other peers``, then ``  > Addresses:``, ``  > IPFS: <id>`` and their
  sorted addresses as ``    - <addr>``; an error gives ``<id> | ERROR: <error>``;
- **add** prints ``added <cid> <name>`` per item (as ``ipfs add``); progress items
  (no CID) are not printed;
- **metrics**: ``<peer> | <name>: <value> | Expires: <RFC 3339>``; **alerts**:
  ``<peer>: <name>. Expired at: <RFC 3339>. Triggered at: <RFC 3339>`` (absolute
  times instead of upstream's "3 minutes ago", so the output does not depend on
  when it is read);
- **health graph** is a Graphviz ``digraph`` of our own layout (cluster peers as
  boxes ``C<n>``, IPFS daemons as ellipses ``I<n>``, solid cluster links, dashed
  IPFS links, dotted cluster→IPFS edges);
- **json**: every value is written indented by 2 spaces with a final newline;
  collections are one JSON array (streamed item by item, so a huge listing is not
  held in memory); an empty one is ``[]``.
"""

from __future__ import annotations

import datetime
import json

from ipfscluster.types import (
    ID,
    AddedOutput,
    Alert,
    ConnectGraph,
    GlobalPinInfo,
    Metric,
    Pin,
    PinMode,
    format_time,
)

__all__ = [
    "format_id",
    "format_gpi",
    "format_pin",
    "format_added",
    "format_metric",
    "format_alert",
    "format_graph",
    "format_api_error",
    "format_json",
    "JSONArrayWriter",
]


def format_id(ident: ID) -> str:
    """The text of a peer's ID (``id``, ``peers ls``, ``peers add``)."""
    if ident.error:
        return f"{ident.id} | ERROR: {ident.error}\n"
    others = max(0, len(ident.cluster_peers) - 1)
    name = f" | {ident.peername}" if ident.peername else ""
    lines = [f"{ident.id}{name} | Sees {others} other peers", "  > Addresses:"]
    lines += [f"    - {a}" for a in sorted(str(a) for a in ident.addresses)]
    if ident.ipfs.error:
        lines.append(f"  > IPFS ERROR: {ident.ipfs.error}")
    else:
        lines.append(f"  > IPFS: {ident.ipfs.id}")
        lines += [f"    - {a}" for a in sorted(str(a) for a in ident.ipfs.addresses)]
    return "\n".join(lines) + "\n"


def format_gpi(gpi: GlobalPinInfo) -> str:
    """The text of a CID's status on every peer (``status``, ``pin add`` …)."""
    head = f"{gpi.cid} | {gpi.name}:" if gpi.name else f"{gpi.cid}:"
    lines = [head]
    for peer in sorted(gpi.peer_map):
        info = gpi.peer_map[peer]
        who = info.peername or peer
        status = info.status.to_json().upper()
        error = f": {info.error}" if info.error else ""
        lines.append(
            f"    > {who:<20} : {status}{error} | {format_time(info.timestamp)} | "
            f"Attempts: {info.attempt_count} | Priority: {'true' if info.priority_pin else 'false'}"
        )
    return "\n".join(lines) + "\n"


def _date(ns: int) -> str:
    seconds = ns // 1_000_000_000
    when = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%d %H:%M:%S")


def format_pin(pin: Pin) -> str:
    """The text line of a pin of the shared state (``pin ls``, ``pin add --no-status``)."""
    kind = pin.type.to_json().upper()
    if pin.mode is PinMode.DIRECT:
        kind += "-DIRECT"
    if pin.replication_factor_min < 0:
        replication = "Repl. Factor: -1 | Allocations: [everywhere]"
    else:
        replication = (
            f"Repl. Factor: {pin.replication_factor_min}--{pin.replication_factor_max} | "
            f"Allocations: [{' '.join(sorted(pin.allocations))}]"
        )
    depth = {0: "Direct", -1: "Recursive"}.get(pin.max_depth, f"Recursive-{pin.max_depth}")
    metadata = "yes" if pin.metadata else "no"
    expires = _date(pin.expire_at) if pin.expire_at else "∞"
    added = _date(pin.timestamp) if pin.timestamp else "unknown"
    return (
        f"{pin.cid} | {pin.name} | {kind} | {replication} | {depth} | Metadata: {metadata} | "
        f"Exp: {expires} | Added: {added}\n"
    )


def format_added(item: AddedOutput, quiet: bool = False) -> str:
    """``added <cid> <name>`` (only the CID when ``quiet``); "" for progress items."""
    if item.cid is None:
        return ""
    return f"{item.cid}\n" if quiet else f"added {item.cid} {item.name}\n"


def format_metric(metric: Metric) -> str:
    """One metric line (``health metrics <name>``)."""
    return f"{metric.peer} | {metric.name}: {metric.value} | Expires: {format_time(metric.expire)}\n"


def format_alert(alert: Alert) -> str:
    """One alert line (``health alerts``)."""
    return (
        f"{alert.peer}: {alert.name}. Expired at: {format_time(alert.metric.expire)}. "
        f"Triggered at: {format_time(alert.triggered_at)}\n"
    )


def _dot_label(*parts: str) -> str:
    return "\\n".join(p.replace("\\", "\\\\").replace('"', '\\"') for p in parts if p)


def format_graph(graph: ConnectGraph, all_ipfs_peers: bool = False) -> str:
    """The cluster's connectivity as a Graphviz ``digraph`` (``health graph``).

    IPFS daemons that belong to no cluster peer are drawn only with
    ``all_ipfs_peers``.
    """
    cluster_ids = sorted(set(graph.cluster_links) | set(graph.cluster_to_ipfs) | {graph.cluster_id})
    attached = {v for v in graph.cluster_to_ipfs.values()}
    ipfs_ids = set(attached)
    if all_ipfs_peers:
        ipfs_ids |= set(graph.ipfs_links)
        for targets in graph.ipfs_links.values():
            ipfs_ids |= set(targets)
    ipfs_ids = sorted(ipfs_ids)
    names = {p: f"C{i}" for i, p in enumerate(cluster_ids)}
    names.update({p: f"I{i}" for i, p in enumerate(ipfs_ids)})
    out = ["digraph cluster {", "  /* cluster peers */"]
    for peer in cluster_ids:
        style = ' style="filled" fillcolor="lightblue"' if peer == graph.cluster_id else ""
        label = _dot_label(graph.id_to_peername.get(peer, ""), peer)
        out.append(f'  {names[peer]} [label="{label}" shape="box"{style}]')
    out.append("  /* ipfs daemons */")
    for peer in ipfs_ids:
        label = _dot_label("IPFS", peer)
        out.append(f'  {names[peer]} [label="{label}" shape="ellipse"]')
    out.append("  /* edges */")
    for peer in cluster_ids:
        for other in sorted(graph.cluster_links.get(peer, ())):
            if other in names:
                out.append(f"  {names[peer]} -> {names[other]}")
        ipfs = graph.cluster_to_ipfs.get(peer)
        if ipfs in names:
            out.append(f'  {names[peer]} -> {names[ipfs]} [style="dotted"]')
    for peer in ipfs_ids:
        for other in sorted(graph.ipfs_links.get(peer, ())):
            if other in names:
                out.append(f'  {names[peer]} -> {names[other]} [style="dashed"]')
    out.append("}")
    return "\n".join(out) + "\n"


def format_api_error(code: int, message: str) -> str:
    """The text of an error the API answered with (exit code 2)."""
    return f"An error occurred:\n  Code: {code}\n  Message: {message}\n"


def format_json(value) -> str:
    """``value`` (a JSON tree) indented by 2 spaces, with a final newline."""
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


class JSONArrayWriter:
    """Writes a JSON array one element at a time to ``write`` (a text writer).

    Call :meth:`add` per element and :meth:`close` at the end; an empty array is
    ``[]``.
    """

    def __init__(self, write):
        self._write = write
        self._count = 0

    def add(self, value) -> None:
        """Write one element (indented as part of the array)."""
        text = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        self._write(("[\n  " if self._count == 0 else ",\n  ") + text)
        self._count += 1

    def close(self) -> None:
        """End the array."""
        self._write("[]\n" if self._count == 0 else "\n]\n")
