"""zkref.testing.MiniCluster: the harness itself — its proxies, process control verbs, logs, and clients.

The harness must not change what it observes: the proxies forward bytes unchanged except the election
handshake's own-address field (so dial-backs cross a proxy too), and a cut closes links the way a firewall
that rejects would.
"""
from __future__ import annotations

import asyncio
import re
import struct

import pytest

from conftest import run_on_cluster as run, fle_winner
from zkref.quorum.cnxmanager import PROTOCOL_VERSION_V1, build_initial_message
from zkref.testing import LinkProxy, MiniCluster, free_port, java_available


def test_proxy_rewrites_the_election_handshake_and_refuses_cut_callers():
    """A caller's election handshake reaches the server with the caller's *proxy* as its address (the server
    dials that address back), everything after it unchanged; once the caller is cut off from the server the
    proxy closes new connections without forwarding them.

    Reference: Java QuorumCnxManager.InitialMessage (protocol V1: version, sid, address), handleConnection dial-back
    """
    async def scenario(c):
        received: list[bytes] = []
        got = asyncio.Event()

        async def target(reader, writer):
            received.append(await reader.readexactly(8 + 8 + 4 + len(f"127.0.0.1:{c.members[2].election_proxy_port}") + 5))
            got.set()
            writer.close()
        server = await asyncio.start_server(target, "127.0.0.1", 0)
        proxy = LinkProxy(1, "election", free_port(), server.sockets[0].getsockname()[1], c)
        await proxy.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.listen_port)
            writer.write(build_initial_message(2, [("127.0.0.1", 1234)], PROTOCOL_VERSION_V1) + b"hello")
            await asyncio.wait_for(got.wait(), 10)
            writer.close()
            c.partition({1}, {2})
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.listen_port)
            writer.write(build_initial_message(2, [("127.0.0.1", 1234)], PROTOCOL_VERSION_V1))
            refused = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return received, refused, c.members[2].election_proxy_port
        finally:
            await proxy.stop()
            server.close()
    received, refused, proxy_port = run(scenario, 3)
    addr = f"127.0.0.1:{proxy_port}".encode()
    assert received == [struct.pack(">qqi", PROTOCOL_VERSION_V1, 2, len(addr)) + addr + b"hello"]
    assert refused == b"" and len(received) == 1


def test_pause_needs_a_process():
    """In-process servers share one event loop, so they cannot be paused; the harness says so instead of
    pretending.

    Reference: eliben/raft test harness (DisconnectPeer vs. crash); zkref MiniCluster docs
    """
    async def scenario(c):
        await c.start([1])
        with pytest.raises(ValueError, match="pause needs a process"):
            c.pause(1)
    run(scenario, 3)


@pytest.mark.slow
def test_paused_leader_loses_its_role_and_rejoins_after_resume():
    """SIGSTOP the leader's process: its followers stop hearing pings, give up after syncLimit ticks and elect
    a new leader: the one with the higher (last zxid, sid), as their votes say (a follower synced by SNAP holds
    the leader's NEWLEADER zxid, one synced by an empty DIFF its old one). After SIGCONT the old leader finds no
    quorum, steps down and follows the new leader. (The first leader depends on which processes were up first.)

    Reference: Java Learner read timeouts (syncLimit), Leader.lead tick loop, FastLeaderElection.totalOrderPredicate,
    receivedFollowingNotification
    """
    async def scenario(c):
        await c.start()
        first = await c.wait_for_leader(60)
        await c.wait_serving(timeout_s=60)      # both followers synced (in the same epoch)
        c.pause(first)
        second = await c.wait_for_leader(60, other_than={first})
        expected = fle_winner(c, set(c.sids) - {first})
        c.resume(first)
        await c.wait_state(first, "FOLLOWING", 60)
        return first, second, expected, c.leader()
    first, second, expected, final = run(scenario, 3, mode="process")
    assert second == expected and final == second


def test_process_logs_state_and_stop():
    """Process mode: each server is `python -m zkref zoo.cfg`; its log is the process's output; a stopped
    server's state is None and a clean stop (SIGTERM) exits with code 0.

    Reference: ZooKeeper Administrator's Guide, "Running ZooKeeper" (zkServer.sh start-foreground)
    """
    async def scenario(c):
        await c.start()
        leader = await c.wait_for_leader(60)
        follower = min(set(c.sids) - {leader})
        await c.stop(follower)
        return leader, c.logs(follower), c.state(follower), c.members[follower].runner.proc.returncode
    leader, log, state, code = run(scenario, 3, mode="process")
    follower = min({1, 2, 3} - {leader})
    assert state is None and code == 0
    assert f"Starting quorum peer, myid={follower}" in log and "Exiting normally" in log


@pytest.mark.skipif(not java_available(), reason="Java ZooKeeper 3.8 is not installed")
@pytest.mark.java
@pytest.mark.slow
def test_java_ensemble_serves_a_kazoo_client_through_the_proxies():
    """A mini cluster of three Java 3.8 servers — their election and quorum links through the proxies — elects,
    syncs, and serves a kazoo client, which sees a write made through another server.

    Reference: ZooKeeper Programmer's Guide, "Consistency Guarantees" (sequential consistency, single system image)
    """
    async def scenario(c):
        await c.start()
        leader = await c.wait_for_leader(90)
        follower = min(set(c.sids) - {leader})
        loop = asyncio.get_running_loop()
        writer_client = await c.client(leader, 30)
        reader_client = await c.client(follower, 30)
        try:
            await loop.run_in_executor(None, writer_client.create, "/mini", b"cluster")
            await loop.run_in_executor(None, reader_client.sync, "/mini")
            data, _ = await loop.run_in_executor(None, reader_client.get, "/mini")
        finally:
            for zk in (writer_client, reader_client):
                await loop.run_in_executor(None, zk.stop)
                zk.close()
        return data
    assert run(scenario, 3, java={1, 2, 3}) == b"cluster"


def test_in_process_cluster_with_zab_roles_serves_clients_through_the_proxies():
    """With Zab's roles plugged in (`role_factories=zab_roles()`), an in-process cluster syncs through the
    proxies and serves kazoo: a write through one server is read through another, and after the leader is cut
    off the majority elects again and still serves it.

    Reference: ZooKeeper Programmer's Guide, "Consistency Guarantees"; Java QuorumPeer.run (makeLeader / makeFollower)
    """
    from zkref.quorum.learner import zab_roles

    async def read_through(c, sid, path):
        loop = asyncio.get_running_loop()
        zk = await c.client(sid, 30)
        try:
            await loop.run_in_executor(None, zk.sync, path)
            return (await loop.run_in_executor(None, zk.get, path))[0]
        finally:
            await loop.run_in_executor(None, zk.stop)
            zk.close()

    async def scenario(c):
        await c.start()
        leader = await c.wait_for_leader(60)
        loop = asyncio.get_running_loop()
        zk = await c.client(leader, 30)
        try:
            await loop.run_in_executor(None, zk.create, "/zab", b"through proxies")
        finally:
            await loop.run_in_executor(None, zk.stop)
            zk.close()
        follower = min(set(c.sids) - {leader})
        before = await read_through(c, follower, "/zab")
        c.disconnect(leader)
        second = await c.wait_for_leader(60, other_than={leader})
        after = await read_through(c, second, "/zab")
        return before, after
    assert run(scenario, 3, role_factories=zab_roles()) == (b"through proxies", b"through proxies")
