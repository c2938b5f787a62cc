"""A throttled request is never proposed. A request the RequestThrottler held longer than
zookeeper.throttled_op_wait_time is passed down undone and answered THROTTLEDOP (-127): Prep makes no txn for it,
the leader proposes nothing for it, a follower forwards none of it, and no commit carries one. Java guards the
places where one would be a bug (Leader.propose, CommitProcessor.run, Learner.request) with an ERROR line and
ServiceUtils.requestSystemExit(1); zkref logs the same lines and ends the role.

The in-process test reaches the leader's guard directly on a running mini cluster (only a bug could reach it); the
end-to-end test floods real three-server ensembles (zkref, and Java 3.8 for the same invariants) with pipelined
writes behind a throttle of one request and a wait time of 1 ms."""
from __future__ import annotations

import asyncio
import re
import threading

import pytest
from kazoo.client import KazooClient

from conftest import Ensemble, four_letter_word, java_available, run_on_cluster, until, wait_for
from test_standalone_metrics import mntr
from test_standalone_server import RawClient
from zkref.jute import CreateRequest, CreateTxn, GetChildrenRequest, GetChildrenResponse
from zkref.log import MYID
from zkref.proto import OPEN_ACL_UNSAFE, OpCode, encode_request
from zkref.server.processors import Request, State

THROTTLEDOP = -127


def _kazoo_children(hosts: str, path: str = "/") -> list[str]:
    "sync + getChildren through a real kazoo client (run in a thread: the servers may share this event loop)."
    zk = KazooClient(hosts=hosts, timeout=30)
    zk.start(30)
    try:
        zk.sync(path)
        return sorted(zk.get_children(path))
    finally:
        zk.stop()
        zk.close()


def test_leader_refuses_to_propose_a_throttled_request():
    """Handed a throttled request that (by a bug upstream) carries a txn, a running leader's propose logs Java's
    ERROR line `Throttled request send as proposal: <request>. Exiting.` and ServiceUtils' line for the exit,
    proposes nothing (no zxid proposed, nothing outstanding, no PROPOSAL sent to a follower, the node never
    exists), and steps down where Java's JVM would exit; the ensemble elects again and serves.
    Reference: Java Leader.propose (request.isThrottled → ServiceUtils.requestSystemExit(ExitCode.UNEXPECTED_ERROR)),
    ServiceUtils.LOG_ONLY."""
    async def scenario(c):
        await c.start()
        first = await c.wait_for_leader(60)
        peer = c.members[first].runner.main.quorum_peer
        leader = peer.role
        await until(lambda: leader.zks is not None and len(leader.forwarding_followers) == 2, 30,
                    "both followers forwarding")
        last_proposed = leader.last_proposed
        request = Request(None, 0x1000001, 7, OpCode.create, b"")
        request.is_throttled = True                       # as the RequestThrottler marks one it held too long
        request.hdr = leader.next_txn_header(request.session_id, request.cxid, OpCode.create)
        request.txn = CreateTxn(path="/throttled", data=b"", acl=OPEN_ACL_UNSAFE, ephemeral=False, parent_cversion=1)

        async def as_the_leader():                         # log lines carry the leader's myid, as its own tasks'
            MYID.set(str(first))
            return leader.propose(request.hdr, request.txn, None, request)
        proposal = await asyncio.get_running_loop().create_task(as_the_leader())

        assert proposal is None
        assert leader.last_proposed == last_proposed and request.hdr.zxid not in leader.outstanding
        log = c.logs(first)
        assert re.search(r"ERROR \[[^\]]*:Leader@\d+\] - Throttled request send as proposal: sessionid:0x1000001 "
                         r"type:create cxid:0x7 zxid:0x%x txntype:1 reqpath:n/a\. Exiting\." % request.hdr.zxid, log), log
        assert re.search(r"ERROR \[[^\]]*:ServiceUtils@\d+\] - Fatal error, JVM should exit with code 1\. "
                         r"Actually System\.exit is disabled", log), log
        await until(lambda: peer.role is not leader, 30, "the leader to step down")
        assert "Shutdown called. For the reason Throttled request send as proposal" in c.logs(first)
        await c.wait_for_leader(60)
        children = await asyncio.to_thread(_kazoo_children, ",".join(
            f"127.0.0.1:{c.members[s].client_port}" for s in c.sids))
        assert "throttled" not in children
        assert not [e for e in c.zab_trace if e.type == "PROPOSAL" and e.zxid == request.hdr.zxid]
    run_on_cluster(scenario, 3)


def test_leader_commit_processor_refuses_a_throttled_commit():
    """A throttled request handed to a running leader's commit processor as committed (only a bug could do it:
    none is proposed) is not applied: the processor logs Java's `Throttled request in committed pool: <request>.
    Exiting.` as thread CommitProcessor:<myid>, then ServiceUtils' line for the exit, stops, puts the server in
    ERROR, and the leader steps down where Java's JVM would exit; the ensemble elects again and serves.
    Reference: Java CommitProcessor.run (committedRequests.peek().isThrottled() →
    ServiceUtils.requestSystemExit(ExitCode.UNEXPECTED_ERROR)), ServiceUtils.LOG_ONLY."""
    async def scenario(c):
        await c.start()
        first = await c.wait_for_leader(60)
        peer = c.members[first].runner.main.quorum_peer
        leader = peer.role
        await until(lambda: leader.zks is not None, 30, "the leader's server")
        zks = leader.zks
        request = Request(None, 0x1000002, 9, OpCode.create, b"")
        request.is_throttled = True

        async def as_the_leader():
            MYID.set(str(first))
            zks.proposer.committed(request)               # Java: Leader.tryToCommit → CommitProcessor.commit
        await asyncio.get_running_loop().create_task(as_the_leader())

        log = c.logs(first)
        assert re.search(r"ERROR \[CommitProcessor:%d:CommitProcessor@\d+\] - Throttled request in committed pool: "
                         r"sessionid:0x1000002 type:create cxid:0x9 zxid:0xfffffffffffffffe txntype:unknown "
                         r"reqpath:n/a\. Exiting\." % first, log), log
        assert re.search(r"ERROR \[CommitProcessor:%d:ServiceUtils@\d+\] - Fatal error, JVM should exit with "
                         r"code 1\. Actually System\.exit is disabled" % first, log), log
        assert zks.proposer.commit_processor.stopped and zks.state.name == "ERROR"
        await until(lambda: peer.role is not leader, 30, "the leader to step down")
        await c.wait_for_leader(60)
        children = await asyncio.to_thread(_kazoo_children, ",".join(
            f"127.0.0.1:{c.members[s].client_port}" for s in c.sids))
        assert children == ["zookeeper"]
    run_on_cluster(scenario, 3)


def test_learner_refuses_to_forward_a_throttled_request():
    """A throttled request handed to a running follower's Learner.request (only a bug could do it: the
    FollowerRequestProcessor answers it THROTTLEDOP and forwards none) is not sent to the leader: the follower logs
    Java's `Throttled request sent to leader: <request>. Exiting` and ServiceUtils' line for the exit, its server
    goes to ERROR and the role ends where Java's JVM would exit; it syncs again and the ensemble serves.
    Reference: Java Learner.request (request.isThrottled() → ServiceUtils.requestSystemExit(ExitCode.UNEXPECTED_ERROR)),
    ServiceUtils.LOG_ONLY."""
    async def scenario(c):
        await c.start()
        first = await c.wait_for_leader(60)
        sid = next(s for s in c.sids if s != first)
        peer = c.members[sid].runner.main.quorum_peer
        # running: after UPTODATE (its server exists from NEWLEADER on, and startServing would set RUNNING again)
        await until(lambda: peer.role is not None and getattr(peer.role, "zks", None) is not None
                    and peer.role.zks.state == State.RUNNING, 30, "the follower's server to serve")
        follower = peer.role
        request = Request(None, 0x1000003, 11, OpCode.create, b"")
        request.is_throttled = True

        def sent():
            return [e for e in c.zab_trace if e.kind == "send" and e.myid == sid and e.type == "REQUEST"]
        before = len(sent())

        async def as_the_follower():
            MYID.set(str(sid))
            follower.request(request)
        await asyncio.get_running_loop().create_task(as_the_follower())

        assert len(sent()) == before
        log = c.logs(sid)
        assert re.search(r"ERROR \[[^\]]*:Learner@\d+\] - Throttled request sent to leader: sessionid:0x1000003 "
                         r"type:create cxid:0xb zxid:0xfffffffffffffffe txntype:unknown reqpath:n/a\. Exiting$",
                         log, re.M), log
        assert re.search(r"ERROR \[[^\]]*:ServiceUtils@\d+\] - Fatal error, JVM should exit with code 1\. "
                         r"Actually System\.exit is disabled", log), log
        await until(lambda: peer.role is not follower, 30, "the follower's role to end")
        await c.wait_for_leader(60)
        await until(lambda: c.state(sid) == "FOLLOWING", 60, "the follower to follow again")
        children = await asyncio.to_thread(_kazoo_children, f"127.0.0.1:{c.members[sid].client_port}")
        assert children == ["zookeeper"]
    run_on_cluster(scenario, 3)


# The flood: a RequestThrottler that lets one request into the pipeline at a time and marks every request that
# waited more than 1 ms throttled. A pipelined write waits at least for the one ahead of it to commit (a quorum
# round trip and an fsync), so nearly every request after the first of each burst is throttled.
FLOOD_FLAGS = ["-Dzookeeper.request_throttle_max_requests=1", "-Dzookeeper.throttled_op_wait_time=1"]
CLIENTS, WRITES = 3, 60


def _flood(port: int, prefix: str) -> dict[str, int]:
    "CLIENTS raw clients each pipeline WRITES creates to `port`: {path: reply err} for every create."
    results: dict[str, int] = {}
    errors: list[BaseException] = []

    def one(n: int) -> None:
        try:
            c = RawClient(port, timeout_ms=30000, timeout_s=60)
            try:
                paths = [f"/{prefix}-{n}-{i}" for i in range(WRITES)]
                c.sock.sendall(b"".join(
                    encode_request(i + 1, OpCode.create, CreateRequest(path=p, data=b"x", acl=OPEN_ACL_UNSAFE, flags=0))
                    for i, p in enumerate(paths)))
                for i in range(WRITES):
                    h, _ = c.reply()
                    assert h.xid == i + 1, (h, i)
                    results[paths[i]] = h.err
            finally:
                c.sock.close()
        except BaseException as e:   # reported by the caller, with the thread's failure
            errors.append(e)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not [t for t in threads if t.is_alive()], "a flooding client did not get all its replies"
    assert not errors, errors
    return results


def _until_not_throttled(c: RawClient, op: int, record, attempts: int = 100):
    """Send one request at a time until it is not answered THROTTLEDOP (an idle throttler passes a request on at
    once, but with a 1 ms wait time a busy machine can still mark it); (reply header, body) of the last try."""
    for _ in range(attempts):
        h, body = c.call(op, record)
        if h.err != THROTTLEDOP:
            return h, body
    return h, body


def _zxid(port: int) -> str:
    "The `Zxid:` line of `srvr` (four-letter words are never throttled)."
    return next((line.split()[-1] for line in four_letter_word(port, "srvr").splitlines()
                 if line.startswith("Zxid:")), "")


@pytest.mark.parametrize("kind", ["zkref", "java"])
def test_flood_behind_a_throttle_gets_ok_or_throttledop_and_nothing_throttled_is_replicated(tmp_path, kind):
    """With -Dzookeeper.request_throttle_max_requests=1 -Dzookeeper.throttled_op_wait_time=1 on every server of a
    three-server ensemble, pipelined creates flooded through the leader and through a follower are each answered
    OK or THROTTLEDOP (-127), and nothing throttled reaches the ensemble: once every server has the same last
    zxid, each holds exactly the nodes answered OK; no server logs a throttled request proposed, committed or sent
    to the leader; the leader stays the leader, and a write through the follower still succeeds. Java 3.8 runs the
    same flood as the oracle.
    Reference: Java RequestThrottler.run (shouldThrottleOp), PrepRequestProcessor.pRequest,
    ProposalRequestProcessor.processRequest, Leader.propose, CommitProcessor.needCommit / run,
    FollowerRequestProcessor.run, Learner.request, FinalRequestProcessor.processRequest."""
    if kind == "java" and not java_available():
        pytest.skip("Java ZooKeeper is not installed")
    e = Ensemble(tmp_path, (kind,) * 3, jvm_flags=FLOOD_FLAGS, syncLimit=20)
    try:
        e.start()
        leader = e.wait_formed()
        follower = next(i for i in e.ids if i != leader)
        replies = {**_flood(e.client(leader), "l"), **_flood(e.client(follower), "f")}
        assert set(replies.values()) <= {0, THROTTLEDOP}, sorted(set(replies.values()))
        assert THROTTLEDOP in replies.values(), "the flood was never throttled: it tested nothing"
        c = RawClient(e.client(follower), timeout_ms=30000, timeout_s=60)
        try:
            h, _ = _until_not_throttled(c, OpCode.create, CreateRequest(path="/after", data=b"", acl=OPEN_ACL_UNSAFE,
                                                                        flags=0))
            assert h.err == 0, h
        finally:
            c.sock.close()
        created = sorted([p[1:] for p, err in replies.items() if err == 0] + ["after", "zookeeper"])
        wait_for(lambda: len({_zxid(e.client(i)) for i in e.ids}) == 1, 30, what="every server at the same zxid")
        for i in e.ids:
            c = RawClient(e.client(i), timeout_ms=30000, timeout_s=60)
            try:
                h, body = _until_not_throttled(c, OpCode.getChildren, GetChildrenRequest(path="/", watch=False))
                assert h.err == 0, (i, h)
                assert sorted(GetChildrenResponse.from_bytes(body).children) == created, i
            finally:
                c.sock.close()
        assert e.wait_formed() == leader
        for i in e.ids:
            log = e.log(i)
            assert "Throttled request" not in log, log[-3000:]
        throttled = sum(int(mntr(e.client(i)).get("throttled_ops", "0")) for i in (leader, follower))
        assert throttled >= sum(err == THROTTLEDOP for err in replies.values())
    finally:
        e.stop_all()
