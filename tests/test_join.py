"""The whole server, joined up: `python -m zkref zoo.cfg` with `server.N` lines is a replicated ZooKeeper.

Every test starts real servers — `python -m zkref` processes (chapter 12's MiniCluster in process mode, which
runs exactly that command with each server's zoo.cfg; no launcher), in-process peers where the test looks
at objects, and Java ZooKeeper 3.8 servers beside zkref ones — and drives them with real clients: kazoo (and
its recipes) and Java's zkCli.sh.
"""
from __future__ import annotations

import asyncio
import re
import subprocess
import threading
from functools import partial
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.recipe.counter import Counter
from kazoo.recipe.election import Election
from kazoo.recipe.lock import Lock

from conftest import run_on_cluster as run
from zkref.quorum.join import transitions
from zkref.testing import MiniCluster, java_available

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
needs_java = pytest.mark.skipif(not java_available(), reason="Java ZooKeeper 3.8 (Debian package zookeeper) is not installed")
needs_zkcli = pytest.mark.skipif(not Path(ZKCLI).exists(), reason="Debian's zookeeper package (zkCli.sh) is not installed")


async def blocking(fn, *args):
    "Run a blocking call (kazoo, zkCli.sh) off the event loop, so in-process servers and proxies keep running."
    return await asyncio.get_running_loop().run_in_executor(None, partial(fn, *args))


async def serving(c: MiniCluster, timeout_s: float = 60.0) -> tuple[int, dict[int, str]]:
    "Start every server, wait for a settled leader and for every server to serve; (leader, modes)."
    await c.start()
    leader = await c.wait_for_leader(timeout_s)
    return leader, await c.wait_serving(timeout_s=timeout_s)


def client(c: MiniCluster, sid: int) -> KazooClient:
    "A started kazoo client of server `sid` only (blocking); it retries a conditional set that lost a race."
    zk = KazooClient(hosts=f"127.0.0.1:{c.members[sid].client_port}", timeout=10,
                     command_retry={"max_tries": 100, "delay": 0.01, "max_delay": 0.2})
    zk.start(timeout=30)
    return zk


def close(*clients: KazooClient) -> None:
    for zk in clients:
        zk.stop()
        zk.close()


def zkcli(port: int, *cmd: str) -> str:
    out = subprocess.run([ZKCLI, "-server", f"127.0.0.1:{port}", *cmd], capture_output=True, text=True, timeout=90)
    return out.stdout + out.stderr


# ---------------------------------------------------------------------------------------------------------
# python -m zkref processes

@needs_zkcli
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_three_python_m_zkref_processes_serve_zkcli_and_kazoo():
    """Three `python -m zkref zoo.cfg` processes elect one leader, sync with Zab and serve: each logs Java's
    transition lines (LOOKING, the decision, `… - broadcast`); Java's zkCli.sh creates a znode through a
    follower and reads it through the leader and the other follower; kazoo, given all three servers, reads it
    and writes in turn. The leader, stopped with SIGTERM while its followers are connected, logs no traceback.

    Reference: ZooKeeper Administrator's Guide, "Running Replicated ZooKeeper"; Java QuorumPeer.run,
    Leader.lead, Follower.followLeader, Leader.shutdown
    """
    async def scenario(c):
        leader, modes = await serving(c)
        f1, f2 = sorted(set(c.sids) - {leader})
        created = await blocking(zkcli, c.members[f1].client_port, "create", "/made-by-zkcli", "hello")
        got = {sid: await blocking(zkcli, c.members[sid].client_port, "get", "/made-by-zkcli") for sid in (leader, f2)}

        def with_kazoo():
            zk = KazooClient(hosts=",".join(f"127.0.0.1:{m.client_port}" for m in c.members.values()), timeout=10)
            zk.start(timeout=30)
            try:
                zk.sync("/made-by-zkcli")
                data = zk.get("/made-by-zkcli")[0]
                zk.create("/made-by-kazoo", b"world")
                return data
            finally:
                close(zk)
        data = await blocking(with_kazoo)
        by_kazoo = await blocking(zkcli, c.members[f1].client_port, "get", "/made-by-kazoo")
        await c.stop(leader)                      # SIGTERM while both followers are connected to it
        return leader, modes, created, got, data, by_kazoo, {sid: c.logs(sid) for sid in c.sids}
    leader, modes, created, got, data, by_kazoo, logs = run(scenario, 3, mode="process", proxies=False)
    assert sorted(modes.values()) == ["follower", "follower", "leader"] and modes[leader] == "leader"
    assert "Created /made-by-zkcli" in created
    assert all(re.search(r"^hello$", out, re.M) for out in got.values())
    assert data == b"hello" and re.search(r"^world$", by_kazoo, re.M)
    for sid, log in logs.items():
        lines = transitions(log, timings=False)
        role = "leading" if sid == leader else "following"
        assert lines[:2] == ["LOOKING", f"New election. My id = {sid}, proposed zxid=0x0"]
        assert f"Peer state changed: {role}" in lines and f"Peer state changed: {role} - broadcast" in lines
    assert "Traceback" not in logs[leader] and "Exception in callback" not in logs[leader]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_writes_through_any_server_are_seen_through_every_server_after_sync():
    """Each of three `python -m zkref` servers takes a write from its own client; after `sync`, a client of
    any server reads every write, with the same data and the same czxid everywhere, and the czxids are
    distinct and totally ordered (single system image, sequential consistency).

    Reference: ZooKeeper Programmer's Guide, "Consistency Guarantees" and "sync"; Zab.tla TotalOrder
    """
    async def scenario(c):
        await serving(c)

        def writes_and_reads():
            clients = {sid: client(c, sid) for sid in c.sids}
            try:
                for sid, zk in clients.items():
                    zk.create(f"/from-{sid}", f"written through {sid}".encode())
                seen = {}
                for sid, zk in clients.items():
                    zk.sync("/")
                    seen[sid] = {p: (zk.get(f"/{p}")[0], zk.get(f"/{p}")[1].czxid)
                                 for p in sorted(zk.get_children("/")) if p.startswith("from-")}
                return seen
            finally:
                close(*clients.values())
        return await blocking(writes_and_reads)
    seen = run(scenario, 3, mode="process", proxies=False)
    expected = seen[1]
    assert sorted(expected) == ["from-1", "from-2", "from-3"]
    assert all(expected[f"from-{sid}"][0] == f"written through {sid}".encode() for sid in (1, 2, 3))
    assert seen[2] == expected and seen[3] == expected
    assert len({czxid for _, czxid in expected.values()}) == 3


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_kazoo_lock_election_and_counter_recipes_across_servers():
    """kazoo's recipes, each participant on a different `python -m zkref` server:
    a Lock held through server 1 keeps a client of server 2 out until it is released, then lets it in;
    an Election among clients of servers 1, 2 and 3 elects the first contender and, when it gives up, the next
    one; a Counter incremented 10 times by each of three clients (one per server) ends at 30 — the recipes'
    sequential ephemeral nodes, watches and conditional set are served the same through every server.

    Reference: ZooKeeper Recipes and Solutions ("Locks", "Leader Election"); Programmer's Guide, "Consistency
    Guarantees"; kazoo.recipe.lock, election, counter
    """
    async def scenario(c):
        await serving(c)

        def recipes():
            zks = {sid: client(c, sid) for sid in c.sids}
            try:
                first, second = Lock(zks[1], "/lock", "one"), Lock(zks[2], "/lock", "two")
                assert first.acquire(timeout=10)
                kept_out = not second.acquire(blocking=False)
                first.release()
                let_in = second.acquire(timeout=10)
                second.release()

                led, proceed = [], {sid: threading.Event() for sid in c.sids}
                elections = {sid: Election(zks[sid], "/election", f"candidate-{sid}") for sid in c.sids}

                def lead(sid):
                    led.append(sid)
                    proceed[sid].wait(30)
                threads = []
                for sid in c.sids:
                    t = threading.Thread(target=elections[sid].run, args=(lead, sid), daemon=True)
                    t.start()
                    threads.append(t)
                    wait_until(lambda: len(elections[sid].contenders()) == sid)   # they join in order: 1, 2, 3
                contenders = elections[3].contenders()
                wait_until(lambda: led == [1])
                proceed[1].set()
                wait_until(lambda: led == [1, 2])
                for sid in (2, 3):
                    proceed[sid].set()
                for sid in c.sids:
                    elections[sid].cancel()
                for t in threads:
                    t.join(30)

                counters = {sid: Counter(zks[sid], "/counter") for sid in c.sids}
                def increment(sid):
                    for _ in range(10):
                        counters[sid] += 1
                workers = [threading.Thread(target=increment, args=(sid,)) for sid in c.sids]
                for w in workers:
                    w.start()
                for w in workers:
                    w.join(60)
                zks[3].sync("/counter")
                total = Counter(zks[3], "/counter").value
                return kept_out, let_in, contenders, led[:2], total
            finally:
                close(*zks.values())
        return await blocking(recipes)
    kept_out, let_in, contenders, led, total = run(scenario, 3, mode="process", proxies=False)
    assert kept_out and let_in
    assert contenders == ["candidate-1", "candidate-2", "candidate-3"] and led == [1, 2]
    assert total == 30


def wait_until(cond, timeout_s: float = 30.0) -> None:
    "Poll `cond` (blocking) until it holds; AssertionError after the deadline."
    waiter = threading.Event()
    for _ in range(int(timeout_s / 0.05)):
        if cond():
            return
        waiter.wait(0.05)
    assert cond(), "timed out"


# ---------------------------------------------------------------------------------------------------------
# Observers

def test_observers_receive_every_commit_and_never_vote():
    """An observer (peerType=observer, `server.4=…:observer`) syncs with the leader and receives every commit
    — writes made through the voters and through the observer itself (forwarded to the leader) are all in its
    tree, at the leader's last zxid — but it never votes: the leader's quorum of supporters names voters only,
    and with two of the three voters stopped the remaining voter and the observer have no leader and do not
    serve.

    Reference: ZooKeeper Observers Guide; Java Leader.startZkServer ("Have quorum of supporters"),
    Observer.observeLeader (INFORM), FastLeaderElection (observers' votes do not count)
    """
    async def scenario(c):
        leader, modes = await serving(c)

        def writes():
            zks = {sid: client(c, sid) for sid in c.sids}
            try:
                for sid in (1, 2, 3, 4):
                    for i in range(5):
                        zks[sid].create(f"/obs-{sid}-{i}", b"x")
                zks[4].sync("/")
                return sorted(zks[4].get_children("/"))
            finally:
                close(*zks.values())
        seen = await blocking(writes)
        zxids = {sid: c.peer(sid).zk_db.get_data_tree_last_processed_zxid() for sid in c.sids}
        leader_lines = transitions(c.logs(leader))
        voters_left = [s for s in (1, 2, 3) if s != leader][:1]
        for sid in set((1, 2, 3)) - set(voters_left):
            await c.stop(sid)
        await c.wait_state(4, "LOOKING", 60)
        await c.wait_state(voters_left[0], "LOOKING", 60)
        states = c.states()
        no_leader = c.leader()
        srvr = await c.four_letter_word(4, "srvr")
        return leader, modes, seen, zxids, leader_lines, states, no_leader, srvr
    leader, modes, seen, zxids, leader_lines, states, no_leader, srvr = run(scenario, 3, observers=1)
    assert modes[4] == "observer"
    assert seen == sorted([f"obs-{sid}-{i}" for sid in (1, 2, 3, 4) for i in range(5)] + ["zookeeper"])
    assert zxids[4] == zxids[leader]
    quorum_line = next(l for l in leader_lines if l.startswith("Have quorum of supporters"))
    assert "4" not in re.search(r"sids: \[\[([\d, ]*)\]\]", quorum_line).group(1).split(", ")
    assert no_leader is None and states[4] == "LOOKING"
    assert srvr == "This ZooKeeper instance is not currently serving requests\n"


# ---------------------------------------------------------------------------------------------------------
# Mixed ensembles with Java ZooKeeper 3.8

async def both_ways(c: MiniCluster, java_leader: bool) -> tuple[int, dict]:
    "Elect (server 3 leads), write through every server, read every write through every server after sync."
    if java_leader:       # Java's server 3 starts first with the longest history: the others find it and follow
        c.seed(3, 0x100000005)
        await c.start([3])
        deadline = asyncio.get_running_loop().time() + 120
        while "New election" not in c.logs(3):
            assert asyncio.get_running_loop().time() < deadline, "server 3 never started its election"
            await asyncio.sleep(0.1)
        await c.start([1, 2])
    else:                 # the two zkref servers elect server 3 between them; Java's server 1 follows
        await c.start()
    leader = await c.wait_for_leader(120)
    await c.wait_serving(timeout_s=120)

    def exchange():
        zks = {sid: client(c, sid) for sid in c.sids}
        try:
            for sid, zk in zks.items():
                zk.create(f"/via-{c.members[sid].runtime}-{sid}", f"from {sid}".encode())
            seen = {}
            for sid, zk in zks.items():
                zk.sync("/")
                seen[sid] = {p: zk.get(f"/{p}")[0] for p in zk.get_children("/") if p.startswith("via-")}
            return seen
        finally:
            close(*zks.values())
    return leader, await blocking(exchange)


@needs_java
@pytest.mark.java
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("java", [{1}, {2, 3}], ids=["1java-2zkref", "2java-1zkref"])
def test_mixed_ensemble_with_java_replicates_writes_both_ways(java):
    """A process-mode mini cluster mixing Java 3.8 servers and `python -m zkref` servers elects, syncs and
    serves as one ensemble — 1 Java + 2 zkref with a zkref leader and a Java follower, then 2 Java + 1 zkref
    with a Java leader and a zkref follower: a write through each server, Java's and zkref's, is read with
    its data through every other server after `sync`.

    Reference: ZooKeeper Programmer's Guide, "Consistency Guarantees"; Java Leader/Follower/LearnerHandler wire
    protocol (zkref and Java interoperate as leader and as learner)
    """
    leader, seen = run(lambda c: both_ways(c, 3 in java), 3, mode="process", java=java)
    assert leader == 3
    runtimes = {sid: ("java" if sid in java else "process") for sid in (1, 2, 3)}
    expected = {f"via-{runtimes[sid]}-{sid}": f"from {sid}".encode() for sid in (1, 2, 3)}
    assert seen == {1: expected, 2: expected, 3: expected}
