"""Typed errors of ipfscluster.

Every error a user or a peer can cause is a subclass of :class:`ClusterError`.  Each
class carries the HTTP status the REST API answers with (``http_status``) and the tag
AMP uses for it on the wire (``amp_tag``, the class name as bytes).  Messages say what
went wrong *and* what to do about it; they are shown to operators without a traceback.

Conventions for adding errors (several components add theirs here):
- one class per distinct failure a caller may want to tell apart;
- put it in the section of its component below, keep sections append-only;
- ``message`` is the full human sentence; extra fields are keyword attributes.
"""

from __future__ import annotations


class ClusterError(Exception):
    """Base of every ipfscluster error.

    ``str(err)`` is the message shown to users.
    """

    http_status = 500

    def __init__(self, message: str = "", **fields):
        super().__init__(message or self.__class__.__doc__.strip().splitlines()[0])
        self.message = self.args[0]
        for name, value in fields.items():
            setattr(self, name, value)

    @classmethod
    def amp_tag(cls) -> bytes:
        return cls.__name__.encode("ascii")

    def __str__(self) -> str:
        return self.message


def all_error_classes() -> list[type[ClusterError]]:
    """Every ClusterError subclass defined so far (for AMP error tables)."""
    seen: list[type[ClusterError]] = []
    stack = [ClusterError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen


# --- values: CIDs, multiaddrs, peer IDs, keys ---------------------------------------


class InvalidInput(ClusterError):
    """The input is not valid."""

    http_status = 400


class InvalidCID(InvalidInput):
    """The text is not a valid CID."""


class InvalidMultiaddr(InvalidInput):
    """The text is not a valid multiaddress."""


class InvalidPeerID(InvalidInput):
    """The text is not a valid peer ID."""


class InvalidKey(InvalidInput):
    """The private key cannot be decoded."""


# --- configuration ------------------------------------------------------------------


class ConfigError(ClusterError):
    """The configuration is not valid.

    ``key`` is the dotted ``section.key`` at fault (or "" for the whole file) and
    ``value`` the offending value, when there is one.
    """

    http_status = 400


class IdentityMismatch(ConfigError):
    """The configured peer ID does not belong to the configured private key."""


class InvalidDuration(InvalidInput):
    """The text is not a Go duration (examples: "1s", "500ms", "1m0s")."""


class ConfigExists(ConfigError):
    """The configuration file exists already; ``init`` needs ``-f`` to overwrite it."""


class ConfigNotFound(ConfigError):
    """There is no configuration file in the configuration folder; run ``init``."""


# --- shared state / cluster operations ----------------------------------------------


class NotFound(ClusterError):
    """The item is not part of the shared state."""

    http_status = 404


class InvalidParameter(InvalidInput):
    """A request parameter is not valid.

    ``parameter`` names the parameter (``replication-min``, ``expire-in`` …) and
    ``value`` is the value received.
    """


class InvalidFilter(InvalidParameter):
    """The status filter names an unknown tracker status."""


class InvalidField(InvalidInput):
    """A JSON document has a field of the wrong type or with a bad value.

    ``field`` is the dotted path of the field (``peer_map.<id>.status``).
    """


class NoLeader(ClusterError):
    """No Raft leader is known; check that a majority of the peers run and see each other."""

    http_status = 503


class NotReady(ClusterError):
    """The component is not ready yet; retry once the peer has finished starting."""

    http_status = 503


class ShuttingDown(ClusterError):
    """The peer is shutting down; send the request to another peer."""

    http_status = 503


class OperationTimeout(ClusterError):
    """The operation did not finish in time; check the peer logs, then retry."""

    http_status = 504


class PeerUnreachable(ClusterError):
    """A cluster peer could not be contacted; check that it runs and is reachable."""

    http_status = 502


class AllocationError(ClusterError):
    """Not enough peers can take the pin; lower its replication factor or add peers."""


class QueueFull(ClusterError):
    """The pin queue is full; wait for it to drain or raise max_pin_queue_size."""

    http_status = 503


class IPFSError(ClusterError):
    """The IPFS daemon answered with an error.

    ``code`` is the HTTP status it answered with (0 when it could not be reached).
    """

    http_status = 502


class IPFSUnreachable(IPFSError):
    """The IPFS daemon cannot be reached; check ipfs_connector.ipfshttp.node_multiaddress."""


class StateVersionError(ClusterError):
    """The shared state snapshot has a version this peer cannot read.

    ``version`` is the version found; upgrade the peer or run the migration.
    """


class StateCorrupted(ClusterError):
    """The shared state snapshot is damaged and cannot be read."""


# --- consensus: Raft log, stable store and snapshots --------------------------------


class RaftStorageError(ClusterError):
    """The Raft data folder cannot be used."""


class StorageCorrupted(RaftStorageError):
    """The Raft log or stable store on disk is damaged.

    ``path`` names the file and ``index`` the first damaged log index (``None`` for
    the stable store).  Restore the data folder from a backup, or remove this peer
    from the cluster and join it again with a clean data folder.
    """


class StorageLocked(RaftStorageError):
    """Another process is using the Raft data folder; stop it first."""


class LogCompacted(RaftStorageError):
    """The requested log entries were compacted into a snapshot."""


class LogUnavailable(RaftStorageError):
    """The requested log entries are beyond the end of the log."""


class SnapshotCorrupted(RaftStorageError):
    """A Raft snapshot file is damaged (bad header, size or checksum)."""


class NoValidSnapshot(RaftStorageError):
    """The Raft log was compacted but no valid snapshot covers it.

    Restore the data folder from a backup, or remove this peer and join it again with
    a clean data folder.
    """


class SnapshotChunkRejected(RaftStorageError):
    """A received snapshot chunk does not continue the snapshot being received."""


# --- shared state: imports (StateVersionError/StateCorrupted are above) ------------


class InvalidStateImport(InvalidInput):
    """The file to import is not a state export or backup (a JSON array of pins)."""


# --- allocation ---------------------------------------------------------------------


class InvalidReplication(InvalidInput):
    """The replication factors are not valid: use -1 for everywhere or 1 <= min <= max."""


class NotEnoughPeers(AllocationError):
    """Not enough peers with a valid metric to allocate the CID."""


# --- consensus: Raft core (messages, proposals, membership, transfer) ---------------


class RaftCodecError(ClusterError):
    """A Raft message received from a peer is malformed; check that all peers run the same version."""

    http_status = 502


class NotLeader(ClusterError):
    """This peer is not the Raft leader; send the request to the leader.

    ``leader`` is the peer ID of the leader this peer knows of, or ``None``.
    """

    http_status = 503


class ProposalRejected(ClusterError):
    """The Raft leader refused the request for now; retry after a short delay."""

    http_status = 503


class LeaderNotReady(ProposalRejected):
    """The new Raft leader has not committed an entry of its term yet; retry shortly."""


class ConfigChangeInProgress(ProposalRejected):
    """Another membership change is still being committed; retry once it is done."""


class StaleConfiguration(ProposalRejected):
    """The membership changed since the caller read it; read the peer set again and retry."""

    http_status = 409


class LeadershipTransferInProgress(ProposalRejected):
    """Leadership is being handed over to another peer; retry with the new leader."""


class InvalidConfigChange(InvalidInput):
    """The membership change is not possible (for example removing the last peer)."""


# --- rpc: peer transport (AMP over mutual TLS) --------------------------------------


class RPCError(ClusterError):
    """A call to another cluster peer failed in the peer transport (base of the rpc errors).

    The errors meaning "the peer cannot be contacted" are also ``PeerUnreachable``.
    """


class NoPeerAddress(PeerUnreachable, RPCError):
    """No address is known for the peer; add its multiaddress to ``cluster.peers``."""


class PeerConnectionLost(PeerUnreachable, RPCError):
    """The connection to the peer was lost before it answered; the call may or may not have run."""


class RPCTimeout(OperationTimeout, RPCError):
    """The peer did not answer within ``consensus.raft.network_timeout``."""


class PeerAuthenticationFailed(PeerUnreachable, RPCError):
    """The TLS handshake with the peer failed: it is not a member of this cluster."""


class ClusterSecretMismatch(PeerAuthenticationFailed):
    """The peer's certificate is not signed by this cluster's CA: the cluster secrets probably differ."""


class PeerIDMismatch(PeerAuthenticationFailed):
    """The peer reached is not the one dialled: fix the multiaddress of the expected peer."""


class CertificateRejected(PeerAuthenticationFailed):
    """The peer's certificate is not acceptable (wrong key type or outside its validity)."""


class IncompatibleProtocol(PeerUnreachable, RPCError):
    """The peer speaks another version of the cluster RPC protocol: run the same release on every peer."""


class UnknownCommand(RPCError):
    """The peer does not handle this RPC command (it may run another release)."""


class RemoteError(RPCError):
    """The peer failed while handling the call (an internal error; see that peer's log)."""


# --- consensus: Raft driver (node) and IConsensus ------------------------------------


class ProposalDropped(ProposalRejected):
    """The Raft entry was replaced by another leader before it committed; retry."""


class CommitOutcomeUnknown(ClusterError):
    """It is unknown whether the Raft entry committed (leadership changed meanwhile); retry, it is idempotent."""

    http_status = 503


class RaftNodeFailed(ClusterError):
    """The Raft node stopped after a storage failure; check the logs and the data folder, then restart the peer."""


# --- api: REST client (ipfs-cluster-ctl) --------------------------------------------


class APIError(ClusterError):
    """The REST API answered with an error.

    Built as ``APIError(code, message)``: ``code`` is the HTTP status (or the
    ``code`` of the ``{"code","message"}`` body) and ``message`` the server's text.
    """

    def __init__(self, code=500, message: str = "", **fields):
        if isinstance(code, str) and not message:  # APIError("text"), as AMP builds errors
            code, message = 500, code
        super().__init__(message or f"HTTP status {code}", code=code, **fields)
        self.http_status = code


class APIUnreachable(ClusterError):
    """The REST API cannot be reached; check --host (and --https) and that the peer runs.

    ``url`` is the URL requested and ``reason`` what the network said.
    """

    http_status = 502


class APITimeout(APIUnreachable):
    """The REST API did not answer in time; raise --timeout or check the peer."""

    http_status = 504


class APIBadResponse(ClusterError):
    """The REST API sent a response this client cannot read (is --host a cluster REST API?)."""

    http_status = 502


class WaitTimeout(OperationTimeout):
    """The CID did not reach the wanted status before the wait deadline.

    ``status`` is the last ``GlobalPinInfo`` seen (or None).
    """


class WaitFailed(ClusterError):
    """A peer reported an error for the CID while waiting for it.

    ``status`` is the ``GlobalPinInfo`` that shows the error.
    """


# --- membership and offline state operations (cluster.py, stateops.py) ----------------


class UnhealthyCluster(ClusterError):
    """A member of the cluster did not answer; all cluster members need to be healthy
    for this operation to succeed."""

    http_status = 503


class BootstrapFailed(ClusterError):
    """The peer could not join the cluster through any bootstrap address."""

    http_status = 502


class ExecutionLockError(ClusterError):
    """Another process uses the configuration folder (``cluster.lock`` is held)."""

    http_status = 409
