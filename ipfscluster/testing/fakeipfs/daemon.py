"""The fake kubo daemon: its state, its Python API for tests and its commands.

:class:`FakeIPFS` holds what a kubo node holds for the cluster's purposes: an
identity (a real Ed25519 libp2p peer ID), a blockstore, a pinset (recursive and
direct pins, with names; indirect pins computed from the recursive pins' DAGs),
its swarm connections, a config document and a storage limit.  It joins a
:class:`~ipfscluster.testing.fakeipfs.network.FakeNetwork`, from which it fetches
the blocks it lacks and, when nobody has them, waits for them the way kubo does
(until they appear, the request is cancelled, or a timeout passes).

The HTTP side (:mod:`ipfscluster.testing.fakeipfs.server`) parses a request into a
:class:`~ipfscluster.testing.fakeipfs.call.Call` and runs the command method of
this class named after the endpoint.  A command either returns a JSON value (sent
once), returns :class:`RawBody` (bytes, as ``cat`` and ``block/get``), or calls
``out.stream()`` and ``out.emit(value)`` for NDJSON output.  Errors are
:mod:`ipfscluster.testing.fakeipfs.errors` exceptions carrying kubo's messages.

Time comes from the injected ``clock`` (a ``Clock`` in deterministic tests), the
reactor is only used to listen.
"""

from __future__ import annotations

import base64
import collections
import posixpath

import attrs
from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python.failure import Failure

from ipfscluster.cid import CID, DAG_PB, RAW, sha256_multihash
from ipfscluster.errors import InvalidCID, InvalidInput, InvalidPeerID
from ipfscluster.identity import Identity, validate_peer_id
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.testing.fakeipfs.blockstore import Blockstore
from ipfscluster.testing.fakeipfs.call import Call
from ipfscluster.testing.fakeipfs.errors import (
    DEADLINE_EXCEEDED,
    KuboCommandError,
    KuboRequestError,
)
from ipfscluster.testing.fakeipfs.faults import Faults
from ipfscluster.testing.fakeipfs.hamt import shard_slot_names
from ipfscluster.testing.fakeipfs.importer import (
    DEFAULT_MAX_LINKS,
    Imported,
    Importer,
    ImportOptions,
    parse_chunker,
)
from ipfscluster.testing.fakeipfs.multipart import (
    DirectoryEntry,
    FileEntry,
    MultipartError,
    parse_tree,
)
from ipfscluster.testing.fakeipfs.network import FakeNetwork
from ipfscluster.testing.fakeipfs.unixfs import (
    TYPE_DIRECTORY,
    TYPE_FILE,
    TYPE_HAMT_SHARD,
    TYPE_RAW,
    decode_pbnode,
    decode_unixfs,
)

__all__ = ["FakeIPFS", "RawBody", "DEFAULT_VERSION", "DEFAULT_STORAGE_MAX"]

log = Logger(namespace="fakeipfs")

DEFAULT_VERSION = "0.32.1"
DEFAULT_REPO_VERSION = "16"
DEFAULT_STORAGE_MAX = 10_000_000_000  # kubo's default Datastore.StorageMax "10GB"
PROGRESS_INTERVAL = 0.5  # kubo's pin add --progress ticker
PROGRESS_INCREMENT = 262144  # kubo's add progress granularity
REQUEST_LOG = 1000

PIN_TYPES = ("direct", "indirect", "recursive", "all")
_INVALID_TYPE = "invalid type '{}', must be one of {{direct, indirect, recursive, all}}"

PROTOCOLS = [
    "/ipfs/bitswap",
    "/ipfs/bitswap/1.0.0",
    "/ipfs/bitswap/1.1.0",
    "/ipfs/bitswap/1.2.0",
    "/ipfs/id/1.0.0",
    "/ipfs/id/push/1.0.0",
    "/ipfs/kad/1.0.0",
    "/ipfs/ping/1.0.0",
    "/libp2p/autonat/1.0.0",
    "/libp2p/circuit/relay/0.2.0/stop",
    "/x/",
]

BLOCK_CODECS = {
    "raw": RAW,
    "dag-pb": DAG_PB,
    "protobuf": DAG_PB,
    "dag-cbor": 0x71,
    "cbor": 0x51,
    "dag-json": 0x0129,
    "json": 0x0200,
}
MAX_BLOCK_SIZE = 1024 * 1024 + 1024  # kubo refuses bigger blocks (BlockSizeLimit)


@attrs.frozen
class RawBody:
    """A command's raw (non-JSON) output, sent with ``X-Stream-Output: 1``."""

    data: bytes
    content_type: str = "text/plain"
    length: int | None = None


@attrs.frozen
class Pin:
    """A pin of the fake daemon: ``mode`` is "recursive" or "direct"."""

    cid: CID
    mode: str
    name: str = ""


def _join(*parts: str) -> str:
    """Go's path.Join: join the non-empty parts with "/" and clean the result."""
    joined = "/".join(p for p in parts if p)
    return posixpath.normpath(joined) if joined else ""


def _go_time(seconds: float) -> str:
    return f"{seconds:.6f}"


class _Progress:
    def __init__(self):
        self.nodes = 0
        self.bytes = 0


class FakeIPFS:
    """A fake kubo daemon.

    :param reactor: used by :meth:`listen` only (None for resource-only use).
    :param clock: the time source (``callLater``/``seconds``); defaults to ``reactor``.
    :param network: the network to join (a private one when None).
    :param version: the kubo version string ``version`` and ``id`` report.
    :param identity: an :class:`~ipfscluster.identity.Identity` (generated when None).
    :param storage_max: bytes reported as ``StorageMax``.
    :param pin_timeout: seconds a ``pin/add`` waits for missing blocks (None: forever,
        as kubo).
    :param swarm_addresses: the swarm multiaddrs ``id`` reports (without ``/p2p``).
    :param repo_path: what ``repo/stat`` reports as ``RepoPath``.
    :param instant_pins: when True, a block no daemon has counts as an empty block
        fetched at once, so pinning any CID succeeds immediately (benchmarks and
        demos pinning made-up CIDs); kubo would wait for the content.
    """

    def __init__(
        self,
        reactor=None,
        clock=None,
        network: FakeNetwork | None = None,
        version: str = DEFAULT_VERSION,
        identity: Identity | None = None,
        storage_max: int = DEFAULT_STORAGE_MAX,
        pin_timeout: float | None = None,
        swarm_addresses=("/ip4/127.0.0.1/tcp/4001",),
        repo_path: str = "/fake/.ipfs",
        instant_pins: bool = False,
    ):
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        if self.clock is None:
            raise ValueError("FakeIPFS needs a clock (or a reactor)")
        self.version = version
        self.identity = identity or Identity.generate()
        self.storage_max = storage_max
        self.pin_timeout = pin_timeout
        self.swarm_addresses = list(swarm_addresses)
        self.repo_path = repo_path
        self.instant_pins = instant_pins
        self.faults = Faults()
        self.network = network if network is not None else FakeNetwork()
        self.blockstore = Blockstore(on_put=self._announce)
        self.pins: dict[CID, Pin] = {}  # read it; change it with set_pin/unset_pin
        self._indirect: dict[CID, list[CID]] = {}  # CID -> recursive roots holding it
        self.connected: dict[str, str] = {}  # peer ID -> multiaddr dialled
        self.online = True
        # the last REQUEST_LOG requests seen (without bodies), for tests
        self.requests: collections.deque[Call] = collections.deque(maxlen=REQUEST_LOG)
        self._listener = None  # set by listen()
        self._resource = None
        self.network.join(self)

    # --- identity and config ------------------------------------------------------

    @property
    def peer_id(self) -> str:
        """The daemon's libp2p peer ID (``12D3KooW…``)."""
        return self.identity.peer_id

    @property
    def public_key_b64(self) -> str:
        """The libp2p protobuf public key, base64 (``id``'s ``PublicKey``)."""
        return base64.b64encode(b"\x08\x01\x12\x20" + self.identity.public_key_bytes).decode()

    @property
    def api_multiaddr(self) -> str | None:
        """The multiaddr the daemon listens on, or None when not listening."""
        return self._listener.multiaddr if self._listener is not None else None

    @property
    def api_url(self) -> str | None:
        """``http://<host>:<port>`` of the listening API, or None."""
        if self._listener is None:
            return None
        host = self._listener.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self._listener.port_number}"

    def config(self) -> dict:
        """The config document ``config/show`` returns (no private key)."""
        api = self.api_multiaddr or "/ip4/127.0.0.1/tcp/5001"
        return {
            "API": {"HTTPHeaders": {}},
            "Addresses": {
                "API": api,
                "Announce": [],
                "AppendAnnounce": [],
                "Gateway": "/ip4/127.0.0.1/tcp/8080",
                "NoAnnounce": [],
                "Swarm": list(self.swarm_addresses),
            },
            "Bootstrap": [],
            "Datastore": {
                "BloomFilterSize": 0,
                "GCPeriod": "1h",
                "HashOnRead": False,
                "StorageGCWatermark": 90,
                "StorageMax": f"{self.storage_max}B",
            },
            "Identity": {"PeerID": self.peer_id},
            "Import": {
                "CidVersion": None,
                "HashFunction": None,
                "UnixFSChunker": None,
                "UnixFSRawLeaves": None,
            },
            "Pinning": {"RemoteServices": {}},
            "Routing": {"Type": "auto"},
        }

    # --- fault knobs that need the daemon -----------------------------------------

    def set_free_space(self, free: int) -> None:
        """Make ``repo/stat`` report ``free`` bytes left (StorageMax - RepoSize)."""
        self.storage_max = self.blockstore.size + free

    def go_down(self) -> defer.Deferred:
        """Stop answering: stop listening and drop open connections; requests that
        still reach the resource are dropped.  Content held here is no longer
        offered to the network.  Returns a Deferred fired when the listener stopped."""
        self.online = False
        if self._listener is not None:
            return self._listener.pause()
        return defer.succeed(None)

    def come_up(self) -> defer.Deferred:
        """Answer again (listening on the same port as before).  Returns a Deferred
        fired when listening."""
        self.online = True
        self.network.announce_all(self)
        if self._listener is not None:
            return self._listener.resume()
        return defer.succeed(None)

    def listen(self, multiaddr: str = "/ip4/127.0.0.1/tcp/0"):
        """Serve the kubo RPC API on a TCP multiaddr (port 0 picks a free port).
        Returns the listening port (``getHost().port`` has the port)."""
        from ipfscluster.testing.fakeipfs.server import Listener

        if self.reactor is None:
            raise ValueError("listen() needs the daemon to have a reactor")
        self._listener = Listener(self, multiaddr)
        return self._listener.start()

    def stop(self) -> defer.Deferred:
        """Stop listening, drop connections and leave the network.  Returns a
        Deferred fired when everything is closed."""
        self.network.leave(self)
        self.faults.release()
        if self._listener is not None:
            listener, self._listener = self._listener, None
            return listener.stop()
        return defer.succeed(None)

    @property
    def resource(self):
        """The twisted.web resource serving this daemon's API (for StubTreq)."""
        from ipfscluster.testing.fakeipfs.server import KuboAPIResource

        if self._resource is None:
            self._resource = KuboAPIResource(self)
        return self._resource

    # --- content ------------------------------------------------------------------

    def _announce(self, multihash: bytes) -> None:
        if self.online:
            self.network.announce(multihash, self.blockstore.get_by_multihash(multihash))

    def importer(self, **options) -> Importer:
        """An Importer storing its blocks here (options as :class:`ImportOptions`)."""
        return Importer(ImportOptions(**options), self.blockstore.put)

    def add_bytes(self, data: bytes, pin: bool = True, **options) -> Imported:
        """Import ``data`` as a file (kubo's importer), pin it recursively unless
        ``pin`` is False, and return the root.  For seeding tests."""
        root = self.importer(**options).add_bytes(data)
        if pin:
            self.set_pin(root.cid)
        return root

    def pin_mode(self, cid) -> str | None:
        """"recursive", "direct", "indirect" or None: how ``cid`` is pinned here."""
        cid = CID.parse(cid) if isinstance(cid, str) else cid
        pin = self.pins.get(cid)
        if pin is not None:
            return pin.mode
        return "indirect" if self._indirect_via(cid) is not None else None

    async def _get_block(self, cid: CID, progress: _Progress | None = None) -> bytes:
        """The block ``cid``: local, else fetched from the network, else wait for it
        to appear (cancel the calling Deferred to stop waiting)."""
        while True:
            data = self.blockstore.get(cid)
            if data is None:
                data = self.network.find(cid, requester=self)
                if data is not None:
                    self.blockstore.put(cid, data)
            if data is None and self.instant_pins:
                data = b""  # pretend the network had it: an empty block, not stored
            if data is not None:
                if progress is not None:
                    progress.nodes += 1
                    progress.bytes += len(data)
                return data
            await self.network.wait_for(cid)

    def _links(self, cid: CID, data: bytes):
        if cid.codec != DAG_PB:
            return ()
        return decode_pbnode(data).links

    async def _fetch_dag(self, root: CID, progress: _Progress) -> None:
        seen = set()
        stack = [root]
        while stack:
            cid = stack.pop()
            if cid in seen:
                continue
            seen.add(cid)
            data = await self._get_block(cid, progress)
            stack.extend(reversed([link.cid for link in self._links(cid, data)]))

    def _walk_local(self, root: CID):
        """Yield ``(parent, link)`` for every link of ``root``'s DAG held locally."""
        seen = set()
        stack = [root]
        while stack:
            cid = stack.pop()
            data = self.blockstore.get(cid)
            if data is None or cid in seen:
                continue
            seen.add(cid)
            for link in self._links(cid, data):
                yield cid, link
                stack.append(link.cid)

    def set_pin(self, cid: CID, mode: str = "recursive", name: str = "") -> None:
        """Record a pin (``mode`` "recursive" or "direct") without fetching anything.
        A recursive pin indexes the part of its DAG held locally as indirect pins."""
        self.unset_pin(cid)
        self.pins[cid] = Pin(cid, mode, name)
        if mode == "recursive":
            for _, link in self._walk_local(cid):
                self._indirect.setdefault(link.cid, []).append(cid)

    def unset_pin(self, cid: CID) -> Pin | None:
        """Remove the pin of ``cid`` (and its indirect pins); return it, or None."""
        pin = self.pins.pop(cid, None)
        if pin is not None and pin.mode == "recursive":
            for _, link in self._walk_local(cid):
                roots = self._indirect.get(link.cid)
                if roots is not None and cid in roots:
                    roots.remove(cid)
                    if not roots:
                        del self._indirect[link.cid]
        return pin

    def _indirect_via(self, cid: CID) -> CID | None:
        roots = self._indirect.get(cid)
        return roots[0] if roots else None

    # --- paths --------------------------------------------------------------------

    async def resolve(self, text: str) -> CID:
        """Resolve an IPFS path (``/ipfs/<cid>[/name...]`` or a bare CID) to a CID,
        fetching the directory blocks on the way.  Raises KuboCommandError with
        kubo's messages."""
        if text.startswith("/"):
            components = text.split("/")
            if len(components) < 3 or components[1] not in ("ipfs", "ipld") or not components[2]:
                if len(components) >= 2 and components[1] not in ("ipfs", "ipld", "ipns"):
                    raise KuboCommandError(f'invalid path "{text}": unknown namespace')
                raise KuboCommandError(
                    f'invalid path "{text}": path does not have enough components'
                )
            try:
                cid = CID.parse(components[2])
            except InvalidCID as e:
                raise KuboCommandError(f'invalid path "{text}": invalid cid: {e}') from None
            names = [c for c in components[3:] if c]
        else:
            try:
                cid = CID.parse(text)
            except InvalidCID:
                raise KuboCommandError(
                    f'invalid path "{text}": path does not have enough components'
                ) from None
            names = []
        for name in names:
            found = await self._child(cid, name)
            if found is None:
                raise KuboCommandError(f'no link named "{name}" under {cid}')
            cid = found
        return cid

    async def _child(self, cid: CID, name: str) -> CID | None:
        """The CID named ``name`` in directory ``cid`` (plain or HAMT-sharded)."""
        data = await self._get_block(cid)
        links = self._links(cid, data)
        if cid.codec != DAG_PB or not _is_shard(data):
            return next((link.cid for link in links if link.name == name), None)
        for prefix in shard_slot_names(name):
            link = next((link for link in links if link.name.startswith(prefix)), None)
            if link is None:
                return None
            if link.name != prefix:
                return link.cid if link.name[len(prefix) :] == name else None
            cid = link.cid  # a child shard: go one level down
            links = self._links(cid, await self._get_block(cid))
        return None

    async def _resolve_all(self, args) -> list[CID]:
        return [await self.resolve(a) for a in args]

    @staticmethod
    def cids_in(args) -> list[CID]:
        """The CIDs named by request arguments (for fault checks); unparsable
        arguments are skipped."""
        found = []
        for text in args:
            head = text.split("/")[2] if text.startswith("/ipfs/") and text.count("/") >= 2 else text
            try:
                found.append(CID.parse(head))
            except InvalidCID:
                continue
        return found

    # --- commands: identity -------------------------------------------------------

    def _id_output(self, daemon) -> dict:
        return {
            "ID": daemon.peer_id,
            "PublicKey": daemon.public_key_b64,
            "Addresses": [f"{a}/p2p/{daemon.peer_id}" for a in daemon.swarm_addresses] or None,
            "AgentVersion": f"kubo/{daemon.version}/",
            "Protocols": list(PROTOCOLS),
        }

    async def cmd_id(self, call: Call, out):
        """``id [peer]``: this daemon's (or a network peer's) ID, key, addresses, agent."""
        if not call.args:
            return self._id_output(self)
        try:
            peer = validate_peer_id(call.args[0])
        except InvalidPeerID as e:
            raise KuboCommandError(str(e)) from None
        if peer == self.peer_id:
            return self._id_output(self)
        other = self.network.peer(peer)
        if other is None:
            raise KuboCommandError("routing: not found")
        return self._id_output(other)

    async def cmd_version(self, call: Call, out):
        """``version``: the configured kubo version."""
        return {
            "Version": self.version,
            "Commit": "",
            "Repo": DEFAULT_REPO_VERSION,
            "System": "amd64/linux",
            "Golang": "go1.23.3",
        }

    # --- commands: add and cat ----------------------------------------------------

    def _import_options(self, call: Call) -> ImportOptions:
        cid_version = call.int("cid-version")
        if cid_version is not None and cid_version not in (0, 1):
            raise KuboCommandError(f"unknown CID version: {cid_version}")
        hash_name = call.str("hash", "sha2-256").lower()
        if hash_name != "sha2-256":
            raise KuboCommandError(
                f'unrecognized hash function: "{hash_name}" (the fake daemon supports sha2-256 only)'
            )
        if call.bool("trickle"):
            raise KuboCommandError("the fake daemon does not implement the trickle layout")
        # options that change the DAG in ways the fake does not reproduce: refuse them
        # rather than answer with CIDs kubo would not give
        for name in ("preserve-mode", "preserve-mtime", "inline"):
            if call.bool(name):
                raise KuboCommandError(f"the fake daemon does not implement {name}")
        for name in ("mode", "mtime", "max-directory-links", "to-files"):
            if call.has(name):
                raise KuboCommandError(f"the fake daemon does not implement {name}")
        if call.int("max-hamt-fanout", 256) != 256:
            raise KuboCommandError("the fake daemon only builds HAMT shards of fanout 256")
        raw_leaves = call.bool("raw-leaves") if call.has("raw-leaves") else None
        if raw_leaves is None and call.bool("nocopy"):
            raw_leaves = True  # kubo: nocopy implies raw leaves
        max_links = call.int("max-file-links", DEFAULT_MAX_LINKS)
        if max_links < 1:
            raise KuboCommandError(f"max-file-links must be positive, not {max_links}")
        try:
            return ImportOptions(
                cid_version=cid_version or 0,
                raw_leaves=raw_leaves,
                chunk_size=parse_chunker(call.str("chunker")),
                max_links=max_links,
            )
        except InvalidInput as e:
            raise KuboCommandError(str(e)) from None

    def _upload(self, call: Call, argument: str) -> list:
        if not call.content_type.lower().startswith("multipart/"):
            raise KuboRequestError(f"file argument '{argument}' is required")
        try:
            return parse_tree(call.body, call.content_type)
        except MultipartError as e:
            raise KuboRequestError(str(e)) from None

    async def cmd_add(self, call: Call, out):
        """``add``: import the multipart upload with kubo's importer, streaming one
        event per file and directory (plus progress events), pinning each root."""
        entries = self._upload(call, "path")
        options = self._import_options(call)
        only_hash = call.bool("only-hash")
        pin = call.bool("pin", True) and not only_hash
        pin_name = call.str("pin-name")
        if call.has("pin-name") and not call.bool("pin", True):
            raise KuboCommandError("pin-name option requires pin to be set")
        progress = call.bool("progress")
        silent = call.bool("silent")
        if not entries:
            raise KuboCommandError("expected a file argument")
        if call.bool("wrap-with-directory"):
            wrapper = DirectoryEntry("")
            for i, entry in enumerate(entries):
                wrapper.children[entry.name or i] = entry
            entries = [wrapper]
        put = (lambda cid, data: None) if only_hash else self.blockstore.put
        importer = Importer(options, put)
        out.stream()
        for entry in entries:
            meta = {}
            if entry.mode:
                meta["Mode"] = "0" + format(entry.mode, "o")
            if entry.mtime and entry.mtime > 0:
                meta["Mtime"] = entry.mtime
            top = entry.name

            def emit(name, root=None, nbytes=None, meta=meta):
                event = {"Name": name}
                if root is not None:
                    event["Hash"] = str(root.cid)
                if nbytes:
                    event["Bytes"] = nbytes
                if root is not None:
                    event["Size"] = str(root.size)
                event.update(meta)
                out.emit(event)

            if isinstance(entry, DirectoryEntry):
                root = self._add_directory(importer, entry, top, emit, progress, silent)
            else:
                root = self._add_leaf(importer, entry, progress, top, emit, silent, single=True)
            if pin:
                self.set_pin(root.cid, "recursive", pin_name)

    def _add_file(self, importer: Importer, data: bytes, name: str, emit, progress: bool) -> Imported:
        if not progress:
            return importer.add_bytes(data)
        size = len(data)

        def chunks():
            step = importer.options.chunk_size
            done = reported = 0
            for start in range(0, size, step):
                chunk = memoryview(data)[start : start + step]
                done += len(chunk)
                if done - reported >= PROGRESS_INCREMENT:
                    reported = done
                    emit(name, nbytes=done)
                yield chunk
            emit(name, nbytes=done)

        return importer.add_chunks(chunks())

    def _add_leaf(self, importer, entry, progress, name, emit, silent, single=False) -> Imported:
        if isinstance(entry, FileEntry):
            root = self._add_file(importer, entry.data, name, emit, progress)
        else:  # symlink: UnixFS Symlink node
            root = importer.symlink(entry.target)
        if not silent:
            # a top-level unnamed file is reported under its CID, as kubo does
            emit(name if (name or not single) else str(root.cid), root)
        return root

    def _add_directory(self, importer, entry: DirectoryEntry, path: str, emit, progress, silent):
        made: dict[int, Imported] = {}

        def build(directory: DirectoryEntry, dir_path: str) -> Imported:
            children = []
            for child in directory.children.values():
                child_path = _join(dir_path, child.name)
                if isinstance(child, DirectoryEntry):
                    node = build(child, child_path)
                else:
                    node = self._add_leaf(importer, child, progress, child_path, emit, silent)
                children.append((child.name, node))
            node = importer.add_directory(children)
            made[id(directory)] = node
            return node

        root = build(entry, path)

        def output_dirs(directory: DirectoryEntry, dir_path: str) -> None:
            subdirs = [c for c in directory.children.values() if isinstance(c, DirectoryEntry)]
            for child in sorted(subdirs, key=lambda c: c.name.encode()):
                output_dirs(child, _join(dir_path, child.name))
            emit(dir_path, made[id(directory)])

        output_dirs(entry, path)
        return root

    async def _read_file(self, cid: CID) -> bytes:
        data = await self._get_block(cid)
        if cid.codec == RAW:
            return data
        if cid.codec != DAG_PB:
            raise KuboCommandError(f"unsupported node type for {cid}: not UnixFS")
        node = decode_pbnode(data)
        try:
            fs = decode_unixfs(node.data or b"")
        except InvalidInput:
            raise KuboCommandError("failed to decode Protocol Buffers: invalid UnixFS data") from None
        if fs.type in (TYPE_DIRECTORY, TYPE_HAMT_SHARD):
            raise KuboCommandError("this dag node is a directory")
        if fs.type not in (TYPE_FILE, TYPE_RAW):
            raise KuboCommandError("cannot read a symlink or metadata node as a file")
        parts = [fs.data or b""]
        for link in node.links:
            parts.append(await self._read_file(link.cid))
        return b"".join(parts)

    async def cmd_cat(self, call: Call, out):
        """``cat <path>...``: the file content (``offset``/``length``), fetched as needed."""
        args = call.require("ipfs-path")
        offset = call.int("offset", 0)
        length = call.int("length", -1)
        if offset < 0:
            raise KuboCommandError(f"cannot specify negative offset: {offset}")
        if call.has("length") and length < 0:
            raise KuboCommandError(f"cannot specify negative length: {length}")
        chunks = []
        for arg in args:
            data = await self._read_file(await self.resolve(arg))
            chunks.append(data[offset:])
            offset = max(0, offset - len(data))
        content = b"".join(chunks)
        if length >= 0:
            content = content[:length]
        return RawBody(content, "text/plain", len(content))

    # --- commands: pins -----------------------------------------------------------

    async def _pin_one(self, cid: CID, recursive: bool, name: str, progress: _Progress) -> None:
        current = self.pins.get(cid)
        if recursive:
            if current is not None and current.mode == "recursive":
                if name:
                    self.pins[cid] = attrs.evolve(current, name=name)  # same DAG
                return
            await self._fetch_dag(cid, progress)
            self.set_pin(cid, "recursive", name)
            log.debug("pinned {cid} recursively", cid=str(cid))
        else:
            await self._get_block(cid, progress)
            current = self.pins.get(cid)
            if current is not None and current.mode == "recursive":
                raise KuboCommandError(f"pin: {cid} already pinned recursively")
            self.set_pin(cid, "direct", name)

    async def _pin_many(self, call: Call, progress: _Progress) -> list[str]:
        recursive = call.bool("recursive", True)
        name = call.str("name")
        pinned = []
        for arg in call.args:
            cid = await self.resolve(arg)
            await self._pin_one(cid, recursive, name, progress)
            pinned.append(str(cid))
        return pinned

    def _with_timeout(self, d: defer.Deferred, seconds: float | None) -> defer.Deferred:
        if seconds is None:
            return d
        timed_out = []

        def expire():
            timed_out.append(True)
            d.cancel()

        call = self.clock.callLater(seconds, expire)

        def done(result):
            if call.active():
                call.cancel()
            if timed_out and isinstance(result, Failure):
                if result.check(defer.CancelledError):
                    raise KuboCommandError(f"pin: {DEADLINE_EXCEEDED}")
            return result

        return d.addBoth(done)

    async def cmd_pin_add(self, call: Call, out):
        """``pin/add <path>...``: fetch the DAG (or the block, ``recursive=false``) and
        pin it; ``progress=true`` streams ``{Progress,Bytes}`` every 0.5 s, then ``{Pins}``."""
        call.require("ipfs-path")
        call.bool("recursive", True)
        show_progress = call.bool("progress")
        progress = _Progress()
        work = self._with_timeout(
            defer.Deferred.fromCoroutine(self._pin_many(call, progress)), self.pin_timeout
        )
        if not show_progress:
            return {"Pins": await work}
        out.stream()
        ticker = task.LoopingCall(
            lambda: out.emit(_omit_zero({"Progress": progress.nodes, "Bytes": progress.bytes}))
        )
        ticker.clock = self.clock
        ticker.start(PROGRESS_INTERVAL, now=False)
        try:
            pins = await work
        finally:
            ticker.stop()
        if progress.nodes:
            out.emit(_omit_zero({"Progress": progress.nodes, "Bytes": progress.bytes}))
        out.emit({"Pins": pins})

    async def cmd_pin_rm(self, call: Call, out):
        """``pin/rm <path>...``: remove recursive (or, ``recursive=false``, direct) pins."""
        args = call.require("ipfs-path")
        recursive = call.bool("recursive", True)
        removed = []
        for arg in args:
            cid = await self.resolve(arg)
            removed.append(str(cid))
            pin = self.pins.get(cid)
            if pin is None:
                raise KuboCommandError("not pinned or pinned indirectly")
            if pin.mode == "recursive" and not recursive:
                raise KuboCommandError(f"{cid} is pinned recursively")
            self.unset_pin(cid)
            log.debug("unpinned {cid}", cid=str(cid))
        return {"Pins": removed}

    def _pin_type_of(self, cid: CID, mode: str) -> str | None:
        pin = self.pins.get(cid)
        if pin is not None and mode in ("all", pin.mode):
            return pin.mode
        if pin is not None and mode != "indirect":
            return None
        if mode in ("all", "indirect"):
            via = self._indirect_via(cid)
            if via is not None:
                return f"indirect through {via}" if mode == "all" else "indirect"
        return None

    def _all_pins(self, mode: str):
        if mode in ("recursive", "all"):
            for pin in list(self.pins.values()):
                if pin.mode == "recursive":
                    yield pin.cid, "recursive", pin.name
        if mode in ("direct", "all"):
            for pin in list(self.pins.values()):
                if pin.mode == "direct":
                    yield pin.cid, "direct", pin.name
        if mode in ("indirect", "all"):
            for child in list(self._indirect):
                if child not in self.pins:
                    yield child, "indirect", ""

    async def cmd_pin_ls(self, call: Call, out):
        """``pin/ls [path...]``: the pins of ``type``, as a ``Keys`` map or, with
        ``stream=true``, one ``{Cid,Type[,Name]}`` line each; an unpinned argument fails."""
        mode = call.str("type", "all")
        stream = call.bool("stream")
        names = call.bool("names") or bool(call.str("name"))
        name_filter = call.str("name")
        if mode not in PIN_TYPES:
            raise KuboCommandError(_INVALID_TYPE.format(mode))
        found = []
        if call.args:
            cids = await self._resolve_all(call.args)
            for arg, cid in zip(call.args, cids):
                kind = self._pin_type_of(cid, mode)
                if kind is None:
                    raise KuboCommandError(f"path '{arg}' is not pinned")
                pin = self.pins.get(cid)
                found.append((cid, kind, pin.name if (pin and names) else ""))
        else:
            for cid, kind, name in self._all_pins(mode):
                if name_filter and name_filter not in name:
                    continue
                found.append((cid, kind, name if names else ""))
        if stream:
            out.stream()
            for cid, kind, name in found:
                item = {"Cid": str(cid), "Type": kind}
                if name:
                    item["Name"] = name
                out.emit(item)
            return None
        keys = {str(cid): {"Type": kind, "Name": name} for cid, kind, name in found}
        return {"Keys": keys} if keys else {}

    async def cmd_pin_update(self, call: Call, out):
        """``pin/update <from> <to>``: pin ``to`` recursively, unpin ``from`` unless
        ``unpin=false``; ``from`` must be pinned recursively."""
        if len(call.args) < 1:
            raise KuboRequestError('argument "from-path" is required')
        if len(call.args) < 2:
            raise KuboRequestError('argument "to-path" is required')
        unpin = call.bool("unpin", True)
        old = await self.resolve(call.args[0])
        new = await self.resolve(call.args[1])
        if old != new:
            current = self.pins.get(old)
            if current is None or current.mode != "recursive":
                raise KuboCommandError("'from' cid was not recursively pinned already")
            await self._with_timeout(
                defer.Deferred.fromCoroutine(self._fetch_dag(new, _Progress())), self.pin_timeout
            )
            self.set_pin(new)
            if unpin:
                self.unset_pin(old)
        return {"Pins": [str(old), str(new)]}

    # --- commands: repo, swarm, config --------------------------------------------

    async def cmd_repo_stat(self, call: Call, out):
        """``repo/stat``: blockstore size and object count, ``StorageMax``, path."""
        size_only = call.bool("size-only")
        call.bool("human")
        return {
            "RepoSize": self.blockstore.size,
            "StorageMax": self.storage_max,
            "NumObjects": 0 if size_only else len(self.blockstore),
            "RepoPath": "" if size_only else self.repo_path,
            "Version": "" if size_only else f"fs-repo@{DEFAULT_REPO_VERSION}",
        }

    async def cmd_repo_gc(self, call: Call, out):
        """Remove every block no pin protects; stream ``{"Key":{"/":cid}}`` for each
        (CIDv1 raw: kubo's blockstore only knows multihashes)."""
        silent = call.bool("silent")
        call.bool("stream-errors")
        call.bool("quiet")
        keep = set()
        for pin in self.pins.values():
            keep.add(pin.cid.multihash)
            if pin.mode == "recursive":
                keep.update(link.cid.multihash for _, link in self._walk_local(pin.cid))
        out.stream()
        for multihash in self.blockstore.multihashes():
            if multihash in keep:
                continue
            self.blockstore.delete_multihash(multihash)
            if not silent:
                out.emit({"Key": {"/": str(CID.v1(RAW, multihash))}})

    async def cmd_resolve(self, call: Call, out):
        """``resolve <path>``: the ``/ipfs/<cid>`` an IPFS path leads to."""
        args = call.require("name")
        call.bool("recursive", True)
        if args[0].startswith("/ipns/"):
            raise KuboCommandError("the fake daemon does not resolve IPNS names")
        cid = await self.resolve(args[0])
        return {"Path": f"/ipfs/{cid}"}

    @staticmethod
    def _dial_target(address: str) -> tuple[str, str]:
        """``(peer ID, address without /p2p)`` of a swarm/connect argument."""
        try:
            parsed = Multiaddr.parse(address)
        except InvalidInput as e:
            raise KuboCommandError(str(e)) from None
        if parsed.peer_id is None:
            raise KuboCommandError(f"invalid peer address: {address}: no /p2p component")
        return parsed.peer_id, str(parsed.without_peer_id())

    async def cmd_swarm_connect(self, call: Call, out):
        """``swarm/connect <multiaddr>...``: connect to peers on the network."""
        args = call.require("address")
        results = []
        for address in args:
            peer, dialled = self._dial_target(address)
            line = f"connect {peer}"
            if peer == self.peer_id:
                raise KuboCommandError(f"{line} failure: dial to self attempted")
            other = self.network.peer(peer)
            if other is None or not self.online:
                raise KuboCommandError(
                    f"{line} failure: failed to dial {peer}: all dials failed"
                )
            self.connected[peer] = dialled
            other.connected[self.peer_id] = self.swarm_addresses[0] if self.swarm_addresses else ""
            results.append(f"{line} success")
        return {"Strings": results}

    async def cmd_swarm_peers(self, call: Call, out):
        """``swarm/peers``: the connected peers that are still up."""
        peers = []
        for peer, addr in self.connected.items():
            if self.network.peer(peer) is None:
                continue
            peers.append(
                {
                    "Addr": addr,
                    "Peer": peer,
                    "Identify": {
                        "ID": "",
                        "PublicKey": "",
                        "Addresses": None,
                        "AgentVersion": "",
                        "Protocols": None,
                    },
                }
            )
        peers.sort(key=lambda p: p["Addr"])
        return {"Peers": peers or None}

    async def cmd_config_show(self, call: Call, out):
        """``config/show``: the config document."""
        return self.config()

    # --- commands: blocks and refs ------------------------------------------------

    async def cmd_block_put(self, call: Call, out):
        """``block/put``: store each uploaded file as a block (CIDv1 raw by default)."""
        entries = self._upload(call, "data")
        codec_name = call.str("cid-codec", "raw")
        fmt = call.str("format")
        mhtype = call.str("mhtype", "sha2-256")
        pin = call.bool("pin")
        if mhtype != "sha2-256":
            raise KuboCommandError(f"unrecognized multihash function: {mhtype}")
        if fmt and codec_name not in ("", "raw"):
            raise KuboCommandError(
                'unable to use "format" (deprecated) and a custom "cid-codec" at the same time'
            )
        out.stream()
        for entry in entries:
            if not isinstance(entry, FileEntry):
                raise KuboCommandError("expected a file")
            data = entry.data
            if len(data) > MAX_BLOCK_SIZE:
                raise KuboCommandError(
                    f"produced block is over 1MiB: big blocks can't be exchanged with other peers. "
                    f"consider using UnixFS for automatic chunking of bigger files, or pass "
                    f"--allow-big-block to override"
                )
            if fmt in ("v0", "protobuf"):
                cid = CID.v0(sha256_multihash(data)[2:])
            elif fmt:
                codec = BLOCK_CODECS.get(fmt)
                if codec is None:
                    raise KuboCommandError(f"unrecognized format: {fmt}")
                cid = CID.v1(codec, sha256_multihash(data))
            else:
                codec = BLOCK_CODECS.get(codec_name)
                if codec is None:
                    raise KuboCommandError(f"unrecognized codec: {codec_name}")
                cid = CID.v1(codec, sha256_multihash(data))
            self.blockstore.put(cid, data)
            if pin:
                self.set_pin(cid)
            out.emit({"Key": str(cid), "Size": len(data)})

    async def cmd_block_get(self, call: Call, out):
        """``block/get <cid>``: the raw block, fetched as needed."""
        args = call.require("cid")
        cid = await self.resolve(args[0])
        data = await self._get_block(cid)
        return RawBody(data, "application/vnd.ipld.raw")

    async def cmd_block_stat(self, call: Call, out):
        """``block/stat <cid>``: the block's key and size."""
        args = call.require("cid")
        cid = await self.resolve(args[0])
        data = await self._get_block(cid)
        return {"Key": str(cid), "Size": len(data)}

    async def cmd_refs(self, call: Call, out):
        """``refs <path>...``: the links of the DAG (``recursive``, ``unique``,
        ``edges``, ``format``, ``max-depth``), one ``{Ref,Err}`` line each."""
        args = call.require("ipfs-path")
        recursive = call.bool("recursive")
        unique = call.bool("unique")
        edges = call.bool("edges")
        fmt = call.str("format", "<dst>")
        max_depth = call.int("max-depth", -1)
        if edges:
            if fmt != "<dst>":
                raise KuboCommandError("using format argument with edges is not allowed")
            fmt = "<src> -> <dst>"
        if not recursive:
            max_depth = 1
        roots = await self._resolve_all(args)
        out.stream()
        seen = set()

        async def visit(cid: CID, depth: int):
            data = await self._get_block(cid)
            for link in self._links(cid, data):
                if unique and link.cid in seen:
                    continue
                seen.add(link.cid)
                ref = (
                    fmt.replace("<src>", str(cid))
                    .replace("<dst>", str(link.cid))
                    .replace("<linkname>", link.name)
                )
                out.emit({"Ref": ref, "Err": ""})
                if max_depth < 0 or depth + 1 < max_depth:
                    await visit(link.cid, depth + 1)

        for root in roots:
            await visit(root, 0)


def _is_shard(block: bytes) -> bool:
    data = decode_pbnode(block).data
    try:
        return data is not None and decode_unixfs(data).type == TYPE_HAMT_SHARD
    except InvalidInput:
        return False


def _omit_zero(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if v}


def command_name(endpoint: str) -> str:
    """The method name of the command serving ``endpoint`` ("pin/add" -> cmd_pin_add)."""
    return "cmd_" + endpoint.replace("/", "_").replace("-", "_")
