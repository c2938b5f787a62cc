"""QuorumPeers (chapter 07) playing Zab's roles: election → Leader / Follower → broadcast → re-election.

Histories are compared with the invariants of Zab.tla: PrefixConsistency (committed histories agree on their
common prefix), GlobalPrimaryOrder (epochs never go backwards in a history), Leadership2 (one leader per
epoch) and ShouldNotBeTriggered (no server saw a message it should not, checked on the recorded packet
trace), and every txn committed by a leader that stepped down survives into the next epoch.
"""
from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from conftest import free_ports, until
from zkref.config import QuorumMaj
from zkref.jute import CreateTxn
from zkref.persistence import FileTxnSnapLog
from zkref.quorum.election import ServerState
from zkref.quorum.leader import Leader
from zkref.quorum.learner import Follower, zab_roles
from zkref.quorum.peer import QuorumPeer
from zkref.quorum.zab import epoch_of, trace_violations
from zkref.zkdatabase import ZKDatabase

pytestmark = pytest.mark.timeout(120)


TRACE: list = []          # every role of every peer in a test records here (reset per test)


def make_peer(tmp: Path, sid: int, qv) -> QuorumPeer:
    p = QuorumPeer([])
    p.zab_trace = TRACE
    p.myid, p.quorum_verifier, p.tick_time, p.init_limit, p.sync_limit = sid, qv, 200, 10, 5
    p.txn_factory = FileTxnSnapLog(tmp / f"p{sid}", tmp / f"p{sid}")
    p.zk_db = ZKDatabase(p.txn_factory)
    p.role_factories = zab_roles()
    return p


def serving(peers) -> bool:
    "One leader that started serving, every other running peer following in BROADCAST."
    leaders = [p for p in peers if isinstance(p.role, Leader) and p.role.started.is_set()]
    followers = [p for p in peers if isinstance(p.role, Follower) and p.zab_state.name == "BROADCAST"]
    return len(leaders) == 1 and len(leaders) + len(followers) == len(peers)


def leader_of(peers) -> QuorumPeer:
    (leader,) = [p for p in peers if isinstance(p.role, Leader)]
    return leader


async def write(peers, path: str) -> int:
    lead = leader_of(peers).role
    p = lead.propose(lead.next_txn_header(0, 0, 1),
                     CreateTxn(path=path, data=path.encode(), acl=[], ephemeral=False, parent_cversion=1))
    return await asyncio.wait_for(p.done, 20)


def history(p: QuorumPeer) -> list[int]:
    "The committed txns a server holds, in order (committed log = what it delivered since it loaded)."
    return [pr.packet.zxid for pr in p.zk_db.committed_log]


def check_prefix_consistency(peers) -> None:
    "Zab.tla PrefixConsistency + GlobalPrimaryOrder on the servers' committed histories."
    hs = [history(p) for p in peers]
    for h in hs:
        assert h == sorted(h)                                     # zxids, hence epochs, only grow
    for a in hs:                      # the committed logs are windows: where two overlap they are equal
        for b in hs:
            common = set(a) & set(b)
            if common:
                lo, hi = min(common), max(common)
                assert [z for z in a if lo <= z <= hi] == [z for z in b if lo <= z <= hi]


def test_three_zkref_peers_elect_sync_and_replicate(tmp_path):
    """Three zkref QuorumPeers elect a leader, run Zab's discovery and synchronization, and every txn the
    leader proposes is committed on all three in the same order, with each server's currentEpoch the new
    epoch. Reference: Java QuorumPeer.run → Leader.lead / Follower.followLeader; Zab.tla PrefixConsistency,
    Agreement, TotalOrder"""
    async def scenario():
        qv = QuorumMaj.from_properties({f"server.{i}": f"127.0.0.1:{a}:{b}"
                                        for i, (a, b) in zip((1, 2, 3), zip(*[iter(free_ports(6))] * 2))})
        peers = [make_peer(tmp_path, sid, qv) for sid in (1, 2, 3)]
        try:
            for p in peers:
                await p.start()
            await until(lambda: serving(peers), 30, what="a leader and two synced followers")
            zxids = [await write(peers, f"/n{i}") for i in range(10)]
            await until(lambda: all(p.zk_db.get_node("/n9") is not None for p in peers), 30, what="replication")
            epochs = {p.myid: (p.accepted_epoch, p.current_epoch) for p in peers}
            # LOOKING servers are answered with the new epoch (Java: QuorumPeer.updateElectionVote)
            assert all(p.current_vote.peer_epoch == p.current_epoch for p in peers)
            return zxids, [history(p) for p in peers], epochs, peers
        finally:
            for p in peers:
                await p.shutdown()
    TRACE.clear()
    zxids, histories, epochs, peers = asyncio.run(scenario())
    assert trace_violations(TRACE, peers[0].quorum_verifier.contains_quorum) == []
    assert all(h[-10:] == zxids for h in histories)
    assert len(set(epochs.values())) == 1 and set(epochs.values()) == {(epoch_of(zxids[0]),) * 2}
    check_prefix_consistency(peers)


def test_leader_failure_keeps_committed_txns(tmp_path):
    """When the leader stops, the two others elect a new leader in a higher epoch; everything the old
    leader committed is in the new leader's history, and new txns follow in the new epoch. When the old
    leader comes back it follows and is synced (DIFF or TRUNC/SNAP) to the same history.
    Reference: Java Leader.lead / LearnerHandler.syncFollower; Zab.tla PrimaryIntegrity, GlobalPrimaryOrder,
    Leadership1"""
    async def scenario():
        ports = free_ports(6)
        servers = {f"server.{i}": f"127.0.0.1:{ports[2 * i - 2]}:{ports[2 * i - 1]}" for i in (1, 2, 3)}
        qv = QuorumMaj.from_properties(servers)
        peers = {sid: make_peer(tmp_path, sid, qv) for sid in (1, 2, 3)}
        try:
            for p in peers.values():
                await p.start()
            await until(lambda: serving(list(peers.values())), 30, what="first leader")
            first = [await write(list(peers.values()), f"/old{i}") for i in range(5)]
            old = leader_of(list(peers.values()))
            await old.shutdown()
            rest = [p for p in peers.values() if p is not old]
            await until(lambda: serving(rest), 30, what="a new leader among the two others")
            new_leader = leader_of(rest)
            assert new_leader.myid != old.myid
            second = [await write(rest, f"/new{i}") for i in range(5)]
            # the old leader restarts from its disk and catches up
            back = make_peer(tmp_path, old.myid, qv)
            peers[old.myid] = back
            await back.start()
            everyone = list(peers.values())
            await until(lambda: serving(everyone), 30, what="the old leader to follow")
            third = await write(everyone, "/after-rejoin")
            await until(lambda: all(p.zk_db.get_node("/after-rejoin") is not None for p in everyone), 30)
            nodes = {p.myid: sorted(c for c in p.zk_db.data_tree.get_node("").get_children()) for p in everyone}
            return first, second, third, nodes, everyone
        finally:
            for p in peers.values():
                await p.shutdown()
    TRACE.clear()
    first, second, third, nodes, everyone = asyncio.run(scenario())
    assert trace_violations(TRACE, everyone[0].quorum_verifier.contains_quorum) == []   # incl. Leadership2
    assert epoch_of(second[0]) > epoch_of(first[0])                        # a new epoch, never reused
    assert epoch_of(third) == epoch_of(second[0])
    expected = sorted([f"old{i}" for i in range(5)] + [f"new{i}" for i in range(5)] + ["after-rejoin", "zookeeper"])
    assert all(v == expected for v in nodes.values()), nodes
    check_prefix_consistency(everyone)


def test_clients_of_an_all_zkref_ensemble_and_a_session_moving_between_servers(tmp_path):
    """Three zkref QuorumPeers with client ports: a kazoo client on a follower writes (forwarded to the
    leader), a second client on the leader sees the write, and when the first client's server stops, the
    client moves to another server with the same session (REVALIDATE to the leader when it lands on a
    follower, a local check on the leader) and its ephemeral survives.
    Reference: Java FollowerZooKeeperServer, LeaderZooKeeperServer, Learner.validateSession,
    Leader.revalidateSession"""
    import threading
    from kazoo.client import KazooClient
    from zkref.server.cnxn import ServerCnxnFactory

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    call = lambda coro, t=60: asyncio.run_coroutine_threadsafe(coro, loop).result(t)
    ports = free_ports(9)
    qv = QuorumMaj.from_properties({f"server.{i}": f"127.0.0.1:{ports[2 * i - 2]}:{ports[2 * i - 1]}" for i in (1, 2, 3)})
    client_ports = {1: ports[6], 2: ports[7], 3: ports[8]}
    TRACE.clear()
    peers = {}

    async def start():
        for sid in (1, 2, 3):
            p = make_peer(tmp_path, sid, qv)
            f = ServerCnxnFactory()
            await f.configure(("127.0.0.1", client_ports[sid]))
            p.cnxn_factory = f
            peers[sid] = p
            await p.start()
        await until(lambda: serving(list(peers.values())), 30, what="serving")
        return leader_of(list(peers.values())).myid

    async def _v(f):
        return f()
    clients = []
    try:
        leader = call(start())
        follower = next(s for s in (1, 2, 3) if s != leader)
        other = next(s for s in (1, 2, 3) if s not in (leader, follower))
        hosts = ",".join(f"127.0.0.1:{client_ports[s]}" for s in (follower, other, leader))
        zf = KazooClient(hosts=hosts, timeout=10, randomize_hosts=False)
        zl = KazooClient(hosts=f"127.0.0.1:{client_ports[leader]}", timeout=10)
        clients += [zf, zl]
        zf.start(timeout=30)
        zl.start(timeout=30)
        from conftest import four_letter_word
        assert "Mode: leader" in four_letter_word(client_ports[leader], "srvr")
        assert "Mode: follower" in four_letter_word(client_ports[follower], "srvr")
        sid_before = zf.client_id[0]
        zf.create("/moving", b"m", ephemeral=True)
        zf.create("/persistent", b"p")
        zl.sync("/")
        assert zl.get("/persistent")[0] == b"p" and zl.exists("/moving")
        call(peers[follower].shutdown())                       # the client's server goes away
        from conftest import wait_for
        wait_for(lambda: zf.connected and zf._connection._socket is not None
                 and zf._connection._socket.getpeername()[1] != client_ports[follower], 60, what="the client to move")
        assert zf.client_id[0] == sid_before                   # same session
        zf.sync("/")
        assert zf.exists("/moving") is not None and zf.get("/persistent")[0] == b"p"
        zf.set("/persistent", b"after the move")
        assert zl.get("/persistent")[0] in (b"p", b"after the move")
        zl.sync("/")
        assert zl.get("/persistent")[0] == b"after the move"
        moved_to = next(s for s, port in client_ports.items() if port == zf._connection._socket.getpeername()[1])
        if moved_to != leader:                                 # a follower asked the leader about the session
            assert any(e.kind == "send" and e.type == "REVALIDATE" and e.myid == moved_to for e in TRACE)
            assert any(e.kind == "send" and e.type == "REVALIDATE" and e.myid == leader for e in TRACE)
    finally:
        for c in clients:
            try:
                c.stop(); c.close()
            except Exception:
                pass
        for p in peers.values():
            call(p.shutdown())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
    assert trace_violations(TRACE, qv.contains_quorum) == []
