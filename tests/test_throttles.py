"""Java's throttles — the connection throttle (BlueThrottle), the large-request limit and the RequestThrottler —
against real clients on real sockets, each scenario run against zkref and against Java ZooKeeper 3.8 with the
same -D flags: what the client sees, the `mntr` numbers, and the server's log line."""
from __future__ import annotations

import socket

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss
from kazoo.protocol.states import KazooState

from conftest import wait_for
from test_standalone_metrics import mntr
from test_standalone_server import RawClient
from zkref.jute import ConnectRequest, CreateRequest
from zkref.proto import OPEN_ACL_UNSAFE, OpCode, encode_request, frame




@pytest.fixture(params=["zkref", "java"])
def start(request):
    "Start a standalone server of the parameter's kind with these -D flags (every four-letter word allowed)."
    factory = request.getfixturevalue(f"{request.param}_zk")
    return lambda *flags: factory({"4lw.commands.whitelist": "*"}, jvm_flags=list(flags))


def handshake(port: int) -> bytes:
    "Send a ConnectRequest on a new socket; the ConnectResponse frame, or b'' if the server closed instead."
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(frame(ConnectRequest(time_out=10000, passwd=bytes(16)).to_bytes() + b"\0"))
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
                if len(out) >= 4 and len(out) >= 4 + int.from_bytes(out[:4], "big"):
                    return out
        except ConnectionResetError:
            pass
        return out


def test_connection_throttle_turns_handshakes_away(start):
    """With zookeeper.connection_throttle_tokens=2 and a fill time far away, two handshakes get sessions and the
    third is closed without a ConnectResponse; mntr counts connection_rejected 1 and token deficits up to 2, and
    the server logs "Closing session 0x0" with the ClientCnxnLimitException.
    Reference: Java BlueThrottle.checkLimit, ZooKeeperServer.processConnectRequest, NIOServerCnxn.doIO."""
    srv = start("-Dzookeeper.connection_throttle_tokens=2", "-Dzookeeper.connection_throttle_fill_time=600000")
    port = srv.client_port
    assert handshake(port) != b""
    assert handshake(port) != b""
    assert handshake(port) == b""
    m = mntr(port)
    assert (m["connection_rejected"], m["max_connection_token_deficit"], m["cnt_connection_token_deficit"]) == ("1", "2", "2")
    assert float(m["connection_drop_probability"]) == 0.0
    wait_for(lambda: "Connection throttle rejected connection" in srv.logs(), 10, what="the throttle's log line")
    assert "Closing session 0x0" in srv.logs()
    assert "ClientCnxnLimitException: Connection throttle rejected connection" in srv.logs()


def test_connection_throttle_off_by_default(start):
    """Without the connection_throttle flags every handshake passes, each sampling a token deficit of 0.
    Reference: Java BlueThrottle (maxTokens 0 disables throttling)."""
    srv = start()
    for _ in range(5):
        assert handshake(srv.client_port) != b""
    m = mntr(srv.client_port)
    assert (m["connection_rejected"], m["max_connection_token_deficit"], m["cnt_connection_token_deficit"]) == ("0", "0", "5")


def test_large_request_rejected_closes_the_connection(start):
    """With zookeeper.largeRequestThreshold=1024 and zookeeper.largeRequestMaxBytes=2048, a 1,500-byte create
    passes, but a 3,000-byte setData can never fit: the server closes the connection (kazoo raises
    ConnectionLoss), counts large_requests_rejected, logs "Rejecting large request"; the session survives the
    reconnect and the znode keeps its old data.
    Reference: Java ZooKeeperServer.checkRequestSizeWhenReceivingMessage, NIOServerCnxn.readLength."""
    srv = start("-Dzookeeper.largeRequestThreshold=1024", "-Dzookeeper.largeRequestMaxBytes=2048")
    k = KazooClient(hosts=srv.hosts, timeout=10)
    k.start(timeout=15)
    try:
        sid = k.client_id[0]
        k.create("/big", b"x" * 1500)
        with pytest.raises(ConnectionLoss):
            k.set("/big", b"y" * 3000)
        wait_for(lambda: k.state == KazooState.CONNECTED and k.connected, 20, what="kazoo to reconnect")
        assert k.client_id[0] == sid
        assert k.get("/big")[0] == b"x" * 1500
        assert mntr(srv.client_port)["large_requests_rejected"] == "1"
    finally:
        k.stop()
        k.close()
    wait_for(lambda: "Rejecting large request" in srv.logs(), 10, what="the large-request log line")
    assert "java.io.IOException: Rejecting large request" in srv.logs()


def test_large_request_settings_logged(start):
    """A threshold of 0 is invalid: the server warns and keeps the limit off (so a large request passes); the max
    bytes are logged as set. Reference: Java ZooKeeperServer.setLargeRequestThreshold / setLargeRequestMaxBytes."""
    srv = start("-Dzookeeper.largeRequestThreshold=0", "-Dzookeeper.largeRequestMaxBytes=4096")
    logs = srv.logs()
    assert "Invalid large request threshold 0. It should be -1 or positive. Setting to -1" in logs
    assert "The max bytes for all large requests are set to 4096" in logs
    c = RawClient(srv.client_port)
    c.send(OpCode.create, CreateRequest(path="/big", data=bytes(8000), acl=OPEN_ACL_UNSAFE, flags=0))
    assert c.reply()[0].err == 0
    c.close()
    assert mntr(srv.client_port)["large_requests_rejected"] == "0"


def test_request_throttler_holds_requests_and_all_succeed(start):
    """With zookeeper.request_throttle_max_requests=1, a client that pipelines 100 creates gets every one, in
    order, while the throttler waits for the pipeline (request_throttle_wait_count > 0); without
    zookeeper.throttled_op_wait_time none is throttled, however long it waited.
    Reference: Java RequestThrottler.run (throttleSleep, shouldThrottleOp)."""
    srv = start("-Dzookeeper.request_throttle_max_requests=1")
    c = RawClient(srv.client_port)
    c.sock.sendall(b"".join(encode_request(i + 1, OpCode.create,
                                           CreateRequest(path=f"/n{i}", data=b"", acl=OPEN_ACL_UNSAFE, flags=0))
                            for i in range(100)))
    replies = [c.reply()[0] for _ in range(100)]
    c.close()
    assert [(h.xid, h.err) for h in replies] == [(i + 1, 0) for i in range(100)]
    m = mntr(srv.client_port)
    assert int(m["request_throttle_wait_count"]) > 0
    assert m["stale_requests_dropped"] == "0"
    assert m["throttled_ops"] == "0"           # zookeeper.throttled_op_wait_time is 0 (off) by default


def test_request_throttler_drops_stale_requests(start):
    """A client pipelines 300 creates behind a throttle of 1 and hangs up: the first queued request found stale
    is dropped and counted (stale_requests_dropped 1), and its connection marked invalid, so the rest of its
    queue is dropped without counting; fewer than 300 znodes are created.
    Reference: Java RequestThrottler.run (dropStaleRequests, mustDrop), Request.isStale.

    The scenario needs requests still queued when the server sees the hang-up. Java's NIO reads one request per
    select round and sees the end of the stream only after the last one, so on a fast disk its pipeline can keep
    up with the reads and create all 300 first: nothing is left to find stale. Such a run proves nothing either
    way, so it is repeated (at most three times, each with its own names) until the hang-up meets a queue."""
    srv = start("-Dzookeeper.request_throttle_max_requests=1")
    for attempt in range(3):
        base = int(mntr(srv.client_port)["znode_count"])
        c = RawClient(srv.client_port)
        c.sock.sendall(b"".join(encode_request(i + 1, OpCode.create,
                                               CreateRequest(path=f"/s{attempt}_{i}", data=b"", acl=OPEN_ACL_UNSAFE,
                                                             flags=0))
                                for i in range(300)))
        c.close()
        wait_for(lambda: mntr(srv.client_port)["stale_requests_dropped"] == "1"
                 or int(mntr(srv.client_port)["znode_count"]) == base + 300, 20,
                 what="a stale request dropped (or every create done before the hang-up was seen)")
        if mntr(srv.client_port)["stale_requests_dropped"] == "1":
            break
    else:
        pytest.fail("three times the server created all 300 znodes before it saw the hang-up: no queue to drop")
    wait_for(lambda: mntr(srv.client_port)["outstanding_requests"] == "0", 20, what="the pipeline to empty")
    m = mntr(srv.client_port)
    assert m["stale_requests_dropped"] == "1"
    assert int(m["znode_count"]) < base + 300


@pytest.mark.parametrize("kind", ["zkref", "java"])
def test_limits_on_a_follower(tmp_path, kind):
    """The quorum servers share the standalone's client path: on a follower of a three-server ensemble, a
    request over the large-request limit closes its client's connection and counts large_requests_rejected,
    and pipelined creates behind request_throttle_max_requests=1 all succeed while the throttler waits.
    Reference: Java ZooKeeperServer.checkRequestSizeWhenReceivingMessage, RequestThrottler.run (every
    ZooKeeperServer subclass starts one)."""
    if kind == "java":
        from conftest import java_available
        if not java_available():
            pytest.skip("Java ZooKeeper is not installed")
    from conftest import Ensemble
    e = Ensemble(tmp_path, (kind,) * 3, jvm_flags=["-Dzookeeper.largeRequestThreshold=1024",
                                                   "-Dzookeeper.largeRequestMaxBytes=2048",
                                                   "-Dzookeeper.request_throttle_max_requests=1"])
    try:
        e.start()
        leader = e.wait_formed()
        follower = next(i for i in e.ids if i != leader)
        port = e.client(follower)
        c = RawClient(port)
        c.sock.sendall(b"".join(encode_request(i + 1, OpCode.create,
                                               CreateRequest(path=f"/f{i}", data=b"", acl=OPEN_ACL_UNSAFE, flags=0))
                                for i in range(50)))
        assert [(h.xid, h.err) for h in (c.reply()[0] for _ in range(50))] == [(i + 1, 0) for i in range(50)]
        c.send(OpCode.create, CreateRequest(path="/big", data=bytes(3000), acl=OPEN_ACL_UNSAFE, flags=0))
        with pytest.raises((EOFError, ConnectionResetError)):
            c.reply()
        c.close()
        m = mntr(port)
        assert m["large_requests_rejected"] == "1"
        assert int(m["request_throttle_wait_count"]) > 0
    finally:
        e.stop_all()


# zookeeper.throttled_op_wait_time: a request that waited in the RequestThrottler longer than this is marked
# throttled; every stage passes it on untouched and FinalRequestProcessor answers THROTTLEDOP (-127).
THROTTLED_OP_FLAGS = ["-Dzookeeper.request_throttle_max_requests=1", "-Dzookeeper.throttled_op_wait_time=100"]
THROTTLEDOP = -127


def _held_behind_a_write(e, client_at: int, stopped: list[int], requests) -> tuple[list, dict]:
    """On server `client_at` with the servers `stopped` SIGSTOPped, pipeline `requests` (op, record) from one raw
    client: the first (a write) cannot commit, so the rest wait in the RequestThrottler. Once it has slept three
    stall times (request_throttle_wait_count +3: over 200 ms, past throttled_op_wait_time=100), the servers go
    on. Returns ([(xid, err, zxid)] in reply order, mntr of `client_at` after)."""
    import signal as _signal
    port = e.client(client_at)
    c = RawClient(port, timeout_ms=30000, timeout_s=60)
    waits = int(mntr(port)["request_throttle_wait_count"])
    try:
        for i in stopped:
            e.procs[i].proc.send_signal(_signal.SIGSTOP)
        try:
            c.sock.sendall(b"".join(encode_request(x + 1, op, rec) for x, (op, rec) in enumerate(requests)))
            wait_for(lambda: int(mntr(port)["request_throttle_wait_count"]) >= waits + 3, 30,
                     what="the throttler to hold the queued requests for three stall times")
        finally:
            for i in stopped:
                e.procs[i].proc.send_signal(_signal.SIGCONT)
        replies = [c.reply()[0] for _ in requests]
        return [(h.xid, h.err, h.zxid) for h in replies], mntr(port)
    finally:
        c.close()


def _throttled_op_run(kind: str, root) -> dict:
    from conftest import Ensemble
    from zkref.jute import GetDataRequest, SyncRequest
    e = Ensemble(root, (kind,) * 3, jvm_flags=THROTTLED_OP_FLAGS, syncLimit=20)
    seen = {}
    try:
        e.start()
        leader = e.wait_formed()
        follower = next(i for i in e.ids if i != leader)
        others = [i for i in e.ids if i != leader]

        def create(path):
            return (OpCode.create, CreateRequest(path=path, data=b"x", acl=OPEN_ACL_UNSAFE, flags=0))
        # on the leader, its followers stopped: the create waits for a quorum
        seen["leader"] = _held_behind_a_write(e, leader, others, [
            create("/p0"), create("/p1"), (OpCode.getData, GetDataRequest(path="/", watch=False)), create("/p2")])
        # on a follower, the leader stopped: the create waits for the leader; a throttled sync must not be forwarded
        seen["follower"] = _held_behind_a_write(e, follower, [leader], [
            create("/q0"), (OpCode.sync, SyncRequest(path="/")), create("/q1"),
            (OpCode.getData, GetDataRequest(path="/", watch=False))])
        k = KazooClient(hosts=e.hosts([follower]), timeout=30)
        k.start(30)
        try:
            k.sync("/")                                      # the follower's syncs still pair with the leader's
            seen["nodes"] = sorted(k.get_children("/"))
        finally:
            k.stop()
            k.close()
        return seen
    finally:
        e.stop_all()


@pytest.fixture(scope="module")
def throttled_ops(tmp_path_factory):
    "(java, zkref): the throttled-op scenario on a Java 3.8 ensemble and on a zkref one."
    from conftest import java_available
    if not java_available():
        pytest.skip("Java ZooKeeper is not installed")
    return (_throttled_op_run("java", tmp_path_factory.mktemp("java")),
            _throttled_op_run("zkref", tmp_path_factory.mktemp("zkref")))


def _shape(replies):
    "Reply zxids relative to the first's: the epoch differs between runs."
    first = replies[0][2]
    return [(xid, err, zxid - first) for xid, err, zxid in replies]


def test_requests_held_past_throttled_op_wait_time_get_throttledop(throttled_ops):
    """With zookeeper.throttled_op_wait_time=100, requests that waited in the RequestThrottler longer than 100 ms
    are answered THROTTLEDOP (-127) — writes and reads alike, in order, after the write ahead of them, with the
    server's last zxid — and are not applied; throttled_ops counts them. On the leader and on a follower (which
    forwards none of them, not even a sync).
    Reference: Java RequestThrottler.run (shouldThrottleOp, THROTTLED_OPS), PrepRequestProcessor.pRequest,
    CommitProcessor.needCommit, FollowerRequestProcessor.run, FinalRequestProcessor.processRequest; ZooKeeper
    Admin Guide, "throttledOpWaitTime\""""
    java, zkref = throttled_ops
    for role in ("leader", "follower"):
        replies, m = java[role]
        assert [(x, err) for x, err, _ in replies] == [(1, 0), (2, THROTTLEDOP), (3, THROTTLEDOP), (4, THROTTLEDOP)]
        assert m["throttled_ops"] == "3"
        assert _shape(zkref[role][0]) == _shape(replies), role
        assert zkref[role][1]["throttled_ops"] == m["throttled_ops"]
    assert java["nodes"] == ["p0", "q0", "zookeeper"]
    assert zkref["nodes"] == java["nodes"]


def _start_lines(flags: list[str], kind: str, workdir) -> dict:
    """Start a standalone server of `kind` with `flags`, stop it; its RequestThrottler lines and the line
    its thread logged before the first of them (class and message, digits of a duration blanked; the
    connection threads' lines of the start's `srvr` polls left out). Only that thread's: Java's
    PrepRequestProcessor thread logs `started` as it runs, and was seen once between the two."""
    import re
    from conftest import JavaZooKeeper, ZkrefServer
    cls = JavaZooKeeper if kind == "java" else ZkrefServer
    server = cls(workdir / f"{kind}-{len(flags)}", jvm_flags=flags).start()
    server.stop()
    line = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ \[myid:\d*\] - \w+\s+\[(.*):([\w$]+)@\d+\] - (.*)$")
    es = [(m[1], m[2], re.sub(r"in \d+ ms", "in N ms", m[3])) for m in map(line.match, server.logs().splitlines())
          if m and m[2] not in ("NIOServerCnxn", "FourLetterCommands")]   # not the test's `srvr` polls
    first = next(i for i, (_, cls_, _) in enumerate(es) if cls_ == "RequestThrottler")
    thread = es[first][0]
    before = next(e[1:] for e in reversed(es[:first]) if e[0] == thread)
    # up to the server's shutdown (Java's standalone server is stopped by SIGTERM without one)
    end = next((i for i, e in enumerate(es) if e[1:] == ("ZooKeeperServer", "shutting down")), len(es))
    return {"lines": [msg for _, cls_, msg in es[:end] if cls_ == "RequestThrottler"], "before": before}


@pytest.mark.parametrize("flags", [[], ["-Dzookeeper.request_throttle_max_requests=1"],
                                   ["-Dzookeeper.request_throttle_max_requests=1",
                                    "-Dzookeeper.request_throttler.shutdownTimeout=2500"]],
                         ids=["default", "max_requests=1", "shutdownTimeout=2500"])
def test_request_throttler_start_lines(tmp_path, flags):
    """Java's RequestThrottler logs one line as it starts, from a static block: `zookeeper.request_throttler.
    shutdownTimeout = <ms> ms` (default 10000), once per JVM, when startupWithServerState starts the
    throttler thread after loading the data (`Snapshot taken in N ms`) — whether the throttle is off (the
    default) or on; the throttle's own settings are not logged. zkref, which runs no throttler task while the
    throttle is off, prints the same lines after the same line.
    Reference: Java RequestThrottler static initializer; ZooKeeperServer.startupWithServerState"""
    from conftest import java_available
    if not java_available():
        pytest.skip("needs Debian's Java ZooKeeper 3.8")
    java, zkref = (_start_lines(flags, kind, tmp_path) for kind in ("java", "zkref"))
    timeout = "2500" if any("shutdownTimeout" in f for f in flags) else "10000"
    assert java["lines"] == [f"zookeeper.request_throttler.shutdownTimeout = {timeout} ms"]
    assert zkref == java
