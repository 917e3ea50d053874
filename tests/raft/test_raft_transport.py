"""RPCRaftTransport: which RPC client method carries a Raft message."""

from __future__ import annotations

from twisted.internet import defer

from ipfscluster.consensus.raft.consensus import RPCRaftTransport
from ipfscluster.errors import PeerUnreachable


class GenericRPC:
    """Only ``IRPCClient.call`` (as the in-memory test networks provide)."""

    def __init__(self):
        self.calls = []

    def call(self, peer_id, service, method, arg=None, timeout=None):
        self.calls.append((peer_id, service, method, arg, timeout))
        return defer.succeed(None)


class DirectRPC(GenericRPC):
    """Also ``send_raft_message``, as :class:`ipfscluster.rpc.client.RPCClient`."""

    def __init__(self, outcome):
        super().__init__()
        self.direct = []
        self.outcome = outcome

    def send_raft_message(self, peer_id, payload, *, timeout=None):
        self.direct.append((peer_id, payload, timeout))
        return self.outcome


def test_the_direct_method_is_used_when_the_client_has_it():
    rpc = DirectRPC(defer.succeed(None))
    RPCRaftTransport(rpc, timeout=2.0).send("QmPeer", b"raft bytes")
    assert rpc.direct == [("QmPeer", b"raft bytes", 2.0)] and rpc.calls == []


def test_a_generic_client_gets_a_raft_message_call():
    rpc = GenericRPC()
    RPCRaftTransport(rpc, timeout=2.0).send("QmPeer", b"raft bytes")
    assert rpc.calls == [("QmPeer", "Raft", "Message", b"raft bytes", 2.0)]


def test_a_lost_message_is_swallowed():
    rpc = DirectRPC(defer.fail(PeerUnreachable("gone")))
    RPCRaftTransport(rpc, timeout=2.0).send("QmPeer", b"x")  # no unhandled error
    assert rpc.direct
